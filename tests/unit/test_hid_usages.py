"""Usage names from the HID Usage Tables JSON shipped as package data."""

from __future__ import annotations

import pytest

from dkproto.errors import NotFoundError
from dkproto.hid.usages import find_page, lookup_usage, page_name, pages, usage_full_name, usage_name


def test_names() -> None:
    assert page_name(1) == "Generic Desktop"
    assert usage_name(0x10030) == "X"
    assert usage_full_name(0x10002) == "Generic Desktop / Mouse"
    assert usage_name(0x90007) == "Button 7"  # generated
    assert usage_name(0xA0003) == "Instance 3"  # Ordinal page, generated
    assert page_name(0xFF00) == "Vendor-defined 0xFF00"
    assert usage_name(0xFF000001) == "Vendor 0xff00:0x0001"
    assert usage_name(0x0001FFFF).startswith("Generic Desktop 0x")  # unassigned ID on a known page
    assert usage_name(0x12340001) == "0x1234:0x0001"


def test_lookup_round_trip() -> None:
    assert lookup_usage("X", page=1) == 0x10030
    assert lookup_usage("Generic Desktop / Y") == 0x10031
    assert lookup_usage("button 12") == 0x9000C
    assert lookup_usage("0x10030") == 0x10030
    assert find_page("digitizers") == 0x0D and find_page("0x0c") == 0x0C
    with pytest.raises(NotFoundError):
        lookup_usage("No Such Usage Name")
    with pytest.raises(NotFoundError):
        find_page("nonsense page")


def test_tables_are_complete_enough() -> None:
    ps = pages()
    assert len(ps) >= 30
    gd = next(p for p in ps if p.id == 1)
    assert len(gd.usages) > 100
