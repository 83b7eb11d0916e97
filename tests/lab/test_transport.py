"""Transports on the real Linux USB stack in the lab VM: libusb, hidapi and pyserial, for real.

Run with ``python -m pytest --lab tests/lab/test_transport.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dkproto.errors import (
    AbortedError,
    BadArgumentError,
    DkTimeoutError,
    ExclusiveAccessError,
    NoDeviceError,
    PipeStalledError,
    UnsupportedError,
    URLError,
)
from dkproto.ioreturn import IOReturn
from dkproto.transport import Transfer, open_transport
from dkproto.transport.serial import SerialTransport, list_ports
from dkproto.transport.usb import USBTransport

pytestmark = pytest.mark.lab


def usb_url(g: Any, query: str = "interface=0") -> str:
    bus, address = g.host_address()
    return f"usb://{bus}/{address}" + (f"?{query}" if query else "")


def usbfs_fds() -> list[str]:
    """Open file descriptors of this process on /dev/bus/usb (to prove handles are released)."""
    out = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("/dev/bus/usb"):
            out.append(target)
    return out


# ------------------------------------------------------------------------------------------ bulk


def test_bulk_loopback_sync(lab_gadget: Any) -> None:
    g = lab_gadget("loopback")
    with open_transport(usb_url(g)) as t:
        assert isinstance(t, USBTransport)
        assert (t.info.idVendor, t.info.idProduct, t.info.serial_number) == (0x1D6B, 0x0111, "dklab-loopback")
        for i in range(20):
            payload = bytes((i + k) & 0xFF for k in range(4096))
            assert t.write(0x02, payload, timeout=2000) == 4096
            assert t.read(0x81, 4096, timeout=2000) == payload
        # a short packet ends the transfer: 100 bytes come back as 100 bytes
        t.write(0x02, b"s" * 100)
        assert t.read(0x81, 4096) == b"s" * 100
        assert t.endpoint_type(0x81) == "bulk"
    assert usbfs_fds() == []


def test_bulk_loopback_async_queue_depth(lab_gadget: Any) -> None:
    g = lab_gadget("loopback")
    with open_transport(usb_url(g)) as t:
        order: list[int] = []
        done = threading.Event()

        def on_in(x: Transfer) -> None:
            order.append(x.user_data)
            if len(order) == 8:
                done.set()

        ins = [t.submit(0x81, 4096, on_in, timeout=5000, user_data=i) for i in range(8)]  # 8 in flight
        outs = [t.submit(0x02, bytes([i]) * 4096, timeout=5000) for i in range(8)]
        assert done.wait(10), f"only {len(order)} IN transfers completed"
        assert order == list(range(8))  # completions in order per endpoint
        for i, (xin, xout) in enumerate(zip(ins, outs)):
            assert xout.wait(5).status == IOReturn.kIOReturnSuccess and xout.actual_length == 4096
            assert xin.status == IOReturn.kIOReturnSuccess and xin.error is None
            assert xin.data == bytes([i]) * 4096 and xin.actual_length == 4096
            assert xin.timestamp_ns >= xout.timestamp_ns - 10**9
        # abort: pending IN transfers complete with kIOReturnAborted, quickly
        pending = [t.submit(0x81, 4096, timeout=0) for _ in range(4)]
        t0 = time.monotonic()
        t.abort(0x81)
        assert time.monotonic() - t0 < 2
        for x in pending:
            assert x.done() and x.status == IOReturn.kIOReturnAborted
            with pytest.raises(AbortedError):
                x.result()
        # the pipe still works after an abort
        t.write(0x02, b"again")
        assert t.read(0x81, 4096) == b"again"


def test_configuration_reset_and_release(lab_gadget: Any) -> None:
    g = lab_gadget("loopback")
    with open_transport(usb_url(g, "config=1")) as t:
        assert t.get_configuration() == 1
        t.claim_interface(0)
        t.set_alternate_setting(0, 0)
        t.write(0x02, b"before reset")
        assert t.read(0x81, 4096) == b"before reset"
        t.reset()  # USB port reset; libusb keeps the handle and re-claims the interface
        assert t.get_configuration() == 1
        t.write(0x02, b"after reset")
        assert t.read(0x81, 4096, timeout=2000) == b"after reset"
        t.release_interface(0)
        t.claim_interface(0)
    assert usbfs_fds() == []


def test_timeout_is_kioreturntimeout_and_on_time(lab_gadget: Any) -> None:
    g = lab_gadget("loopback")
    with open_transport(usb_url(g)) as t:
        t0 = time.monotonic()
        with pytest.raises(DkTimeoutError) as info:
            t.read(0x81, 4096, timeout=300)
        elapsed = time.monotonic() - t0
        assert 0.25 < elapsed < 2.0
        assert info.value.ioreturn == IOReturn.kIOReturnTimeout and info.value.backend_code == -7
        x = t.submit(0x81, 64, timeout=200)
        assert x.wait(3).status == IOReturn.kIOReturnTimeout
        assert isinstance(x.error, DkTimeoutError)


def test_stall_and_clear(lab_gadget: Any) -> None:
    g = lab_gadget("loopback")
    with open_transport(usb_url(g)) as t:
        # SET_FEATURE(ENDPOINT_HALT) on bulk IN 0x81: the gadget's UDC halts the endpoint
        t.control_transfer(0x02, 0x03, 0, 0x81, None)
        assert t.control_transfer(0x82, 0x00, 0, 0x81, 2) == b"\x01\x00"  # GET_STATUS: halted
        with pytest.raises(PipeStalledError) as info:
            t.read(0x81, 4096, timeout=1000)
        assert info.value.ioreturn == IOReturn.kUSBHostReturnPipeStalled and info.value.backend_code == -9
        x = t.submit(0x81, 4096, timeout=1000)
        assert x.wait(3).status == IOReturn.kUSBHostReturnPipeStalled
        t.clear_halt(0x81)
        assert t.control_transfer(0x82, 0x00, 0, 0x81, 2) == b"\x00\x00"
        t.write(0x02, b"after clear")
        assert t.read(0x81, 4096) == b"after clear"


def test_unplug_mid_transfer(lab_gadget: Any) -> None:
    g = lab_gadget("loopback")
    t = open_transport(usb_url(g), open=True)
    pending = [t.submit(0x81, 4096, timeout=0) for _ in range(3)]
    errors: list[BaseException] = []

    def blocked_read() -> None:
        try:
            t.read(0x81, 4096, timeout=0)  # would wait forever without the unplug
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    reader = threading.Thread(target=blocked_read)
    reader.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    g.unplug()
    reader.join(10)
    assert not reader.is_alive(), "the blocked read did not return after the unplug"
    assert time.monotonic() - t0 < 5
    assert len(errors) == 1 and isinstance(errors[0], (NoDeviceError, AbortedError)), errors
    assert errors[0].ioreturn in (IOReturn.kIOReturnNoDevice, IOReturn.kIOReturnAborted)
    for x in pending:
        x.wait(5)
        assert x.status in (IOReturn.kIOReturnNoDevice, IOReturn.kIOReturnAborted), x
    with pytest.raises(NoDeviceError):
        t.write(0x02, b"x")
    t0 = time.monotonic()
    t.close()
    assert time.monotonic() - t0 < 3
    assert usbfs_fds() == [], "handles left open after close"
    with pytest.raises(NoDeviceError):
        open_transport("usb://1d6b:0111", open=True)


def test_busy_interface_is_exclusive_access(lab_gadget: Any) -> None:
    g = lab_gadget("loopback")
    url = usb_url(g)
    with open_transport(url):
        with pytest.raises(ExclusiveAccessError) as info:
            open_transport(url, open=True)
        assert info.value.ioreturn == IOReturn.kIOReturnExclusiveAccess and info.value.backend_code == -6
    assert usbfs_fds() == []


def test_not_permitted_names_the_udev_rule(lab_gadget: Any) -> None:
    """A usbfs node we may not open: LIBUSB_ERROR_ACCESS -> NotPermittedError with the udev rule."""
    g = lab_gadget("loopback")
    bus, address = g.host_address()
    node = Path(f"/dev/bus/usb/{bus:03d}/{address:03d}")
    mode = node.stat().st_mode & 0o777
    code = ("from dkproto.transport import open_transport\n"
            f"open_transport({usb_url(g, '')!r}, open=True)\n")
    node.chmod(0)
    try:  # root without capabilities obeys file modes like any user
        proc = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-c", code],
                              capture_output=True, text=True, timeout=60, check=False)
    finally:
        node.chmod(mode)
    assert proc.returncode != 0
    assert "NotPermittedError" in proc.stderr, proc.stderr[-2000:]
    assert "LIBUSB_ERROR_ACCESS" in proc.stderr
    assert 'SUBSYSTEM=="usb", ATTRS{idVendor}=="1d6b", ATTRS{idProduct}=="0111"' in proc.stderr


# ------------------------------------------------------------------------------------------ control


def test_vendor_control_requests_sourcesink(lab_gadget: Any) -> None:
    """The kernel's SourceSink function answers vendor requests 0x5b (OUT) and 0x5c (IN)."""
    g = lab_gadget("sourcesink")
    with open_transport(usb_url(g, "")) as t:
        payload = bytes(range(64))
        assert t.control_transfer(0x40, 0x5B, 0, 0, payload) == 64
        assert t.control_transfer(0xC0, 0x5C, 0, 0, 64) == payload
        with pytest.raises(PipeStalledError):  # an unknown vendor request stalls EP0
            t.control_transfer(0xC0, 0x42, 0, 0, 8)
        # standard requests, any recipient
        dd = t.control_transfer(0x80, 0x06, 0x0100, 0, 18)
        sysfs = Path(g.host_sysfs()) / "descriptors"
        assert dd == sysfs.read_bytes()[:18]
        assert t.get_configuration() == 1
        assert t.control_transfer(0x81, 0x0A, 0, 0, 1) == b"\x00"  # GET_INTERFACE, interface recipient


