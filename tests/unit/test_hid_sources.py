"""Descriptor sources: corpus JSON, hid-recorder, rdesc, hex text, binary, sysfs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hid_corpus import HID_ITEMS, descriptor, oracle_rdesc
from test_hid_parser import MOUSE

from dkproto.errors import DecodeError, NotFoundError
from dkproto.hid.sources import load, parse_hex, parse_recording

RECORDING = """# Logitech mouse
# 0x05, 0x01, // Usage Page (Generic Desktop)
D: 0
R: 50 05 01 09 02 a1 01 09 01 a1 00 05 09 19 01 29 03 15 00 25 01 95 03 75 01 81 02 95 01 75 05 81 01 05 01 09 30 09 31 15 81 25 7f 75 08 95 02 81 06 c0 c0
N: Test Mouse
P: usb-0000:00:14.0-1/input0
I: 3 046d c077
D: 0
E: 0.000000 3 01 fb 03
E: 0.008012 3 00 00 00
"""


def test_hid_recorder_recording(tmp_path: Path) -> None:
    p = tmp_path / "mouse.hid"
    p.write_text(RECORDING)
    src = parse_recording(RECORDING)
    assert src.descriptor == MOUSE
    assert src.reports == [bytes([1, 0xFB, 3]), bytes(3)]
    assert src.timestamps == [0.0, 0.008012]
    assert (src.name, src.bus, src.vid, src.pid) == ("Test Mouse", 3, 0x046D, 0xC077)
    f = tmp_path / "mouse.txt"
    f.write_text(RECORDING)
    assert load(f).descriptor == MOUSE and load(f).origin == "hid-recorder"


def test_recording_errors_have_line_numbers() -> None:
    with pytest.raises(DecodeError) as ei:
        parse_recording("R: 3 05 01\n")
    assert ei.value.offset == 1
    with pytest.raises(DecodeError, match="no R:"):
        parse_recording("N: nothing\n")


def test_corpus_json_binary_hex_rdesc_and_argument(tmp_path: Path) -> None:
    item = HID_ITEMS[0]
    data = descriptor(item)
    assert load(item).descriptor == data and load(item).origin == "json"
    b = tmp_path / "report_descriptor"  # the sysfs file name
    b.write_bytes(data)
    assert load(b).descriptor == data and load(b).origin == "binary"
    h = tmp_path / "d.txt"
    h.write_text("/* mouse */\n" + ", ".join(f"0x{x:02x}" for x in data) + "  // end\n")
    assert load(h).descriptor == data and load(h).origin == "hex"
    assert load(oracle_rdesc(item)).descriptor == data
    assert load(MOUSE.hex()).descriptor == MOUSE and load(MOUSE.hex()).origin == "argument"


def test_parse_hex_spellings_and_errors() -> None:
    assert parse_hex("05 01 09 02") == parse_hex("0x05,0x01,0x09,0x02") == parse_hex("05010902") == b"\x05\x01\x09\x02"
    with pytest.raises(DecodeError) as ei:
        parse_hex("05 0g")
    assert ei.value.offset == 4
    with pytest.raises(DecodeError, match="odd"):
        parse_hex("050")


def test_missing_file() -> None:
    with pytest.raises(NotFoundError):
        load("/no/such/file.json")


def test_library_hid_descriptors_load_without_extension_and_match_the_corpus() -> None:
    from corpus_path import HID_DIR

    lib = sorted(HID_DIR.glob("*.json"))
    assert len(lib) == 69
    for path in lib:
        src = load(path.with_suffix(""))  # descriptors/hid/<name>, as the docs show it
        corpus = json.loads(path.read_text())
        assert src.descriptor == bytes.fromhex(corpus["report_descriptor_hex"]), path.name
