"""Properties: build(decode(r)) == r over random valid descriptors and random reports; random garbage
descriptors only ever raise DkError, and whatever report decode accepts rebuilds byte for byte."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dkproto.errors import DkError
from dkproto.hid import parse
from dkproto.hid.codec import DescriptorCodec, ReportCodec
from dkproto.hid.lint import lint_descriptor
from dkproto.hid.parser import HID_MAX_BUFFER_SIZE
from dkproto.hid.render import format_items, format_layouts

MAIN, GLOBAL, LOCAL = 0, 1, 2
INPUT, OUTPUT, FEATURE, COLLECTION, END_COLLECTION = 8, 9, 0xB, 0xA, 0xC


def item(kind: int, tag: int, value: int | None = None, signed: bool = False, size: int | None = None) -> bytes:
    """A short item with the smallest data size that holds ``value`` (or exactly ``size`` bytes)."""
    if value is None:
        return bytes([tag << 4 | kind << 2])
    for n, code in ((1, 1), (2, 2), (4, 3)):
        if size is not None and n != size:
            continue
        lo, hi = (-(1 << (8 * n - 1)), (1 << (8 * n - 1)) - 1) if signed else (0, (1 << 8 * n) - 1)
        if lo <= value <= hi:
            return bytes([tag << 4 | kind << 2 | code]) + value.to_bytes(n, "little", signed=signed)
    raise AssertionError(f"{value} does not fit")


@st.composite
def usages(draw: Any) -> bytes:
    """Usage Page, then usages: a few IDs (0 included), a range, or extended 32-bit usages."""
    page = draw(st.sampled_from([0x01, 0x07, 0x09, 0x0C, 0x0D, 0xFF00]))
    out = item(GLOBAL, 0, page)
    how = draw(st.sampled_from(["ids", "range", "extended"]))
    if how == "ids":
        for u in draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=4)):
            out += item(LOCAL, 0, u)
    elif how == "range":
        lo = draw(st.integers(0, 0x3FF))
        out += item(LOCAL, 1, lo) + item(LOCAL, 2, lo + draw(st.integers(0, 300)))
    else:
        for u in draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=3)):
            out += item(LOCAL, 0, (draw(st.sampled_from([0x01, 0x09, 0xFF00])) << 16) | u, size=4)
    return out


@st.composite
def main_item(draw: Any, report_ids: list[int]) -> bytes:
    """Globals (sizes, logical range incl. negative, optional physical/unit) then an Input, Output or
    Feature that is Constant or Data, Variable or Array, with or without usages."""
    size = draw(st.one_of(st.integers(1, 16), st.sampled_from([24, 31, 32, 33, 48, 64])))
    count = draw(st.integers(0, 8))
    out = b""
    if report_ids:
        out += item(GLOBAL, 8, draw(st.sampled_from(report_ids)))
    if draw(st.booleans()):  # negative minimum: the maximum is read signed
        lmin = draw(st.integers(-(1 << 31), -1))
        lmax = draw(st.integers(lmin, (1 << 31) - 1))
        out += item(GLOBAL, 1, lmin, signed=True) + item(GLOBAL, 2, lmax, signed=True)
    else:
        lmin = draw(st.integers(0, (1 << 31) - 1))
        lmax = draw(st.integers(lmin, (1 << 32) - 1))
        out += item(GLOBAL, 1, lmin, signed=True) + item(GLOBAL, 2, lmax)
    if draw(st.booleans()):
        out += item(GLOBAL, 3, draw(st.integers(-1000, 1000)), signed=True)
        out += item(GLOBAL, 4, draw(st.integers(1000, 30000)), signed=True)
        out += item(GLOBAL, 6, draw(st.sampled_from([0x11, 0x14, 0xD121, 0xF001])))
        out += item(GLOBAL, 5, draw(st.integers(0, 15)))
    out += item(GLOBAL, 7, size) + item(GLOBAL, 9, count)
    if draw(st.integers(0, 3)):
        out += draw(usages())
    flags = draw(st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x06, 0x42, 0x40, 0x100, 0x102]))
    return out + item(MAIN, draw(st.sampled_from([INPUT, INPUT, OUTPUT, FEATURE])), flags)


@st.composite
def collection(draw: Any, report_ids: list[int], depth: int) -> bytes:
    out = item(GLOBAL, 0, 0x01) + item(LOCAL, 0, draw(st.integers(0, 0xFF)))
    out += item(MAIN, COLLECTION, draw(st.sampled_from([0, 1, 2, 3, 0x80])))
    for _ in range(draw(st.integers(1, 4))):
        if depth < 3 and draw(st.integers(0, 4)) == 0:
            out += draw(collection(report_ids, depth + 1))
        else:
            out += draw(main_item(report_ids))
    return out + item(MAIN, END_COLLECTION)


@st.composite
def valid_descriptor(draw: Any) -> bytes:
    report_ids = draw(st.one_of(st.just([]), st.lists(st.integers(1, 255), min_size=1, max_size=3, unique=True)))
    return b"".join(draw(collection(report_ids, 0)) for _ in range(draw(st.integers(1, 2))))


def _round_trips(c: ReportCodec, data: bytes) -> None:
    v = c.decode(data)
    assert c.build(v) == data
    if not v.unchecked:
        assert c.build(dict(v)) == data  # through a plain dict (JSON) too
    assert c.decode_construct(data) == v
    assert c.build_construct(v) == data


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(valid_descriptor(), st.data())
def test_build_decode_is_the_identity_on_valid_descriptors(desc: bytes, data: st.DataObject) -> None:
    rd = parse(desc)
    assert rd.kernel_error is None, rd.kernel_error
    assert rd.stopped is None
    for rep in rd.reports.values():
        c = ReportCodec(rep)
        head = bytes([rep.id]) if rep.id else b""
        for body in (bytes(rep.data_size), b"\xff" * rep.data_size,
                     data.draw(st.binary(min_size=rep.data_size, max_size=rep.data_size), label="report")):
            _round_trips(c, head + body)


def _exercise(desc: bytes, reports: list[bytes]) -> None:
    """Everything a user can do with a descriptor: only DkError escapes, and any report decode
    accepts rebuilds exactly."""
    try:
        rd = parse(desc)
        lint_descriptor(rd)
        format_items(rd)
        format_layouts(rd)
        rd.to_json()
        codec = DescriptorCodec(rd)
        for rtype in ("input", "output", "feature"):
            for rep in rd.reports_of(rtype)[:4]:
                head = bytes([rep.id]) if rep.id else b""
                n = min(rep.data_size, HID_MAX_BUFFER_SIZE)  # a refused report may declare 2**48 bits
                for r in reports:
                    data = head + (r * (n // len(r) + 1))[:n]
                    try:
                        v = codec.decode(data, rtype)
                    except DkError:
                        continue
                    assert codec.build(v) == data
    except DkError:
        pass


_GARBAGE_ITEM = st.one_of(
    st.binary(min_size=1, max_size=5),
    st.sampled_from([b"\xa1\x01", b"\xc0", b"\xa4", b"\xb4", b"\x81\x02", b"\x81\x00", b"\x91\x01", b"\xfe\x02\x00ab",
                     b"\x75\x08", b"\x95\x04", b"\x97\xff\xff\xff\xff", b"\x77\xff\xff\x00\x00", b"\x85\x01",
                     b"\x85\x00", b"\x19\x00\x2a\xff\xff", b"\x15\x81\x25\x7f", b"\x17\x00\x00\x00\x80", b"\x00"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=600), st.lists(_GARBAGE_ITEM, max_size=120).map(b"".join)),
       st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=3))
def test_garbage_descriptors_only_raise_dkerror(desc: bytes, reports: list[bytes]) -> None:
    _exercise(desc, reports)
