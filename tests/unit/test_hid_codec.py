"""Codecs: decode to names, build from names (range-checked), arrays, sign, physical values."""

from __future__ import annotations

import pytest
from test_hid_parser import MOUSE

from dkproto.errors import DecodeError, EncodeError
from dkproto.hid import parse
from dkproto.hid.codec import DescriptorCodec, ReportCodec, parse_assignments

KEYBOARD = bytes.fromhex(
    "0501 0906 a101"  # Generic Desktop / Keyboard, Application
    "0507 19e0 29e7 1500 2501 7501 9508 8102"  # 8 modifier bits (Variable)
    "9501 7508 8101"  # reserved byte (padding)
    "9506 7508 1500 2565 0507 1900 2965 8100"  # 6 key slots (Array 0..101)
    "0508 1901 2905 9505 7501 9102 9501 7503 9101"  # 5 LEDs + 3 padding (output)
    "c0"
)


def test_mouse_decode_and_build_by_name() -> None:
    c = DescriptorCodec(parse(MOUSE))
    v = c.decode(bytes([0b101, 0xFB, 0x03]))
    assert dict(v) == {"Button 1": 1, "Button 2": 0, "Button 3": 1, "X": -5, "Y": 3}
    assert c.build({"X": -5, "Y": 3, "Button 1": 1, "Button 3": 1}) == bytes([0b101, 0xFB, 0x03])
    rc = c.codec("input", 0)
    assert rc.build(X=-5, Y=3) == bytes([0, 0xFB, 3])
    assert rc.build({"button 1": True}) == bytes([1, 0, 0])  # names ignore case and spaces


def test_build_is_range_checked() -> None:
    rc = DescriptorCodec(parse(MOUSE)).codec()
    with pytest.raises(EncodeError, match=r"X=-128 is outside the logical range -127..127"):
        rc.build({"X": -128})
    with pytest.raises(EncodeError, match="no value named 'Z'"):
        rc.build({"Z": 1})
    with pytest.raises(EncodeError, match="not an integer"):
        rc.build({"X": "left"})


def test_out_of_range_values_from_decode_still_build_back() -> None:
    rc = DescriptorCodec(parse(MOUSE)).codec()
    raw = bytes([0, 0x80, 0])  # X = -128, outside -127..127
    v = rc.decode(raw)
    assert v["X"] == -128 and v.unchecked == {"X"}
    assert rc.build(v) == raw
    with pytest.raises(EncodeError):
        rc.build(dict(v))  # a plain dict is checked


def test_keyboard_array_and_padding() -> None:
    rd = parse(KEYBOARD)
    c = DescriptorCodec(rd)
    rc = c.codec("input", 0)
    data = rc.build({"Keyboard LeftShift": 1, "Keyboard/Keypad": ["Keyboard A", "Keyboard B"]})
    assert data == bytes([0x02, 0, 4, 5, 0, 0, 0, 0])
    v = c.decode(data)
    assert v["Keyboard/Keypad"] == ["Keyboard A", "Keyboard B"]
    assert "(padding@8)" not in v
    # array usages can be named directly; padding bits that are set survive a round trip
    assert rc.build({"Keyboard A": 1}) == bytes([0, 0, 4, 0, 0, 0, 0, 0])
    odd = bytes([0, 0x5A, 4, 0, 0, 0, 0, 0])
    v = c.decode(odd)
    assert v["(padding@8)"] == 0x5A and c.build(v) == odd
    with pytest.raises(EncodeError, match="only 6 slots"):
        rc.build({"Keyboard/Keypad": ["Keyboard A"] * 7})
    with pytest.raises(EncodeError, match="not one of the usages"):
        rc.build({"Keyboard/Keypad": ["Volume Up"]})


def test_output_report_leds() -> None:
    rc = DescriptorCodec(parse(KEYBOARD)).codec("output", 0)
    assert rc.keys == ["Num Lock", "Caps Lock", "Scroll Lock", "Compose", "Kana"]
    assert rc.build({"Caps Lock": 1, "Kana": 1}) == bytes([0b10010])


def test_decode_rejects_wrong_length_and_id() -> None:
    c = DescriptorCodec(parse(MOUSE))
    with pytest.raises(DecodeError) as ei:
        c.decode(b"\x01\x02")
    assert ei.value.offset == 2
    with pytest.raises(DecodeError):
        c.decode(b"\x01\x02\x03\x04")
    v = c.decode(b"\x01\x02\x03\x04", strict=False)
    assert v.trailing == b"\x04" and c.build(v) == b"\x01\x02\x03\x04"
    short = c.decode(b"\x01\xfb", strict=False)  # padded with zeros, as the kernel does
    assert (short["X"], short["Y"], short.missing) == (-5, 0, 1) and c.build(short) == b"\x01\xfb"
    rc = c.codec()
    assert rc.decode_construct(b"\x01\xfb") == short and rc.build_construct(short) == b"\x01\xfb"
    ids = parse(bytes.fromhex("0501 0902 a101 8501 0930 1581 257f 7508 9501 8106 c0"))
    rc = ReportCodec(ids.report("input", 1))
    with pytest.raises(DecodeError, match="expected report ID 1"):
        rc.decode(b"\x02\x05")


def test_physical_values_with_units() -> None:
    data = bytes.fromhex(
        "050d 0902 a101 0501 0930 1500 26ff0f 3500 46e803 550e 6511 7510 9501 8102 c0"
    )  # X 0..4095 logical, 0..1000 physical, exponent -2, cm
    rc = DescriptorCodec(parse(data)).codec()
    v = rc.decode((4095).to_bytes(2, "little"))
    value, unit = rc.physical(v)["X"]
    assert unit == "cm" and value == pytest.approx(10.0)


def test_signed_and_wide_fields_both_paths() -> None:
    data = bytes.fromhex("06 00ff 0901 a101 0901 17 00000080 27 ffffff7f 7520 9501 8102"
                         "0902 1500 26ff00 7540 9501 8102 c0")
    rc = DescriptorCodec(parse(data)).codec()
    raw = (-123456).to_bytes(4, "little", signed=True) + (2**63 + 5).to_bytes(8, "little")
    v = rc.decode(raw)
    assert v["Vendor 0xff00:0x0001"] == -123456 and v["Vendor 0xff00:0x0002"] == 2**63 + 5
    assert rc.decode_construct(raw) == v
    assert rc.build(v) == raw == rc.build_construct(v)


def test_parse_assignments() -> None:
    assert parse_assignments(["X=-5", "Y=0x10", "Button 1=1", "Keys=Keyboard A,Keyboard B"]) == {
        "X": -5, "Y": 16, "Button 1": 1, "Keys": ["Keyboard A", "Keyboard B"]}
    with pytest.raises(EncodeError):
        parse_assignments(["X"])
