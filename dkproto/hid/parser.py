"""HID report descriptor parser: collection tree and report layouts, as the Linux HID core builds them.

[HID 1.11: 5.2-5.6, 6.2.2] The parser is a state machine over the items of
:mod:`dkproto.hid.items` with the global state (and its Push/Pop stack), the local state (reset
after every main item) and the collection stack. It follows ``hid_open_report`` in Linux's
``drivers/hid/hid-core.c`` (6.1) wherever the kernel and the spec differ, so that a layout here
agrees field for field with the kernel's debugfs ``rdesc``:

* a Usage (or Usage Minimum/Maximum) of 1 or 2 bytes takes the current Usage Page; at each main
  item, trailing short usages whose page differs from the *last* Usage Page are re-completed with
  it (``hid_concatenate_last_usage_page``; HID 1.11 6.2.2.8), so a Usage Page written after its
  Usages still applies to them. 4-byte (extended) usages keep their own page.
* a main item with no usage at all is padding: it takes bits but the kernel keeps no field for it.
  Here it still gets a :class:`Field` (``usages`` empty) so a report can be decoded and rebuilt.
* a field has ``max(number of usages, Report Count)`` usages in the kernel's view: when the count
  is larger the last usage is repeated (:attr:`Field.kernel_usages`).
* Logical Maximum (and Physical Maximum) is read signed only when the minimum is negative.
* Unit Exponent 0..15 is read as a 4-bit two's complement nibble (what most devices mean).
* usages inside the second and later Delimiter sets are ignored.
* a Usage Maximum below its Usage Minimum, or a range that would pass 12288 usages, is clipped
  the way the kernel clips it.
* anything the kernel refuses (Report Size > 256, Report Count > 12288, Report ID 0 or > 255,
  Push beyond 4 levels, Pop of an empty stack, an unknown global tag, a long item, Logical
  Minimum above Maximum at a main item, a report longer than HID_MAX_BUFFER_SIZE, an unbalanced
  collection or delimiter, a truncated item) is recorded in :attr:`ReportDescriptor.kernel_error`;
  the kernel then keeps no report at all. This parser carries on leniently so the rest can still
  be shown and linted. A report whose size the kernel refuses (and every report of a descriptor
  over HID_MAX_DESCRIPTOR_SIZE) is marked :attr:`Report.refused`: the codecs do not lay it out.

Bounds (docs/hid.md, "Bounds"): parsing stops, with an HID027 finding and
:attr:`ReportDescriptor.stopped` set, at :data:`MAX_PARSED_BYTES` bytes, at
:data:`MAX_COLLECTION_DEPTH` nested collections and after :data:`MAX_EXPANDED_USAGES` usages,
designator and string indices (ranges expanded) in the whole descriptor, and at
:data:`MAX_FIELDS` Input/Output/Feature items. Everything else grows
linearly with the descriptor.

Offsets: :attr:`Field.bit_offset` counts from the first bit after the report ID byte, as the
kernel's ``report_offset`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from dkproto.errors import DecodeError
from dkproto.hid.items import (
    COLLECTION_TYPES,
    Item,
    ItemType,
    _item_at,
    flag_names,
    parse_items,
    unit_exponents,
)
from dkproto.hid.usages import usage_full_name

__all__ = [
    "HID_GLOBAL_STACK_SIZE",
    "HID_MAX_BUFFER_SIZE",
    "HID_MAX_DESCRIPTOR_SIZE",
    "HID_MAX_FIELDS",
    "HID_MAX_IDS",
    "HID_MAX_REPORT_SIZE_BITS",
    "HID_MAX_USAGES",
    "MAX_COLLECTION_DEPTH",
    "MAX_EXPANDED_USAGES",
    "MAX_FIELDS",
    "MAX_PARSED_BYTES",
    "REPORT_TYPES",
    "Collection",
    "Field",
    "Finding",
    "Report",
    "ReportDescriptor",
    "parse",
]

# Limits of the Linux HID core (include/linux/hid.h, 6.1).
HID_MAX_BUFFER_SIZE = 16384  # bytes of one report, report ID included
HID_MAX_DESCRIPTOR_SIZE = 4096  # usbhid refuses longer report descriptors
HID_MAX_USAGES = 12288
HID_MAX_IDS = 256
HID_MAX_FIELDS = 256
HID_GLOBAL_STACK_SIZE = 4
HID_MAX_REPORT_SIZE_BITS = 256  # largest Report Size the kernel accepts

# dkproto's own bounds (the kernel has none for these, or only through HID_MAX_DESCRIPTOR_SIZE).
#: Bytes parsed: wDescriptorLength (HID 1.11 6.2.1) is 16 bits, no device can send more.
MAX_PARSED_BYTES = 0xFFFF
#: Nested collections: the kernel's stack grows without bound (open_collection); the deepest in
#: the corpus is 5 levels. Caps the per-field collection path (and the text indentation).
MAX_COLLECTION_DEPTH = 32
#: Usages, designator and string indices held for the whole descriptor, ranges expanded (one
#: 5-byte Usage Minimum/Maximum pair names up to HID_MAX_USAGES): 16 bits' worth.
MAX_EXPANDED_USAGES = 65536
#: Input/Output/Feature items of one descriptor: every main item takes at least one byte, so no
#: descriptor of HID_MAX_DESCRIPTOR_SIZE has more. Caps fields x collection depth in the outputs.
MAX_FIELDS = 4096

REPORT_TYPES = ("input", "output", "feature")
_MAIN_TO_TYPE = {8: "input", 9: "output", 0xB: "feature"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in a report descriptor.

    Attributes:
        rule: the rule's ID (``HID001``...) as listed in :mod:`dkproto.hid.lint`.
        name: a short slug for the rule (``unbalanced-collection``).
        offset: byte offset of the item concerned.
        message: one line saying what is wrong.
        severity: ``error`` (the kernel refuses the descriptor, or reports cannot work),
            ``warning`` (legal but suspicious or quirk-dependent) or ``info``.
        kernel_fatal: True when Linux's HID core refuses the whole descriptor for it.
    """

    rule: str
    name: str
    offset: int
    message: str
    severity: str = "error"
    kernel_fatal: bool = False

    def __str__(self) -> str:
        return f"offset {self.offset}: {self.severity} {self.rule} {self.name}: {self.message}"


