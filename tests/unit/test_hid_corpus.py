"""The whole HID corpus against the Linux kernel's own parse (debugfs rdesc) and round trips."""

from __future__ import annotations

import pytest
from hid_corpus import HID_IDS, HID_ITEMS, descriptor, load_item, oracle_rdesc

from dkproto.hid import parse
from dkproto.hid.codec import DescriptorCodec, ReportCodec
from dkproto.hid.lint import lint
from dkproto.hid.rdesc import compare, parse_rdesc


def test_corpus_is_there() -> None:
    assert len(HID_ITEMS) >= 60


@pytest.mark.parametrize("path", HID_ITEMS, ids=HID_IDS)
def test_layouts_agree_with_kernel(path) -> None:
    """Report IDs, bit offsets, sizes, counts, ranges, units, flags, usages and collection usages
    of every field with usages equal the kernel's; the kernel's report order too."""
    rd = parse(descriptor(path))
    oracle = oracle_rdesc(path)
    text = oracle.read_text() if oracle.exists() else ""
    if not text.strip():
        # No HID device at all (usbhid refuses descriptors over 4096 bytes): dkproto must say so.
        assert rd.kernel_error is not None and rd.kernel_error.rule == "HID011"
        return
    dump = parse_rdesc(text)
    assert dump.raw == rd.data
    assert compare(rd, dump) == []
    # Non-vacuous: the kernel listed fields and so did we (none when it refused the descriptor).
    if rd.kernel_error is None:
        assert sum(len(r.fields) for r in dump.reports) == len(rd.kernel_fields())
    else:
        assert dump.reports == []


WITH_REPORTS = [p for p in HID_ITEMS if load_item(p).get("input_reports_hex")]


def test_some_items_have_recorded_reports() -> None:
    assert WITH_REPORTS


@pytest.mark.parametrize("path", WITH_REPORTS, ids=[p.stem for p in WITH_REPORTS])
def test_recorded_reports_round_trip(path) -> None:
    item = load_item(path)
    reports = [bytes.fromhex(r) for r in item.get("input_reports_hex") or []]
    codec = DescriptorCodec(parse(descriptor(path)))
    for r in reports:
        # strict=False: a recording longer or shorter than the layout keeps (or marks) the
        # difference instead of failing, so the round trip still holds.
        values = codec.decode(r, strict=False)
        assert values  # decodes to names
        assert codec.build(values) == r
        rc = codec.codec("input", values.report_id)
        assert rc.decode_construct(r) == values
        assert rc.build_construct(values) == r


@pytest.mark.parametrize("path", HID_ITEMS, ids=HID_IDS)
def test_construct_schema_round_trips_and_agrees_with_fast_path(path) -> None:
    """Every report's schema parses then builds the same bytes, and both paths decode alike,
    on patterned data (all zeros, all ones, a byte ramp)."""
    rd = parse(descriptor(path))
    for rep in rd.reports.values():
        c = ReportCodec(rep)
        head = bytes([rep.id]) if rep.id else b""
        for body in (bytes(rep.data_size), b"\xff" * rep.data_size,
                     bytes((i * 37 + 11) & 0xFF for i in range(rep.data_size))):
            data = head + body
            assert c.struct.build(c.struct.parse(data)) == data
            v = c.decode(data)
            vc = c.decode_construct(data)
            assert vc == v and vc.unchecked == v.unchecked
            assert c.struct.sizeof() == rep.size


@pytest.mark.parametrize("path", HID_ITEMS, ids=HID_IDS)
def test_lint_never_crashes_and_points_at_items(path) -> None:
    data = descriptor(path)
    offsets = {it.offset for it in parse(data).items} | {len(data)}
    for f in lint(data):
        assert f.offset in offsets, f
        assert f.rule.startswith("HID")


def test_quirky_items_get_precise_findings() -> None:
    by = {p.stem: lint(descriptor(p)) for p in HID_ITEMS}
    want = {
        "primax-keyboard": ("HID003", 56),  # Usage Page after its Usages
        "mistel-md770-keyboard": ("HID026", 200),  # a bitmap declared as Array
        "frtec-raptor-mach2-joystick": ("HID002", 80),  # hat switch usage with no page
        "xbox-one-s-controller-bt-windows-mode": ("HID018", 306),  # stray 0x00
        "xbox-elite-2-bt-original": ("HID018", 1224),  # stray 0x00
    }
    for slug, (rule, offset) in want.items():
        if slug in by:
            assert (rule, offset) in {(f.rule, f.offset) for f in by[slug]}, (slug, by[slug])
