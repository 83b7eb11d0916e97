"""The decode tiers agree: the interpreter (first decodes of a report), the generated decoder of a
report, and the generated ``DescriptorCodec.decode`` that decodes small reports inline give the same
values, keys in the same order, the same types and flags, and raise the same errors; the lazy
parts (array names, name look-ups, the descriptor's items) give what the eager ones give."""

from __future__ import annotations

import random

import pytest
from hid_corpus import HID_IDS, HID_ITEMS, descriptor
from test_hid_codec import KEYBOARD

from dkproto.errors import DecodeError
from dkproto.hid import parse
from dkproto.hid.codec import COMPILE_AFTER, DescriptorCodec, ReportCodec, ReportValues
from dkproto.hid.items import parse_items
from dkproto.hid.parser import MAX_PARSED_BYTES


def _same(a: ReportValues, b: ReportValues) -> None:
    assert type(a).__name__ == type(b).__name__ and isinstance(a, ReportValues) and isinstance(b, ReportValues)
    assert (a.report_type, a.report_id) == (b.report_type, b.report_id)
    assert list(a.items()) == list(b.items())
    assert [type(v) for v in a.values()] == [type(v) for v in b.values()]
    assert a.unchecked == b.unchecked and a.trailing == b.trailing and a.missing == b.missing


def _samples(size: int, rid: int, rnd: random.Random) -> list[bytes]:
    head = bytes([rid]) if rid else b""
    bodies = [bytes(size), b"\xff" * size, bytes((k * 29 + rid + 7) & 0xFF for k in range(size)),
              bytes(rnd.randrange(256) for _ in range(size)),
              bytes(rnd.choice((0, 0, 1, 4, 5, 0x80, 0xFF)) for _ in range(size))]
    return [head + b for b in bodies]


@pytest.mark.parametrize("path", HID_ITEMS, ids=HID_IDS)
def test_tiers_agree_on_every_corpus_layout(path) -> None:
    rd = parse(descriptor(path))
    rnd = random.Random(path.stem)
    for (rtype, rid), report in rd.reports.items():
        if report.refused is not None:
            continue
        for data in _samples(report.data_size, rid, rnd):
            lazy = ReportCodec(report)  # interpreter, array names made as needed
            first = lazy.decode(data)
            assert lazy._fast is None
            eager = ReportCodec(report)
            eager._arrays()  # interpreter over the full array tables
            _same(first, eager._interpret(data[1:] if rid else data))
            compiled = ReportCodec(report)
            for _ in range(COMPILE_AFTER):
                got = compiled.decode(data)
            assert compiled._fast is not None
            _same(first, got)
            assert compiled.build(got) == data == lazy.build(first)
            if rid == 0 and rd.uses_report_ids:
                continue  # not reachable by its ID byte through a DescriptorCodec
            dc = DescriptorCodec(rd)
            outs = [dc.decode(data, rtype) for _ in range(COMPILE_AFTER + 1)]
            assert "decode" in vars(dc)  # the generated dispatcher took over
            for out in outs:
                _same(first, out)


@pytest.mark.parametrize("path", HID_ITEMS, ids=HID_IDS)
def test_lazy_items_are_the_items(path) -> None:
    data = descriptor(path)
    rd = parse(data)
    assert rd.items == parse_items(data, MAX_PARSED_BYTES)[0]


def test_dispatcher_keeps_the_errors_and_other_paths() -> None:
    c = DescriptorCodec(parse(KEYBOARD))
    report = bytes([0, 0x5A, 4, 5, 0, 0, 0, 0])
    errors_before = []
    for bad in (b"", report[:-1], report + b"\x00", bytes(3)):
        with pytest.raises(DecodeError) as ei:
            c.decode(bad)
        errors_before.append(str(ei.value))
    for _ in range(COMPILE_AFTER):
        c.decode(report)
    assert "decode" in vars(c)
    errors_after = []
    for bad in (b"", report[:-1], report + b"\x00", bytes(3)):
        with pytest.raises(DecodeError) as ei:
            c.decode(bad)
        errors_after.append(str(ei.value))
    assert errors_after == errors_before
    # Not bytes, not strict, another report type: the general path, same answers.
    _same(c.decode(bytearray(report)), c.decode(report))
    assert c.decode(report + b"\x07", strict=False).trailing == b"\x07"
    assert c.decode(report[:-2], strict=False).missing == 2
    with pytest.raises(DecodeError, match="no feature report"):
        c.decode(report, "feature")
    assert c.decode(b"\x03", "output") == {"Num Lock": 1, "Caps Lock": 1, "Scroll Lock": 0, "Compose": 0, "Kana": 0}


def test_dispatcher_with_report_ids_and_unknown_ids() -> None:
    desc = bytes.fromhex(
        "0501 0902 a101 8501 0930 1581 257f 7508 9501 8102"  # input 1: X (signed byte)
        "8502 0931 1500 26ff 0075 0895 0281 02"  # input 2: Y, 2 bytes (a list)
        "c0")
    c = DescriptorCodec(parse(desc))
    for _ in range(COMPILE_AFTER):
        assert c.decode(b"\x01\x80") == {"X": -128} and c.decode(b"\x01\x80").unchecked == {"X"}
        assert c.decode(b"\x02\x05\x06") == {"Y": [5, 6]}
    assert "decode" in vars(c)
    with pytest.raises(DecodeError, match="no input report with ID 3"):
        c.decode(b"\x03\x00")
    with pytest.raises(DecodeError, match="empty report"):
        c.decode(b"")
    with pytest.raises(DecodeError, match="descriptor declares 2"):
        c.decode(b"\x01\x00\x00")


def test_lazy_array_names_match_the_full_tables() -> None:
    # Usages that repeat and names that normalise alike: the first value of a name is canonical.
    desc = bytes.fromhex(
        "0507 0906 a101"
        "1500 250f 7508 9503"
        "0a 0000 0a 0400 0a 0400 0a 0500 1a 0400 2a 0600"  # 0, a, a, b, a..c
        "8100 c0")
    rd = parse(desc)
    report = rd.report("input", 0)
    for data in [bytes([a, b, c]) for a in range(9) for b in range(9) for c in (0, 1, 2, 3, 7, 8, 0x0F, 0x10)]:
        lazy = ReportCodec(report)
        eager = ReportCodec(report)
        eager._arrays()
        _same(lazy._interpret(data), eager._interpret(data))
