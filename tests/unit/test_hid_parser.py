"""Report layouts: the Linux HID core's rules on hand-written descriptors (annotated bytes)."""

from __future__ import annotations

import pytest

from dkproto.errors import DecodeError
from dkproto.hid import parse
from dkproto.hid.rdesc import compare, kernel_flags, kernel_unit, kernel_usage_value, parse_rdesc

MOUSE = bytes.fromhex(
    "0501"  # 0  Usage Page (Generic Desktop)
    "0902"  # 2  Usage (Mouse)
    "a101"  # 4  Collection (Application)
    "0901"  # 6    Usage (Pointer)
    "a100"  # 8    Collection (Physical)
    "0509"  # 10     Usage Page (Button)
    "1901"  # 12     Usage Minimum (1)
    "2903"  # 14     Usage Maximum (3)
    "1500"  # 16     Logical Minimum (0)
    "2501"  # 18     Logical Maximum (1)
    "9503"  # 20     Report Count (3)
    "7501"  # 22     Report Size (1)
    "8102"  # 24     Input (Data,Var,Abs)
    "9501"  # 26     Report Count (1)
    "7505"  # 28     Report Size (5)
    "8101"  # 30     Input (Cnst) padding
    "0501"  # 32     Usage Page (Generic Desktop)
    "0930"  # 34     Usage (X)
    "0931"  # 36     Usage (Y)
    "1581"  # 38     Logical Minimum (-127)
    "257f"  # 40     Logical Maximum (127)
    "7508"  # 42     Report Size (8)
    "9502"  # 44     Report Count (2)
    "8106"  # 46     Input (Data,Var,Rel)
    "c0"  # 48   End Collection
    "c0"  # 49 End Collection
)


def test_boot_mouse_layout() -> None:
    rd = parse(MOUSE)
    assert rd.kernel_error is None and rd.findings == []
    (r,) = rd.reports.values()
    assert (r.type, r.id, r.size_bits, r.size) == ("input", 0, 24, 3)
    buttons, pad, xy = r.fields
    assert (buttons.bit_offset, buttons.report_size, buttons.report_count) == (0, 1, 3)
    assert buttons.usages == (0x90001, 0x90002, 0x90003)
    assert pad.is_padding and pad.bit_offset == 3
    assert (xy.bit_offset, xy.logical_minimum, xy.logical_maximum, xy.signed) == (8, -127, 127, True)
    assert xy.flags & 4 and xy.usages == (0x10030, 0x10031)
    assert [rd.collections[i].type for i in xy.collection] == [1, 0]
    assert (xy.application, xy.physical) == (0x10002, 0x10001)
    assert rd.collection_path(xy) == "Application(Generic Desktop / Mouse) > Physical(Generic Desktop / Pointer)"
    assert len(rd.kernel_fields()) == 2


def test_report_ids_offsets_count_after_the_id_byte() -> None:
    data = bytes.fromhex("0501 0906 a101 8502 0507 19e0 29e7 1500 2501 7501 9508 8102 8503 9510 8102 c0")
    rd = parse(data)
    r2, r3 = rd.report("input", 2), rd.report("input", 3)
    assert r2.fields[0].bit_offset == 0 and r2.size == 2
    assert r3.fields[0].bit_offset == 0 and r3.size == 3
    with pytest.raises(DecodeError):
        rd.report("output", 2)


def test_push_pop_restores_globals_including_report_id() -> None:
    data = bytes.fromhex(
        "0501 0902 a101"
        "8501 7508 9501 1500 26ff00"  # ID 1, 8 bits, 0..255
        "a4"  # Push
        "8502 7510 0930 8102"  # ID 2, 16-bit X
        "b4"  # Pop: back to ID 1, 8 bits
        "0931 8102 c0"
    )
    rd = parse(data)
    assert rd.report("input", 2).fields[0].report_size == 16
    y = rd.report("input", 1).fields[0]
    assert (y.report_size, y.usages, y.logical_maximum) == (8, (0x10031,), 255)


