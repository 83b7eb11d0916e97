"""Every corpus capture served as a live device (USB/IP in the lab VM): ``dkproto`` reads it
through libusb exactly as captured and agrees with ``lsusb -v`` of the same device.

Run with ``python -m pytest --lab tests/lab/test_usb_captures_lab.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from usb_corpus import SLUGS, corpus_bytes, set_path

from dkproto.transport.usb import find_devices
from dkproto.usb.lsusb import compare_with_lsusb
from dkproto.usb.read import read_device

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("slug", SLUGS)
def test_capture_served_live_reads_back_and_agrees_with_lsusb(slug: str) -> None:
    from dkproto.lab.usbip import serve_capture

    data, bos = corpus_bytes(slug)
    with serve_capture(set_path(slug)) as live:
        (dev,) = find_devices(bus=live.bus, address=live.address)
        ds = read_device(dev)
        truth = subprocess.run(["lsusb", "-v", "-s", f"{live.bus}:{live.address}"], capture_output=True,
                               text=True, timeout=60, check=False).stdout
    assert ds.meta["read_from"] == "libusb"
    assert ds.to_bytes() == data  # every configuration, byte for byte, through the real stack
    if ds.device["bcdUSB"] >= 0x0201:
        assert ds.bos_bytes() == bos
    assert [str(e) for e in ds.errors] == []
    assert truth, "lsusb -v printed nothing"
    assert compare_with_lsusb(ds, truth) == []