def _endpoints(t: USBTransport) -> dict[tuple[str, str], int]:
    """(direction, type) -> bEndpointAddress of the current setting (FunctionFS renumbers endpoints)."""
    types = {1: "isochronous", 2: "bulk", 3: "interrupt"}
    cfg = t.device.get_active_configuration()
    return {("in" if ep.bEndpointAddress & 0x80 else "out", types[ep.bmAttributes & 3]): ep.bEndpointAddress
            for intf in cfg for ep in intf}


def _ffs_vendor(lab_gadget: Any, lab_definitions: dict[str, Any]) -> Any:
    if "ffs-vendor" not in lab_definitions:
        pytest.skip("no ffs-vendor gadget definition in devices/lab (the lab's FunctionFS framework)")
    return lab_gadget("ffs-vendor")


def test_vendor_control_requests_functionfs(lab_gadget: Any, lab_definitions: dict[str, Any]) -> None:
    """Vendor requests to a device written in Python on FunctionFS (devices/lab/vendor_echo.py)."""
    g = _ffs_vendor(lab_gadget, lab_definitions)
    with open_transport(usb_url(g)) as t:
        assert t.control_transfer(0xC0, 0x01, 0, 0, 2) == b"\x00\x01"  # GET_VERSION, device recipient
        assert t.control_transfer(0xC1, 0x01, 0, 0, 2) == b"\x00\x01"  # interface recipient
        assert t.control_transfer(0x40, 0x02, 0, 0, b"dkproto ffs") == 11  # SET_VALUE (OUT data stage)
        assert t.control_transfer(0xC0, 0x03, 0, 0, 64) == b"dkproto ffs"  # GET_VALUE: short IN
        assert t.control_transfer(0xC0, 0x04, 0xBEEF, 0, 2) == b"\xef\xbe"  # wValue echoed
        with pytest.raises(PipeStalledError):
            t.control_transfer(0xC0, 0x7E, 0, 0, 4)  # unhandled: the device STALLs EP0
        assert t.control_transfer(0xC0, 0x01, 0, 0, 2) == b"\x00\x01"  # EP0 recovers after a stall
        # bulk echo OUT -> IN and an interrupt IN report
        eps = _endpoints(t)
        bulk_out, bulk_in, intr_in = eps["out", "bulk"], eps["in", "bulk"], eps["in", "interrupt"]
        t.write(bulk_out, b"bulk through ffs")
        assert t.read(bulk_in, 512) == b"bulk through ffs"
        assert t.endpoint_type(intr_in) == "interrupt"
        x = t.submit(intr_in, 8, timeout=0)
        g.ffs().notify(b"\x01\x02\x03\x04\x05\x06\x07\x08")
        assert x.wait(5).status == IOReturn.kIOReturnSuccess, x.error
        assert x.data == b"\x01\x02\x03\x04\x05\x06\x07\x08"


