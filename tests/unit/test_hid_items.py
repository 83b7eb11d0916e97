"""Short and long items, offsets, truncation, units and flags."""

from __future__ import annotations

import pytest

from dkproto.errors import DecodeError
from dkproto.hid.items import ItemType, flag_names, iter_items, parse_items, unit_exponents, unit_text


def test_short_items_with_offsets_and_sizes() -> None:
    data = bytes.fromhex(
        "0501"  # 0 Usage Page (Generic Desktop)
        "0902"  # 2 Usage (Mouse)
        "a101"  # 4 Collection (Application)
        "1601f8"  # 6 Logical Minimum (-2047)
        "27ffff0000"  # 9 Logical Maximum (65535), 4 bytes
        "c0"  # 14 End Collection
    )
    items = list(iter_items(data))
    assert [i.offset for i in items] == [0, 2, 4, 6, 9, 14]
    assert [i.size for i in items] == [1, 1, 1, 2, 4, 0]
    assert items[3].sdata == -2047 and items[3].udata == 0xF801
    assert items[4].udata == 65535
    assert items[0].name == "Usage Page" and items[0].type == ItemType.GLOBAL
    assert items[5].name == "End Collection"


def test_long_item_and_any_f_tag_prefix_is_long() -> None:
    # 0xFE long item with 2 data bytes, then a 0xF4 prefix (the kernel also reads it as long).
    data = bytes.fromhex("fe02aa0102" "f401bb09")
    items = list(iter_items(data))
    assert [(i.type, i.tag, i.data, i.offset) for i in items] == [
        (ItemType.LONG, 0xAA, b"\x01\x02", 0),
        (ItemType.LONG, 0xBB, b"\x09", 5),
    ]


@pytest.mark.parametrize(
    "data,offset",
    [(bytes.fromhex("0501" "26ff"), 2), (bytes.fromhex("0501" "27ff00"), 2), (bytes.fromhex("fe05aa0102"), 0),
     (bytes.fromhex("0501fe"), 2)],
)
def test_truncated_item_is_an_error_at_its_offset(data: bytes, offset: int) -> None:
    with pytest.raises(DecodeError) as ei:
        list(iter_items(data))
    assert ei.value.offset == offset
    items, err = parse_items(data)
    assert err is not None and err.offset == offset
    assert [i.offset for i in items] == [0] if offset == 2 else items == []


def test_reserved_tags_are_named_as_such() -> None:
    (main0,) = iter_items(b"\x00")
    assert main0.is_reserved and "Reserved Main" in main0.name
    (glob_c,) = iter_items(b"\xc5\x01")
    assert glob_c.is_reserved
    (res,) = iter_items(b"\x0c")
    assert res.type == ItemType.RESERVED and res.is_reserved


def test_units_decode_to_system_and_exponents() -> None:
    assert unit_exponents(0x11) == ("SI Linear", {"Centimeter": 1})
    assert unit_exponents(0x14) == ("English Rotation", {"Degrees": 1})
    # g*cm^2*s^-3 (watts in SI units), as on the UPS in the corpus
    assert unit_exponents(0xD121) == ("SI Linear", {"Centimeter": 2, "Gram": 1, "Seconds": -3})
    assert unit_exponents(0x1001) == ("SI Linear", {"Seconds": 1})
    assert unit_exponents(0xF) == ("Vendor", {})
    assert unit_text(0x11, -2) == "1e-2 cm"
    assert unit_text(0) == ""


def test_flag_names() -> None:
    assert flag_names(0x02)[:3] == ["Data", "Variable", "Absolute"]
    assert flag_names(0x1FF) == ["Constant", "Variable", "Relative", "Wrap", "Non Linear",
                                 "No Preferred State", "Null State", "Volatile", "Buffered Bytes"]
