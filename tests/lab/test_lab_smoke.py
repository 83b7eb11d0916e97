"""The lab itself: the VM has a USB bus, QEMU devices enumerate, gadgets bind, unplug and replug."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab


def _ids() -> list[str]:
    out = []
    for dev in Path("/sys/bus/usb/devices").iterdir():
        if (dev / "idVendor").exists():
            out.append(f"{(dev / 'idVendor').read_text().strip()}:{(dev / 'idProduct').read_text().strip()}")
    return out


def test_inside_the_vm() -> None:
    assert os.environ["DKPROTO_LAB"] == "1"
    assert Path("/sys/class/udc").is_dir(), "dummy_hcd is not loaded"


def test_qemu_devices_enumerated(lab_session_items: list[str]) -> None:
    assert "qemu-usb-kbd" in lab_session_items
    assert _ids().count("0627:0001") >= 3


def test_gadget_binds_and_unplugs(lab_gadget) -> None:
    g = lab_gadget("hid-keyboard")
    assert "1d6b:0104" in _ids()
    assert g.host_nodes("hidraw"), "no hidraw node on the host side"
    g.unplug()
    assert "1d6b:0104" not in _ids()
    g.replug()
    assert "1d6b:0104" in _ids()