def test_functionfs_stall_delay_drop(lab_gadget: Any, lab_definitions: dict[str, Any]) -> None:
    g = _ffs_vendor(lab_gadget, lab_definitions)
    ffs = g.ffs()
    with open_transport(usb_url(g)) as t:
        eps = _endpoints(t)
        bulk_out, bulk_in = eps["out", "bulk"], eps["in", "bulk"]
        ffs.stall(0x81)  # the device's own numbering (ep1 IN)
        with pytest.raises(PipeStalledError):
            t.read(bulk_in, 512, timeout=1000)
        t.clear_halt(bulk_in)
        t.write(bulk_out, b"after the stall")
        assert t.read(bulk_in, 512, timeout=2000) == b"after the stall"
        ffs.drop(request=0x03)  # the device never answers: the host times out, EP0 recovers
        t0 = time.monotonic()
        with pytest.raises(DkTimeoutError):
            t.control_transfer(0xC0, 0x03, 0, 0, 64, timeout=300)
        assert time.monotonic() - t0 < 3
        ffs.delay(0.3, request=0x01)  # late but within the timeout: succeeds
        assert t.control_transfer(0xC0, 0x01, 0, 0, 2, timeout=3000) == b"\x00\x01"


def test_cli_ctrl_on_a_real_device(lab_gadget: Any) -> None:
    from click.testing import CliRunner

    from dkproto.cli import cli

    g = lab_gadget("loopback")
    result = CliRunner().invoke(cli, ["ctrl", usb_url(g, ""), "0x80", "6", "0x100", "0", "18", "--hex"], obj={})
    assert result.exit_code == 0, result.output
    assert bytes.fromhex(result.stdout.replace(" ", "").strip()) == (Path(g.host_sysfs()) / "descriptors").read_bytes()[:18]
    result = CliRunner().invoke(cli, ["write", usb_url(g), "0x02", "hello", "--ascii"], obj={})
    assert result.exit_code == 0 and "sent 5" in result.stdout