@dataclass(slots=True)
class Collection:
    """One collection of the tree.

    Attributes:
        index: its index in :attr:`ReportDescriptor.collections` (the kernel's order).
        type: collection type code (0 Physical, 1 Application, 2 Logical...).
        usage: the collection's usage (the first local usage before it, 0 if none).
        parent: index of the enclosing collection, or None.
        offset: byte offset of the Collection item.
        end_offset: byte offset of its End Collection (None when missing).
    """

    index: int
    type: int
    usage: int
    parent: int | None
    level: int
    offset: int
    end_offset: int | None = None
    children: list[int] = dc_field(default_factory=list)

    @property
    def type_name(self) -> str:
        """``Application``, ``Physical``..., ``Vendor Defined 0x80``."""
        if self.type in COLLECTION_TYPES:
            return COLLECTION_TYPES[self.type]
        return f"Vendor Defined 0x{self.type:02x}" if self.type >= 0x80 else f"Reserved 0x{self.type:02x}"

    def label(self) -> str:
        """``Application(Generic Desktop / Mouse)``."""
        return f"{self.type_name}({usage_full_name(self.usage)})"


@dataclass(slots=True)
class Field:
    """One main item (Input, Output or Feature) of a report.

    Attributes:
        report_type: ``input``, ``output`` or ``feature``.
        report_id: the Report ID in force (0 when the descriptor uses none).
        bit_offset: first bit of the field, counted after the report ID byte.
        report_size: bits per element.
        report_count: number of elements.
        flags: the main item's data (bit 0 Constant, 1 Variable, 2 Relative, ...).
        logical_minimum, logical_maximum, physical_minimum, physical_maximum: as the kernel reads
            them (maximum signed only when the minimum is negative).
        unit, unit_exponent: the Unit value and the decoded exponent.
        usages: the usages declared for the item (ranges expanded), 32-bit each.
        collection: indices of the enclosing collections, outermost first.
        offset: byte offset of the main item in the descriptor.
        index: position of this field within its report (padding included).
        designators, strings: Designator and String indices declared (ranges expanded).
        kernel_dropped: past the kernel's 256 fields per report: it keeps no field for it (its
            bits still count); dkproto still decodes it.
    """

    report_type: str
    report_id: int
    bit_offset: int
    report_size: int
    report_count: int
    flags: int
    logical_minimum: int
    logical_maximum: int
    physical_minimum: int
    physical_maximum: int
    unit: int
    unit_exponent: int
    usages: tuple[int, ...]
    collection: tuple[int, ...]
    offset: int
    index: int = 0
    designators: tuple[int, ...] = ()
    strings: tuple[int, ...] = ()
    application: int = 0
    physical: int = 0
    logical: int = 0
    kernel_dropped: bool = False

    @property
    def is_constant(self) -> bool:
        """Constant (bit 0)."""
        return bool(self.flags & 1)

    @property
    def is_variable(self) -> bool:
        """Variable (bit 1); otherwise an array of usage indices."""
        return bool(self.flags & 2)

    @property
    def is_array(self) -> bool:
        """Array (bit 1 clear)."""
        return not self.flags & 2

    @property
    def is_padding(self) -> bool:
        """No usage: the kernel keeps no field for it."""
        return not self.usages

    @property
    def signed(self) -> bool:
        """Values are two's complement when the logical minimum is negative (as the kernel reads them)."""
        return self.logical_minimum < 0

    @property
    def bit_size(self) -> int:
        """report_size * report_count."""
        return self.report_size * self.report_count

    @property
    def kernel_usages(self) -> tuple[int, ...]:
        """The kernel's usage list: max(usages, count) entries, the last usage repeated."""
        n = len(self.usages)
        if n == 0 or n >= self.report_count:
            return self.usages
        return self.usages + (self.usages[-1],) * (self.report_count - n)

    @property
    def flag_names(self) -> list[str]:
        """Flag names for the nine defined bits."""
        return flag_names(self.flags)

    def element_usage(self, i: int) -> int:
        """Usage of element ``i`` of a Variable field (the last usage repeats)."""
        if not self.usages:
            return 0
        return self.usages[min(i, len(self.usages) - 1)]

    def physical_range(self) -> tuple[int, int]:
        """Physical range, defaulting to the logical one when both are 0 [HID 1.11: 6.2.2.7]."""
        if self.physical_minimum == 0 and self.physical_maximum == 0:
            return self.logical_minimum, self.logical_maximum
        return self.physical_minimum, self.physical_maximum

    def to_json(self, collections: list[Collection], labels: list[str] | None = None) -> dict[str, Any]:
        """The field as the ``hid parse --format json`` object (keys fixed by the issue).

        ``labels``: ``collections[i].label()`` for each i, when the caller has them already."""
        system, units = unit_exponents(self.unit)
        unit: dict[str, Any] | None = None
        if self.unit:
            unit = {"value": self.unit, "system": system, "exponents": units}
        return {
            "report_type": self.report_type,
            "report_id": self.report_id,
            "bit_offset": self.bit_offset,
            "report_size": self.report_size,
            "report_count": self.report_count,
            "logical_minimum": self.logical_minimum,
            "logical_maximum": self.logical_maximum,
            "physical_minimum": self.physical_minimum,
            "physical_maximum": self.physical_maximum,
            "unit": unit,
            "unit_exponent": self.unit_exponent,
            "flags": [n for n in self.flag_names],
            "usages": [{"usage": f"0x{u:08x}", "name": usage_full_name(u)} for u in self.usages],
            "collection": [labels[i] if labels is not None else collections[i].label() for i in self.collection],
        }


