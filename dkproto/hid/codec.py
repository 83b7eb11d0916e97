"""Report codecs: decode a report to named values and build a report from names.

[HID 1.11: 5.8 Format of Multibyte Numeric Values, 6.2.2.5 Input/Output/Feature, 8.4 Report
Constraints] Fields are packed little-endian, least significant bit first, one after another in
descriptor order; a report that uses IDs starts with its ID byte, and bit offsets count after it.

Each :class:`ReportCodec` has two equivalent paths, checked against each other over the whole
corpus (``tests/unit/test_hid_codec.py``):

* :attr:`ReportCodec.struct`: a Construct schema. HID packs bits LSB first, which Construct's
  ``BitStruct`` (MSB first) cannot read directly; byte-swapping the data turns the report into one
  big-endian number, so the schema is ``ByteSwapped(BitStruct(pad, element_n, ..., element_0))``.
* the fast path (:meth:`ReportCodec.decode`): per report, Python source is generated once that
  reads the data with one ``int.from_bytes`` and extracts every element with a precomputed shift
  and mask, then fills the value dict. This keeps live decoding at a few microseconds per report
  (see docs/performance.md). The first decodes of a report (before :data:`COMPILE_AFTER`) are
  interpreted from the layout instead, with the same result, so a one-shot decode pays for no
  code generation; and :class:`DescriptorCodec` replaces its ``decode`` by a function generated
  for the reports that have decoders, which runs small ones inline.

Value rules:

* sign comes from the logical range, as in the kernel: a field is two's complement when its
  Logical Minimum is negative.
* a Variable field gives one value per usage (``"X": -5``); elements past the last usage share
  it, so that usage maps to a list.
* an Array field gives the list of active usages (``"Keyboard/Keypad": ["Keyboard a and A"]``):
  slot values inside the logical range index the usage list; values outside it, and usage ID 0
  (Reserved/No event), are inactive.
* padding (a main item without usages, and the bits after the last field up to the byte
  boundary) appears only when its bits are not zero, as ``"(padding@<bit>)"``.
* an Array whose slots hold values that the list of names cannot rebuild (out of range, "no
  event" in an odd place, a repeated usage's second index) also gets ``"(raw <name>)"``: the slot
  values as they are. So ``build(decode(r)) == r`` for every report decode accepts; through a
  plain dict (JSON) too, unless a value lies outside its logical range (``unchecked``).

Bounds: a report the parser marked :attr:`~dkproto.hid.parser.Report.refused` (a size the kernel
refuses, a descriptor over HID_MAX_DESCRIPTOR_SIZE, parsing stopped at a bound) is not laid out:
:class:`ReportCodec` raises DecodeError naming the bound. Within them a report has at most
(HID_MAX_BUFFER_SIZE - 1) * 8 elements and every path is linear in its size; a report longer
than HID_MAX_BUFFER_SIZE is refused; :class:`DescriptorCodec` keeps at most
:data:`MAX_CACHED_ELEMENTS` elements of compiled codecs.

Names are usage names from the HID Usage Tables (:mod:`dkproto.hid.usages`); when a name occurs
again in the same report it gets ``#2``, ``#3``... (``"X#2"`` is the second finger's X).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import construct as cs

from dkproto.errors import DecodeError, DkError, EncodeError
from dkproto.hid.items import unit_text
from dkproto.hid.parser import HID_MAX_BUFFER_SIZE, Field, Report, ReportDescriptor
from dkproto.hid.usages import lookup_usage, page_name, usage_name

__all__ = ["COMPILE_AFTER", "MAX_CACHED_ELEMENTS", "DescriptorCodec", "ReportCodec", "ReportValues", "parse_assignments"]

#: Elements of the report codecs a DescriptorCodec keeps compiled (two reports of the kernel's
#: largest size); older ones are dropped and compiled again when needed.
MAX_CACHED_ELEMENTS = 2 * (HID_MAX_BUFFER_SIZE - 1) * 8

#: A report's decoder is generated (Python source compiled once) on its COMPILE_AFTER-th decode;
#: the decodes before it are interpreted from the layout. Generating costs about as much as a
#: few interpreted decodes, so a one-shot decode (a CLI call) never pays for it and a stream of
#: reports pays for it once.
COMPILE_AFTER = 3


class ReportValues(dict):  # type: ignore[type-arg]
    """The decoded values of one report: ``{name: value}`` plus where they came from.

    Attributes:
        report_type, report_id: which report.
        unchecked: names whose decoded value lay outside the logical range (null values, or
            devices that break their own range); :meth:`ReportCodec.build` accepts those as they
            are, so that ``build(decode(r)) == r``.
        trailing: bytes after the report's declared length (kept, not dropped).
        missing: bytes a short report lacked (decoded as zeros, as the kernel does, with
            ``strict=False``); :meth:`ReportCodec.build` leaves them out again.
    """

    # Class-level defaults: each report's codec uses a subclass carrying its type and ID, so a
    # decoded report costs no attribute writes (live decoding stays cheap).
    report_type: str = "input"
    report_id: int = 0
    unchecked: frozenset[str] = frozenset()
    trailing: bytes = b""
    missing: int = 0

    @classmethod
    def for_report(cls, report_type: str, report_id: int) -> type[ReportValues]:
        """A subclass whose instances say which report they are."""
        return type(f"ReportValues_{report_type}_{report_id}", (cls,),
                    {"report_type": report_type, "report_id": report_id, "__slots__": ()})


class _Elem(NamedTuple):
    """One element of a report: where its bits are and how to read them (a tuple: reports
    can have thousands of elements, and a tuple is the cheapest object to make)."""

    bit_offset: int
    size: int
    signed: bool


@dataclass(slots=True)
class _Slot:
    """How one key of the value dict maps to elements."""

    key: str
    field: Field  # for the padding after the last field: the report's last field
    kind: str  # "scalar", "list", "array", "padding"
    elems: Sequence[int]  # indices into ReportCodec.elems (a range)
    usage: int = 0
    table: dict[int, str] | None = None  # array: raw value -> usage name
    rev: dict[str, int] | None = None  # array: usage name / lowercase -> raw value
    null: int = 0  # array: value written to unused slots
    canon: dict[int, int] | None = None  # array: raw value -> the value build writes for its name
    width: int = 0  # padding: bits
    raw_key: str = ""  # array: "(raw <key>)", the slot values when the names cannot rebuild them
    bit: int = 0  # bit offset of the slot's first element (padding: of its bits)


def _bits(body: bytes, offset: int, width: int) -> int:
    """The unsigned value of ``width`` bits at bit ``offset`` of ``body`` (LSB first); reads only
    the bytes concerned, so a loop over the elements of a wide report stays linear."""
    a = offset >> 3
    return (int.from_bytes(body[a:(offset + width + 7) >> 3], "little") >> (offset & 7)) & ((1 << width) - 1)


def _put(buf: bytearray, offset: int, width: int, value: int) -> None:
    """OR ``value`` (already within ``width`` bits) into ``buf`` at bit ``offset``."""
    a, b = offset >> 3, (offset + width + 7) >> 3
    cur = int.from_bytes(buf[a:b], "little") | (value << (offset & 7))
    buf[a:b] = cur.to_bytes(b - a, "little")


def _fits(v: int, e: _Elem) -> bool:
    if e.signed:
        return -(1 << (e.size - 1)) <= v < (1 << (e.size - 1)) if e.size else v == 0
    return 0 <= v < (1 << e.size)


def _closure(env: dict[str, Any], lines: list[str], name: str, filename: str) -> Any:
    """Compile generated source (``lines``, defining the function ``name``) as a closure over the
    constants in ``env`` (names read from closure cells are cheaper than globals or defaults)."""
    consts = ["_from", *env]
    src = [f"def _make({', '.join(consts)}):"] + ["    " + ln for ln in lines] + [f"    return {name}"]
    ns: dict[str, Any] = {}
    exec(compile("\n".join(src), filename, "exec"), ns)  # noqa: S102 - source generated from a layout only
    return ns["_make"](int.from_bytes, *env.values())


class _LazyArray:
    """The names of one array slot for the interpreter (:meth:`ReportCodec._interpret`), made
    only as far as the decoded values need: an array can hold thousands of usages, and naming
    them all costs more than parsing the descriptor. Gives exactly what the full tables of
    :meth:`ReportCodec._arrays` give."""

    __slots__ = ("canon", "done", "hi", "lo", "null", "rev", "usages")

    def __init__(self, s: _Slot, null: int) -> None:
        f = s.field
        self.lo, self.hi = f.logical_minimum, f.logical_maximum
        self.usages = f.kernel_usages[: max(0, self.hi - self.lo + 1)]  # slot value lo + k -> usage k
        self.null = null
        self.done = 0  # usages[:done] are in canon and rev
        self.canon: dict[int, int] = {}
        self.rev: dict[str, int] = {}

    def _upto(self, k: int) -> None:
        """Fill canon and rev for usages[:k + 1], as _arrays does (same order, same keys)."""
        rev, canon, lo = self.rev, self.canon, self.lo
        for j in range(self.done, k + 1):
            u = self.usages[j]
            if u & 0xFFFF:
                canon[lo + j] = rev.setdefault(_norm(usage_name(u)), lo + j)
                rev.setdefault(f"0x{u:x}", lo + j)
        self.done = max(self.done, k + 1)

    def decode(self, raw: list[int]) -> tuple[list[str], bool]:
        """(the names of the active usages, whether the names rebuild ``raw``)."""
        lo, usages = self.lo, self.usages
        n = len(usages)
        active = [x for x in raw if 0 <= x - lo < n and usages[x - lo] & 0xFFFF]
        names = [usage_name(usages[x - lo]) for x in active]
        # The names rebuild the slots when the active values come first, each is the first value
        # of its name, and the other slots hold the null value.
        k = len(active)
        rebuilds = raw[:k] == active and all(x == self.null for x in raw[k:])
        if rebuilds and active:
            # A usage listed earlier has the same name: quick to see, and then no name is needed.
            rebuilds = all(usages.index(usages[x - lo]) == x - lo for x in active)
        if rebuilds and active:
            self._upto(max(active) - lo)
            rebuilds = all(self.canon[x] == x for x in active)
        return names, rebuilds


class ReportCodec:
    """Decode and build one report (one report type and ID) of a descriptor.

    Args:
        report: the layout, from :func:`dkproto.hid.parse`.
    """

    def __init__(self, report: Report) -> None:
        if report.refused is not None:
            f = report.refused
            why = ("the kernel refuses it, so dkproto does not lay it out" if f.kernel_fatal
                   else "its layout is incomplete, so dkproto does not lay it out")
            head = f"{report.type} report {report.id}"
            msg = f.message if f.message.startswith(head) else f"{head}: {f.message}"
            raise DecodeError(f"{msg} ({f.rule}): {why}", offset=f.offset, descriptor="report descriptor",
                              rule=f.rule)
        self.report = report
        self._elems: list[_Elem] | None = None
        self._n_elems = 0
        self.slots: list[_Slot] = []
        self._array_member: dict[str, _Slot] = {}
        self._arrays_ready = False
        self._names_ready = False  # _by_key, _by_norm, _raw_slots: made on the first build
        self._by_key: dict[str, _Slot] = {}
        self._by_norm: dict[str, _Slot] = {}
        self._raw_slots: dict[str, _Slot] = {}
        self._build_slots()
        self._pads: tuple[frozenset[int], dict[int, int]] | None = None
        self._struct: cs.Construct | None = None
        self._fast: Callable[[bytes], ReportValues] | None = None
        self._decodes = 0  # decodes done without the generated decoder (see decode)
        self._lazy: dict[int, _LazyArray] = {}  # the interpreter's array names (see _LazyArray)
        self._size = report.size
        self._rv = ReportValues.for_report(report.type, report.id)

    def _names(self) -> None:
        """The name look-ups of :meth:`build` (made on first use: a decode never needs them)."""
        if self._names_ready:
            return
        self._names_ready = True
        for sl in self.slots:
            self._by_key.setdefault(sl.key, sl)
            self._by_norm.setdefault(_norm(sl.key), sl)
        self._raw_slots = {sl.raw_key: sl for sl in self.slots if sl.raw_key}

    # -- layout ----------------------------------------------------------------------------
    def _build_slots(self) -> None:
        seen: dict[str, int] = {}

        def unique(name: str) -> str:
            n = seen.get(name, 0) + 1
            seen[name] = n
            return name if n == 1 else f"{name}#{n}"

        for f in self.report.fields:
            if f.report_size == 0 or f.report_count == 0:
                continue
            first = self._n_elems
            self._n_elems += f.report_count
            idx = range(first, self._n_elems)
            base_bit = f.bit_offset
            if f.is_padding:
                # One pseudo-element spanning the whole item keeps the bits exact.
                self.slots.append(_Slot(f"(padding@{base_bit})", f, "padding", idx, width=f.bit_size,
                                        bit=base_bit))
            elif f.is_variable:
                n = len(f.usages)
                size = f.report_size
                for i in range(min(n, f.report_count)):
                    u = f.usages[i]
                    if i == n - 1 and f.report_count > n:
                        self.slots.append(_Slot(unique(usage_name(u)), f, "list", idx[i:], u,
                                                bit=base_bit + i * size))
                    else:
                        self.slots.append(_Slot(unique(usage_name(u)), f, "scalar", idx[i:i + 1], u,
                                                bit=base_bit + i * size))
            else:
                pages = {u >> 16 for u in f.usages}
                base = page_name(pages.pop()) if len(pages) == 1 else "Array"
                slot = _Slot(unique(base), f, "array", idx, bit=base_bit)
                slot.raw_key = f"(raw {slot.key})"
                self.slots.append(slot)
        r = self.report
        tail = r.data_size * 8 - r.size_bits
        if tail and r.fields:
            # Bits after the last field, up to the byte boundary: kept like padding.
            self._n_elems += 1
            self.slots.append(_Slot(f"(padding@{r.size_bits})", r.fields[-1], "padding",
                                    range(self._n_elems - 1, self._n_elems), width=tail, bit=r.size_bits))

    @property
    def elems(self) -> list[_Elem]:
        """Every element of the report, in order (made on first use: a codec made only for its
        keys or layout never needs them, and a report can have thousands)."""
        if self._elems is None:
            out: list[_Elem] = []
            for f in self.report.fields:
                if f.report_size and f.report_count:
                    size, signed, base = f.report_size, f.signed, f.bit_offset
                    out.extend([_Elem(base + i * size, size, signed) for i in range(f.report_count)])
            r = self.report
            tail = r.data_size * 8 - r.size_bits
            if tail and r.fields:
                out.append(_Elem(r.size_bits, tail, False))
            self._elems = out
        return self._elems

    def _arrays(self) -> None:
        """Fill the name tables of the array slots, on the first decode or build: an array field
        can hold thousands of usages, and a codec made only for its layout or keys (``hid parse``,
        a CLI call that decodes one other report) never needs them."""
        if self._arrays_ready:
            return
        self._arrays_ready = True
        for slot in self.slots:
            if slot.kind != "array":
                continue
            f = slot.field
            table: dict[int, str] = {}
            rev: dict[str, int] = {}  # normalised name -> first value (then 0x<usage> -> value)
            canon: dict[int, int] = {}
            null = None
            lo, hi = f.logical_minimum, f.logical_maximum
            usages = f.kernel_usages
            if hi - lo + 1 < len(usages):
                usages = usages[: max(0, hi - lo + 1)]
            for v, u in enumerate(usages, lo):
                if u & 0xFFFF == 0:
                    if null is None:
                        null = v
                    continue
                name = usage_name(u)
                table[v] = name
                canon[v] = rev.setdefault(_norm(name), v)
                rev.setdefault(f"0x{u:x}", v)
            if null is None:
                e = _Elem(slot.bit, f.report_size, f.signed)
                for cand in (0, hi + 1, lo - 1):
                    if not (lo <= cand <= hi) and _fits(cand, e):
                        null = cand
                        break
                else:
                    null = 0
            slot.table, slot.rev, slot.null, slot.canon = table, rev, null, canon
            for name in table.values():
                self._array_member.setdefault(_norm(name), slot)

    @property
    def keys(self) -> list[str]:
        """Every value name of this report, in order (padding excluded)."""
        return [s.key for s in self.slots if s.kind != "padding"]

    @property
    def size(self) -> int:
        """Report length in bytes, ID byte included."""
        return self.report.size

    def _raw_from_body(self, body: bytes) -> list[int]:
        out = []
        for e in self.elems:
            v = _bits(body, e.bit_offset, e.size)
            if e.signed and v >> (e.size - 1):
                v -= 1 << e.size
            out.append(v)
        return out

    def _split(self, data: bytes | bytearray | memoryview, strict: bool) -> tuple[bytes, bytes, int]:
        """(field data, bytes after the declared length, bytes missing). A short report is an
        error when strict; otherwise it is padded with zeros, as the Linux HID core does."""
        r = self.report
        data = bytes(data)
        if len(data) > HID_MAX_BUFFER_SIZE:
            raise DecodeError(f"{r.type} report {r.id} is {len(data)} bytes, over HID_MAX_BUFFER_SIZE "
                              f"({HID_MAX_BUFFER_SIZE}; the kernel reads no more)", offset=HID_MAX_BUFFER_SIZE,
                              descriptor=f"{r.type} report {r.id}", rule="HID_MAX_BUFFER_SIZE")
        if r.id:
            if not data or data[0] != r.id:
                got = f"0x{data[0]:02x}" if data else "nothing"
                raise DecodeError(f"{r.type} report starts with {got}, expected report ID {r.id}",
                                  offset=0, descriptor=f"{r.type} report {r.id}", rule="Report ID")
            body = data[1:]
        else:
            body = data
        need = r.data_size
        if len(body) < need:
            if strict:
                raise DecodeError(
                    f"{r.type} report {r.id} is {len(data)} bytes, the descriptor declares {r.size} "
                    "(pass strict=False to pad it with zeros as the kernel does)",
                    offset=len(data), descriptor=f"{r.type} report {r.id}", rule="report length",
                )
            missing = need - len(body)
            return body + bytes(missing), b"", missing
        return body[:need], body[need:], 0

    # -- values from raw element values ----------------------------------------------------
    def _values(self, raw: list[int], body: bytes) -> ReportValues:
        self._arrays()
        out = self._rv()
        unchecked = []
        for s in self.slots:
            f = s.field
            if s.kind == "padding":
                v = _bits(body, self.elems[s.elems[0]].bit_offset, s.width)
                if v:
                    out[s.key] = v
            elif s.kind == "scalar":
                v = raw[s.elems[0]]
                out[s.key] = v
                if not f.logical_minimum <= v <= f.logical_maximum:
                    unchecked.append(s.key)
            elif s.kind == "list":
                vals = [raw[i] for i in s.elems]
                out[s.key] = vals
                if any(not f.logical_minimum <= v <= f.logical_maximum for v in vals):
                    unchecked.append(s.key)
            else:
                t, c = s.table or {}, s.canon or {}
                slots = [raw[i] for i in s.elems]
                active = [x for x in slots if x in t]
                out[s.key] = [t[x] for x in active]
                if [c[x] for x in active] + [s.null] * (len(slots) - len(active)) != slots:
                    out[s.raw_key] = slots
        if unchecked:
            out.unchecked = frozenset(unchecked)
        return out

    # -- fast path -------------------------------------------------------------------------
    def _source(self, env: dict[str, Any], prefix: str = "", buf: str = "body", skip: int = 0) -> list[str]:
        """The statements of the generated decoder (see the module docstring), one per line
        without indentation: they read the field data from the bytes named ``buf`` (after its first
        ``skip`` bytes: 1 for the report ID byte) and end with ``return out``.

        Small reports are read as one integer and every element is a shift and a mask. In wide
        reports (over 16 bytes) each element reads only its own bytes, so the cost stays linear,
        and runs of byte-aligned 8/16/32/64-bit elements are unpacked in one ``struct`` call.
        The constants the statements use go into ``env``, their names starting with ``prefix``
        (so that several reports' statements can share one function, see DescriptorCodec).
        """
        self._arrays()
        wide = self.report.data_size > 16
        rv = f"{prefix}RV"
        env[rv] = self._rv
        lines: list[str] = []
        checks: list[tuple[str, str]] = []  # (condition for "outside the logical range", key)
        uses_n = [False]  # the statements read the small report as one integer n

        def ext(i: int) -> str:
            e = self.elems[i]
            m = (1 << e.size) - 1
            if not wide:
                uses_n[0] = True
                x = f"((n >> {e.bit_offset}) & {m:#x})" if e.bit_offset else f"(n & {m:#x})"
            else:
                a, sh = divmod(e.bit_offset, 8)
                b = (e.bit_offset + e.size + 7) // 8
                a, b = a + skip, b + skip
                if sh == 0 and e.size == 8:
                    x = f"{buf}[{a}]"
                elif b == a + 1:  # within one byte
                    x = f"(({buf}[{a}] >> {sh}) & {m:#x})" if sh else f"({buf}[{a}] & {m:#x})"
                elif sh == 0 and e.size % 8 == 0:
                    x = f"_from({buf}[{a}:{b}], 'little')"
                else:
                    x = f"((_from({buf}[{a}:{b}], 'little') >> {sh}) & {m:#x})"
            if e.signed:
                half = 1 << (e.size - 1)
                x = f"(({x} ^ {half:#x}) - {half:#x})"
            return x

        def run_expr(idx: Sequence[int]) -> str:
            """A list of the elements' values, in one struct call when they are a regular run."""
            es = [self.elems[i] for i in idx]
            e0 = es[0]
            regular = (
                len(es) > 2
                and e0.bit_offset % 8 == 0
                and e0.size in (8, 16, 32, 64)
                and all(es[j].bit_offset == e0.bit_offset + j * e0.size for j in range(len(es)))
            )
            if not regular:
                return "[" + ", ".join(ext(i) for i in idx) + "]"
            a = e0.bit_offset // 8 + skip
            if e0.size == 8 and not e0.signed:
                return f"list({buf}[{a}:{a + len(es)}])"
            code = {8: "b", 16: "h", 32: "i", 64: "q"}[e0.size]
            if not e0.signed:
                code = code.upper()
            name = f"{prefix}S{len(env)}"
            env[name] = struct.Struct(f"<{len(es)}{code}").unpack_from
            return f"list({name}({buf}, {a}))"

        def needs_check(e: _Elem, lo: int, hi: int) -> bool:
            if e.signed:
                rlo, rhi = -(1 << (e.size - 1)), (1 << (e.size - 1)) - 1
            else:
                rlo, rhi = 0, (1 << e.size) - 1
            return not (lo <= rlo and hi >= rhi)

        # The values go straight into the result (a dict subclass filled key by key costs less
        # than one built from a dict), in slot order; padding and "(raw ...)" keys come after.
        lines.append(f"out = {rv}()")
        after: list[str] = []
        for k, s in enumerate(self.slots):
            f = s.field
            lo, hi = f.logical_minimum, f.logical_maximum
            if s.kind == "padding":
                e0 = self.elems[s.elems[0]]
                mask = (1 << s.width) - 1
                if not wide:
                    uses_n[0] = True
                    after.append(f"p{k} = (n >> {e0.bit_offset}) & {mask:#x}")
                else:
                    a, sh = divmod(e0.bit_offset, 8)
                    b = (e0.bit_offset + s.width + 7) // 8
                    after.append(f"p{k} = (_from({buf}[{a + skip}:{b + skip}], 'little') >> {sh}) & {mask:#x}")
                after.append(f"if p{k}: out[{s.key!r}] = p{k}")
                continue
            e0 = self.elems[s.elems[0]]
            if s.kind == "scalar":
                if needs_check(e0, lo, hi):
                    lines.append(f"out[{s.key!r}] = v{k} = {ext(s.elems[0])}")
                    checks.append((f"not {lo} <= v{k} <= {hi}", s.key))
                else:
                    lines.append(f"out[{s.key!r}] = {ext(s.elems[0])}")
            elif s.kind == "list":
                if needs_check(e0, lo, hi):
                    lines.append(f"out[{s.key!r}] = v{k} = {run_expr(s.elems)}")
                    checks.append((f"min(v{k}) < {lo} or max(v{k}) > {hi}", s.key))
                else:
                    lines.append(f"out[{s.key!r}] = {run_expr(s.elems)}")
            else:
                t, c, z = f"{prefix}t{k}", f"{prefix}c{k}", f"{prefix}z{k}"
                env[t], env[c], env[z] = s.table, s.canon, [s.null] * len(s.elems)
                lines.append(f"r{k} = {run_expr(s.elems)}")
                lines.append(f"a{k} = [x for x in r{k} if x in {t}]")
                lines.append(f"out[{s.key!r}] = [{t}[x] for x in a{k}]")
                # The slots, when the names would not rebuild them (see the module docstring).
                after.append(f"if [{c}[x] for x in a{k}] + {z}[len(a{k}):] != r{k}: out[{s.raw_key!r}] = r{k}")
        if uses_n[0]:
            lines.insert(0, f"n = _from({buf}, 'little') >> {8 * skip}" if skip else f"n = _from({buf}, 'little')")
        lines.extend(after)
        if len(checks) == 1:  # one value to check: its frozenset is made once, here
            cond, key = checks[0]
            env[f"{prefix}U"] = frozenset((key,))
            lines.append(f"if {cond}: out.unchecked = {prefix}U")
        elif checks:
            lines.append("bad = []")
            lines.extend(f"if {cond}: bad.append({key!r})" for cond, key in checks)
            lines.append("if bad: out.unchecked = frozenset(bad)")
        lines.append("return out")
        return lines

    def _compile(self) -> Callable[[bytes], ReportValues]:
        """Generate the decoder of this report (see :meth:`_source`)."""
        env: dict[str, Any] = {}
        body = self._source(env)
        fn: Callable[[bytes], ReportValues] = _closure(
            env, ["def _decode(body):"] + ["    " + ln for ln in body], "_decode",
            f"<hid {self.report.type} report {self.report.id}>")
        return fn

    def _interpret(self, body: bytes) -> ReportValues:
        """Decode the field data without the generated decoder: the same values, keys in the same
        order and the same ``unchecked`` as :meth:`_compile`'s function (checked over the corpus
        by the unit tests), for the first decodes of a report (see :meth:`decode`). Reads the
        slots directly, so it costs nothing to set up."""
        wide = len(body) > 16
        n = 0 if wide else int.from_bytes(body, "little")
        out: dict[str, Any] = {}
        extra: list[tuple[str, Any]] = []  # padding and "(raw ...)" keys come after the values
        bad: list[str] = []
        for s in self.slots:
            if s.kind == "padding":
                p = _bits(body, s.bit, s.width) if wide else (n >> s.bit) & ((1 << s.width) - 1)
                if p:
                    extra.append((s.key, p))
                continue
            f = s.field
            size, bit = f.report_size, s.bit
            mask = (1 << size) - 1
            if wide:
                raw = [_bits(body, bit + j * size, size) for j in range(len(s.elems))]
            else:
                raw = [(n >> (bit + j * size)) & mask for j in range(len(s.elems))]
            if f.logical_minimum < 0:  # signed: two's complement
                half = 1 << (size - 1)
                raw = [(x ^ half) - half for x in raw]
            lo, hi = f.logical_minimum, f.logical_maximum
            if s.kind == "scalar":
                v = raw[0]
                out[s.key] = v
                if not lo <= v <= hi:
                    bad.append(s.key)
            elif s.kind == "list":
                out[s.key] = raw
                if min(raw) < lo or max(raw) > hi:
                    bad.append(s.key)
            elif self._arrays_ready:
                t, c = s.table or {}, s.canon or {}
                active = [x for x in raw if x in t]
                out[s.key] = [t[x] for x in active]
                if [c[x] for x in active] + [s.null] * (len(raw) - len(active)) != raw:
                    extra.append((s.raw_key, raw))
            else:
                names, rebuilds = self._lazy_array(s).decode(raw)
                out[s.key] = names
                if not rebuilds:
                    extra.append((s.raw_key, raw))
        rv = self._rv(out)
        for key, value in extra:
            rv[key] = value
        if bad:
            rv.unchecked = frozenset(bad)
        return rv

    def _lazy_array(self, s: _Slot) -> _LazyArray:
        la = self._lazy.get(id(s))
        if la is None:
            la = self._lazy[id(s)] = _LazyArray(s, self._interp_null(s))
        return la

    def _interp_null(self, s: _Slot) -> int:
        """The slot value :meth:`_arrays` picks for "no usage" (see there), without its tables."""
        f = s.field
        lo, hi = f.logical_minimum, f.logical_maximum
        usages = f.kernel_usages[: max(0, hi - lo + 1)]
        try:  # the first usage ID 0 (Reserved / no event) in range, found at C speed
            return lo + list(map((0xFFFF).__and__, usages)).index(0)
        except ValueError:
            pass
        e = _Elem(s.bit, f.report_size, f.signed)
        for cand in (0, hi + 1, lo - 1):
            if not (lo <= cand <= hi) and _fits(cand, e):
                return cand
        return 0

    def _decoder(self) -> Callable[[bytes], ReportValues]:
        """What decodes the field data: the generated decoder once this report has been decoded
        :data:`COMPILE_AFTER` times (or was compiled already), the interpreter before that."""
        fast = self._fast
        if fast is not None:
            return fast
        self._decodes += 1
        if self._decodes < COMPILE_AFTER:
            return self._interpret
        fast = self._fast = self._compile()
        return fast

    def decode(self, data: bytes | bytearray | memoryview, *, strict: bool = True) -> ReportValues:
        """Decode one report (report ID byte included when the report has an ID). Fast path.

        The first decodes of a report are interpreted from its layout; from the
        :data:`COMPILE_AFTER`-th on, a decoder generated for the layout does the work (same
        result, a fraction of the time). A one-shot call thus never pays for code generation.

        Args:
            data: the report as read from the device.
            strict: raise for bytes after the declared length instead of keeping them in
                ``trailing``.

        Raises:
            DecodeError: wrong report ID, too short, or (strict) too long.
        """
        fast = self._fast
        if fast is None:
            fast = self._decoder()
        if type(data) is not bytes:
            data = bytes(data)
        rid = self.report.id
        if len(data) == self._size and (not rid or data[0] == rid):
            return fast(data[1:] if rid else data)  # the common case, checked in one line
        body, trailing, missing = self._split(data, strict)
        if trailing and strict:
            raise DecodeError(
                f"{self.report.type} report {self.report.id} is {len(data)} bytes, the descriptor declares "
                f"{self.report.size} (pass strict=False to keep the extra bytes)",
                offset=self.report.size, descriptor=f"{self.report.type} report {self.report.id}",
                rule="report length",
            )
        out = fast(body)
        if trailing:
            out.trailing = trailing
        if missing:
            out.missing = missing
        return out

    # -- Construct schema ------------------------------------------------------------------
    def _msb_runs(self) -> list[tuple[str, int, int, int | None]]:
        """The report's bits from the highest offset down, as ``(name, low bit, width, element)``:
        ``e<index>`` for an element, ``gap<top>`` (element None) for bits no element covers.

        BitStruct reads MSB first; after ByteSwapped the highest bit offset comes first.
        """
        runs: list[tuple[str, int, int, int | None]] = []
        pos = self.report.data_size * 8
        for i in sorted(range(len(self.elems)), key=lambda i: self.elems[i].bit_offset, reverse=True):
            e = self.elems[i]
            top = e.bit_offset + e.size
            if top < pos:
                runs.append((f"gap{pos}", top, pos - top, None))
            runs.append((f"e{i}", e.bit_offset, e.size, i))
            pos = e.bit_offset
        if pos > 0:
            runs.append(("gap0", 0, pos, None))
        return runs

    @property
    def struct(self) -> cs.Construct:
        """The Construct schema of this report: ``report_id`` (if any) then ``data`` with one
        integer per element, named ``e<index>``."""
        if self._struct is None:
            r = self.report
            subs: list[cs.Construct] = [
                name / cs.BitsInteger(width, signed=i is not None and self.elems[i].signed)
                for name, _low, width, i in self._msb_runs()
            ]
            body: cs.Construct = cs.ByteSwapped(cs.BitStruct(*subs)) if subs else cs.Struct()
            parts = []
            if r.id:
                parts.append("report_id" / cs.Const(r.id, cs.Int8ul))
            parts.append("data" / body)
            self._struct = cs.Struct(*parts)
        return self._struct

    def decode_construct(self, data: bytes | bytearray | memoryview) -> ReportValues:
        """Decode through the Construct schema (same result as :meth:`decode`, slower)."""
        data = bytes(data)
        body, trailing, missing = self._split(data, strict=False)
        head = data[:1] if self.report.id else b""
        try:
            c = self.struct.parse(head + body)
        except cs.ConstructError as exc:
            raise DecodeError(str(exc), descriptor=f"{self.report.type} report {self.report.id}",
                              path=getattr(exc, "path", None)) from exc
        d = c.data if self.elems else {}
        raw = [d[f"e{i}"] for i in range(len(self.elems))]
        out = self._values(raw, body)
        if trailing:
            out.trailing = trailing
        if missing:
            out.missing = missing
        return out

    def build_construct(self, values: Mapping[str, Any]) -> bytes:
        """Build through the Construct schema (same bytes as :meth:`build`)."""
        raw, pads = self._raw_for(values)
        packed = self._pack(raw, pads)
        # Gaps carry padding bits and any bits not covered by a field.
        d: dict[str, int] = {f"e{i}": v for i, v in enumerate(self._raw_from_body(packed))}
        for name, low, width, i in self._msb_runs():
            if i is None:
                d[name] = _bits(packed, low, width)
        obj: dict[str, Any] = {"data": d}
        try:
            out: bytes = self.struct.build(obj)
        except cs.ConstructError as exc:
            raise EncodeError(f"{self.report.type} report {self.report.id}: {exc}") from exc
        if isinstance(values, ReportValues):
            if values.missing:
                out = out[: len(out) - values.missing]
            return out + values.trailing
        return out

    # -- build -----------------------------------------------------------------------------
    def _slot_for(self, name: str) -> _Slot | None:
        self._names()
        s = self._by_key.get(name)
        return s if s is not None else self._by_norm.get(_norm(name))

    def _raw_for(self, values: Mapping[str, Any]) -> tuple[list[int], dict[int, int]]:
        """Element values for a name mapping; range-checked. Returns (raw, padding values)."""
        self._arrays()
        self._names()
        raw = [0] * len(self.elems)
        pads: dict[int, int] = {}
        unchecked = values.unchecked if isinstance(values, ReportValues) else frozenset()
        arrays: dict[int, list[int]] = {}
        slot_values: dict[int, list[int]] = {}  # "(raw <key>)" given
        where = f"{self.report.type} report {self.report.id}"
        for a in self.slots:
            if a.kind == "array":
                for i in a.elems:
                    raw[i] = a.null
        for name, value in values.items():
            if not isinstance(name, str):
                raise EncodeError(f"{where}: value names are strings, not {type(name).__name__} ({name!r})")
            rs = self._raw_slots.get(name)
            if rs is not None:
                slot_values[id(rs)] = self._slot_values(rs, name, value, where)
                continue
            found = self._slot_for(name)
            if found is None:
                member = self._array_member.get(_norm(name))
                if member is not None:
                    if value:
                        arrays.setdefault(id(member), []).append(member.rev[_norm(name)])  # type: ignore[index]
                    continue
                raise EncodeError(
                    f"{where} has no value named {name!r}; it has: {', '.join(self.keys[:20])}"
                    + (" ..." if len(self.keys) > 20 else "")
                )
            s = found
            f = s.field
            if s.kind == "padding":
                v = _as_int(value, name, where)
                if not 0 <= v < (1 << s.width):
                    raise EncodeError(f"{where}: {name}={v} does not fit {s.width} bits")
                pads[s.elems[0]] = v
                continue
            if s.kind == "array":
                items = [value] if isinstance(value, (str, int)) else list(value)
                for it in items:
                    arrays.setdefault(id(s), []).append(self._array_value(s, it, where))
                continue
            vals = [value] if s.kind == "scalar" else (list(value) if isinstance(value, (list, tuple)) else [value])
            if s.kind == "list" and len(vals) > len(s.elems):
                raise EncodeError(f"{where}: {name} takes at most {len(s.elems)} values, got {len(vals)}")
            for i, v in zip(s.elems, vals):
                v = _as_int(v, name, where)
                e = self.elems[i]
                lo, hi = f.logical_minimum, f.logical_maximum
                check_range = lo < hi and name not in unchecked
                if check_range and not lo <= v <= hi:
                    raise EncodeError(
                        f"{where}: {name}={v} is outside the logical range {lo}..{hi} "
                        f"(item at descriptor offset {f.offset})"
                    )
                if not _fits(v, e):
                    raise EncodeError(
                        f"{where}: {name}={v} does not fit {e.size} {'signed ' if e.signed else ''}bits "
                        f"(item at descriptor offset {f.offset})"
                    )
                raw[i] = v
        for s in self.slots:
            got = arrays.get(id(s))
            given = slot_values.get(id(s))
            if given is not None:
                t = s.table or {}
                names = [t[x] for x in given if x in t]
                if got is not None and [t[x] for x in got] != names:
                    raise EncodeError(f"{where}: {s.key}={[t[x] for x in got]} disagrees with {s.raw_key}={given} "
                                      f"(which names {names}); give one of them")
                for i, v in zip(s.elems, given):
                    raw[i] = v
                continue
            if got is None:
                continue
            if len(got) > len(s.elems):
                raise EncodeError(
                    f"{where}: {len(got)} usages active in {s.key}, but it has only {len(s.elems)} slots"
                )
            for i, v in zip(s.elems, got):
                raw[i] = v
        return raw, pads

    def _slot_values(self, s: _Slot, name: str, value: Any, where: str) -> list[int]:
        """The slot values of a ``(raw <key>)`` entry: one integer per slot, each fitting its bits."""
        if not isinstance(value, (list, tuple)) or len(value) != len(s.elems):
            raise EncodeError(f"{where}: {name} takes a list of {len(s.elems)} slot values")
        out = []
        for i, v in zip(s.elems, value):
            v = _as_int(v, name, where)
            if not _fits(v, self.elems[i]):
                e = self.elems[i]
                raise EncodeError(f"{where}: {name} value {v} does not fit {e.size} "
                                  f"{'signed ' if e.signed else ''}bits (item at descriptor offset {s.field.offset})")
            out.append(v)
        return out

    def _array_value(self, s: _Slot, it: Any, where: str) -> int:
        rev = s.rev or {}
        if isinstance(it, str):
            v = rev.get(_norm(it))
            if v is None:
                try:
                    u = lookup_usage(it)
                except DkError:
                    u = -1
                v = rev.get(f"0x{u:x}")
            if v is None:
                raise EncodeError(f"{where}: {it!r} is not one of the usages of {s.key}")
            return v
        if isinstance(it, int) and f"0x{it:x}" in rev:
            return rev[f"0x{it:x}"]
        raise EncodeError(f"{where}: {it!r} is not one of the usages of {s.key} (give a name or a 32-bit usage)")

    def _pack(self, raw: list[int], pads: dict[int, int]) -> bytes:
        """The field data (report ID excluded): one int for small reports, byte slices for wide
        ones (OR-ing into one growing int would be quadratic)."""
        size = self.report.data_size
        if self._pads is None:
            pad = [sl for sl in self.slots if sl.kind == "padding"]
            self._pads = (frozenset(i for sl in pad for i in sl.elems), {sl.elems[0]: sl.width for sl in pad})
        pad_elems, pad_width = self._pads
        if size <= 16:
            n = 0
            for i, (e, v) in enumerate(zip(self.elems, raw)):
                if i not in pad_elems:
                    n |= (v & ((1 << e.size) - 1)) << e.bit_offset
            for i, v in pads.items():
                n |= v << self.elems[i].bit_offset
            return n.to_bytes(size, "little")
        buf = bytearray(size)
        for i, (e, v) in enumerate(zip(self.elems, raw)):
            if i not in pad_elems and v:
                _put(buf, e.bit_offset, e.size, v & ((1 << e.size) - 1))
        for i, v in pads.items():
            _put(buf, self.elems[i].bit_offset, pad_width[i], v)
        return bytes(buf)

    def build(self, values: Mapping[str, Any] | None = None, **kw: Any) -> bytes:
        """Build a report from names: ``build({"X": -5, "Y": 3, "Button 1": 1})``.

        Names not given are 0 (arrays: no usage active). Values are checked against the
        logical range (a range of min == max is not checked) and the bit size. Names of array
        usages may be given directly (``{"Keyboard a and A": 1}``). A :class:`ReportValues` from
        :meth:`decode` builds back to the same bytes.

        Raises:
            EncodeError: an unknown name, a value out of range, too many array usages.
        """
        merged: Mapping[str, Any]
        if kw:
            merged = dict(values or {}, **kw)
        else:
            merged = values if values is not None else {}  # an empty ReportValues still carries trailing bytes
        raw, pads = self._raw_for(merged)
        body = self._pack(raw, pads)
        head = bytes([self.report.id]) if self.report.id else b""
        if isinstance(merged, ReportValues):
            if merged.missing:
                body = body[: len(body) - merged.missing]
            return head + body + merged.trailing
        return head + body

    def physical(self, values: Mapping[str, Any]) -> dict[str, tuple[float | list[float], str]]:
        """Physical values with their units: ``{"X": (12.7, "cm")}`` for Variable values.

        [HID 1.11: 6.2.2.7] physical = (logical - Lmin) * (Pmax - Pmin) / (Lmax - Lmin) + Pmin,
        times 10^Unit Exponent; the physical range defaults to the logical one. A field whose
        physical value a double cannot hold (a Unit Exponent far outside the spec's -8..7, which
        the kernel keeps as given) has none here rather than an infinity or a silent zero.
        """
        out: dict[str, tuple[float | list[float], str]] = {}
        for s in self.slots:
            if s.kind not in ("scalar", "list") or s.key not in values:
                continue
            f = s.field
            lo, hi = f.logical_minimum, f.logical_maximum
            plo, phi = f.physical_range()
            scale = (phi - plo) / (hi - lo) if hi != lo else 1.0
            try:
                mul = 10.0 ** f.unit_exponent
            except OverflowError:
                continue
            if mul == 0.0 or not math.isfinite(scale):
                continue

            def conv(v: int, lo: int = lo, scale: float = scale, plo: int = plo, mul: float = mul) -> float:
                return ((v - lo) * scale + plo) * mul

            v = values[s.key]
            got = [conv(x) for x in v] if isinstance(v, list) else [conv(v)]
            if not all(math.isfinite(x) for x in got):
                continue
            out[s.key] = (got if isinstance(v, list) else got[0], unit_text(f.unit))
        return out


@lru_cache(maxsize=1 << 16)
def _norm(name: str) -> str:
    """Names compare without case, spaces or punctuation other than '#' (cached: the same usage
    names come back for every array element and every build; bounded so that hostile input cannot
    grow it without limit)."""
    if name.isascii():  # the same result, at C speed: drop every ASCII byte but [a-z0-9#]
        return name.lower().encode("ascii").translate(None, _NORM_DROP).decode("ascii")
    return "".join(ch for ch in name.lower() if ch.isalnum() or ch == "#")


_NORM_DROP = bytes(i for i in range(128) if not (chr(i).isalnum() or chr(i) == "#"))


def _as_int(v: Any, name: str, where: str) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            pass
    raise EncodeError(f"{where}: {name}={v!r} is not an integer")


#: The generated ``DescriptorCodec.decode`` decodes inline at most this many reports per report
#: type, each at most INLINE_MAX_BYTES long with at most INLINE_MAX_SLOTS values (small reports,
#: where the cost of a call is a large part of the cost of a decode); it calls the others.
INLINE_MAX_REPORTS = 8
INLINE_MAX_BYTES = 64
INLINE_MAX_SLOTS = 64


def _inlinable(c: ReportCodec) -> bool:
    return c._size <= INLINE_MAX_BYTES and len(c.slots) <= INLINE_MAX_SLOTS


class DescriptorCodec:
    """Codecs for every report of a descriptor; picks the report by its ID byte.

    Args:
        rd: a parsed descriptor.
    """

    def __init__(self, rd: ReportDescriptor) -> None:
        self.descriptor = rd
        self._codecs: dict[tuple[str, int], ReportCodec] = {}
        self._cached_elements = 0
        self._numbered: dict[str, bool] = {}
        # Generated decoders per report type: (numbered, {report ID: (decoder, report length)}).
        self._fast_table: dict[str, tuple[bool, dict[int, tuple[Any, int]]]] = {}
        # What the generated ``decode`` (see _dispatch) holds: per report type, the IDs decoded
        # inline and the table through which it reaches the other generated decoders.
        self._inline: dict[str, list[int]] = {}
        self._tables: dict[str, dict[int, tuple[Any, int]]] = {}

    def codec(self, report_type: str = "input", report_id: int = 0) -> ReportCodec:
        """The codec of one report (created on first use; the oldest are dropped past
        :data:`MAX_CACHED_ELEMENTS`).

        Raises:
            DecodeError: no such report, or a report the parser refused (see the module doc).
        """
        key = (report_type, report_id)
        c = self._codecs.get(key)
        if c is None:
            c = ReportCodec(self.descriptor.report(report_type, report_id))
            self._cached_elements += c._n_elems
            dropped = False
            while self._codecs and self._cached_elements > MAX_CACHED_ELEMENTS:
                old_key = next(iter(self._codecs))
                self._cached_elements -= self._codecs.pop(old_key)._n_elems
                entry = self._fast_table.get(old_key[0])
                if entry is not None and entry[1].pop(old_key[1], None) is not None:
                    dropped = True
            if dropped:
                self._dispatch()  # no decoder of a dropped codec stays reachable
            self._codecs[key] = c
        return c

    def report_id_of(self, data: bytes, report_type: str = "input") -> int:
        """The report ID a report starts with (0 when the descriptor uses none)."""
        if (report_type, 0) in self.descriptor.reports or not self.descriptor.uses_report_ids:
            return 0
        if not data:
            raise DecodeError("empty report", offset=0, descriptor=f"{report_type} report")
        return data[0]

    def decode(self, data: bytes | bytearray | memoryview, report_type: str = "input", *,
               strict: bool = True) -> ReportValues:
        """Decode a report of the given type; the ID byte selects the layout.

        Once reports of this descriptor have generated decoders (see :meth:`ReportCodec.decode`),
        a function generated for this instance takes this method's place (:meth:`_dispatch`):
        it picks the report by its length and ID byte and decodes it inline, in one Python call.
        """
        return self._decode_checked(data, report_type, strict)

    def _decode_checked(self, data: bytes | bytearray | memoryview, report_type: str,
                        strict: bool) -> ReportValues:
        numbered = self._numbered.get(report_type)
        if numbered is None:
            rd = self.descriptor
            numbered = self._numbered[report_type] = rd.uses_report_ids and (report_type, 0) not in rd.reports
        if numbered:
            if not data:
                raise DecodeError("empty report", offset=0, descriptor=f"{report_type} report")
            rid = data[0]
        else:
            rid = 0
        c = self.codec(report_type, rid)
        out = c.decode(data, strict=strict)
        fast = c._fast
        if fast is not None:
            entry = self._fast_table.setdefault(report_type, (numbered, {}))
            known = entry[1].get(rid)
            if known is None or known[0] is not fast:
                entry[1][rid] = (fast, c._size)
                tabled = self._tables.get(report_type)
                if (known is None and tabled is not None
                        and (len(self._inline[report_type]) >= INLINE_MAX_REPORTS or not _inlinable(c))):
                    tabled[rid] = (fast, c._size)  # the dispatcher reaches it through its table
                else:
                    self._dispatch()
        return out

    def _dispatch(self) -> None:
        """Generate this instance's ``decode`` from the reports that have generated decoders.

        Per report type, the first :data:`INLINE_MAX_REPORTS` small reports are decoded inline
        (their decoder's statements, reading the bytes as given: no slice, no second call); the
        others through a table keyed by the ID byte. Anything else (another type, a length that
        does not match, not ``bytes``, an unknown ID) goes to the general path, which raises
        the same errors as always. The number of regenerations is bounded by the number of
        inline reports (a tabled report only joins the table).
        """
        self.__dict__.pop("decode", None)
        self._inline = {}
        self._tables = {}
        if not any(table for _, table in self._fast_table.values()):
            return
        env: dict[str, Any] = {"_bytes": bytes, "_slow": self._decode_checked}
        lines = ["def decode(data, report_type='input', *, strict=True):",
                 "    if type(data) is _bytes:"]
        first = True
        for rtype, (numbered, table) in self._fast_table.items():
            if not table:
                continue
            inline: list[int] = []
            tabled: dict[int, tuple[Any, int]] = {}
            for rid, (fast, size) in table.items():
                c = self._codecs.get((rtype, rid))
                if c is not None and c._fast is fast and len(inline) < INLINE_MAX_REPORTS and _inlinable(c):
                    inline.append(rid)
                else:
                    tabled[rid] = (fast, size)
            self._inline[rtype] = inline
            self._tables[rtype] = tabled  # reports compiled later join it (see _decode_checked)
            k = len(env)
            env[f"T{k}"] = tabled
            lines.append(f"        {'if' if first else 'elif'} report_type == {rtype!r}:")
            first = False
            lines.append("            ln = len(data)")
            if numbered:
                lines.append("            x = data[0] if ln else -1")
            for j, rid in enumerate(inline):
                c = self._codecs[(rtype, rid)]
                prefix = f"I{k}_{j}_"
                cond = f"x == {rid} and ln == {c._size}" if numbered else f"ln == {c._size}"
                lines.append(f"            if {cond}:")
                lines.extend("                " + ln for ln in c._source(env, prefix, "data", 1 if numbered else 0))
            if numbered:
                lines.append(f"            t = T{k}.get(x)")
                lines.append("            if t is not None and ln == t[1]:")
                lines.append("                return t[0](data[1:])")
            else:
                lines.append(f"            t = T{k}.get(0)")
                lines.append("            if t is not None and ln == t[1]:")
                lines.append("                return t[0](data)")
        lines.append("    return _slow(data, report_type, strict)")
        self.decode = _closure(env, lines, "decode", "<hid decode dispatch>")  # type: ignore[method-assign]

    def build(self, values: Mapping[str, Any], report_id: int | None = None,
              report_type: str = "input") -> bytes:
        """Build a report from names (``report_id`` defaults to that of a ReportValues, else 0)."""
        if report_id is None:
            report_id = values.report_id if isinstance(values, ReportValues) else 0
        if isinstance(values, ReportValues):
            report_type = values.report_type
        return self.codec(report_type, report_id).build(values)


def parse_assignments(args: Iterable[str]) -> dict[str, Any]:
    """Parse CLI assignments ``X=-5 Y=3 "Button 1"=1 Keyboard/Keypad=a,b`` into a dict.

    A value is an integer (decimal or 0x hex), or a comma-separated list (integers or names).

    Raises:
        EncodeError: an argument without ``=``.
    """
    out: dict[str, Any] = {}
    for a in args:
        name, sep, val = a.rpartition("=")
        if not sep or not name:
            raise EncodeError(f"expected name=value, got {a!r}")
        parts = [p.strip() for p in val.split(",")] if "," in val else [val.strip()]
        conv: list[Any] = []
        for p in parts:
            try:
                conv.append(int(p, 0))
            except ValueError:
                conv.append(p)
        out[name.strip()] = conv if len(conv) > 1 or "," in val else conv[0]
    return out
