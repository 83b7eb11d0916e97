"""Captured descriptor sets as live devices (USB/IP over loopback in the VM): the kernel
enumerates each one, ``dkproto dump`` agrees with ``lsusb -v`` field by field, and lsusb's
output is the corpus oracle's (which was made the same way), apart from bus and device numbers.

Run with ``python -m pytest --lab tests/lab/test_lab_captures.py``.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted((ROOT / "descriptors").glob("*.json"))
ORACLE = Path("/work/shared/corpus/oracle/usb")
if not ORACLE.is_dir():
    ORACLE = ROOT.parent / "shared" / "corpus" / "oracle" / "usb"


def _lsusb(bus: int, address: int) -> str:
    res = subprocess.run(["lsusb", "-v", "-s", f"{bus}:{address}"], capture_output=True, text=True, timeout=60)
    return res.stdout


def _body(text: str) -> list[str]:
    """lsusb -v without its first line (bus and device numbers differ) and blank lines."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[1:]


@pytest.mark.parametrize("path", CAPTURES, ids=[p.stem for p in CAPTURES])
def test_capture_is_a_live_device_and_dump_agrees_with_lsusb(lab_capture: Any, path: Path) -> None:
    from dkproto.usb.lsusb import compare_with_lsusb
    from dkproto.usb.sources import find_devices, read_device

    live = lab_capture(str(path))
    text = _lsusb(live.bus, live.address)
    assert "Configuration Descriptor:" in text
    (found,) = find_devices(bus=live.bus, address=live.address)
    ds = read_device(found)
    assert compare_with_lsusb(ds, text) == []
    oracle = ORACLE / f"{path.stem}.lsusb"
    if oracle.exists():
        assert _body(text) == _body(oracle.read_text())
    # standard requests were served from the capture; class/vendor ones stalled
    assert any(setup[1] == 0x06 for setup, status in live.server.requests)


def test_capture_definitions_bind_their_class_drivers(lab_capture: Any) -> None:
    for name, driver in (("capture-uac2", "snd-usb-audio"), ("capture-uvc", "uvcvideo")):
        live = lab_capture(name)
        deadline = time.monotonic() + 10
        drivers: set[str] = set()
        while time.monotonic() < deadline and driver not in drivers:
            drivers = {(p / "driver").resolve().name for p in live.sysfs.iterdir()
                       if p.name.startswith(live.sysfs.name + ":") and (p / "driver").exists()}
            time.sleep(0.1)
        assert driver in drivers, f"{name}: interface drivers {drivers}"
