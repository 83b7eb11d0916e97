"""Test helpers for dkproto.capture: contract-format sessions written by hand, and tshark's view of a file."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HEADER = {"format": "dkproto-session", "version": 1, "created": "2026-12-03T13:45:00Z", "dkproto": "0.1.0",
          "argv": ["test"], "clock": "monotonic"}

DEVICE_DESCRIPTOR = "12010002000000408d1d01010001010203" + "01"
#: A HID interface 0 with interrupt IN 0x81 and interrupt OUT 0x02 (bInterval 10).
CONFIG_DESCRIPTOR = ("09022900010100a032" "090400000203010100" "092111010001224100"
                     "0705810308000a" "0705020308000a")


def write_session(path: Path, events: list[dict[str, Any]], header: dict[str, Any] | None = None) -> Path:
    """A session file of contract-format event lines (``seq`` filled in, ``status`` success unless given)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(header or HEADER, separators=(",", ":")) + "\n")
        for i, e in enumerate(events):
            line = {"seq": i, "t": e.pop("t"), "dt": e.pop("dt", 0.0002), "dev": e.pop("dev", 0), "op": e.pop("op")}
            status = e.pop("status", "kIOReturnSuccess")
            error = e.pop("error", None)
            line.update(e)
            line["status"] = status
            if error is not None:
                line["error"] = error
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    return path


def usb_open(url: str = "usb://1d8d:0101", bus: int | None = 3, address: int | None = 7, scheme: str = "usb",
             t: float = 0.0, dev: int = 0, **info: Any) -> dict[str, Any]:
    i: dict[str, Any] = {"url": url, "scheme": scheme, **info}
    if bus is not None:
        i["bus"], i["address"] = bus, address
    return {"t": t, "dt": 0.001, "dev": dev, "op": "open", "url": url, "scheme": scheme, "info": i}


def fixture_events() -> list[dict[str, Any]]:
    """A usb:// device: descriptors, SET_CONFIGURATION, vendor OUT/IN, a STALL, interrupt I/O, a timeout,
    two asynchronous reads (one aborted), a GET_REPORT and the report descriptor."""
    return [
        usb_open(),
        {"t": 0.010, "op": "control", "bmRequestType": 0x80, "bRequest": 6, "wValue": 0x0100, "wIndex": 0,
         "wLength": 18, "in": DEVICE_DESCRIPTOR, "length": 18},
        {"t": 0.020, "op": "control", "bmRequestType": 0x80, "bRequest": 6, "wValue": 0x0200, "wIndex": 0,
         "wLength": 255, "in": CONFIG_DESCRIPTOR, "length": len(CONFIG_DESCRIPTOR) // 2},
        {"t": 0.030, "op": "set_configuration", "bConfigurationValue": 1},
        {"t": 0.040, "op": "control", "bmRequestType": 0x40, "bRequest": 1, "wValue": 2, "wIndex": 3, "wLength": 3,
         "out": "aabbcc", "length": 3},
        {"t": 0.050, "op": "control", "bmRequestType": 0xC0, "bRequest": 2, "wValue": 0, "wIndex": 0, "wLength": 4,
         "status": "kUSBHostReturnPipeStalled", "error": "vendor request 0x02 stalled"},
        {"t": 0.060, "dt": 0.01, "op": "read", "endpoint": 0x81, "length": 8, "timeout": 100,
         "data": "0000040000000000"},
        {"t": 0.080, "dt": 0.001, "op": "write", "endpoint": 0x02, "data": "01", "timeout": 100, "length": 1},
        {"t": 0.090, "dt": 0.1, "op": "read", "endpoint": 0x81, "length": 8, "timeout": 100,
         "status": "kIOReturnTimeout", "error": "read timed out"},
        {"t": 0.200, "dt": 0.0, "op": "submit", "id": 1, "endpoint": 0x81, "length": 8, "timeout": 0},
        {"t": 0.210, "dt": 0.0, "op": "submit", "id": 2, "endpoint": 0x81, "length": 8, "timeout": 0},
        {"t": 0.250, "dt": 0.0, "op": "complete", "id": 1, "endpoint": 0x81, "actual_length": 2, "data": "0102"},
        {"t": 0.260, "dt": 0.0, "op": "complete", "id": 2, "endpoint": 0x81, "actual_length": 0, "data": "",
         "status": "kIOReturnAborted", "error": "aborted"},
        {"t": 0.300, "dt": 0.001, "op": "get_report", "report_type": 2, "report_id": 3, "length": 2, "data": "0a0b"},
        {"t": 0.310, "dt": 0.001, "op": "report_descriptor", "interface": 0, "data": "05010906a101c0"},
        {"t": 0.320, "op": "control", "bmRequestType": 0x40, "bRequest": 9, "wValue": 0, "wIndex": 0,
         "wLength": 0, "out": "", "status": "kIOReturnBadArgument", "error": "refused before the bus"},
        {"t": 0.400, "dt": 0.0, "op": "close"},
    ]


# ------------------------------------------------------------------------------------ tshark
FIELDS = ["usb.urb_id", "usb.urb_type", "usb.transfer_type", "usb.endpoint_address", "usb.device_address",
          "usb.bus_id", "usb.bmRequestType", "usb.setup.bRequest", "usb.setup.wValue", "usb.setup.wIndex",
          "usb.setup.wLength", "usb.urb_len", "usb.data_len", "usb.urb_status", "usb.bDescriptorType",
          "usb.idVendor", "usb.idProduct"]


def tshark() -> str:
    """The tshark binary; the test FAILS (not skips) without it: CI installs Debian's ``tshark`` package."""
    found = shutil.which("tshark") or ("/usr/bin/tshark" if Path("/usr/bin/tshark").exists() else None)
    if found is None:
        pytest.fail("tshark is not installed: these tests check dkproto's captures with Wireshark's dissector "
                    "(Debian/Ubuntu: apt-get install tshark)")
    return found


def tshark_rows(path: Path) -> list[dict[str, str]]:
    """One dict per packet: the usb.* fields tshark dissects (empty string when absent)."""
    out = subprocess.run([tshark(), "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t",
                          *[a for f in FIELDS for a in ("-e", f)]],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    rows = []
    for line in out.stdout.splitlines():
        values = line.split("\t")
        rows.append(dict(zip(FIELDS, values + [""] * (len(FIELDS) - len(values)))))
    return rows


def tshark_raw(path: Path) -> list[bytes]:
    """Each packet's bytes as tshark read them."""
    out = subprocess.run([tshark(), "-n", "-r", str(path), "-T", "json", "-x"], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return [bytes.fromhex(p["_source"]["layers"]["frame_raw"][0]) for p in json.loads(out.stdout or "[]")]


def tshark_malformed(path: Path) -> str:
    """tshark's expert lines about malformed packets (empty when there is none)."""
    out = subprocess.run([tshark(), "-n", "-r", str(path), "-z", "expert,error"], capture_output=True, text=True,
                         timeout=120, check=False)
    return "\n".join(line for line in out.stdout.splitlines() if "Malformed" in line)
