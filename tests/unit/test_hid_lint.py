"""Lint rules on crafted descriptors, and mutated corpus descriptors: only DkError, always ends."""

from __future__ import annotations

import random

import pytest
from hid_corpus import HID_ITEMS, descriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dkproto.errors import DkError
from dkproto.hid import parse
from dkproto.hid.codec import ReportCodec
from dkproto.hid.lint import RULES, lint
from dkproto.hid.render import format_items, format_layouts


def rules(hexdata: str) -> set[tuple[str, int]]:
    return {(f.rule, f.offset) for f in lint(bytes.fromhex(hexdata))}


@pytest.mark.parametrize(
    "hexdata,finding",
    [
        ("0501 0902 a101 c0 c0", ("HID001", 7)),
        ("0902 a101 0930 1500 2501 7501 9501 8102 c0", ("HID002", 2)),
        ("0501 0902 a101 0930 1500 2501 7501 9501 0931 0509 8102 c0", ("HID003", 18)),
        ("0501 0902 a101 0930 1500 2501 7500 9501 8102 c0", ("HID004", 16)),
        ("0501 0902 a101 0930 1500 26ff00 7504 9501 8102 c0", ("HID005", 17)),
        ("0501 0902 a101 0930 1501 2500 7508 9501 8102 c0", ("HID006", 16)),
        ("0501 0902 a101 0930 1500 2501 7508 9501 8102 8501 0931 8102 c0", ("HID007", 16)),
        ("0501 0902 a101 8500 c0", ("HID008", 6)),
        ("0501 0902 a101 0930 760001 960030 8102 c0", ("HID009", 14)),
        ("0501 0902 a101 b4 c0", ("HID012", 6)),
        ("0501 0902 a101 a900 c0", ("HID014", 6)),
        ("0501 0902 a101 2903 1500 2501 7501 9503 8102 c0", ("HID015", 6)),
        ("0501 0902 a101 1905 2903 1500 2501 7501 9503 8102 c0", ("HID016", 8)),
        ("0501 0902 a101 fe0011 c0", ("HID017", 6)),
        ("0501 0902 a101 c0 00", ("HID018", 7)),
        ("0501 0902 a101 c0 0501 26", ("HID019", 9)),
        ("", ("HID020", 0)),
        ("0501 0902 a101 0930 0931 1500 2501 7508 9501 8102 c0", ("HID021", 18)),
        ("0501 0902 a101 0930 3510 4501 1500 2501 7508 9501 8102 c0", ("HID022", 20)),
        ("0501 0930 1500 2501 7508 9501 8102", ("HID023", 12)),
        ("0501 0902 a101 c0 0930", ("HID024", 7)),
        ("0501 0902 a101 8502 c0", ("HID025", 6)),
        ("0507 0906 a101 1900 2965 1500 2501 7501 9508 8100 c0", ("HID026", 18)),
    ],
)
def test_each_rule_with_its_offset(hexdata: str, finding: tuple[str, int]) -> None:
    assert finding in rules(hexdata)


def test_every_rule_is_documented_and_tested() -> None:
    tested = {"HID001", "HID002", "HID003", "HID004", "HID005", "HID006", "HID007", "HID008", "HID009",
              "HID012", "HID014", "HID015", "HID016", "HID017", "HID018", "HID019", "HID020", "HID021",
              "HID022", "HID023", "HID024", "HID025", "HID026"}
    assert tested <= set(RULES)
    # HID010 (256 fields), HID011 (4 KiB), HID013 (12288 usages) are exercised below.
    many_fields = "0501 0902 a101 1500 2501 7501 9501" + " 0930 8102" * 257 + " c0"
    assert "HID010" in {f.rule for f in lint(bytes.fromhex(many_fields))}
    big = bytes.fromhex("0501 0902 a101") + bytes.fromhex("0930") * 2100 + b"\xc0"
    assert "HID011" in {f.rule for f in lint(big)}
    usages = "0501 0902 a101 1901 2aff ff 1500 2501 7501 9501 8102 c0".replace(" ", "")
    assert "HID013" in {f.rule for f in lint(bytes.fromhex(usages))}


def _exercise(data: bytes) -> None:
    """Everything a user can do with a descriptor; only DkError may escape."""
    try:
        rd = parse(data)
        lint(data)
        format_items(rd)
        format_layouts(rd)
        rd.to_json()
        for rep in list(rd.reports.values())[:8]:
            if rep.size > 2048:
                continue
            c = ReportCodec(rep)
            head = bytes([rep.id]) if rep.id else b""
            body = bytes(range(256)) * (rep.data_size // 256 + 1)
            v = c.decode(head + body[: rep.data_size])
            c.build(v)
            c.decode_construct(head + body[: rep.data_size])
    except DkError:
        pass


SEEDS = [descriptor(p) for p in HID_ITEMS]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEEDS) - 1), st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)),
                                                 min_size=1, max_size=8), st.integers(0, 3))
def test_mutated_corpus_descriptors_never_crash(which: int, edits: list[tuple[int, int]], mode: int) -> None:
    data = bytearray(SEEDS[which])
    for pos, val in edits:
        if not data:
            break
        p = pos % len(data)
        if mode == 0:
            data[p] = val
        elif mode == 1:
            del data[p:]
        elif mode == 2:
            data.insert(p, val)
        else:
            data[p] ^= 1 << (val % 8)
    _exercise(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    _exercise(data)


def test_truncation_at_every_offset_of_one_descriptor() -> None:
    data = SEEDS[0]
    for n in range(len(data) + 1):
        rd = parse(data[:n])
        assert rd.items is not None
    random.seed(0)
