"""How a descriptor's bytes find their Construct schema.

Framing (splitting a blob into descriptors by ``bLength``) is done by the walker in
:mod:`dkproto.usb.walker`; each descriptor's exact ``bLength`` slice is then decoded by the
schema that :func:`lookup` picks from its ``bDescriptorType``, its subtype byte and where it
stands (:class:`Context`). Class modules (``cdc``, ``audio``, ``uvc``, ...) contribute a
*selector* through :func:`register_class`; standard descriptors through
:func:`register_standard`.

Where the selectors come from (all registered before the first :func:`lookup`, in this order):

1. :data:`BUILTIN_MODULES`, the schema modules shipped with dkproto (``dkproto.schema.<name>``):
   the one list of them;
2. the ``dkproto.schemas`` entry-point group (:data:`ENTRY_POINT_GROUP`): another package adds
   a class module without editing dkproto by declaring
   ``[project.entry-points."dkproto.schemas"] myclass = "mypkg.myclass"``;
3. any :func:`register_class` / :func:`register_standard` call made at run time.

A schema module registers its selectors when it is imported (calls at module level). The
recipe is in docs/descriptors.md, "Adding a class-specific descriptor".

A schema must round-trip: ``struct.build(struct.parse(raw)) == raw`` for the bytes it is
given. Fields keep the spec's spelling (``bLength``, ``bDescriptorType``,
``bDescriptorSubtype``, ``bmControls`` ...). Variable tails (source lists, bitmaps of
``bControlSize`` bytes) are Construct arrays or ``Bytes`` sized from earlier fields, never
``GreedyBytes`` that would swallow a neighbour.

Selectors decide from ``bDescriptorType``, the context and the first
:data:`SELECTOR_PREFIX` bytes of the descriptor (``bLength``, the subtype, a format or
terminal type): the walker caches each *choice* (not the decoded values) per context and
prefix. A selector that must look further (the platform capability's UUID, the shape of a
0x21 descriptor in a vendor interface) is registered for a type in :data:`UNCACHED_TYPES`,
whose descriptors are looked up one by one. A test checks the cached choice against
:func:`lookup` for every corpus descriptor and mutations of it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from construct import Construct

# importlib.metadata.entry_points, without importing importlib.metadata when no package declares the group
from dkproto import _entry_points as metadata

__all__ = [
    "BUILTIN_MODULES",
    "ENTRY_POINT_GROUP",
    "SELECTOR_PREFIX",
    "UNCACHED_TYPES",
    "Context",
    "Meaning",
    "Schema",
    "Selector",
    "generation",
    "loaded_modules",
    "lookup",
    "register_class",
    "register_standard",
]

log = logging.getLogger(__name__)

#: The schema modules shipped with dkproto (``dkproto.schema.<name>``), imported in this order
#: before the first lookup (importing one registers its selectors). A new module in
#: ``dkproto/schema/`` is added here.
BUILTIN_MODULES = (
    "usb",  # chapter 9: device, configuration, interface, endpoint, string, IAD...
    "bos",  # BOS and device capabilities
    "hub",  # hub (0x29) and SuperSpeed hub (0x2A)
    "hid",  # HID descriptor
    "cdc",  # CDC functional descriptors
    "audio",  # USB Audio 1.0 / 2.0
    "midi",  # MIDI streaming
    "uvc",  # USB Video
    "dfu",  # DFU functional descriptor
)
#: The entry-point group of schema modules from other packages; each entry's value names a
#: module, imported after :data:`BUILTIN_MODULES`.
ENTRY_POINT_GROUP = "dkproto.schemas"

#: Turns a field's value into its meaning ("Audio", "Self Powered, Remote Wakeup", "1 ms").
#: ``container`` is the whole parsed descriptor, for meanings that depend on other fields.
Meaning = Callable[[Any, Any], "str | None"]


@dataclass(frozen=True, slots=True)
class Schema:
    """One descriptor layout.

    Attributes:
        key: stable identifier, used as the ``descriptor`` key in JSON (``"device"``,
            ``"cdc_header"``, ``"uvc_vs_format_mjpeg"``).
        name: the spec's name for it, as the text dump shows it.
        struct: the Construct that parses and builds exactly the descriptor's bytes.
        meanings: per field name, a function ``(value, container) -> str | None``.
        spec: where the layout is defined (``"USB 2.0 §9.6.1"``).
    """

    key: str
    name: str
    struct: Construct
    meanings: Mapping[str, Meaning] = field(default_factory=dict)
    spec: str = ""


@dataclass(frozen=True, slots=True)
class Context:
    """Where a descriptor stands in the set, which decides how class-specific bytes read.

    Attributes:
        parent: ``"device"``, ``"configuration"``, ``"interface"``, ``"endpoint"`` or ``"bos"``.
        interface_class, interface_subclass, interface_protocol: of the interface (alternate
            setting) the descriptor follows, if any.
        function_class, function_subclass, function_protocol: of the IAD spanning it, if any.
        endpoint_address: the ``bEndpointAddress`` of the endpoint it follows, if any.
        device_class: ``bDeviceClass`` of the device.
        bcd_usb: ``bcdUSB`` of the device.
        class_version: class-spec release found earlier in this interface's function
            (``bcdADC``, ``bcdUVC``, ``bcdCDC``, ``bcdHID``) when a layout depends on it.
    """

    parent: str = "configuration"
    interface_class: int | None = None
    interface_subclass: int | None = None
    interface_protocol: int | None = None
    function_class: int | None = None
    function_subclass: int | None = None
    function_protocol: int | None = None
    endpoint_address: int | None = None
    device_class: int | None = None
    bcd_usb: int | None = None
    class_version: int | None = None


#: How many leading bytes of a descriptor selectors may read (``bLength`` .. byte 5); the
#: walker caches a choice per (context, these bytes).
SELECTOR_PREFIX = 6
#: Descriptor types whose selectors read past :data:`SELECTOR_PREFIX`: never cached.
#: 0x10 (device capability: the platform UUID at bytes 4-19), 0x21 (HID or DFU functional
#: descriptor in a vendor interface: told apart by their whole shape).
UNCACHED_TYPES = frozenset({0x10, 0x21})

#: ``selector(bDescriptorType, raw_bytes, context) -> Schema | None``
Selector = Callable[[int, bytes, Context], "Schema | None"]

_CLASS_SELECTORS: dict[int, list[Selector]] = {}
_STANDARD: dict[int, Selector] = {}
_GENERIC_CLASS: list[Selector] = []
_loaded = False
_modules: list[str] = []  # imported by _load(), in order
_generation = 0


def generation() -> int:
    """A number that changes whenever a selector is registered (caches of choices drop then).

    The schema modules are loaded first (:data:`BUILTIN_MODULES`, the entry points), so a cache
    checked against this number never outlives their selectors.
    """
    _load()
    return _generation


def register_class(interface_class: int | None, selector: Selector) -> Selector:
    """Add a selector for class-specific descriptors of ``interface_class``.

    ``None`` registers a selector tried for every class after the class's own ones (for
    descriptors such as the DFU functional descriptor that a vendor interface may carry).
    """
    global _generation
    _generation += 1
    if interface_class is None:
        _GENERIC_CLASS.append(selector)
    else:
        _CLASS_SELECTORS.setdefault(interface_class, []).append(selector)
    return selector


def register_standard(descriptor_type: int, selector: Selector) -> Selector:
    """Set the selector for a standard (chapter 9 or BOS capability) descriptor type."""
    global _generation
    _generation += 1
    _STANDARD[descriptor_type] = selector
    return selector


def _entry_points() -> list[metadata.EntryPoint]:
    """The ``dkproto.schemas`` entry points of the installed packages, by name."""
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _load() -> None:
    """Import the schema modules (built-ins, then entry points) once, before the first lookup.

    An entry point that fails to import is skipped with one warning (logger
    ``dkproto.schema.registry``) naming it: its descriptors then stay undecoded, and the rest of
    dkproto keeps working.
    """
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN_MODULES:
        _modules.append(importlib.import_module(f"dkproto.schema.{name}").__name__)
    for ep in _entry_points():
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001 - another package's bug must not stop decoding
            log.warning("schema module %r (entry point %r of group %s) failed to import: %s: %s; "
                        "its descriptors stay undecoded", ep.value, ep.name, ENTRY_POINT_GROUP,
                        type(exc).__name__, exc)
            continue
        _modules.append(ep.value)


def loaded_modules() -> list[str]:
    """The schema modules imported so far, in order (built-ins, then entry points)."""
    _load()
    return list(_modules)


def lookup(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    """The schema for one descriptor, or None when dkproto does not know it (kept as raw bytes).

    Standard types (device, configuration, interface, endpoint, string, IAD, BOS, ...) are
    tried first; class-specific types (0x20-0x3F) go to the selectors of the interface's
    class, then of the IAD's function class, then the generic ones.
    """
    _load()
    std = _STANDARD.get(descriptor_type)
    if std is not None:
        found = std(descriptor_type, raw, ctx)
        if found is not None:
            return found
    classes = []
    if ctx.interface_class is not None:
        classes.append(ctx.interface_class)
    if ctx.function_class is not None and ctx.function_class not in classes:
        classes.append(ctx.function_class)
    if ctx.device_class not in (None, 0) and ctx.device_class not in classes:
        classes.append(ctx.device_class)
    for cls in classes:
        for sel in _CLASS_SELECTORS.get(cls, ()):
            found = sel(descriptor_type, raw, ctx)
            if found is not None:
                return found
    for sel in _GENERIC_CLASS:
        found = sel(descriptor_type, raw, ctx)
        if found is not None:
            return found
    return None


def registered_keys() -> Mapping[str, Any]:
    """For tests: the selectors known, by class."""
    _load()
    return {"standard": dict(_STANDARD), "class": dict(_CLASS_SELECTORS), "generic": list(_GENERIC_CLASS)}