def test_malformed_url_quotes_grammar() -> None:
    with pytest.raises(URLError, match=r"expected usb://VID:PID\[\?serial=S"):
        open_transport("usb://1d6b")


# ------------------------------------------------------------------------------------------ HID


def _interrupt_in(t: USBTransport) -> int:
    cfg = t.device.get_active_configuration()
    return next(ep.bEndpointAddress for intf in cfg for ep in intf
                if ep.bEndpointAddress & 0x80 and ep.bmAttributes & 3 == 3)


def test_interrupt_reads_from_hid_gadget_over_libusb(lab_gadget: Any) -> None:
    g = lab_gadget("hid-keyboard")
    assert g.host_nodes("hidraw"), "usbhid did not bind"
    with open_transport(usb_url(g)) as t:  # claims interface 0: usbhid is detached
        assert isinstance(t, USBTransport)
        ep = _interrupt_in(t)
        assert g.host_nodes("hidraw") == [], "usbhid still bound after claim"
        report = bytes([0, 0, 4, 0, 0, 0, 0, 0])
        g.send_report(report)
        assert t.read(ep, 8, timeout=2000) == report
        # Linux 6.1's f_hid ends a report of exactly wMaxPacketSize (8) with a zero-length
        # packet; the host sees it as the next (empty) transfer.
        assert t.read(ep, 8, timeout=1000) == b""
        x = t.submit(ep, 8, timeout=0)  # interrupt pipes: no timeout, as in DriverKit
        g.send_report(bytes([2, 0, 5, 0, 0, 0, 0, 0]))
        assert x.wait(5).status == IOReturn.kIOReturnSuccess, x.error
        assert x.data == bytes([2, 0, 5, 0, 0, 0, 0, 0])
        assert t.submit(ep, 8, timeout=1000).wait(5).actual_length == 0  # its ZLP
        with pytest.raises(DkTimeoutError):
            t.read(ep, 8, timeout=200)
        # HID class request through the default get_report: GET_REPORT(Input)
        assert len(t.get_report(0, 0, 8)) == 8
    deadline = time.monotonic() + 5
    while not g.host_nodes("hidraw") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert g.host_nodes("hidraw"), "usbhid was not reattached on close"