def test_usage_page_after_usages_is_applied_like_the_kernel() -> None:
    # Usage (0x04) then Usage Page (Keyboard): the kernel re-pages the trailing usage.
    data = bytes.fromhex("0501 0906 a101 1500 2501 7501 9501 0904 0507 8102 c0")
    rd = parse(data)
    (f,) = rd.report("input", 0).fields
    assert f.usages == (0x70004,)
    assert [x.rule for x in rd.findings] == ["HID003"]
    assert rd.findings[0].offset == 16


def test_extended_usage_keeps_its_own_page() -> None:
    data = bytes.fromhex("0501 0902 a101 0b3800 0c00 1581 257f 7508 9501 8106 c0")
    (f,) = parse(data).report("input", 0).fields
    assert f.usages == (0x000C0038,)


def test_logical_maximum_is_unsigned_when_minimum_is_not_negative() -> None:
    data = bytes.fromhex("0501 0902 a101 0930 1500 26ff00 7508 9501 8102 0931 15ff 25ff 8102 c0")
    f1, f2 = parse(data).report("input", 0).fields
    assert (f1.logical_minimum, f1.logical_maximum) == (0, 255)
    assert (f2.logical_minimum, f2.logical_maximum) == (-1, -1)


def test_unit_exponent_nibble() -> None:
    data = bytes.fromhex("0501 0902 a101 0930 550e 6511 7508 9501 8102 0931 55fe 8102 c0")
    f1, f2 = parse(data).report("input", 0).fields
    assert f1.unit_exponent == -2 and f1.unit == 0x11
    assert f2.unit_exponent == -2  # 1-byte 0xfe read signed


def test_delimiter_keeps_only_the_first_usage_set() -> None:
    data = bytes.fromhex("0501 0902 a101 a901 0930 a900 a901 0931 a900 7508 9501 8102 c0")
    (f,) = parse(data).report("input", 0).fields
    assert f.usages == (0x10030,)


def test_kernel_usage_list_repeats_the_last_usage() -> None:
    data = bytes.fromhex("06 00ff 0901 a101 0901 1500 26ff00 7508 9504 8102 c0")
    (f,) = parse(data).report("input", 0).fields
    assert f.usages == (0xFF000001,)
    assert f.kernel_usages == (0xFF000001,) * 4


@pytest.mark.parametrize(
    "hexdata,rule",
    [
        ("0501 0902 a101 c0 c0", "HID001"),  # End Collection without Collection
        ("0501 0902 a101", "HID001"),  # never closed
        ("0501 0902 a101 0930 2500 1501 7508 9501 8102 c0", "HID006"),  # logical min > max
        ("0501 0902 a101 8500 c0", "HID008"),  # Report ID 0
        ("0501 0902 a101 b4 c0", "HID012"),  # Pop without Push
        ("0501 a4 a4 a4 a4 a4 0902 a101 c0", "HID012"),  # Push beyond 4
        ("0501 0902 a101 76 0101 c0", "HID005"),  # Report Size 257
        ("0501 0902 a101 fe00aa c0", "HID017"),  # long item
        ("0501 0902 a101 c5 01 c0", "HID018"),  # reserved global tag 12
        ("0501 0902 a101 c0 0501 26", "HID019"),  # truncated
        ("0501 0902 a101 c0 a901", "HID014"),  # delimiter left open at the end (a main item would reset it)
    ],
)
def test_what_the_kernel_refuses_is_a_kernel_error(hexdata: str, rule: str) -> None:
    rd = parse(bytes.fromhex(hexdata))
    assert rd.kernel_error is not None and rd.kernel_error.rule == rule, rd.findings
    assert rd.kernel_error.kernel_fatal