@dataclass(slots=True)
class Report:
    """One report: its type, ID and fields in order.

    Attributes:
        size_bits: total bits of the fields (the report ID byte excluded).
        refused: why the codecs do not lay this report out (a size the kernel refuses, a
            descriptor over HID_MAX_DESCRIPTOR_SIZE, or parsing stopped at a bound), or None.
    """

    type: str
    id: int
    fields: list[Field] = dc_field(default_factory=list)
    size_bits: int = 0
    refused: Finding | None = None

    @property
    def size(self) -> int:
        """Length in bytes on the wire, report ID byte included (``hid_report_len``)."""
        return (self.size_bits + 7) // 8 + (1 if self.id else 0)

    @property
    def data_size(self) -> int:
        """Bytes of field data (report ID byte excluded)."""
        return (self.size_bits + 7) // 8


@dataclass(slots=True, init=False)
class ReportDescriptor:
    """A parsed report descriptor.

    Attributes:
        data: the descriptor bytes.
        items: every item, in order, with offsets (made on first use when the parser was not
            given them: they follow from ``data`` alone, and decoding never needs them).
        collections: the collection tree in the kernel's order (index = the kernel's index).
        reports: ``{(type, id): Report}`` in the order the kernel registers them.
        findings: problems seen while parsing (see :mod:`dkproto.hid.lint` for the full list).
        kernel_error: the first problem for which Linux refuses the descriptor, or None.
        stopped: the HID027 finding when parsing stopped at one of dkproto's bounds (the items
            after its offset are listed but not parsed), or None.
    """

    data: bytes
    collections: list[Collection]
    reports: dict[tuple[str, int], Report]
    findings: list[Finding]
    kernel_error: Finding | None = None
    stopped: Finding | None = None
    # The items (None until asked for); equal descriptors have equal data, hence equal items.
    _items: list[Item] | None = dc_field(default=None, repr=False, compare=False)

    def __init__(self, data: bytes, items: list[Item] | None, collections: list[Collection],
                 reports: dict[tuple[str, int], Report], findings: list[Finding],
                 kernel_error: Finding | None = None, stopped: Finding | None = None) -> None:
        self.data = data
        self._items = items
        self.collections = collections
        self.reports = reports
        self.findings = findings
        self.kernel_error = kernel_error
        self.stopped = stopped

    @property
    def items(self) -> list[Item]:
        """Every item, in order, with offsets (up to MAX_PARSED_BYTES and a truncated item)."""
        if self._items is None:
            self._items = parse_items(self.data, MAX_PARSED_BYTES)[0]
        return self._items

    @items.setter
    def items(self, items: list[Item]) -> None:
        self._items = items

    @property
    def uses_report_ids(self) -> bool:
        """True when any report has a nonzero Report ID."""
        return any(rid for _, rid in self.reports)

    def report(self, type_: str, report_id: int = 0) -> Report:
        """The report of that type and ID.

        Raises:
            DecodeError: the descriptor declares no such report.
        """
        try:
            return self.reports[(type_, report_id)]
        except KeyError:
            have = ", ".join(f"{t} {i}" for t, i in self.reports) or "none"
            raise DecodeError(
                f"no {type_} report with ID {report_id} (the descriptor declares: {have})",
                descriptor="report descriptor",
                rule="Report ID",
            ) from None

    def reports_of(self, type_: str) -> list[Report]:
        """All reports of one type, in order."""
        return [r for (t, _), r in self.reports.items() if t == type_]

    @property
    def fields(self) -> list[Field]:
        """All fields of all reports (padding included)."""
        return [f for r in self.reports.values() for f in r.fields]

    def kernel_fields(self) -> list[Field]:
        """Only the fields the kernel keeps: those with usages (and within 256 per report)."""
        return [f for f in self.fields if f.usages and not f.kernel_dropped]

    def collection_path(self, f: Field) -> str:
        """``Application(Generic Desktop / Mouse) > Physical(Generic Desktop / Pointer)``."""
        return " > ".join(self.collections[i].label() for i in f.collection)

    def to_json(self) -> dict[str, Any]:
        """The layouts as plain data (``hid parse --format json``)."""
        labels = [c.label() for c in self.collections]  # once each, not once per field and level
        return {
            "length": len(self.data),
            "reports": [
                {
                    "report_type": r.type,
                    "report_id": r.id,
                    "size_bits": r.size_bits,
                    "size": r.size,
                    "fields": [f.to_json(self.collections, labels) for f in r.fields],
                }
                for r in self.reports.values()
            ],
            "collections": [
                {"index": c.index, "type": c.type_name, "usage": f"0x{c.usage:08x}", "name": labels[c.index],
                 "parent": c.parent, "offset": c.offset}
                for c in self.collections
            ],
            "findings": [
                {"rule": x.rule, "name": x.name, "offset": x.offset, "severity": x.severity, "message": x.message}
                for x in self.findings
            ],
        }