def test_interrupt_reads_from_hid_gadget_over_hidapi(lab_gadget: Any) -> None:
    g = lab_gadget("hid-keyboard")
    node = g.host_nodes("hidraw")[0]
    for url in (f"hid://{node}", "hid://1d6b:0104?interface=0"):
        with open_transport(url) as t:
            assert t.info.path == node and t.info.idVendor == 0x1D6B
            report = bytes([0, 0, 7, 0, 0, 0, 0, 0])
            g.send_report(report)
            assert t.read(0x81, 64, timeout=2000) == report
            with pytest.raises(DkTimeoutError):
                t.read(0x81, 64, timeout=100)
            t.write(0x01, bytes([0, 0x01]))  # output report (LEDs), ID 0: hidraw strips the 0
            seen = []
            while b"\x01" not in seen:  # the kernel also sends its own LED reports (zeros) at bind
                seen.append(g.read_report(timeout=2.0))
            assert seen[-1] == b"\x01"


def _eventually(check: Any, timeout: float = 2.0) -> bool:
    """FunctionFS acknowledges an OUT data stage before the Python device has handled it."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_feature_reports_get_set_over_hidapi_and_libusb(lab_gadget: Any, lab_definitions: dict[str, Any]) -> None:
    """get_report/set_report: hidapi (hid://) and the HID class requests (usb://) on a FunctionFS HID device."""
    if "ffs-hid" not in lab_definitions:
        pytest.skip("no ffs-hid gadget definition in devices/lab")
    from dkproto.transport import HID_REPORT_FEATURE, HID_REPORT_OUTPUT

    g = lab_gadget("ffs-hid")
    ffs = g.ffs()
    ffs.hid.features[0] = bytes(range(1, 9))
    node = g.host_nodes("hidraw")[0]
    with open_transport(f"hid://{node}") as t:
        assert t.get_report(HID_REPORT_FEATURE, 0, 8) == bytes(range(1, 9))  # no ID byte in the payload
        assert t.set_report(HID_REPORT_FEATURE, 0, b"\xa0" * 8) == 8
        assert _eventually(lambda: ffs.hid.features[0] == b"\xa0" * 8), ffs.hid.features
        assert t.set_report(HID_REPORT_OUTPUT, 0, b"\x0b" * 8) == 8
        assert ffs.read_output() == b"\x0b" * 8
        ffs.send_input(b"\x11" * 8)
        assert t.read(0x81, 64, timeout=2000) == b"\x11" * 8
        assert len(t.report_descriptor()) == len(ffs.report_descriptor)  # type: ignore[attr-defined]
    with open_transport(usb_url(g)) as t:  # the same through HID class requests on EP0
        ffs.hid.features[0] = b"\x5a" * 8
        assert t.get_report(HID_REPORT_FEATURE, 0, 8) == b"\x5a" * 8
        assert t.set_report(HID_REPORT_FEATURE, 0, b"\x01" * 8) == 8
        assert _eventually(lambda: ffs.hid.features[0] == b"\x01" * 8), ffs.hid.features
        with pytest.raises(PipeStalledError):  # no feature report 7: the device STALLs
            t.get_report(HID_REPORT_FEATURE, 7, 8)


# ------------------------------------------------------------------------------------------ serial


class UsbMon:
    """The kernel's usbmon text capture of one bus: the control requests the host really sent."""

    def __init__(self, bus: int) -> None:
        subprocess.run(["modprobe", "usbmon"], check=True)
        self.file = open(f"/sys/kernel/debug/usb/usbmon/{bus}u", "rb", buffering=0)  # noqa: SIM115
        os.set_blocking(self.file.fileno(), False)
        self.text = ""

    def setups(self) -> list[tuple[int, int, int, int, bytes]]:
        """(bmRequestType, bRequest, wValue, wIndex, OUT data) of every control request so far."""
        while True:
            try:
                chunk = self.file.read(65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.text += chunk.decode()
        out = []
        for line in self.text.splitlines():
            f = line.split()
            if len(f) > 9 and f[2] == "S" and f[3].startswith("Co:") and f[4] == "s":
                data = bytes.fromhex("".join(f[12:])) if len(f) > 12 and f[11] == "=" else b""
                out.append((int(f[5], 16), int(f[6], 16), int(f[7], 16), int(f[8], 16), data))
        return out

    def close(self) -> None:
        self.file.close()


# (URL options, pyserial settings the port must report, CDC SET_LINE_CODING bytes on the wire:
#  dwDTERate LE, bCharFormat 0/1/2 = 1/1.5/2 stop bits, bParityType 0 N 1 O 2 E 3 M 4 S, bDataBits)
SERIAL_SETTINGS = [
    # (cdc-acm starts at 9600 8N1 and sends SET_LINE_CODING only on a change, so no 9600 8N1 here)
    ("baudrate=19200", {"baudrate": 19200, "bytesize": 8, "parity": "N", "stopbits": 1},
     (19200).to_bytes(4, "little") + bytes([0, 0, 8])),
    ("baudrate=115200&bytesize=7&parity=E&stopbits=2",
     {"baudrate": 115200, "bytesize": 7, "parity": "E", "stopbits": 2},
     (115200).to_bytes(4, "little") + bytes([2, 2, 7])),
    ("baudrate=57600&parity=O&rtscts=1", {"baudrate": 57600, "bytesize": 8, "parity": "O", "stopbits": 1},
     (57600).to_bytes(4, "little") + bytes([0, 1, 8])),
]


@pytest.mark.parametrize("query, settings, line_coding", SERIAL_SETTINGS)
def test_serial_both_ways_over_acm(lab_gadget: Any, query: str, settings: dict[str, Any],
                                   line_coding: bytes) -> None:
    g = lab_gadget("cdc-acm")
    tty = g.host_nodes("tty")[0]
    mon = UsbMon(g.host_address()[0])
    device_end = g.serial(timeout=2.0)
    try:
        with open_transport(f"serial://{tty}?{query}") as t:
            assert isinstance(t, SerialTransport)
            for key, value in settings.items():
                assert t.info.extra[key] == value
            # the CDC-ACM driver sent exactly these settings to the device (SET_LINE_CODING 0x20)
            assert any(r == (0x21, 0x20, 0, 0, line_coding) for r in mon.setups()), mon.setups()
            # host -> device
            assert t.write(0x02, b"hello gadget\n") == 13
            assert device_end.read_until(b"\n") == b"hello gadget\n"
            # device -> host
            device_end.write(b"hello host\r\nOK\r\n")
            assert t.expect(b"OK\r\n", timeout=2000) == b"hello host\r\nOK\r\n"
            big = bytes(range(256)) * 16
            device_end.write(big)
            got = b""
            while len(got) < len(big):
                got += t.read(0x81, 8192, timeout=2000)
            assert got == big
            # modem lines: SET_CONTROL_LINE_STATE (0x22) on the wire. A break goes through pyserial
            # without error, but f_acm declares no break capability (bmCapabilities 0x02), so
            # cdc-acm sends no SEND_BREAK (0x23) to this device.
            t.set_dtr(True)
            t.set_rts(False)
            t.send_break(0.05)
            t.configure(baudrate=38400)
            time.sleep(0.1)
            sent = mon.setups()
            assert (0x21, 0x22, 0x0001, 0, b"") in sent  # DTR on, RTS off
            assert sent[-1][:2] == (0x21, 0x20) and sent[-1][4][:4] == (38400).to_bytes(4, "little")
            with pytest.raises(DkTimeoutError):
                t.read(0x81, 10, timeout=100)
    finally:
        device_end.close()
        mon.close()


def test_serial_port_by_vid_pid_and_listing(lab_gadget: Any) -> None:
    g = lab_gadget("cdc-acm")
    tty = g.host_nodes("tty")[0]
    port = next(p for p in list_ports() if p.device == tty)
    assert (port.idVendor, port.idProduct, port.serial_number) == (0x1D6B, 0x0110, "dklab-acm")
    with open_transport("serial://1d6b:0110?serial=dklab-acm&baudrate=19200") as t:
        assert t.info.path == tty and t.info.serial_number == "dklab-acm"
        assert t.info.extra["baudrate"] == 19200
    from click.testing import CliRunner

    from dkproto.cli import cli

    result = CliRunner().invoke(cli, ["serial", "list", "--json"], obj={})
    assert result.exit_code == 0
    listed = {p["device"]: p for p in json.loads(result.stdout)}
    assert listed[tty]["idVendor"] == 0x1D6B and listed[tty]["serial_number"] == "dklab-acm"
    device_end = g.serial(timeout=2.0)
    try:
        result = CliRunner().invoke(cli, ["serial", "send", tty, "ping\\n", "--ascii", "-b", "38400"], obj={})
        assert result.exit_code == 0, result.output
        assert device_end.read_until(b"\n") == b"ping\n"
        # pyserial flushes input when it opens a port, so the device says READY until the CLI
        # has heard it (one timed write raced the CLI's open under load)
        heard = threading.Event()

        def speak() -> None:
            while not heard.wait(0.2):
                device_end.write(b"READY\r\n")

        speaker = threading.Thread(target=speak, daemon=True)
        speaker.start()
        try:
            result = CliRunner().invoke(cli, ["serial", "expect", tty, "READY", "-t", "5000", "--json"], obj={})
        finally:
            heard.set()
            speaker.join(5)
        assert result.exit_code == 0 and json.loads(result.stdout)["matched"] is True
    finally:
        device_end.close()


def test_serial_unplug_mid_read(lab_gadget: Any) -> None:
    g = lab_gadget("cdc-acm")
    tty = g.host_nodes("tty")[0]
    t = open_transport(f"serial://{tty}", open=True)
    errors: list[BaseException] = []

    def blocked() -> None:
        try:
            t.read(0x81, 10, timeout=0)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    reader = threading.Thread(target=blocked)
    reader.start()
    time.sleep(0.3)
    g.unplug()
    reader.join(10)
    assert not reader.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], NoDeviceError), errors
    t.close()


