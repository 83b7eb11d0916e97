"""Descriptor sets as trees: framing by ``bLength``, decoding by schema, placement like ``lsusb -v``.

The walker (:func:`walk`) first *frames* a blob into descriptors by ``bLength`` and
``bDescriptorType``, then decodes each exact slice with the schema that
:func:`dkproto.schema.registry.lookup` picks for it (knowing where it stands: a
:class:`~dkproto.schema.registry.Context`), and hangs it where it belongs:

* configurations (and other-speed configurations) at the top, with everything up to the next
  configuration under them;
* an interface association (IAD) over the interfaces it spans (the interfaces that follow it
  whose ``bInterfaceNumber`` is in its range);
* class-specific interface descriptors (0x24), HID/functional descriptors (0x21) and vendor
  descriptors under their interface (alternate setting);
* endpoint companions (0x30, 0x31), class-specific endpoint descriptors (0x25) and anything
  else that follows an endpoint under the endpoint.

Document order is kept: a pre-order walk of the tree visits the nodes in byte order, so
:meth:`DescriptorSet.to_bytes` is the concatenation of every node rebuilt from its fields.
Undecoded descriptors (unknown or vendor types, or slices too short for their schema) keep
their raw bytes. Every rule broken is a :class:`~dkproto.errors.DecodeError` in
``DescriptorSet.errors`` (offset, descriptor, rule); the walker never raises for bad bytes
and always terminates.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from construct import Struct

from dkproto.errors import DecodeError, EncodeError
from dkproto.schema._fields import compiled, fast_parser, fixed_size
from dkproto.schema.enums import descriptor_type_name
from dkproto.schema.registry import SELECTOR_PREFIX, UNCACHED_TYPES, Context, Schema, lookup
from dkproto.schema.registry import generation as registry_generation

__all__ = [
    "MAX_BOS",
    "MAX_COMPLAINTS",
    "MAX_CONFIGURATION",
    "MAX_DESCRIPTORS",
    "MAX_EXTRA",
    "MAX_EXTRAS",
    "MAX_STRING",
    "MAX_STRINGS",
    "DescriptorSet",
    "Node",
    "check_bounds",
    "parse",
    "walk",
]

#: Standard descriptors whose size the spec fixes: bytes past it are reported.
_STRICT_SIZE = {
    "device": 18,
    "configuration": 9,
    "other_speed_configuration": 9,
    "interface": 9,
    "interface_association": 8,
    "device_qualifier": 10,
    "ss_endpoint_companion": 6,
    "ssp_isoc_endpoint_companion": 8,
    "bos": 5,
    "usb20_extension": 7,
    "superspeed_usb": 10,
    "container_id": 20,
}

#: Class-header fields that give the class spec release (``Context.class_version``).
_CLASS_BCD = ("bcdADC", "bcdUVC", "bcdCDC", "bcdHID", "bcdMSC", "bcdDFUVersion", "bcdVersion")

_SIZE_CACHE: dict[int, int | None] = {}

# -- bounds (docs/descriptors.md, "Bounds") ------------------------------------------------

#: The longest configuration: ``wTotalLength`` is 16 bits (USB 2.0 §9.6.3). The walker places
#: at most this many bytes under one configuration.
MAX_CONFIGURATION = 0xFFFF
#: ``bNumConfigurations`` is 8 bits (USB 2.0 §9.6.1).
MAX_CONFIGURATIONS = 255
#: The longest ``descriptors`` blob a device can present: its device descriptor and 255
#: configurations of 65,535 bytes (16,711,443 bytes).
MAX_DESCRIPTORS = 18 + MAX_CONFIGURATIONS * MAX_CONFIGURATION
#: The longest BOS: its ``wTotalLength`` is 16 bits (USB 3.2 §9.6.2).
MAX_BOS = 0xFFFF
#: The longest string descriptor: ``bLength`` is 8 bits (USB 2.0 §9.6.7).
MAX_STRING = 255
#: String indices are 8 bits (``iManufacturer``...); string 0 lists at most (255 - 2) // 2 LANGIDs.
MAX_STRINGS = 1 + 126 * 255
#: Standalone descriptors: a device qualifier, a hub descriptor and one other-speed
#: configuration per configuration (USB 2.0 §9.6.4).
MAX_EXTRAS = 2 + MAX_CONFIGURATIONS
#: The longest standalone descriptor: an other-speed configuration (16-bit ``wTotalLength``).
MAX_EXTRA = 0xFFFF
#: Complaints kept per set (errors and warnings each); the rest are counted in one last line.
MAX_COMPLAINTS = 1000


def _size_of(schema: Schema) -> int | None:
    key = id(schema.struct)
    if key not in _SIZE_CACHE:
        _SIZE_CACHE[key] = fixed_size(schema.struct)
    return _SIZE_CACHE[key]


class Node:
    """One descriptor in a set.

    Attributes:
        offset: byte offset of the descriptor in its blob (``descriptors`` or BOS).
        raw: the exact bytes framed for it (``bLength`` bytes, or what was left when the
            framing broke).
        schema: the schema that decoded it, or None when undecoded (kept as ``raw``).
        fields: the decoded values by spec field name (a Construct ``Container``), or None.
        extra: bytes after what the schema consumed (kept; rebuilt after the fields).
        children: descriptors that belong to this one, in document order.
        role: ``device``, ``configuration``, ``interface_association``, ``interface``,
            ``endpoint``, ``bos``, ``capability``, ``string`` or ``descriptor``.
        error: the complaint about this node, if any (also in ``DescriptorSet.errors``).
        context: where it stood when decoded.
        blob: ``"descriptors"``, ``"bos"``, ``"string"`` or ``"other"``.
    """

    __slots__ = (
        "blob",
        "children",
        "context",
        "error",
        "extra",
        "fields",
        "offset",
        "raw",
        "role",
        "schema",
        "string_id",
    )

    def __init__(
        self,
        offset: int,
        raw: bytes,
        schema: Schema | None = None,
        fields: Any = None,
        extra: bytes = b"",
        children: list[Node] | None = None,
        role: str = "descriptor",
        error: str | None = None,
        context: Context | None = None,
        blob: str = "descriptors",
        string_id: tuple[int, int] | None = None,
    ) -> None:
        self.offset = offset
        self.raw = raw
        self.schema = schema
        self.fields = fields
        self.extra = extra
        self.children: list[Node] = children if children is not None else []
        self.role = role
        self.error = error
        self.context = context
        self.blob = blob
        #: for strings: (langid, index); langid 0 for the LANGID list
        self.string_id = string_id

    # -- identity -------------------------------------------------------------------
    @property
    def bLength(self) -> int:
        """``bLength`` as framed (the first byte)."""
        return self.raw[0] if self.raw else 0

    @property
    def bDescriptorType(self) -> int:
        """``bDescriptorType`` (the second byte), or -1 when the slice is shorter than 2."""
        return self.raw[1] if len(self.raw) > 1 else -1

    @property
    def decoded(self) -> bool:
        """True when a schema decoded the node."""
        return self.fields is not None

    @property
    def key(self) -> str:
        """The schema key (``"interface"``, ``"cdc_header"``...) or ``"unknown"``."""
        return self.schema.key if self.fields is not None and self.schema else "unknown"

    @property
    def name(self) -> str:
        """Display name: the schema's name, else the descriptor type's."""
        if self.fields is not None and self.schema is not None:
            return self.schema.name
        t = self.bDescriptorType
        return f"{descriptor_type_name(t) if t >= 0 else 'Truncated'} Descriptor (undecoded)"

    def __getitem__(self, name: str) -> Any:
        if self.fields is None:
            raise KeyError(name)
        return self.fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        """A decoded field's value, or ``default``."""
        if self.fields is None:
            return default
        try:
            return self.fields[name]
        except KeyError:
            return default

    def field_items(self) -> list[tuple[str, Any]]:
        """Decoded ``(field name, value)`` pairs in spec order.

        Left out: internal keys (``_...``), optional fields absent from this descriptor (their
        value is None: ``dwFrameInterval`` of a continuous UVC frame, ``bmVideoStandards`` of a
        UVC 1.0 processing unit...) and the class schemas' ``extra`` tail (bytes past the spec
        layout), which :attr:`trailing` gives together with :attr:`extra`.
        """
        if self.fields is None:
            return []
        return [(k, v) for k, v in self.fields.items() if v is not None and k != "extra" and not k.startswith("_")]

    @property
    def trailing(self) -> bytes:
        """Bytes past the spec layout: the walker's ``extra`` plus a class schema's ``extra`` field."""
        tail = self.fields.get("extra") if self.fields is not None else None
        if isinstance(tail, (bytes, bytearray)) and tail:
            return bytes(tail) + self.extra
        return self.extra

    # -- bytes ----------------------------------------------------------------------
    def own_bytes(self) -> bytes:
        """This descriptor's bytes, rebuilt from its fields (plus ``extra``), or ``raw``.

        Raises:
            EncodeError: the fields do not build (a value edited out of range).
        """
        if self.fields is None or self.schema is None:
            return self.raw
        try:
            return bytes(compiled(self.schema.struct).build(self.fields)) + self.extra
        except Exception as exc:  # construct raises many types for bad values
            raise EncodeError(
                f"offset {self.offset}, {self.name}: fields do not build: {exc}"
            ) from exc

    def to_bytes(self) -> bytes:
        """This descriptor and everything under it, rebuilt, in document order."""
        if not self.children:
            return self.own_bytes()
        return b"".join(n.own_bytes() for n in self.walk())

    # -- navigation -----------------------------------------------------------------
    def walk(self) -> Iterator[Node]:
        """This node and its descendants, pre-order (= document order)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            if node.children:
                stack.extend(reversed(node.children))

    def find_all(self, key_or_role: str) -> list[Node]:
        """Descendants (and self) whose ``key`` or ``role`` is ``key_or_role``."""
        return [n for n in self.walk() if n.key == key_or_role or n.role == key_or_role]

    @property
    def interfaces(self) -> list[Node]:
        """Interface (alternate setting) nodes below this node, including under IADs."""
        return [n for n in self.walk() if n.role == "interface"]

    @property
    def endpoints(self) -> list[Node]:
        """Endpoint nodes below this node."""
        return [n for n in self.walk() if n.role == "endpoint"]

    def __repr__(self) -> str:
        return f"<Node {self.key} offset={self.offset} bLength={self.bLength} children={len(self.children)}>"


@dataclass(eq=False)
class DescriptorSet:
    """Everything a device says about itself, as trees of :class:`Node`.

    Attributes:
        roots: the top-level nodes of the ``descriptors`` blob (device, configurations, and
            anything else found at top level), in document order.
        bos_roots: the top-level nodes of the BOS blob (normally one BOS node).
        strings: string descriptors by ``(langid, index)``; the LANGID list is ``(0, 0)``.
        errors: every complaint, in order (each a DecodeError with offset, descriptor, rule).
        source: where the bytes came from (file path, ``usb:BUS:DEV``, ``embedded:...``).
        meta: extra information (corpus ``name``, ``source`` provenance, ``speed``...).
    """

    roots: list[Node] = field(default_factory=list)
    bos_roots: list[Node] = field(default_factory=list)
    strings: dict[tuple[int, int], Node] = field(default_factory=dict)
    extras: list[Node] = field(default_factory=list)
    errors: list[DecodeError] = field(default_factory=list)
    #: spec-conformance notes that do not stop decoding (quirks of real devices)
    warnings: list[DecodeError] = field(default_factory=list)
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    #: for a lazy set (``parse(..., lazy=True)``): walks the ``descriptors`` blob again
    rewalk: Callable[[], Iterator[Node]] | None = field(default=None, repr=False)

    def iter_roots(self) -> Iterator[Node]:
        """The top-level nodes of the ``descriptors`` blob: ``roots``, or a fresh walk of a lazy set."""
        return self.rewalk() if self.rewalk is not None else iter(self.roots)

    @property
    def lazy(self) -> bool:
        """True when the set keeps no tree of its ``descriptors`` blob (see :func:`parse`)."""
        return self.rewalk is not None

    @property
    def device(self) -> Node | None:
        """The device descriptor node."""
        for n in self.iter_roots():
            if n.role == "device":
                return n
        return None

    @property
    def configurations(self) -> list[Node]:
        """Configuration nodes, in order (other-speed configurations excluded)."""
        return [n for n in self.iter_roots() if n.role == "configuration" and n.key != "other_speed_configuration"]

    @property
    def bos(self) -> Node | None:
        """The BOS node (from the BOS blob, or found in the main blob)."""
        for n in itertools.chain(self.bos_roots, self.iter_roots()):
            if n.role == "bos":
                return n
        return None

    @property
    def device_qualifier(self) -> Node | None:
        """The device qualifier node (live high-speed devices), if read."""
        for n in itertools.chain(self.extras, self.iter_roots()):
            if n.key == "device_qualifier":
                return n
        return None

    @property
    def ok(self) -> bool:
        """True when nothing was complained about."""
        return not self.errors

    def to_bytes(self) -> bytes:
        """The ``descriptors`` blob (device + configurations, sysfs layout), rebuilt."""
        return b"".join(n.to_bytes() for n in self.iter_roots())

    def bos_bytes(self) -> bytes:
        """The BOS blob, rebuilt (empty when there is none)."""
        return b"".join(n.to_bytes() for n in self.bos_roots)

    def nodes(self) -> Iterator[Node]:
        """Every node of every blob, in document order."""
        for root in itertools.chain(self.iter_roots(), self.bos_roots, self.extras, list(self.strings.values())):
            yield from root.walk()

    def string(self, index: int, langid: int | None = None) -> str | None:
        """The text of string ``index`` (first LANGID when not given), or None."""
        if not index:
            return None
        if langid is None:
            langs = self.langids()
            langid = langs[0] if langs else None
            if langid is None:
                for (lang, idx) in self.strings:
                    if idx == index and lang:
                        langid = lang
                        break
        node = self.strings.get((langid or 0, index))
        if node is None or node.fields is None or node.key != "string":
            return None
        return bytes(node.fields.bString).decode("utf-16-le", errors="replace")

    def langids(self) -> list[int]:
        """The LANGIDs from string descriptor 0."""
        node = self.strings.get((0, 0))
        if node is None or node.fields is None or node.key != "langid_list":
            return []
        return list(node.fields.wLANGID)

    @property
    def vid_pid(self) -> tuple[int, int] | None:
        """``(idVendor, idProduct)``."""
        dev = self.device
        if dev is None or dev.fields is None:
            return None
        return dev.fields.idVendor, dev.fields.idProduct


# -- the walker ---------------------------------------------------------------------------


class _Place:
    """A shared, interned :class:`Context` plus what the walker learnt about it.

    ``choices`` caches the schema *choice* (never a decoded value) for the descriptors met at
    this place, keyed by their first :data:`~dkproto.schema.registry.SELECTOR_PREFIX` bytes
    (``bLength`` included, so the length is part of the key); see
    :data:`~dkproto.schema.registry.UNCACHED_TYPES` for the types whose selectors read further.
    ``endpoints`` and ``versions`` cache the derived places (endpoint address, class version).
    """

    __slots__ = ("choices", "ctx", "endpoints", "values", "versions")

    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = values
        self.ctx = Context(*values)
        self.choices: dict[bytes, tuple[Any, ...]] = {}
        self.endpoints: dict[Any, _Place] = {}
        self.versions: dict[Any, _Place] = {}


_PLACES: dict[tuple[Any, ...], _Place] = {}
_PLACES_GENERATION = [-1]  # the registry generation the places' choices were made with


def _fresh_places() -> None:
    """Forget every cached choice when a selector was registered since they were made."""
    gen = registry_generation()
    if gen != _PLACES_GENERATION[0]:
        _PLACES.clear()
        _PLACES_GENERATION[0] = gen


def _place(*values: Any) -> _Place:
    """The interned place for the Context values in field order (Context is frozen)."""
    found = _PLACES.get(values)
    if found is None:
        if len(_PLACES) > 4096:
            _PLACES.clear()  # places in use keep working: each carries its own caches
        found = _PLACES[values] = _Place(values)
    return found


def clear_choice_cache() -> None:
    """Forget every cached schema choice (the next walk asks the selectors again)."""
    _PLACES.clear()


def _context(*values: Any) -> Context:
    """A shared, cached Context for the values in field order."""
    return _place(*values).ctx


def _with(place: _Place, parent: str | None = None, endpoint_address: Any = None,
          class_version: Any = None) -> _Place:
    """``place`` with its parent / endpoint address / class version replaced (interned)."""
    v = place.values
    return _place(
        parent if parent is not None else v[0], v[1], v[2], v[3], v[4], v[5], v[6],
        endpoint_address if endpoint_address is not None else v[7], v[8], v[9],
        class_version if class_version is not None else v[10],
    )


def _endpoint_place(place: _Place, address: Any) -> _Place:
    found = place.endpoints.get(address)
    if found is None:
        found = place.endpoints[address] = _with(place, parent="endpoint", endpoint_address=address)
    return found


def _version_place(place: _Place, version: Any) -> _Place:
    found = place.versions.get(version)
    if found is None:
        found = place.versions[version] = _with(place, class_version=version)
    return found


#: per schema (by id): (schema, fast parser, spec-fixed size or None, fixed size or None,
#: class-release field name or None)
_INFO: dict[int, tuple[Any, ...]] = {}
#: the cached choice "no schema": kept as raw bytes
_UNKNOWN: tuple[Any, ...] = (None, None, None, None, None, 255, False)


#: per schema (by id) that has one: the class-release field (``bcdADC``, ``bcdUVC``...)
_RELEASE_FIELD: dict[int, str] = {}


def _layout_size(schema: Schema) -> int:
    """For a struct that ends with an ``extra`` GreedyBytes tail (class schemas) and is fixed
    before it: that size (bytes past it are worth a warning); else 255 (never exceeded)."""
    subcons = list(getattr(schema.struct, "subcons", ()))
    if not subcons or getattr(subcons[-1], "name", None) != "extra":
        return 255
    try:
        return int(Struct(*subcons[:-1]).sizeof())
    except Exception:  # noqa: BLE001 - SizeofError: a variable layout (arrays, optional fields)
        return 255


def _info(schema: Schema) -> tuple[Any, ...]:
    """(schema, fast parser, spec-fixed size or None, fixed size or None, class-release field or
    None, the class layout's fixed size or 255, whether the struct ends with an ``extra`` tail)."""
    info = _INFO.get(id(schema))
    if info is None:
        names = {getattr(sc, "name", None) for sc in getattr(schema.struct, "subcons", ())}
        bcd = next((n for n in _CLASS_BCD if n in names), None)
        if bcd is not None:
            _RELEASE_FIELD[id(schema)] = bcd
        subcons = list(getattr(schema.struct, "subcons", ()))
        tail = bool(subcons) and getattr(subcons[-1], "name", None) == "extra"
        info = _INFO[id(schema)] = (schema, fast_parser(schema.struct), _STRICT_SIZE.get(schema.key),
                                    _size_of(schema), bcd, _layout_size(schema), tail)
    return info


_TOP_ROLES = {0x01: "device", 0x03: "string"}

# How the configuration loop treats a descriptor type, and where a descriptor hangs.
_OTHER, _CLASS, _ENDPOINT, _INTERFACE, _IAD, _TOP = range(6)
_KINDS = [_OTHER] * 256  # by bDescriptorType; [-1] (no type: a 1-byte broken tail) is _OTHER too
for _type, _kind in ((0x24, _CLASS), (0x21, _CLASS), (0x05, _ENDPOINT), (0x04, _INTERFACE), (0x0B, _IAD),
                     (0x01, _TOP), (0x02, _TOP), (0x07, _TOP), (0x0F, _TOP)):
    _KINDS[_type] = _kind
_UNDER_CONFIGURATION, _UNDER_INTERFACE, _UNDER_ENDPOINT = range(3)


class _Walker:
    """State of one walk over one blob (see :func:`walk`)."""

    def __init__(self, errors: list[DecodeError], blob: str, device_class: int | None, bcd_usb: int | None,
                 warnings: list[DecodeError] | None = None):
        self.errors = errors
        self.warnings = warnings if warnings is not None else []
        self.device_protocol: tuple[int, int] | None = None
        self.configurations = 0  # configuration descriptors (0x02) met at top level
        self.broken = -1  # offset of the undecodable rest when framing broke
        self.blob = blob
        self.device_class = device_class
        self.bcd_usb = bcd_usb
        self.frames: Iterator[tuple[int, bytes]] = iter(())
        self.pending: tuple[int, bytes] | None = None
        #: complaints past MAX_COMPLAINTS, counted instead of kept
        self.dropped_errors = 0
        self.dropped_warnings = 0
        self.configuration_values: set[int] = set()

    def where(self, descriptor: str) -> str:
        """``descriptor`` prefixed with the blob it is in (``BOS``, ``string``, ``other``), once."""
        if self.blob == "descriptors" or descriptor.lower().startswith(self.blob.lower()):
            return descriptor
        return f"{self.blob} {descriptor}"

    def complain(self, offset: int, descriptor: str, rule: str, message: str, node: Node | None = None) -> None:
        if len(self.errors) >= MAX_COMPLAINTS:
            self.dropped_errors += 1
            if node is not None and node.error is None:
                node.error = str(DecodeError(message, offset=offset, descriptor=self.where(descriptor)))
            return
        err = DecodeError(message, offset=offset, descriptor=self.where(descriptor), rule=rule)
        err.blob = self.blob  # type: ignore[attr-defined]  # for the order of parse()'s list
        self.errors.append(err)
        if node is not None and node.error is None:
            node.error = str(err)

    def warn(self, offset: int, descriptor: str, rule: str, message: str) -> None:
        if len(self.warnings) >= MAX_COMPLAINTS:
            self.dropped_warnings += 1
            return
        err = DecodeError(message, offset=offset, descriptor=self.where(descriptor), rule=rule)
        err.blob = self.blob  # type: ignore[attr-defined]
        self.warnings.append(err)

    # framing ------------------------------------------------------------------------
    def frame(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """Frames ``(offset, raw)`` by ``bLength``, made as the walk asks for them (never all at once)."""
        self.broken = -1
        pos = 0
        end = len(data)
        while pos < end:
            length = data[pos]
            if length < 2:
                kind = "bDescriptorType" if pos + 1 >= end else descriptor_type_name(data[pos + 1])
                self.broken = pos
                self.complain(pos, f"{kind} descriptor" if pos + 1 < end else "descriptor", "bLength",
                              f"bLength {length} < 2: a descriptor cannot be shorter than its header; "
                              f"the {end - pos} remaining bytes are kept undecoded")
                yield pos, data[pos:]
                return
            if pos + length > end:
                kind = f"{descriptor_type_name(data[pos + 1])} descriptor" if pos + 1 < end else "descriptor"
                self.broken = pos
                self.complain(pos, kind, "bLength",
                              f"bLength {length} runs past the end of the data ({end - pos} bytes left); "
                              "kept undecoded")
                yield pos, data[pos:]
                return
            yield pos, data[pos:pos + length]
            pos += length

    # decoding -----------------------------------------------------------------------
    def decode(self, offset: int, raw: bytes, place: _Place, role: str) -> Node:
        """Decode one framed descriptor at ``place`` (the schema choice cached per place)."""
        info = place.choices.get(raw[:SELECTOR_PREFIX])
        if info is None or offset == self.broken:
            return self.decode_first(offset, raw, place, role)
        schema = info[0]
        if schema is None:
            return Node(offset, raw, None, None, b"", None, role, None, place.ctx, self.blob)
        try:
            fields, used = info[1](raw)
        except Exception as exc:  # noqa: BLE001 - construct errors of every kind: the slice is too short/odd
            return self.undecodable(offset, raw, place, role, schema, exc)
        node = Node(offset, raw, schema, fields, b"", None, role, None, place.ctx, self.blob)
        if used < len(raw):
            self.tail(node, info, used)
        elif info[6] and fields["extra"]:
            self.past_layout(node, info[5])
        return node

    def decode_first(self, offset: int, raw: bytes, place: _Place, role: str) -> Node:
        """The slow path: ask the registry, check the size, remember the choice when allowed."""
        node = Node(offset, raw, None, None, b"", None, role, None, place.ctx, self.blob)
        if offset == self.broken or len(raw) < 2:
            return node  # the bytes left after framing broke are kept, never decoded
        try:
            schema = lookup(raw[1], raw, place.ctx)
        except Exception as exc:  # noqa: BLE001 - a class selector failed: keep raw, say so
            self.complain(offset, descriptor_type_name(raw[1]) + " descriptor", "schema selection",
                          f"schema selection failed: {exc}; kept undecoded", node)
            return node
        cacheable = raw[1] not in UNCACHED_TYPES and raw[0] == len(raw)
        if schema is None:
            if cacheable:
                place.choices[raw[:SELECTOR_PREFIX]] = _UNKNOWN
            return node
        info = _info(schema)
        size = info[3]
        if size is not None and len(raw) < size:
            self.complain(offset, schema.name, "bLength",
                          f"bLength {len(raw)} < {size} required by {schema.name}; kept undecoded", node)
            return node
        if cacheable:
            place.choices[raw[:SELECTOR_PREFIX]] = info
        try:
            fields, used = info[1](raw)
        except Exception as exc:  # noqa: BLE001 - construct errors of every kind: the slice is too short/odd
            return self.undecodable(offset, raw, place, role, schema, exc)
        node.schema = schema
        node.fields = fields
        if used < len(raw):
            self.tail(node, info, used)
        elif info[6] and fields["extra"]:
            self.past_layout(node, info[5])
        return node

    def undecodable(self, offset: int, raw: bytes, place: _Place, role: str, schema: Schema,
                    exc: Exception) -> Node:
        node = Node(offset, raw, schema, None, b"", None, role, None, place.ctx, self.blob)
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.complain(offset, schema.name, "bLength",
                      f"bLength {len(raw)} too short for {schema.name} ({msg}); kept undecoded", node)
        return node

    def past_layout(self, node: Node, size: int) -> None:
        """A class descriptor longer than its spec layout: the bytes are kept (``extra``).

        ``size`` is the layout's fixed size, or 255 for a layout its own fields size (a UVC
        frame's interval count...): then the layout ends where the ``extra`` tail starts.
        """
        raw = node.raw
        count = len(node.fields["extra"])
        layout = len(raw) - count
        name = node.schema.name if node.schema else node.name
        if size < 255:
            message = f"bLength {len(raw)} > {size} fixed by the spec; {count} extra bytes kept"
        else:
            message = (f"bLength {len(raw)} but its fields end at byte {layout}: {count} trailing bytes at offset "
                       f"{node.offset + layout} kept")
        swallowed = _frames_cleanly(raw[layout:])
        if swallowed > 1:
            message += (f"; they frame as {swallowed} well-formed descriptors: bLength may have swallowed the "
                        "descriptors that follow")
        self.warn(node.offset, name, "bLength", message)

    def tail(self, node: Node, info: tuple[Any, ...], used: int) -> None:
        """Bytes past what the schema consumed: kept as ``extra``; a complaint where the size is fixed."""
        raw = node.raw
        node.extra = raw[used:]
        strict = info[2]
        if strict is not None:
            self.complain(node.offset, node.schema.name, "bLength",
                          f"bLength {len(raw)} > {strict} fixed by the spec; "
                          f"{len(raw) - used} extra bytes kept", node)

    # placement ----------------------------------------------------------------------
    def walk(self, data: bytes) -> list[Node]:
        return list(self.iter_walk(data))

    def next_frame(self) -> tuple[int, bytes] | None:
        """The frame pushed back by the last configuration or BOS, else the next one, else None."""
        frame = self.pending
        if frame is not None:
            self.pending = None
            return frame
        return next(self.frames, None)

    def iter_walk(self, data: bytes) -> Iterator[Node]:
        """The top-level nodes of ``data``, each complete with its subtree, as the walk reaches them.

        Frames are made as needed and a configuration holds at most :data:`MAX_CONFIGURATION`
        bytes, so a walk that drops each root after use holds one configuration at a time.
        """
        _fresh_places()
        self.frames = self.frame(data)
        self.pending = None
        top = _place("device", None, None, None, None, None, None, None, self.device_class, self.bcd_usb, None)
        while True:
            frame = self.next_frame()
            if frame is None:
                return
            offset, raw = frame
            dtype = raw[1] if len(raw) > 1 else -1
            if dtype == 0x02 or dtype == 0x07:
                node = self.decode(offset, raw, top, "configuration")
                if dtype == 0x02:
                    self.configurations += 1
                    self.check_configuration_value(node)
                self.configuration(node)
                yield node
                continue
            if dtype == 0x0F:
                node = self.decode(offset, raw, top, "bos")
                self.bos(node)
                yield node
                continue
            role = _TOP_ROLES.get(dtype, "descriptor")
            node = self.decode(offset, raw, top, role)
            if role == "device" and node.fields is not None:
                self.device_class = node.fields["bDeviceClass"]
                self.device_protocol = (node.fields["bDeviceSubClass"], node.fields["bDeviceProtocol"])
                self.bcd_usb = node.fields["bcdUSB"]
                top = _place("device", None, None, None, None, None, None, None, self.device_class, self.bcd_usb, None)
            yield node

    def bos(self, bos: Node) -> None:
        ctx = _place("bos", None, None, None, None, None, None, None, self.device_class, self.bcd_usb, None)
        end = bos.offset + (bos.fields["wTotalLength"] if bos.fields is not None else bos.bLength)
        while True:
            frame = self.next_frame()
            if frame is None:
                break
            if frame[0] >= end:
                self.pending = frame
                break
            offset, raw = frame
            node = self.decode(offset, raw, ctx, "capability")
            bos.children.append(node)
            if offset + len(raw) > end:
                self.complain(offset, node.name, "wTotalLength",
                              f"runs past the end of its BOS (wTotalLength ends it at {end})", node)
        if bos.fields is not None:
            last = bos.children[-1] if bos.children else bos
            actual = last.offset + len(last.raw) - bos.offset
            if actual != bos.fields["wTotalLength"]:
                self.complain(bos.offset, bos.name, "wTotalLength",
                              f"wTotalLength {bos.fields['wTotalLength']} disagrees with the bytes: "
                              f"{actual} bytes belong to the BOS")
            if len(bos.children) != bos.fields["bNumDeviceCaps"]:
                self.complain(bos.offset, bos.name, "bNumDeviceCaps",
                              f"bNumDeviceCaps {bos.fields['bNumDeviceCaps']} but {len(bos.children)} "
                              "device capabilities follow")

    def configuration(self, config: Node) -> None:
        """Place the descriptors of one configuration (up to the next top-level descriptor, at most
        :data:`MAX_CONFIGURATION` bytes from its start).

        The hot loop of a walk: the decoding of :meth:`decode` is inlined (a cached choice, the
        fast parser, one :class:`Node`); anything unusual goes to :meth:`decode_first`.
        """
        device_class, bcd_usb = self.device_class, self.bcd_usb
        total = config.fields["wTotalLength"] if config.fields is not None else None
        end = config.offset + total if total is not None else -1
        cfg_place = _place("configuration", None, None, None, None, None, None, None, device_class, bcd_usb, None)
        children = config.children
        iad: Node | None = None
        iad_first = iad_stop = 0
        iad_fields: Any = None
        iface: Node | None = None
        ep: Node | None = None
        iface_place = cfg_place
        ep_place = cfg_place
        versions: dict[int, int] = {}
        interfaces: list[tuple[Node, int]] = []  # (interface, endpoints seen)
        endpoints = 0
        addresses: set[int] = set()  # endpoint addresses of the current alternate setting
        alternates: set[tuple[int, int]] = set()  # (bInterfaceNumber, bAlternateSetting) seen
        last_end = config.offset + len(config.raw)
        cap = config.offset + MAX_CONFIGURATION
        next_frame = self.next_frame
        blob = self.blob
        prefix = SELECTOR_PREFIX
        new_node = object.__new__
        kinds = _KINDS
        under = _UNDER_CONFIGURATION
        node: Node
        last: tuple[int, bytes] | None = None
        while True:
            frame = next_frame()
            if frame is None:
                break
            offset, raw = frame
            broken = self.broken
            # a broken tail may be 1 byte long: no type to read
            dtype = raw[1] if offset != broken or len(raw) > 1 else -1
            # where it stands (the place whose context decodes it), its role, where it hangs
            kind = kinds[dtype]
            if kind == _TOP or offset >= cap:
                if kind != _TOP:
                    self.complain(offset, config.name, "wTotalLength",
                                  f"descriptors from offset {offset} on lie {MAX_CONFIGURATION} or more bytes "
                                  f"after the configuration at offset {config.offset} (wTotalLength is 16 bits, "
                                  "a configuration cannot be longer); placed at top level")
                self.pending = frame
                break
            if kind == _CLASS:  # class-specific interface descriptor (0x24) or HID/functional (0x21)
                if iface is not None:
                    place, under = iface_place, _UNDER_INTERFACE
                else:
                    place, under = cfg_place, _UNDER_CONFIGURATION
                role = "descriptor"
            elif kind == _OTHER:
                if dtype == 0x03:
                    self.complain(offset, "String descriptor", "placement",
                                  "a string descriptor inside a configuration: strings are only read with "
                                  "GET_DESCRIPTOR(STRING) (USB 2.0 §9.6.7)")
                if ep is not None:
                    place, under = ep_place, _UNDER_ENDPOINT
                elif iface is not None:
                    place, under = iface_place, _UNDER_INTERFACE
                else:
                    place, under = cfg_place, _UNDER_CONFIGURATION
                role = "descriptor"
            elif kind == _ENDPOINT:
                place, role = (cfg_place if iface is None else iface_place), "endpoint"
            elif kind == _INTERFACE:
                place, role = cfg_place, "interface"
            else:  # _IAD (a top-level kind ended the loop above)
                place, role = cfg_place, "interface_association"
            # decoding (see decode())
            try:
                info = place.choices[raw[:prefix]]
            except KeyError:
                info = None
            if info is None or offset == broken:
                node = self.decode_first(offset, raw, place, role)
                release = _RELEASE_FIELD.get(id(node.schema)) if node.fields is not None else None
            elif info[0] is None:
                node = Node(offset, raw, None, None, b"", None, role, None, place.ctx, blob)
                release = None
            else:
                try:
                    fields, used = info[1](raw)
                except Exception as exc:  # noqa: BLE001 - construct errors of every kind
                    node = self.undecodable(offset, raw, place, role, info[0], exc)
                    release = None
                else:
                    # a Node without the call to __init__ (the one allocation per descriptor)
                    node = new_node(Node)
                    node.offset = offset
                    node.raw = raw
                    node.schema = info[0]
                    node.fields = fields
                    node.extra = b""
                    node.children = []
                    node.role = role
                    node.error = None
                    node.context = place.ctx
                    node.blob = blob
                    node.string_id = None
                    if used != raw[0]:  # raw[0] (bLength) is len(raw) for every frame but a broken tail
                        self.tail(node, info, used)
                    elif info[6] and fields["extra"]:
                        self.past_layout(node, info[5])
                    release = info[4]
            # placement
            if kind == _CLASS or kind == _OTHER:
                if under == _UNDER_INTERFACE:
                    iface.children.append(node)  # type: ignore[union-attr]
                    ep = None  # closed: what follows must not hang under it (document order = byte order)
                    if release is not None and release in node.fields:
                        version = node.fields[release]
                        values = iface_place.values
                        cls = values[4] if values[4] is not None else values[1]  # function, else interface class
                        if cls is not None:
                            versions[cls] = version
                        if values[1] is not None:
                            versions[values[1]] = version
                        iface_place = _version_place(iface_place, version)
                elif under == _UNDER_ENDPOINT:
                    ep.children.append(node)  # type: ignore[union-attr]
                    if dtype == 0x30 and node.fields is not None:
                        self.check_companion(node, ep)  # type: ignore[arg-type]
                else:
                    if iad is not None and children[-1] is iad:
                        iad.children.append(node)  # between an IAD and its first interface
                    else:
                        children.append(node)
                    ep = None  # an endpoint outside any interface is closed too (byte order)
            elif kind == _ENDPOINT:
                if iface is None:
                    children.append(node)
                    self.complain(offset, node.name, "placement", "endpoint descriptor outside any interface", node)
                    iad = iad_fields = None  # later interfaces cannot join it without breaking byte order
                else:
                    iface.children.append(node)
                    endpoints += 1
                    if node.fields is not None:
                        self.check_endpoint(node, iface, addresses)
                ep = node
                address = node.fields["bEndpointAddress"] if node.fields is not None else None
                ep_place = iface_place.endpoints.get(address) or _endpoint_place(iface_place, address)
            elif kind == _INTERFACE:
                if iface is not None:
                    interfaces.append((iface, endpoints))
                ep = None
                endpoints = 0
                addresses = set()
                f = node.fields
                if iad is not None and f is not None and iad_first <= f["bInterfaceNumber"] < iad_stop \
                        and children[-1] is iad:
                    iad.children.append(node)
                else:
                    iad = iad_fields = None
                    children.append(node)
                if f is not None:
                    cls = f["bInterfaceClass"]
                    if iad_fields is not None:
                        fcls = iad_fields["bFunctionClass"]
                        iface_place = _place("interface", cls, f["bInterfaceSubClass"], f["bInterfaceProtocol"],
                                             fcls, iad_fields["bFunctionSubClass"], iad_fields["bFunctionProtocol"],
                                             None, device_class, bcd_usb, versions.get(fcls, versions.get(cls)))
                    else:
                        iface_place = _place("interface", cls, f["bInterfaceSubClass"], f["bInterfaceProtocol"],
                                             None, None, None, None, device_class, bcd_usb, versions.get(cls))
                else:
                    iface_place = _place("interface", None, None, None, None, None, None, None, device_class,
                                         bcd_usb, None)
                iface = node
                if f is not None:
                    pair = (f["bInterfaceNumber"], f["bAlternateSetting"])
                    if pair in alternates:
                        self.complain(offset, node.name, "bAlternateSetting",
                                      f"interface {pair[0]} alternate setting {pair[1]} appears twice in this "
                                      "configuration", node)
                    alternates.add(pair)
            else:  # _IAD
                if iface is not None:
                    interfaces.append((iface, endpoints))
                children.append(node)
                iface = ep = None
                iad = node
                iad_fields = node.fields
                if iad_fields is not None:
                    iad_first = iad_fields["bFirstInterface"]
                    iad_stop = iad_first + iad_fields["bInterfaceCount"]
                    versions = {}
                else:
                    iad_first = iad_stop = 0
            last = frame
        if last is not None:
            offset, raw = last
            last_end = offset + len(raw)
            if last_end > end >= 0 and config.fields is not None:
                self.straddle(config, end, total)
        if iface is not None:
            interfaces.append((iface, endpoints))
        if config.fields is not None:
            self.check_configuration(config, last_end, interfaces)

    def straddle(self, config: Node, end: int, total: int | None) -> None:
        """Complain about the descriptor that runs past the end ``wTotalLength`` gives (if one does)."""
        for node in config.walk():
            if node is not config and node.offset < end < node.offset + len(node.raw):
                self.complain(node.offset, node.name, "wTotalLength",
                              f"runs past the end of its configuration (wTotalLength {total} ends it at "
                              f"offset {end})", node)
                return

    def check_configuration_value(self, config: Node) -> None:
        if config.fields is None:
            return
        value = config.fields["bConfigurationValue"]
        if value in self.configuration_values:
            self.complain(config.offset, config.name, "bConfigurationValue",
                          f"bConfigurationValue {value} is used by an earlier configuration: "
                          "SET_CONFIGURATION could not tell them apart", config)
        self.configuration_values.add(value)

    def check_endpoint(self, node: Node, iface: Node, addresses: set[int]) -> None:
        address = node.fields["bEndpointAddress"]
        where = ""
        if iface.fields is not None:
            where = f" (interface {iface.fields['bInterfaceNumber']} alt {iface.fields['bAlternateSetting']})"
        if address & 0x0F == 0:
            self.complain(node.offset, node.name, "bEndpointAddress",
                          f"bEndpointAddress 0x{address:02x} is endpoint 0, which has no endpoint descriptor "
                          f"(USB 2.0 §9.6.6){where}", node)
        elif address in addresses:
            self.complain(node.offset, node.name, "bEndpointAddress",
                          f"a second endpoint 0x{address:02x} in one alternate setting{where}", node)
        addresses.add(address)

    def check_companion(self, node: Node, ep: Node) -> None:
        if self.bcd_usb is not None and self.bcd_usb < 0x0300:
            self.warn(node.offset, node.name, "bcdUSB",
                      f"SuperSpeed Endpoint Companion in a device with bcdUSB {self.bcd_usb >> 8:x}."
                      f"{self.bcd_usb & 0xFF:02x} (< 3.00): only SuperSpeed configurations carry companions")
        if ep.fields is not None and ep.fields["bmAttributes"] & 3 in (0, 2) and node.fields["wBytesPerInterval"]:
            self.warn(node.offset, node.name, "wBytesPerInterval",
                      f"wBytesPerInterval {node.fields['wBytesPerInterval']} on bulk endpoint "
                      f"0x{ep.fields['bEndpointAddress']:02x}: reserved, shall be zero (USB 3.2 §9.6.7)")

    def check_configuration(self, config: Node, last_end: int, interfaces: list[tuple[Node, int]]) -> None:
        f = config.fields
        if self.device_class == 0xEF and self.device_protocol == (2, 1) and not any(
                c.role == "interface_association" for c in config.children):
            self.warn(config.offset, config.name, "bDeviceClass",
                      "device class 0xEF/0x02/0x01 (Interface Association) but configuration "
                      f"{f['bConfigurationValue']} has no Interface Association Descriptor")
        actual = last_end - config.offset
        if actual != f["wTotalLength"]:
            self.complain(config.offset, config.name, "wTotalLength",
                          f"wTotalLength {f['wTotalLength']} disagrees with the bytes: {actual} bytes follow "
                          "up to the next configuration or the end")
        numbers = {n.fields["bInterfaceNumber"] for n, _ in interfaces if n.fields is not None}
        if len(numbers) != f["bNumInterfaces"]:
            self.complain(config.offset, config.name, "bNumInterfaces",
                          f"bNumInterfaces {f['bNumInterfaces']} but {len(numbers)} interfaces follow")
        for iface, count in interfaces:
            if iface.fields is None:
                continue
            if count != iface.fields["bNumEndpoints"]:
                self.complain(iface.offset, iface.name, "bNumEndpoints",
                              f"bNumEndpoints {iface.fields['bNumEndpoints']} but {count} endpoint descriptors "
                              f"follow (interface {iface.fields['bInterfaceNumber']} alt "
                              f"{iface.fields['bAlternateSetting']})", iface)


def walk(data: bytes, *, errors: list[DecodeError] | None = None, blob: str = "descriptors",
         device_class: int | None = None, bcd_usb: int | None = None) -> list[Node]:
    """Frame, decode and place every descriptor of ``data``; returns the top-level nodes.

    Complaints are appended to ``errors`` (when given); nothing is raised for bad bytes.
    """
    return _Walker(errors if errors is not None else [], blob, device_class, bcd_usb).walk(bytes(data))


def check_bounds(
    descriptors: bytes,
    bos: bytes | None = None,
    strings: dict[tuple[int, int], bytes] | None = None,
    extras: list[bytes] | None = None,
    *,
    source: str = "",
) -> None:
    """Refuse blobs larger than any device can present (see docs/descriptors.md, "Bounds").

    Raises:
        DecodeError: a blob past its bound (the message names the blob, its size and the rule).
    """
    where = source or "descriptor set"

    def refuse(what: str, size: int, bound: int, rule: str) -> DecodeError:
        return DecodeError(f"{what} is {size:,} bytes, more than the {bound:,} any device can present ({rule})",
                           descriptor=where, rule=rule)

    if len(descriptors) > MAX_DESCRIPTORS:
        raise refuse("the descriptors blob", len(descriptors), MAX_DESCRIPTORS,
                     "an 18-byte device descriptor and at most 255 configurations of at most 65,535 bytes")
    if bos and len(bos) > MAX_BOS:
        raise refuse("the BOS blob", len(bos), MAX_BOS, "BOS wTotalLength is 16 bits")
    if extras:
        if len(extras) > MAX_EXTRAS:
            raise DecodeError(f"{len(extras):,} standalone descriptors, more than the {MAX_EXTRAS} a device "
                              "can present (a device qualifier, a hub descriptor and one other-speed "
                              "configuration per configuration)", descriptor=where, rule="extras")
        for i, raw in enumerate(extras):
            if len(raw) > MAX_EXTRA:
                raise refuse(f"standalone descriptor {i + 1}", len(raw), MAX_EXTRA,
                             "an other-speed configuration's wTotalLength is 16 bits")
    if strings:
        if len(strings) > MAX_STRINGS:
            raise DecodeError(f"{len(strings):,} string descriptors, more than the {MAX_STRINGS:,} a device can "
                              "present (string indices are 8 bits, string 0 lists at most 126 LANGIDs)",
                              descriptor=where, rule="strings")
        for (langid, index), raw in strings.items():
            if not 0 <= index <= 255 or not 0 <= langid <= 0xFFFF:
                raise DecodeError(f"string (LANGID {langid}, index {index}): the index is 8 bits and the "
                                  "LANGID 16 bits", descriptor=where, rule="strings")
            if len(raw) > MAX_STRING:
                raise refuse(f"string descriptor {index} (LANGID 0x{langid:04x})", len(raw), MAX_STRING,
                             "bLength is 8 bits")


def parse(
    descriptors: bytes,
    bos: bytes | None = None,
    *,
    strings: dict[tuple[int, int], bytes] | None = None,
    extras: list[bytes] | None = None,
    source: str = "",
    meta: dict[str, Any] | None = None,
    lazy: bool = False,
) -> DescriptorSet:
    """Build a :class:`DescriptorSet` from raw blobs.

    Args:
        descriptors: device descriptor followed by each configuration (sysfs ``descriptors``
            layout; any top-level descriptors are accepted).
        bos: the BOS descriptor set, if read.
        strings: string descriptors by ``(langid, index)``, the LANGID list as ``(0, 0)``.
        extras: other standalone descriptors (device qualifier, hub descriptor...).
        source: where the bytes came from.
        meta: extra information kept on the set.
        lazy: keep no tree of the ``descriptors`` blob: ``roots`` stays empty and every
            traversal (:meth:`DescriptorSet.iter_roots`, ``nodes()``, ``to_bytes()``, the
            renderers) walks the blob again, so memory holds one configuration at a time. The
            errors, warnings, BOS, extras and strings are complete at once. Edits to a lazy set's
            nodes are not kept.

    Raises:
        DecodeError: a blob larger than any device can present (:func:`check_bounds`).
    """
    check_bounds(descriptors, bos, strings, extras, source=source)
    data = bytes(descriptors)
    errors: list[DecodeError] = []
    warnings: list[DecodeError] = []
    w = _Walker(errors, "descriptors", None, None, warnings)
    walkers = [w]
    roots: list[Node] = []
    first: Node | None = None
    dev: Node | None = None
    # A walk allocates one Node and one Container per descriptor and keeps them all: the cyclic
    # garbage collector would scan them again and again for nothing, so it waits until the end.
    gc_was_enabled = gc.isenabled()
    if gc_was_enabled and not lazy:
        gc.disable()
    try:
        for node in w.iter_walk(data):
            if first is None:
                first = node
            if dev is None and node.role == "device":
                dev = node
            if not lazy:
                roots.append(node)
        walkers.append(_Walker(errors, "BOS", w.device_class, w.bcd_usb, warnings))
        bos_roots = walkers[-1].walk(bytes(bos)) if bos else []
    finally:
        if gc_was_enabled:
            gc.enable()
    ds = DescriptorSet(roots, bos_roots, {}, [], errors, warnings, source, dict(meta) if meta else {})
    if lazy:
        ds.rewalk = lambda: _Walker([], "descriptors", None, None, []).iter_walk(data)
    if dev is None:
        if descriptors:
            w.complain(0, "Device Descriptor", "order",
                       "the data does not start with a device descriptor (bDescriptorType 1)")
        else:
            w.complain(0, "Device Descriptor", "bLength", "no bytes: a descriptor set starts with the "
                                                          "18-byte device descriptor")
    elif first is not dev:
        w.complain(dev.offset, dev.name, "order", "the device descriptor is not the first descriptor")
    if dev is not None and dev.fields is not None:
        count = w.configurations  # == len(ds.configurations)
        if count != dev.fields["bNumConfigurations"]:
            w.complain(dev.offset, dev.name, "bNumConfigurations",
                       f"bNumConfigurations {dev.fields['bNumConfigurations']} but {count} configurations follow")
    if strings:
        walkers.append(_Walker(errors, "string", w.device_class, w.bcd_usb, warnings))
        _strings(ds, strings, walkers[-1])
    for raw in extras or ():
        walkers.append(_Walker(errors, "other", w.device_class, w.bcd_usb, warnings))
        ds.extras.extend(walkers[-1].walk(bytes(raw)))
    if len(errors) > 1 or len(warnings) > 1:
        order = {"BOS": 1, "string": 2, "other": 3}

        def by_place(e: DecodeError) -> tuple[int, int]:
            return order.get(getattr(e, "blob", ""), 0), e.offset or 0

        errors.sort(key=by_place)
        warnings.sort(key=by_place)
    for kind, found, dropped in (("errors", errors, sum(x.dropped_errors for x in walkers)),
                                 ("warnings", warnings, sum(x.dropped_warnings for x in walkers))):
        if dropped:
            found.append(DecodeError(f"{dropped:,} more {kind} not listed (the first {MAX_COMPLAINTS:,} are)",
                                     descriptor=source or None, rule="complaint limit"))
    return ds


def _strings(ds: DescriptorSet, strings: dict[tuple[int, int], bytes], other: _Walker) -> None:
    """Decode the string descriptors into ``ds.strings``."""
    from dkproto.schema import usb as usb_schema

    for (langid, index), raw in sorted(strings.items()):
        node = Node(offset=0, raw=bytes(raw), role="string", blob="string", string_id=(langid, index))
        schema = usb_schema.LANGID_LIST if index == 0 else usb_schema.STRING
        name = f"String Descriptor {index} (LANGID 0x{langid:04x})"
        if len(raw) < 2 or raw[1] != 0x03:
            found = f"bDescriptorType {raw[1]}" if len(raw) >= 2 else f"{len(raw)} bytes, no bDescriptorType"
            other.complain(0, name, "bDescriptorType",
                           f"{found}, not 3 (String); kept undecoded", node)
        elif raw[0] != len(raw):
            other.complain(0, name, "bLength", f"bLength {raw[0]} but {len(raw)} bytes were read; kept undecoded",
                           node)
        else:
            node.schema = schema
            try:
                node.fields = compiled(schema.struct).parse(bytes(raw))
                used = 2 + (len(raw) - 2) // 2 * 2 if index == 0 else len(raw)
                node.extra = bytes(raw[used:])
            except Exception as exc:  # noqa: BLE001
                node.schema = None
                other.complain(0, name, "bLength", f"does not decode: {exc}", node)
            else:
                _check_string(node, name, other)
        ds.strings[(langid, index)] = node


def _check_string(node: Node, name: str, other: _Walker) -> None:
    """A string (or LANGID list) holds 2-byte units; a string's are UTF-16LE (USB 2.0 §9.6.7)."""
    raw = node.raw
    if len(raw) % 2:
        unit = "LANGID" if node.string_id and node.string_id[1] == 0 else "UTF-16LE code unit"
        other.complain(0, name, "bLength", f"bLength {len(raw)} is odd: the last byte (offset {len(raw) - 1}) is "
                                           f"half a 2-byte {unit}", node)
        return
    if node.key != "string":
        return
    try:
        bytes(node.fields.bString).decode("utf-16-le")
    except UnicodeDecodeError as exc:
        other.complain(0, name, "bString", f"not UTF-16LE: a lone surrogate at offset {2 + exc.start} "
                                           f"(bytes {raw[2 + exc.start:2 + exc.end].hex(' ')}: {exc.reason})",
                       node)


def _frames_cleanly(data: bytes) -> int:
    """How many descriptors ``data`` frames into when every ``bLength`` (>= 2) ends exactly at its
    end, each with a standard or class descriptor type; else 0."""
    pos = count = 0
    while pos < len(data):
        length = data[pos]
        if length < 2 or pos + length > len(data) or descriptor_type_name(data[pos + 1]).startswith(
                ("Unknown", "Vendor-specific")):
            return 0
        pos += length
        count += 1
    return count
