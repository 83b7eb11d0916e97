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
  and mask, then builds the value dict in one expression. This keeps live decoding at a few
  microseconds per report (see docs/performance.md).

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

__all__ = ["MAX_CACHED_ELEMENTS", "DescriptorCodec", "ReportCodec", "ReportValues", "parse_assignments"]

#: Elements of the report codecs a DescriptorCodec keeps compiled (two reports of the kernel's
#: largest size); older ones are dropped and compiled again when needed.
MAX_CACHED_ELEMENTS = 2 * (HID_MAX_BUFFER_SIZE - 1) * 8


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
        self._by_key: dict[str, _Slot] = {}
        self._by_norm: dict[str, _Slot] = {}
        self._build_slots()
        for sl in self.slots:
            self._by_key.setdefault(sl.key, sl)
            self._by_norm.setdefault(_norm(sl.key), sl)
        self._raw_slots = {sl.raw_key: sl for sl in self.slots if sl.raw_key}
        self._pads: tuple[frozenset[int], dict[int, int]] | None = None
        self._struct: cs.Construct | None = None
        self._fast: Callable[[bytes], ReportValues] | None = None
        self._size = report.size
        self._rv = ReportValues.for_report(report.type, report.id)

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
            if f.is_padding:
                # One pseudo-element spanning the whole item keeps the bits exact.
                self.slots.append(_Slot(f"(padding@{f.bit_offset})", f, "padding", idx, width=f.bit_size))
            elif f.is_variable:
                n = len(f.usages)
                for i in range(min(n, f.report_count)):
                    if i == n - 1 and f.report_count > n:
                        self.slots.append(_Slot(unique(usage_name(f.usages[i])), f, "list", idx[i:], f.usages[i]))
                    else:
                        self.slots.append(_Slot(unique(usage_name(f.usages[i])), f, "scalar", [idx[i]], f.usages[i]))
            else:
                pages = {u >> 16 for u in f.usages}
                base = page_name(pages.pop()) if len(pages) == 1 else "Array"
                slot = _Slot(unique(base), f, "array", idx)
                slot.raw_key = f"(raw {slot.key})"
                self.slots.append(slot)
        r = self.report
        tail = r.data_size * 8 - r.size_bits
        if tail and r.fields:
            # Bits after the last field, up to the byte boundary: kept like padding.
            self._n_elems += 1
            self.slots.append(_Slot(f"(padding@{r.size_bits})", r.fields[-1], "padding",
                                    range(self._n_elems - 1, self._n_elems), width=tail))

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
            rev: dict[str, int] = {}
            canon: dict[int, int] = {}
            null = None
            lo, hi = f.logical_minimum, f.logical_maximum
            for k, u in enumerate(f.kernel_usages):
                v = lo + k
                if v > hi:
                    break
                if u & 0xFFFF == 0:
                    if null is None:
                        null = v
                    continue
                name = usage_name(u)
                table[v] = name
                canon[v] = rev.setdefault(_norm(name), v)
                rev.setdefault(f"0x{u:x}", v)
            if null is None:
                e = self.elems[slot.elems[0]]
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
    def _compile(self) -> Callable[[bytes], ReportValues]:
        """Generate the decoder of this report (see the module docstring).

        Small reports are read as one integer and every element is a shift and a mask. In wide
        reports (over 16 bytes) each element reads only its own bytes, so the cost stays linear,
        and runs of byte-aligned 8/16/32-bit elements are unpacked in one ``struct`` call.
        """
        self._arrays()
        wide = self.report.data_size > 16
        lines = ["def _decode(body, _from=int.from_bytes, _RV=_RV):"]
        env: dict[str, Any] = {"_RV": self._rv}
        parts = []
        checks = []

        def ext(i: int) -> str:
            e = self.elems[i]
            m = (1 << e.size) - 1
            if not wide:
                x = f"((n >> {e.bit_offset}) & {m:#x})" if e.bit_offset else f"(n & {m:#x})"
            else:
                a, sh = divmod(e.bit_offset, 8)
                b = (e.bit_offset + e.size + 7) // 8
                if sh == 0 and e.size == 8:
                    x = f"body[{a}]"
                elif sh == 0 and e.size % 8 == 0:
                    x = f"_from(body[{a}:{b}], 'little')"
                else:
                    x = f"((_from(body[{a}:{b}], 'little') >> {sh}) & {m:#x})"
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
            a = e0.bit_offset // 8
            if e0.size == 8 and not e0.signed:
                return f"list(body[{a}:{a + len(es)}])"
            code = {8: "b", 16: "h", 32: "i", 64: "q"}[e0.size]
            if not e0.signed:
                code = code.upper()
            name = f"S{len(env)}"
            env[name] = struct.Struct(f"<{len(es)}{code}")
            return f"list({name}.unpack_from(body, {a}))"

        def needs_check(e: _Elem, lo: int, hi: int) -> bool:
            if e.signed:
                rlo, rhi = -(1 << (e.size - 1)), (1 << (e.size - 1)) - 1
            else:
                rlo, rhi = 0, (1 << e.size) - 1
            return not (lo <= rlo and hi >= rhi)

        for k, s in enumerate(self.slots):
            f = s.field
            lo, hi = f.logical_minimum, f.logical_maximum
            if s.kind == "padding":
                e0 = self.elems[s.elems[0]]
                mask = (1 << s.width) - 1
                if not wide:
                    lines.append(f"    p{k} = (n >> {e0.bit_offset}) & {mask:#x}")
                else:
                    a, sh = divmod(e0.bit_offset, 8)
                    b = (e0.bit_offset + s.width + 7) // 8
                    lines.append(f"    p{k} = (_from(body[{a}:{b}], 'little') >> {sh}) & {mask:#x}")
                continue
            e0 = self.elems[s.elems[0]]
            if s.kind == "scalar":
                lines.append(f"    v{k} = {ext(s.elems[0])}")
                if needs_check(e0, lo, hi):
                    checks.append(f"    if not {lo} <= v{k} <= {hi}: bad.append({s.key!r})")
            elif s.kind == "list":
                lines.append(f"    v{k} = {run_expr(s.elems)}")
                if needs_check(e0, lo, hi):
                    checks.append(f"    if min(v{k}) < {lo} or max(v{k}) > {hi}: bad.append({s.key!r})")
            else:
                env[f"t{k}"], env[f"c{k}"], env[f"z{k}"] = s.table, s.canon, [s.null] * len(s.elems)
                lines.append(f"    r{k} = {run_expr(s.elems)}")
                lines.append(f"    a{k} = [x for x in r{k} if x in t{k}]")
                lines.append(f"    v{k} = [t{k}[x] for x in a{k}]")
            parts.append(f"{s.key!r}: v{k}")
        if not wide and any("(n " in ln or "(n&" in ln or "n >>" in ln for ln in lines[1:]):
            lines.insert(1, "    n = _from(body, 'little')")
        lines.append("    out = _RV({" + ", ".join(parts) + "})")
        for k, s in enumerate(self.slots):
            if s.kind == "padding":
                lines.append(f"    if p{k}: out[{s.key!r}] = p{k}")
            elif s.kind == "array":
                # The slots, when the names would not rebuild them (see the module docstring).
                lines.append(f"    if [c{k}[x] for x in a{k}] + z{k}[len(a{k}):] != r{k}: out[{s.raw_key!r}] = r{k}")
        if checks:
            lines.append("    bad = []")
            lines.extend(checks)
            lines.append("    if bad: out.unchecked = frozenset(bad)")
        lines.append("    return out")
        src = "\n".join(lines)
        code = compile(src, f"<hid {self.report.type} report {self.report.id}>", "exec")
        exec(code, env)  # noqa: S102 - source generated above from the layout only
        return env["_decode"]  # type: ignore[no-any-return]

    def decode(self, data: bytes | bytearray | memoryview, *, strict: bool = True) -> ReportValues:
        """Decode one report (report ID byte included when the report has an ID). Fast path.

        Args:
            data: the report as read from the device.
            strict: raise for bytes after the declared length instead of keeping them in
                ``trailing``.

        Raises:
            DecodeError: wrong report ID, too short, or (strict) too long.
        """
        fast = self._fast
        if fast is None:
            fast = self._fast = self._compile()
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
        s = self._by_key.get(name)
        return s if s is not None else self._by_norm.get(_norm(name))

    def _raw_for(self, values: Mapping[str, Any]) -> tuple[list[int], dict[int, int]]:
        """Element values for a name mapping; range-checked. Returns (raw, padding values)."""
        self._arrays()
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
    return "".join(ch for ch in name.lower() if ch.isalnum() or ch == "#")


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
        self._fast_table: dict[str, tuple[bool, dict[int, tuple[Any, int]]]] = {}

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
            while self._codecs and self._cached_elements > MAX_CACHED_ELEMENTS:
                old_key = next(iter(self._codecs))
                self._cached_elements -= self._codecs.pop(old_key)._n_elems
                entry = self._fast_table.get(old_key[0])
                if entry is not None:
                    entry[1].pop(old_key[1], None)
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
        """Decode a report of the given type; the ID byte selects the layout."""
        entry = self._fast_table.get(report_type)
        if entry is not None and type(data) is bytes:
            # Hot path for live decoding: one look-up, a length check, the generated decoder.
            numbered, table = entry
            if numbered:
                if data:
                    t = table.get(data[0])
                    if t is not None and len(data) == t[1]:
                        return t[0](data[1:])  # type: ignore[no-any-return]
            else:
                t = table.get(0)
                if t is not None and len(data) == t[1]:
                    return t[0](data)  # type: ignore[no-any-return]
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
        entry = self._fast_table.setdefault(report_type, (numbered, {}))
        entry[1][rid] = (c._fast, c._size)
        return out

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