@dataclass(slots=True)
class _Globals:
    usage_page: int = 0
    logical_minimum: int = 0
    logical_maximum: int = 0
    physical_minimum: int = 0
    physical_maximum: int = 0
    unit_exponent: int = 0
    unit: int = 0
    report_size: int = 0
    report_id: int = 0
    report_count: int = 0

    def copy(self) -> _Globals:
        return _Globals(
            self.usage_page, self.logical_minimum, self.logical_maximum, self.physical_minimum,
            self.physical_maximum, self.unit_exponent, self.unit, self.report_size, self.report_id,
            self.report_count,
        )


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


class _Cursor:
    """The item being parsed: what the handlers read of an :class:`Item`, without making one."""

    __slots__ = ("offset", "size", "tag", "type", "udata")

    def __init__(self) -> None:
        self.offset = self.size = self.tag = self.type = self.udata = 0

    @property
    def sdata(self) -> int:
        """Data as a signed (two's complement) little-endian integer."""
        if not self.size:
            return 0
        top = 1 << (8 * self.size - 1)
        return (self.udata ^ top) - top

    @property
    def name(self) -> str:
        """The item's name (as :attr:`Item.name`), for messages."""
        return Item(self.offset, b"", _ITEM_TYPES[self.type], self.tag, b"").name


_ITEM_TYPES = tuple(ItemType(t) for t in range(4))


def _split_error(data: bytes, pos: int) -> DecodeError:
    """The error :func:`~dkproto.hid.items.parse_items` gives for the item cut short at ``pos``."""
    try:
        _item_at(data, pos)
    except DecodeError as exc:
        return exc
    raise AssertionError(f"no truncated item at offset {pos}")  # pragma: no cover - callers check


def _scan(data: bytes, pos: int, limit: int) -> tuple[int, DecodeError | None]:
    """Split the items from ``pos`` on without parsing them: (end of the last whole item, the
    error of a truncated item or None), as parse_items would."""
    total = len(data)
    while pos < limit:
        b = data[pos]
        if b >> 4 == 0xF:
            if total - pos < 3 or total - pos - 3 < data[pos + 1]:
                return pos, _split_error(data, pos)
            pos += 3 + data[pos + 1]
        else:
            size = (0, 1, 2, 4)[b & 3]
            if total - pos - 1 < size:
                return pos, _split_error(data, pos)
            pos += 1 + size
    return pos, None


