"""The descriptor-set model: :class:`Node` (one descriptor) and :class:`DescriptorSet` (every blob of a device).

A :class:`DescriptorSet` holds trees of nodes: the ``descriptors`` blob (device and
configurations, sysfs layout), the BOS blob, standalone descriptors read outside that layout
(``extras``: device qualifier, hub descriptor, other-speed configurations), string descriptors
and HID report descriptors. Nodes are made by the walker (:mod:`dkproto.usb.walker`); a set by
:func:`dkproto.usb.parser.parse`. A pre-order walk of a tree visits its nodes in byte order, so
rebuilding a blob is the concatenation of its nodes rebuilt from their fields.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dkproto.errors import DecodeError, EncodeError
from dkproto.schema._fields import compiled
from dkproto.schema.enums import descriptor_type_name
from dkproto.schema.registry import Context, Schema

__all__ = ["DescriptorSet", "Node"]


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
        extras: standalone descriptors read outside the ``descriptors`` layout (hub descriptor,
            device qualifier, other-speed configurations), one tree each.
        errors: every complaint, in order (each a DecodeError with offset, descriptor, rule).
        source: where the bytes came from (file path, ``usb:BUS:DEV``, ``embedded:...``).
        meta: extra information (corpus ``name``, ``source`` provenance, ``speed``...).
        hid_report_descriptors: the report descriptor of each HID interface, by
            ``bInterfaceNumber``, as read (``GET_DESCRIPTOR(Report)``, HID 1.11 §7.1.1); raw bytes
            (:mod:`dkproto.hid` decodes them). Empty unless the set was read from a device or
            loaded from a file that carries them.
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
    hid_report_descriptors: dict[int, bytes] = field(default_factory=dict)

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