# ------------------------------------------------------------------------------------------ isochronous


def test_isochronous_out_and_alternate_setting(lab_session_items: list[str]) -> None:
    """Isochronous OUT through libusb on QEMU's usb-audio (dummy_hcd has no isochronous support).

    The device is ``devices/lab/qemu-usb-audio.json`` (attached for the whole lab session).
    """
    assert "qemu-usb-audio" in lab_session_items, "devices/lab/qemu-usb-audio.json is not in this lab session"
    with open_transport("usb://46f4:0002?interface=1&alt=1") as t:  # AudioStreaming, alt 1 has the endpoint
        assert isinstance(t, USBTransport)
        assert t.control_transfer(0x81, 0x0A, 0, 1, 1) == b"\x01"  # GET_INTERFACE: alt 1 selected
        ep = _endpoints(t)["out", "isochronous"]
        assert t.endpoint_type(ep) == "isochronous"
        assert t.write(ep, bytes(192), timeout=1000) == 192  # one packet
        assert t.write(ep, bytes(1920), timeout=1000) == 1920  # ten packets
        with pytest.raises(UnsupportedError):
            t.submit(ep, bytes(192))  # asynchronous isochronous: not offered
        t.set_alternate_setting(1, 0)  # zero-bandwidth setting: the endpoint is gone
        with pytest.raises(BadArgumentError):
            t.write(ep, bytes(192), timeout=1000)
