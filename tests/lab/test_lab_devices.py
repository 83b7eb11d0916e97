"""Every lab device on the real bus: it enumerates, dkproto lists it, and ``dkproto dump`` agrees
with ``lsusb -v`` field by field; plus the device-side controls (HID reports, serial line,
unplug, FunctionFS faults) seen from the host side through the kernel's own nodes.

Run with ``python -m pytest --lab tests/lab/test_lab_devices.py``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dkproto.lab.devices import load_definitions

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
_DEFS = load_definitions([ROOT / "devices" / "lab"])
GADGETS = sorted(n for n, d in _DEFS.items() if d.kind == "gadget")
QEMU = sorted(n for n, d in _DEFS.items() if d.kind == "qemu")


def _lsusb(bus: int, address: int) -> str:
    for _ in range(3):
        res = subprocess.run(["lsusb", "-v", "-s", f"{bus}:{address}"], capture_output=True, text=True, timeout=60, check=False)
        if "Configuration Descriptor:" in res.stdout:
            return res.stdout
        time.sleep(0.5)  # seen once right after a re-enumeration: lsusb printed no configuration
    sysfs = [d for d in Path("/sys/bus/usb/devices").iterdir()
             if (d / "busnum").exists() and (d / "devnum").exists()
             and (int((d / "busnum").read_text()), int((d / "devnum").read_text())) == (bus, address)]
    raw = (sysfs[0] / "descriptors").read_bytes().hex() if sysfs else "(no sysfs device)"
    raise AssertionError(f"lsusb -v -s {bus}:{address} printed no configuration:\n{res.stdout}\n"
                         f"stderr: {res.stderr}\nsysfs descriptors: {raw}")


def _dump_vs_lsusb(bus: int, address: int) -> list[str]:
    from dkproto.transport import open_transport
    from dkproto.transport.usb import find_devices
    from dkproto.usb.lsusb import compare_with_lsusb
    from dkproto.usb.read import read_descriptor_set

    found = find_devices(bus=bus, address=address)  # libusb's device list: nothing is opened
    assert len(found) == 1, f"dkproto finds {len(found)} devices at {bus}:{address}"
    (info,) = found
    # one pytest process runs every lab test: the transport's close leaves no usbfs handle open
    with open_transport(info.url) as t:
        ds = read_descriptor_set(t, meta={"bus": info.bus, "address": info.address})
    assert not t.is_open
    assert not ds.errors, ds.errors
    return compare_with_lsusb(ds, _lsusb(bus, address))


def _dispose(handle: Any) -> None:
    """Release a pyusb device the test opened itself (host side without dkproto's transport)."""
    import usb.util

    usb.util.dispose_resources(handle)


def _list_ids() -> str:
    # a separate process, as a user runs it (and its usbfs handles close with it)
    res = subprocess.run([sys.executable, "-m", "dkproto", "list"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _list_ids_in_process() -> str:
    """``dkproto list`` run by click in this process: the same command on the same bus, without
    the 2-4 s a Python start-up costs under TCG (test_list_shows_the_qemu_devices runs it as a
    separate process)."""
    from click.testing import CliRunner

    from dkproto.cli import cli

    res = CliRunner().invoke(cli, ["list"], obj={})
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.parametrize("name", GADGETS)
def test_gadget_enumerates_and_dump_agrees_with_lsusb(lab_gadget: Any, name: str) -> None:
    g = lab_gadget(name)
    assert g.state() == "configured"
    vid_pid = _DEFS[name].expect[0]
    assert vid_pid in _list_ids_in_process(), f"dkproto list does not show {vid_pid}"
    bus, address = g.host_address()
    assert _dump_vs_lsusb(bus, address) == []


@pytest.mark.parametrize("name", QEMU)
def test_qemu_device_dump_agrees_with_lsusb(lab_session_items: list[str], name: str) -> None:
    assert name in lab_session_items
    vid, pid = (int(x, 16) for x in _DEFS[name].expect[0].split(":"))
    from dkproto.transport.usb import find_devices

    found = find_devices(vid=vid, pid=pid)
    assert found, f"{name} ({vid:04x}:{pid:04x}) is not on the bus"
    for live in found:
        assert _dump_vs_lsusb(live.bus, live.address) == []


def test_list_shows_the_qemu_devices(lab_session_items: list[str]) -> None:
    out = _list_ids()
    assert out.count("0627:0001") >= 3
    assert "46f4:0001" in out and "0403:6001" in out


# -------------------------------------------------------------------------------- HID gadget

def test_hid_input_report_reaches_hidraw(lab_gadget: Any) -> None:
    g = lab_gadget("hid-keyboard")
    (node,) = g.host_nodes("hidraw")
    fd = os.open(node, os.O_RDWR | os.O_NONBLOCK)
    try:
        report = bytes([0x02, 0, 0x04, 0x05, 0, 0, 0, 0])
        g.send_report(report)
        r, _, _ = select.select([fd], [], [], 3)
        assert r, "no input report on hidraw"
        assert os.read(fd, 64) == report
        # output report (LEDs) host -> device, through the interrupt OUT endpoint. The kernel's
        # keyboard driver already sent one (all LEDs off) when it bound: drain it first.
        assert g.drain_reports() == [b"\x00"]
        os.write(fd, bytes([0x00, 0x05]))  # report ID 0 (none) + LED bits
        assert g.read_report(timeout=3) == bytes([0x05])
    finally:
        os.close(fd)


def _hidioc(nr: int, length: int) -> int:
    return (3 << 30) | (length << 16) | (ord("H") << 8) | nr  # _IOC(READ|WRITE, 'H', nr, len)


def test_ffs_hid_feature_reports_both_ways(lab_gadget: Any) -> None:
    g = lab_gadget("ffs-hid")
    dev = g.ffs()
    dev.hid.features[0] = bytes(range(1, 9))
    (node,) = g.host_nodes("hidraw")
    fd = os.open(node, os.O_RDWR)
    try:
        buf = bytearray(9)
        fcntl.ioctl(fd, _hidioc(0x07, 9), buf)  # HIDIOCGFEATURE: GET_REPORT(Feature)
        assert bytes(buf) == b"\x00" + bytes(range(1, 9))
        fcntl.ioctl(fd, _hidioc(0x06, 9), bytearray(b"\x00" + bytes(range(10, 18))))  # HIDIOCSFEATURE
        # f_fs completes an OUT control transfer when its data arrives, before the handler runs
        deadline = time.monotonic() + 2
        while dev.hid.features[0] != bytes(range(10, 18)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dev.hid.features[0] == bytes(range(10, 18))
        os.write(fd, b"\x00OUTPUT!!")
        assert dev.read_output(3) == b"OUTPUT!!"
        dev.send_input(b"INPUT...")
        r, _, _ = select.select([fd], [], [], 3)
        assert r and os.read(fd, 64) == b"INPUT..."
    finally:
        os.close(fd)


def test_hid_gadgets_expose_their_report_descriptor(lab_gadget: Any) -> None:
    """hidraw reads back exactly the corpus report descriptor each gadget was given."""
    for name in ("hid-mouse", "hid-gamepad"):
        g = lab_gadget(name)
        want = bytes.fromhex(_DEFS[name].spec["functions"]["hid.0"]["attrs"]["report_desc"]["hex"])
        dev = g.host_sysfs()
        (rdesc,) = list(dev.glob("*:*/*/report_descriptor"))
        assert rdesc.read_bytes() == want
        g.unplug()


# ------------------------------------------------------------------------------------ serial

def test_acm_serial_both_ways_and_baud_rate(lab_gadget: Any) -> None:
    import termios

    import serial

    g = lab_gadget("cdc-acm")
    (host_tty,) = g.host_nodes("tty")
    with serial.Serial(host_tty, 115200, timeout=3) as host, g.serial(timeout=3) as device:
        device.write(b"device to host\n")
        assert host.readline() == b"device to host\n"
        host.write(b"host to device\n")
        assert device.readline() == b"host to device\n"
        host.baudrate = 9600
        time.sleep(0.2)
        ispeed = termios.tcgetattr(device.fileno())[4]
        assert ispeed == termios.B9600, f"gadget side sees speed constant {ispeed}"


def test_qemu_usb_serial_writes_reach_the_chardev(lab_session_items: list[str]) -> None:
    import serial

    assert "qemu-usb-serial" in lab_session_items
    ttys = sorted(Path("/dev").glob("ttyUSB*"))
    assert ttys, "ftdi_sio gave no /dev/ttyUSB*"
    with serial.Serial(str(ttys[0]), 115200, timeout=2) as port:
        port.write(b"qemu usb-serial says hi\n")
        port.flush()
    out = Path(os.environ["DKPROTO_LAB_RESULTS"]) / "usb-serial.out"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and b"says hi" not in out.read_bytes():
        time.sleep(0.1)
    assert b"qemu usb-serial says hi\n" in out.read_bytes()


# ---------------------------------------------------------------------------- unplug, storage

def test_unplug_replug_renumbers_and_nodes_come_back(lab_gadget: Any) -> None:
    g = lab_gadget("composite-iad")
    first = g.host_address()
    assert g.host_nodes("hidraw") and g.host_nodes("tty")
    g.unplug()
    assert g.host_sysfs(optional=True) is None
    g.replug()
    assert g.host_address()[1] != first[1], "a replugged device gets a new address"
    assert g.host_nodes("hidraw") and g.host_nodes("tty")


def test_composite_has_an_iad_grouping_acm(lab_gadget: Any) -> None:
    g = lab_gadget("composite-iad")
    bus, address = g.host_address()
    text = _lsusb(bus, address)
    assert "Interface Association:" in text
    iad = text[text.index("Interface Association:"):]
    assert re.search(r"bFirstInterface\s+0\n\s+bInterfaceCount\s+2\n\s+bFunctionClass\s+2 ", iad), iad[:400]


def test_mass_storage_gadget_is_a_disk(lab_gadget: Any) -> None:
    g = lab_gadget("mass-storage")
    deadline = time.monotonic() + 15  # usb-storage waits before scanning
    while time.monotonic() < deadline and not g.host_nodes("block"):
        time.sleep(0.2)
    disks = [n for n in g.host_nodes("block") if n[-1].isalpha()]
    assert disks, "no /dev/sdX for the mass-storage gadget"
    size = int(Path(f"/sys/class/block/{Path(disks[0]).name}/size").read_text())
    assert size * 512 == 16 * 1024 * 1024


# ------------------------------------------------------------------------- FunctionFS framework

def test_ffs_unhandled_request_stalls_and_suggests_a_handler(lab_gadget: Any, caplog: Any) -> None:
    import usb.core

    g = lab_gadget("ffs-vendor")
    dev_side = g.ffs()
    bus, address = g.host_address()
    import libusb_package

    host = libusb_package.find(bus=bus, address=address)
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(usb.core.USBError) as exc:
            host.ctrl_transfer(0xC0, 0x42, 7, 0, 4, timeout=2000)
        assert exc.value.errno == 32  # EPIPE: stalled
        assert dev_side.unhandled and dev_side.unhandled[-1].bRequest == 0x42
        assert "@control_request(type='vendor', recipient='device', number=0x42, direction='in')" in caplog.text
        assert bytes(host.ctrl_transfer(0xC0, 0x01, 0, 0, 2)) == b"\x00\x01"  # ep0 recovered
    finally:
        _dispose(host)


def test_ffs_bulk_echo_interrupt_and_faults(lab_gadget: Any) -> None:
    import libusb_package
    import usb.core
    import usb.util

    g = lab_gadget("ffs-vendor")
    dev_side = g.ffs()
    bus, address = g.host_address()
    host = libusb_package.find(bus=bus, address=address)
    try:
        assert dev_side.host_address(0x81) == 0x81 and dev_side.host_address(0x02) == 0x02
        host.write(0x02, b"x" * 1000)
        assert bytes(host.read(0x81, 4096, 2000)) == b"x" * 1000
        dev_side.notify(b"\x01" * 8)
        assert bytes(host.read(0x85, 8, 2000)) == b"\x01" * 8
        dev_side.stall(0x81)
        with pytest.raises(usb.core.USBError) as exc:
            host.read(0x81, 64, 1000)
        assert exc.value.errno == 32
        host.clear_halt(0x81)
        host.write(0x02, b"after clear")
        assert bytes(host.read(0x81, 64, 2000)) == b"after clear"
        dev_side.drop(request=0x01, hold=1.0)
        t0 = time.monotonic()
        with pytest.raises(usb.core.USBError) as exc:
            host.ctrl_transfer(0xC0, 0x01, 0, 0, 2, timeout=400)
        assert exc.value.errno == 110 and time.monotonic() - t0 < 2  # ETIMEDOUT, not a stall
        time.sleep(0.7)
        dev_side.delay(0.5, request=0x01)
        t0 = time.monotonic()
        assert bytes(host.ctrl_transfer(0xC0, 0x01, 0, 0, 2, timeout=3000)) == b"\x00\x01"
        assert time.monotonic() - t0 >= 0.5
        dev_side.drop(endpoint=0x02)
        host.write(0x02, b"lost")
        host.write(0x02, b"kept")
        assert bytes(host.read(0x81, 64, 2000)) == b"kept"
    finally:
        usb.util.dispose_resources(host)


# ------------------------------------------------------------------------------- bulk loopback

def test_loopback_bulk_round_trip_and_unplug_mid_transfer(lab_gadget: Any) -> None:
    import threading

    import libusb_package
    import usb.core
    import usb.util

    g = lab_gadget("loopback")
    bus, address = g.host_address()
    dev = libusb_package.find(bus=bus, address=address)
    payload = os.urandom(4096)
    try:
        assert dev.write(0x02, payload, 2000) == 4096
        assert bytes(dev.read(0x81, 4096, 2000)) == payload
        outcome: dict[str, Any] = {}

        def pending_read() -> None:
            t0 = time.monotonic()
            try:
                outcome["data"] = dev.read(0x81, 4096, 8000)
            except usb.core.USBError as exc:
                outcome["error"] = exc
            outcome["seconds"] = time.monotonic() - t0

        reader = threading.Thread(target=pending_read)
        reader.start()
        time.sleep(0.5)  # the read is now pending on the bus
        g.unplug()
        reader.join(10)
        assert "error" in outcome, outcome
        assert outcome["seconds"] < 5, "the pending read should end at the unplug, not at its timeout"
        assert outcome["error"].errno != 110  # not ETIMEDOUT
    finally:
        usb.util.dispose_resources(dev)
    g.replug()
    bus, address = g.host_address()
    dev = libusb_package.find(bus=bus, address=address)
    try:
        assert dev.write(0x02, b"after replug", 2000) == 12  # a short packet ends the gadget's request
        assert bytes(dev.read(0x81, 4096, 2000)) == b"after replug"
    finally:
        usb.util.dispose_resources(dev)
