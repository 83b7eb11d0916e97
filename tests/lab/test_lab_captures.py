"""Captured descriptor sets as live devices (USB/IP over loopback in the VM): the kernel
enumerates each one, dkproto reads it through libusb exactly as captured (every configuration
and the BOS, byte for byte), its dump agrees with ``lsusb -v`` field by field, and lsusb's
output is the corpus oracle's (which was made the same way), apart from bus and device numbers.
One attach per capture serves all of these checks (attaching costs about a second under TCG).

Run with ``python -m pytest --lab tests/lab/test_lab_captures.py``.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from corpus_path import oracle_path

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted((ROOT / "descriptors").glob("*.json"))


# Where this lab's lsusb output differs from the oracle for reasons outside the served bytes:
# slug -> (why, a predicate every differing line must satisfy).
KNOWN_ORACLE_DIFFERENCES: dict[str, tuple[str, Any]] = {
    "canyon-cne-cwc2-webcam": (
        ("the oracle's lsusb read a UVC 1.1 bmVideoStandards byte past this UVC 1.0 Processing Unit "
         "descriptor; lsusb 014 here prints 0x00"),
        lambda line: "bmVideoStandards" in line or line.strip(" +-").split(" ")[0] in ("None", "NTSC", "PAL", "SECAM"),
    ),
    "trust-webcam-sonix": (
        "as canyon-cne-cwc2-webcam: bmVideoStandards past a UVC 1.0 Processing Unit descriptor",
        lambda line: "bmVideoStandards" in line or line.strip(" +-").split(" ")[0] in ("None", "NTSC", "PAL", "SECAM"),
    ),
    "logitech-streamcam-superspeed": (
        "the capture has a BOS; this server serves it (GET_DESCRIPTOR(BOS)), the oracle's did not",
        lambda line: line.startswith("+"),
    ),
}


def _lsusb(bus: int, address: int) -> tuple[str, str]:
    res = subprocess.run(["lsusb", "-v", "-s", f"{bus}:{address}"], capture_output=True, text=True, timeout=60, check=False)
    return res.stdout, res.stderr


def _body(text: str) -> list[str]:
    """lsusb -v without its first line (bus and device numbers differ) and blank lines."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[1:]


def _oracle_differences(slug: str, stdout: str, stderr: str, oracle: str) -> list[str]:
    """Lines that differ from the oracle (made with stdout and stderr together), known ones removed."""
    err = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    theirs = [line for line in _body(oracle) if line not in err]
    missing_err = [line for line in err if line not in oracle]
    diff = [line for line in difflib.unified_diff(theirs, _body(stdout), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    known = KNOWN_ORACLE_DIFFERENCES.get(slug)
    if known is not None:
        diff = [line for line in diff if not known[1](line)]
    return missing_err + diff


@pytest.mark.parametrize("path", CAPTURES, ids=[p.stem for p in CAPTURES])
def test_capture_is_a_live_device_and_dump_agrees_with_lsusb(lab_capture: Any, path: Path) -> None:
    from dkproto.transport.usb import find_devices
    from dkproto.usb.lsusb import compare_with_lsusb
    from dkproto.usb.read import read_device

    item = json.loads(path.read_text())
    data = bytes.fromhex(item["descriptors_hex"])
    bos = bytes.fromhex(item.get("bos_descriptor_hex") or "")
    live = lab_capture(str(path))
    text, err = _lsusb(live.bus, live.address)
    assert "Configuration Descriptor:" in text
    (found,) = find_devices(bus=live.bus, address=live.address)
    ds = read_device(found)
    assert ds.meta["read_from"] == "libusb"
    assert ds.to_bytes() == data  # every configuration, byte for byte, through the real stack
    if ds.device["bcdUSB"] >= 0x0201:
        assert ds.bos_bytes() == bos
    assert [str(e) for e in ds.errors] == []
    assert compare_with_lsusb(ds, text) == []
    oracle = oracle_path(path, "usb", "lsusb")
    if oracle.exists():  # the corpus oracle: lsusb -v of the same bytes served the same way
        assert _oracle_differences(path.stem, text, err, oracle.read_text()) == []
    # standard requests were served from the capture; class/vendor ones stalled
    assert any(setup[1] == 0x06 for setup, status in live.server.requests)


def test_capture_definitions_bind_their_class_drivers(lab_capture: Any) -> None:
    for name, driver in (("capture-uac2", "snd-usb-audio"), ("capture-uvc", "uvcvideo")):
        live = lab_capture(name)
        deadline = time.monotonic() + 20
        drivers: set[str] = set()
        while time.monotonic() < deadline and driver not in drivers:
            drivers = {(p / "driver").resolve().name for p in live.sysfs.iterdir()
                       if p.name.startswith(live.sysfs.name + ":") and (p / "driver").exists()}
            time.sleep(0.1)
        assert driver in drivers, f"{name}: interface drivers {drivers}"