class _Parser:
    """The state machine; one instance per parse."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.g = _Globals()
        self.stack: list[_Globals] = []
        self.collections: list[Collection] = []
        self.cstack: list[int] = []
        self.reports: dict[tuple[str, int], Report] = {}
        self.findings: list[Finding] = []
        self.kernel_error: Finding | None = None
        self.stopped: Finding | None = None
        self.expanded = 0  # usages, designator and string indices held so far (MAX_EXPANDED_USAGES)
        self.kept_fields: dict[tuple[str, int], int] = {}  # fields with usages per report (HID010)
        self.field_count = 0  # Input/Output/Feature items (MAX_FIELDS)
        self._page_offset = -1  # offset of the last Usage Page item
        # The open collections as a Field holds them: (path, application, physical, logical)
        # usages; None when the stack changed since the last field.
        self._enclosing: tuple[tuple[int, ...], int, int, int] | None = None
        self.reset_local()

    # -- bookkeeping -----------------------------------------------------------------------
    def find(self, rule: str, name: str, offset: int, message: str, severity: str = "error",
             fatal: bool = False) -> None:
        f = Finding(rule, name, offset, message, severity, fatal)
        self.findings.append(f)
        if fatal and self.kernel_error is None:
            self.kernel_error = f

    def stop(self, offset: int, message: str) -> None:
        """Stop parsing at a dkproto bound: HID027, and every report is refused by the codecs."""
        if self.stopped is None:
            self.stopped = Finding("HID027", "dkproto-bound", offset, message + "; parsing stops here")
            self.findings.append(self.stopped)

    def take(self, n: int, offset: int, what: str) -> bool:
        """Count n more expanded usages/indices against MAX_EXPANDED_USAGES; False (and stop) past it."""
        if self.expanded + n > MAX_EXPANDED_USAGES:
            self.stop(offset, f"{what} would pass dkproto's bound of {MAX_EXPANDED_USAGES} usages, designator "
                              "and string indices for one descriptor (ranges expanded)")
            return False
        self.expanded += n
        return True

    def reset_local(self) -> None:
        self.usages: list[int] = []
        self.usage_sizes: list[int] = []
        self.usage_offsets: list[int] = []
        self.usage_min: int = 0
        self.usage_min_seen = False
        self.delim_depth = 0
        self.delim_branch = 0
        self.designators: list[int] = []
        self.strings: list[int] = []
        self.desig_min: int | None = None
        self.string_min: int | None = None

    # -- local items -----------------------------------------------------------------------
    def add_usage(self, usage: int, size: int, offset: int) -> bool:
        if len(self.usages) >= HID_MAX_USAGES:
            self.find("HID013", "too-many-usages", offset,
                      f"more than {HID_MAX_USAGES} usages before one main item (kernel limit)", fatal=True)
            return False
        if not self.take(1, offset, "this usage"):
            return False
        if size <= 2:
            usage = (usage & 0xFFFF) | ((self.g.usage_page & 0xFFFF) << 16)
        self.usages.append(usage & 0xFFFFFFFF)
        self.usage_sizes.append(size)
        self.usage_offsets.append(offset)
        return True

    def add_usage_range(self, lo: int, hi: int, size: int, offset: int) -> None:
        """``add_usage`` for lo..hi in one step (a range may hold thousands of usages); the same
        results, findings and stop as adding them one by one."""
        if hi < lo:
            return
        n = hi - lo + 1
        room = HID_MAX_USAGES - len(self.usages)
        k = min(n, room, MAX_EXPANDED_USAGES - self.expanded)
        if k > 0:
            self.expanded += k
            if size <= 2:
                page = (self.g.usage_page & 0xFFFF) << 16
                if lo + k - 1 <= 0xFFFF:
                    self.usages.extend(range(page + lo, page + lo + k))
                else:
                    self.usages.extend([(u & 0xFFFF) | page for u in range(lo, lo + k)])
            else:
                self.usages.extend([u & 0xFFFFFFFF for u in range(lo, lo + k)])
            self.usage_sizes.extend([size] * k)
            self.usage_offsets.extend([offset] * k)
        if k < n:
            self.add_usage(lo + k, size, offset)  # the finding (or stop) the next one would give

    def local(self, it: _Cursor) -> None:
        data = it.udata
        tag = it.tag
        if tag == 0xA:  # Delimiter
            if data:
                if self.delim_depth != 0:
                    self.find("HID014", "nested-delimiter", it.offset, "Delimiter opened inside another",
                              fatal=True)
                    return
                self.delim_depth += 1
                self.delim_branch += 1
            else:
                if self.delim_depth < 1:
                    self.find("HID014", "unbalanced-delimiter", it.offset,
                              "Delimiter close without an open one", fatal=True)
                    return
                self.delim_depth -= 1
            return
        if tag in (0, 1, 2) and self.delim_branch > 1:
            return  # alternative usage sets are ignored, as in the kernel
        if tag == 0:
            self.add_usage(data, it.size, it.offset)
        elif tag == 1:
            self.usage_min = data
            self.usage_min_seen = True
        elif tag == 2:
            if not self.usage_min_seen:
                self.find("HID015", "usage-maximum-without-minimum", it.offset,
                          "Usage Maximum with no Usage Minimum before it (the kernel starts from 0)",
                          severity="warning")
            lo = self.usage_min
            hi = data
            if hi < lo:
                self.find("HID016", "usage-range-inverted", it.offset,
                          f"Usage Maximum 0x{hi:x} below Usage Minimum 0x{lo:x}", severity="error")
            # The kernel's unsigned 32-bit arithmetic, wrap-around included.
            count = (hi - lo) & 0xFFFFFFFF
            if (count + len(self.usages)) & 0xFFFFFFFF >= HID_MAX_USAGES:
                if hi >= lo:
                    self.find("HID013", "too-many-usages", it.offset,
                              f"usage range of {count + 1} passes the kernel's {HID_MAX_USAGES} usages; "
                              "the kernel clips it", severity="warning")
                hi = (HID_MAX_USAGES - len(self.usages) + lo - 1) & 0xFFFFFFFF
                if hi == 0:
                    self.find("HID013", "too-many-usages", it.offset, "no usage index left", fatal=True)
                    return
            self.add_usage_range(lo, hi, it.size, it.offset)
        elif tag in (3, 7):
            if self.take(1, it.offset, it.name):
                (self.designators if tag == 3 else self.strings).append(data)
        elif tag == 4:
            self.desig_min = data
        elif tag == 8:
            self.string_min = data
        elif tag in (5, 9):
            first = self.desig_min if tag == 5 else self.string_min
            held = self.designators if tag == 5 else self.strings
            # The kernel ignores designators and strings; dkproto keeps up to HID_MAX_USAGES per
            # main item, as for usages.
            if (first is not None and data >= first and data - first + len(held) < HID_MAX_USAGES
                    and self.take(data - first + 1, it.offset, f"this {it.name} range")):
                held.extend(range(first, data + 1))
        else:
            self.find("HID018", "reserved-tag", it.offset, f"reserved local item tag 0x{tag:x} (ignored)",
                      severity="warning")

    # -- global items ----------------------------------------------------------------------
    def global_(self, it: _Cursor) -> None:
        g = self.g
        tag = it.tag
        u, s = it.udata, it.sdata
        if tag == 0:
            g.usage_page = u
            self._page_offset = it.offset
        elif tag == 1:
            g.logical_minimum = s
        elif tag == 2:
            g.logical_maximum = s if g.logical_minimum < 0 else _s32(u)
        elif tag == 3:
            g.physical_minimum = s
        elif tag == 4:
            g.physical_maximum = s if g.physical_minimum < 0 else _s32(u)
        elif tag == 5:
            g.unit_exponent = (s - 16 if s & 8 else s) if 0 <= s <= 15 else s
        elif tag == 6:
            g.unit = u
        elif tag == 7:
            if u > HID_MAX_REPORT_SIZE_BITS:
                self.find("HID005", "report-size-too-large", it.offset,
                          f"Report Size {u} is over the kernel's limit of {HID_MAX_REPORT_SIZE_BITS} bits",
                          fatal=True)
            g.report_size = u
        elif tag == 9:
            if u > HID_MAX_USAGES:
                self.find("HID005", "report-count-too-large", it.offset,
                          f"Report Count {u} is over the kernel's limit of {HID_MAX_USAGES}", fatal=True)
            g.report_count = u
        elif tag == 8:
            if u == 0 or u >= HID_MAX_IDS:
                self.find("HID008", "report-id-invalid", it.offset,
                          f"Report ID {u} is invalid (must be 1..255)", fatal=True)
            g.report_id = u
        elif tag == 0xA:
            if len(self.stack) == HID_GLOBAL_STACK_SIZE:
                self.find("HID012", "push-overflow", it.offset,
                          f"Push beyond the kernel's {HID_GLOBAL_STACK_SIZE}-level global stack (not pushed)",
                          fatal=True)
                return
            self.stack.append(g.copy())
        elif tag == 0xB:
            if not self.stack:
                self.find("HID012", "pop-underflow", it.offset, "Pop with no Push before it", fatal=True)
                return
            self.g = self.stack.pop()
        else:
            self.find("HID018", "reserved-tag", it.offset,
                      f"reserved global item tag 0x{tag:x} (the kernel refuses the descriptor)", fatal=True)

    # -- main items ------------------------------------------------------------------------
    def concatenate_last_usage_page(self) -> None:
        """hid_concatenate_last_usage_page: a later Usage Page re-completes trailing short usages."""
        page = self.g.usage_page & 0xFFFF
        reported = False
        for i in range(len(self.usages) - 1, -1, -1):
            if self.usage_sizes[i] > 2:
                continue
            if (self.usages[i] >> 16) == page:
                break
            if self._page_offset > self.usage_offsets[i] and not reported:
                reported = True
                self.find("HID003", "usage-page-after-usages", self._page_offset,
                          f"Usage Page 0x{page:04x} comes after the Usage at offset {self.usage_offsets[i]}; "
                          "the kernel applies it to that usage (HID 1.11 6.2.2.8)", severity="warning")
            self.usages[i] = (self.usages[i] & 0xFFFF) | (page << 16)

    def lookup_collection(self, ctype: int) -> int:
        for idx in reversed(self.cstack):
            if self.collections[idx].type == ctype:
                return self.collections[idx].usage
        return 0

    def main(self, it: _Cursor) -> None:
        self.concatenate_last_usage_page()
        tag = it.tag
        data = it.udata
        if tag == 0xA:
            if len(self.cstack) == MAX_COLLECTION_DEPTH:
                self.stop(it.offset, f"Collection nested {MAX_COLLECTION_DEPTH + 1} deep, past dkproto's bound of "
                                     f"{MAX_COLLECTION_DEPTH} levels")
                return
            idx = len(self.collections)
            parent = self.cstack[-1] if self.cstack else None
            if self.usages and self.usage_sizes[0] <= 2 and (self.usages[0] >> 16) == 0:
                self.find("HID002", "no-usage-page", it.offset,
                          "Collection usage given with no Usage Page in force (page 0, Undefined)")
            c = Collection(idx, data & 0xFF, self.usages[0] if self.usages else 0, parent,
                           len(self.cstack), it.offset)
            self.collections.append(c)
            if parent is not None:
                self.collections[parent].children.append(idx)
            self.cstack.append(idx)
            self._enclosing = None
        elif tag == 0xC:
            if not self.cstack:
                self.find("HID001", "unbalanced-collection", it.offset,
                          "End Collection with no open Collection", fatal=True)
            else:
                self.collections[self.cstack.pop()].end_offset = it.offset
                self._enclosing = None
        elif tag in _MAIN_TO_TYPE:
            self.add_field(it, _MAIN_TO_TYPE[tag], data)
        else:
            self.find("HID018", "reserved-tag", it.offset,
                      f"reserved main item tag 0x{tag:x} (the kernel warns and ignores it)", severity="warning")
        self.reset_local()

    def add_field(self, it: _Cursor, rtype: str, flags: int) -> None:
        if self.field_count == MAX_FIELDS:
            self.stop(it.offset, f"{it.name} number {MAX_FIELDS + 1}, past dkproto's bound of {MAX_FIELDS} "
                                 "Input/Output/Feature items in one descriptor")
            return
        self.field_count += 1
        g = self.g
        key = (rtype, g.report_id)
        report = self.reports.get(key)
        if report is None:
            if g.report_id >= HID_MAX_IDS:
                return
            report = self.reports[key] = Report(rtype, g.report_id)
        lmin, lmax = g.logical_minimum, g.logical_maximum
        if (lmin < 0 and lmax < lmin) or (lmin >= 0 and (lmax & 0xFFFFFFFF) < (lmin & 0xFFFFFFFF)):
            self.find("HID006", "logical-range-inverted", it.offset,
                      f"Logical Minimum {lmin} is above Logical Maximum {lmax}", fatal=True)
        self.check_field(it, rtype)
        offset = report.size_bits
        report.size_bits += g.report_size * g.report_count
        if report.refused is None and (g.report_size > HID_MAX_REPORT_SIZE_BITS or g.report_count > HID_MAX_USAGES):
            report.refused = Finding(
                "HID005", "size-overflow", it.offset,
                f"{it.name} with Report Size {g.report_size} x Report Count {g.report_count}: the kernel accepts "
                f"Report Size up to {HID_MAX_REPORT_SIZE_BITS} and Report Count up to HID_MAX_USAGES "
                f"({HID_MAX_USAGES})", kernel_fatal=True)
        if report.size_bits > (HID_MAX_BUFFER_SIZE - 1) << 3 and (report.refused is None
                                                                  or report.refused.rule != "HID009"):
            self.find("HID009", "report-too-long", it.offset,
                      f"{rtype} report {g.report_id} grows to {report.size_bits} bits, over the kernel's "
                      f"HID_MAX_BUFFER_SIZE ({HID_MAX_BUFFER_SIZE} bytes with the report ID)", fatal=True)
            report.refused = self.findings[-1]
        dropped = False
        if self.usages and self.kept_fields.get(key, 0) >= HID_MAX_FIELDS:
            dropped = True
            self.find("HID010", "too-many-fields", it.offset,
                      f"more than {HID_MAX_FIELDS} fields in {rtype} report {g.report_id}: the kernel drops "
                      "this one", severity="warning")
        enclosing = self._enclosing
        if enclosing is None:
            enclosing = self._enclosing = (tuple(self.cstack), self.lookup_collection(1),
                                           self.lookup_collection(0), self.lookup_collection(2))
        # Positional, in the order of Field's attributes (report_type ... kernel_dropped).
        f = Field(
            rtype, g.report_id, offset, g.report_size, g.report_count, flags, lmin, lmax,
            g.physical_minimum, g.physical_maximum, g.unit, g.unit_exponent,
            tuple(self.usages), enclosing[0], it.offset, len(report.fields),
            tuple(self.designators) if self.designators else (),
            tuple(self.strings) if self.strings else (),
            enclosing[1], enclosing[2], enclosing[3], dropped,
        )
        report.fields.append(f)
        if self.usages and not dropped:
            self.kept_fields[key] = self.kept_fields.get(key, 0) + 1

    def check_field(self, it: _Cursor, rtype: str) -> None:
        """Lint checks that need the parser state at a main item (not kernel-fatal)."""
        g = self.g
        first_short = None
        for i, sz in enumerate(self.usage_sizes):
            if sz <= 2:
                first_short = i
                break
        if first_short is not None and (self.usages[first_short] >> 16) == 0:
            self.find("HID002", "no-usage-page", it.offset,
                      f"{it.name} has usages but no Usage Page is in force (page 0, Undefined)")
        if g.report_size == 0 and g.report_count:
            self.find("HID004", "report-size-zero", it.offset,
                      f"{it.name} with Report Size 0: the field takes no bits", severity="warning")
        if g.report_count == 0 and self.usages:
            self.find("HID004", "report-count-zero", it.offset,
                      f"{it.name} with usages but Report Count 0: the field takes no bits", severity="warning")
        if self.usages and not it.udata & 1:
            if g.report_size > 32:
                self.find("HID005", "size-over-32-bits", it.offset,
                          f"Report Size {g.report_size} on a data field: the kernel reads at most 32 bits "
                          "of a value", severity="warning")
            elif g.report_size:
                lo, hi = g.logical_minimum, g.logical_maximum
                if lo < 0:
                    need_lo, need_hi = -(1 << (g.report_size - 1)), (1 << (g.report_size - 1)) - 1
                else:
                    need_lo, need_hi = 0, (1 << g.report_size) - 1
                    hi &= 0xFFFFFFFF
                if lo <= hi and (lo < need_lo or hi > need_hi):
                    self.find("HID005", "logical-range-overflows-size", it.offset,
                              f"Logical range {lo}..{hi} does not fit Report Size {g.report_size} "
                              f"({need_lo}..{need_hi})", severity="warning")
        if it.udata & 2 and len(self.usages) > g.report_count > 0:
            self.find("HID021", "more-usages-than-count", it.offset,
                      f"{len(self.usages)} usages for Report Count {g.report_count}: the last "
                      f"{len(self.usages) - g.report_count} are never reported", severity="warning")
        if self.usages and not it.udata & 3 and g.report_count:
            lo, hi = g.logical_minimum, g.logical_maximum
            span = hi - lo + 1 if lo < 0 else (hi & 0xFFFFFFFF) - lo + 1
            if 0 < span < len(self.usages):
                self.find("HID026", "array-range-smaller-than-usages", it.offset,
                          f"Array item with {len(self.usages)} usages but Logical range {lo}..{hi} can select "
                          f"only {span} of them (a bitmap declared as Array? it should be Variable)",
                          severity="warning")
        if g.physical_minimum > g.physical_maximum and g.physical_minimum >= 0:
            self.find("HID022", "physical-range-inverted", it.offset,
                      f"Physical Minimum {g.physical_minimum} is above Physical Maximum {g.physical_maximum}",
                      severity="warning")
        if not self.cstack:
            self.find("HID023", "main-item-outside-collection", it.offset,
                      f"{it.name} outside any Collection (HID 1.11 requires an Application collection)",
                      severity="warning")

    # -- driver ----------------------------------------------------------------------------
    def run(self) -> ReportDescriptor:
        # The items are read here straight from the bytes (the same split as
        # dkproto.hid.items.parse_items, which ReportDescriptor.items uses on demand): one cursor
        # object is reused, since the handlers keep only values, never the item.
        data = self.data
        total = len(data)
        limit = min(total, MAX_PARSED_BYTES)
        it = _Cursor()
        main, global_, local = self.main, self.global_, self.local
        sizes = (0, 1, 2, 4)
        from_bytes = int.from_bytes
        pos = 0
        err: DecodeError | None = None
        while pos < limit:
            if self.stopped is not None:
                pos, err = _scan(data, pos, limit)  # the rest is only split, as items would be
                break
            b = data[pos]
            tag = b >> 4
            if tag == 0xF:
                if total - pos < 3 or total - pos - 3 < data[pos + 1]:
                    err = _split_error(data, pos)
                    break
                size = data[pos + 1]
                self.find("HID017", "long-item", pos,
                          f"long item (tag 0x{data[pos + 2]:02x}, {size} bytes): none is defined and the kernel "
                          "refuses the descriptor", fatal=True)
                pos += 3 + size
                continue
            size = sizes[b & 3]
            if total - pos - 1 < size:
                err = _split_error(data, pos)
                break
            it.offset = pos
            it.tag = tag
            it.size = size
            if size == 1:
                it.udata = data[pos + 1]
            else:
                it.udata = from_bytes(data[pos + 1:pos + 1 + size], "little") if size else 0
            btype = (b >> 2) & 3
            it.type = btype
            if btype == 0:
                main(it)
            elif btype == 1:
                global_(it)
            elif btype == 2:
                local(it)
            else:
                self.find("HID018", "reserved-tag", pos,
                          f"reserved item type 3 (tag 0x{tag:x}); the kernel ignores it", severity="warning")
            pos += 1 + size
        parsed_end = pos  # the end of the last whole item (0: none)
        end = len(self.data)
        if self.stopped is None and err is None and parsed_end < end:
            self.stop(parsed_end, f"{end} bytes, over the {MAX_PARSED_BYTES} a report descriptor can have "
                                  "(wDescriptorLength is 16 bits)")
        if err is not None:
            self.find("HID019", "truncated-item", err.offset or 0, str(err.message), fatal=True)
        if self.stopped is not None:
            pass  # what is still open was cut by the stop, not by the descriptor
        elif self.cstack:
            c = self.collections[self.cstack[0]]
            self.find("HID001", "unbalanced-collection", c.offset,
                      f"{len(self.cstack)} collection(s) still open at the end (outermost opened here)",
                      fatal=True)
        if self.delim_depth and self.stopped is None:
            self.find("HID014", "unbalanced-delimiter", end, "Delimiter still open at the end", fatal=True)
        if parsed_end == 0:
            self.find("HID020", "empty-descriptor", 0, "the report descriptor has no items", fatal=True)
        if end > HID_MAX_DESCRIPTOR_SIZE:
            self.find("HID011", "descriptor-too-long", HID_MAX_DESCRIPTOR_SIZE,
                      f"{end} bytes, over HID_MAX_DESCRIPTOR_SIZE ({HID_MAX_DESCRIPTOR_SIZE}): usbhid refuses "
                      "the device", fatal=True)
            too_long = self.findings[-1]
            for r in self.reports.values():
                r.refused = r.refused or too_long
        if self.stopped is not None:
            for r in self.reports.values():
                r.refused = self.stopped
        return ReportDescriptor(self.data, None, self.collections, self.reports, self.findings,
                                self.kernel_error, self.stopped)


def parse(data: bytes | bytearray | memoryview) -> ReportDescriptor:
    """Parse a report descriptor into its collection tree and report layouts.

    Never raises for bad bytes: problems are in ``findings`` (and ``kernel_error`` when the Linux
    HID core would refuse the descriptor); what parsed is kept.

    Args:
        data: the report descriptor.

    Returns:
        The parsed :class:`ReportDescriptor`.
    """
    return _Parser(bytes(data)).run()