def test_report_over_hid_max_buffer_size_is_refused() -> None:
    # 2 x 65535 ... Report Count 12288 x 256 bits = 393216 bits > (16384-1)*8
    data = bytes.fromhex("0501 0902 a101 0930 760001 960030 8102 c0")
    rd = parse(data)
    assert rd.kernel_error is not None and rd.kernel_error.rule == "HID009"


def test_rdesc_parser_and_compare_detect_a_difference() -> None:
    text = (MOUSE.hex(" ") + " \n\n"
            "  INPUT[INPUT]\n    Field(0)\n      Physical(GenericDesktop.Pointer)\n"
            "      Application(GenericDesktop.Mouse)\n      Usage(3)\n        Button.0001\n        Button.0002\n"
            "        Button.0003\n      Logical Minimum(0)\n      Logical Maximum(1)\n      Report Size(1)\n"
            "      Report Count(3)\n      Report Offset(0)\n      Flags( Variable Absolute )\n"
            "    Field(1)\n      Physical(GenericDesktop.Pointer)\n      Application(GenericDesktop.Mouse)\n"
            "      Usage(2)\n        GenericDesktop.X\n        GenericDesktop.Y\n      Logical Minimum(-127)\n"
            "      Logical Maximum(127)\n      Report Size(8)\n      Report Count(2)\n      Report Offset(8)\n"
            "      Flags( Variable Relative )\n\nButton.0001 ---> Key.LeftBtn\n")
    dump = parse_rdesc(text)
    assert [(r.type, r.id, len(r.fields)) for r in dump.reports] == [("input", 0, 2)]
    rd = parse(MOUSE)
    assert compare(rd, dump) == []
    bad = parse_rdesc(text.replace("Report Offset(8)", "Report Offset(16)"))
    assert compare(rd, bad) == ["input report 0 field 1 (item at offset 46): bit offset dkproto 8 kernel 16"]


def test_kernel_name_helpers() -> None:
    assert kernel_usage_value("GenericDesktop.X") == 0x10030
    assert kernel_usage_value("Digitizers.ContactID") == 0xD0051
    assert kernel_usage_value("ff00.0001") == 0xFF000001
    assert kernel_usage_value("Vendor-specific-FF.0093") == 0xFFFF0093
    # names of drivers/hid/hid-debug.c that the HUT spells differently
    assert kernel_usage_value("PhysicalInterfaceDevice.DC_Device_Reset") == 0x0F009A
    assert kernel_usage_value("Battery System.SMBBatteryMode") == 0x850001
    assert kernel_usage_value("Sensor.MotionAccelerometer3D") == 0x200073
    assert kernel_usage_value("PhysicalInterfaceDevice.Set_Effect_Report") == 0x0F0021  # matched by name
    assert kernel_flags(0x02) == ["Variable", "Absolute"]
    assert kernel_flags(0x43) == ["Constant", "Variable", "Absolute", "NullState"]
    assert kernel_unit(0xD121) == "SI Linear : Centimeter^2*Gram*Seconds^-3"


def test_kernel_drops_fields_past_256_but_counts_their_bits() -> None:
    data = bytes.fromhex("0501 0902 a101 1500 2501 7501 9501" + " 0930 8102" * 257 + " c0")
    rd = parse(data)
    r = rd.report("input", 0)
    assert len(r.fields) == 257 and r.size_bits == 257
    assert len(rd.kernel_fields()) == 256 and r.fields[-1].kernel_dropped
    assert [f.rule for f in rd.findings] == ["HID010"]


def test_inverted_usage_range_wraps_like_the_kernel() -> None:
    # Usage Minimum 5, Usage Maximum 3: the kernel's unsigned count wraps, it clips to 12288
    # usages from 5 (checked against Linux 6.1 in tests/lab/test_hid.py).
    (f,) = parse(bytes.fromhex("0509 0902 a101 1905 2903 1500 2501 7501 9503 8102 c0")).report("input", 0).fields
    assert len(f.usages) == 12288 and f.usages[0] == 0x90005 and f.usages[-1] == 0x90000 + 12292
