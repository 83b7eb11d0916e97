"""The three example prototypes in devices/, end to end on in-process devices (the lab runs them on
the real Linux USB stack: tests/lab/test_iokit_examples.py)."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dkproto.errors import DkError, NoDeviceError, NotFoundError, NotPermittedError
from dkproto.iokit import ServiceState, io_service_close, io_service_open, start_service
from dkproto.iokit.matching import load_devices, match
from dkproto.iokit.personality import load_bundle
from dkproto.iokit.runner import load_driver_module, run_driver
from dkproto.transport.sim import SimDevice, SimTransport, loopback_device

ROOT = Path(__file__).resolve().parents[2]
DEVICES = ROOT / "devices"
VB = DEVICES / "vendor-bulk"
KB = DEVICES / "hid-keyboard-leds"
ACM = DEVICES / "cdc-acm-serial"
sys.path.insert(0, str(VB))
import client as vb_client

APP_ENTS = {"com.apple.developer.driverkit.userclient-access": ["org.dkproto.example.vendor-bulk"]}


# ---- vendor bulk -------------------------------------------------------------------------------

def test_vendor_bulk_async_io_and_unplug() -> None:
    sim = loopback_device()
    running = run_driver(VB / "driver.py", SimTransport(sim, "sim://loopback"))
    try:
        assert running.personality.name == "VendorBulkDriver" and running.match.score == 90000
        with pytest.raises(NotPermittedError):  # the dext does not allow any app: the gate holds
            io_service_open(running.driver, 0)
        conn = vb_client.open_driver()  # IOServiceGetMatchingServices(IOServiceNameMatching(...)) + IOServiceOpen
        assert conn.user_client is not None and conn.user_client.driver is running.driver
        vb = vb_client.VendorBulk(conn)
        assert vb.write(b"abc") == 3
        assert vb.read(64) == b"abc"
        rd = vb.read_async(64)
        wr = vb.write_async(b"0123456789abcdefXYZ")
        assert wr.wait(5) == [19] and wr.result == 0
        assert rd.wait(5) == [19] and vb.copy_read_data() == b"0123456789abcdefXYZ"
        assert vb.stats() == (22, 22)
        pending = vb.read_async(64)  # pending when the device goes away
        sim.unplug()
        assert pending.done.wait(5) and pending.result == 0xE00002C0  # kIOReturnNoDevice
        assert running.wait_stopped(5)
        assert running.driver.state is ServiceState.FREED and running.nub.state is ServiceState.FREED
        assert conn.user_client.state is ServiceState.FREED
        with pytest.raises(DkError):
            vb.write(b"x")
        vb.close()
        io_service_close(conn)
    finally:
        running.stop()


def test_vendor_bulk_every_transfer_is_async_io_and_ends_its_actions() -> None:
    """ExternalMethod never waits for the device: each transfer is an AsyncIO (issue 12), the app's
    completion is retained while it is pending and released on every path (a refused AsyncIO,
    a completion, Stop), and the user client's own actions are cancelled in Stop."""
    from dkproto.ioreturn import IOReturn

    sim = loopback_device()
    running = run_driver(VB / "driver.py", SimTransport(sim, "sim://loopback"))
    try:
        conn = vb_client.open_driver()
        uc = conn.user_client
        pipes = (running.driver.pipe_in, running.driver.pipe_out)
        sync_io = []
        for pipe in pipes:  # a synchronous IO anywhere would show here
            pipe.io = lambda *a, _p=pipe, **k: sync_io.append(_p)  # type: ignore[method-assign]
        vb = vb_client.VendorBulk(conn)
        assert vb.write(b"x" * 5000) == 5000  # > 4096: the app's memory comes as a descriptor, mapped
        assert vb.read(8192) == b"x" * 5000
        assert sync_io == []
        # AsyncIO refused (the pipe is closed): the call fails with its code, nothing stays pending
        real = running.driver.pipe_out.async_io

        def refuse(*a, **k):
            raise DkError("refused", ioreturn=IOReturn.kIOReturnNotOpen)

        running.driver.pipe_out.async_io = refuse  # type: ignore[method-assign]
        with pytest.raises(DkError) as refused:
            vb.write(b"abc")
        assert refused.value.ioreturn == IOReturn.kIOReturnNotOpen and uc.write_app is None
        running.driver.pipe_out.async_io = real  # type: ignore[method-assign]
        assert vb.write(b"again") == 5 and vb.read(64) == b"again"
        # closing the app with a read pending: Stop aborts it (kIOReturnAborted) and cancels the actions
        pending = vb.read_async(64)
        io_service_close(conn)
        assert pending.done.wait(5) and pending.result == IOReturn.kIOReturnAborted
        assert uc.read_app is None and uc.read_action.is_cancelled and uc.write_action.is_cancelled
        vb.close()
    finally:
        running.stop()


def test_vendor_bulk_entitlement_refuses_other_vendor(tmp_path: Path) -> None:
    import plistlib

    ents = tmp_path / "x.entitlements"
    ents.write_bytes(plistlib.dumps({"com.apple.developer.driverkit": True,
                                     "com.apple.developer.driverkit.transport.usb": [{"idVendor": 0x05AC}]}))
    with pytest.raises(NotPermittedError, match="idVendor 0x1209"):
        run_driver(VB / "driver.py", SimTransport(loopback_device(), "sim://loopback"), entitlements=ents)


def test_run_refuses_unmatched_device() -> None:
    blob = bytes.fromhex(json.loads(((ROOT / "descriptors" / "hackrf-one.json")).read_text())["descriptors_hex"])
    sim = SimDevice.from_descriptors(blob, "hackrf")
    with pytest.raises(NotFoundError, match="no personality"):
        run_driver(VB / "driver.py", SimTransport(sim, "sim://hackrf"))


def test_dkproto_run_cli_both_app_modes() -> None:
    for extra in ([], ["--process"]):
        out = subprocess.run([sys.executable, "-m", "dkproto", "run", str(VB / "driver.py"), "--device",
                              "sim://loopback", "--app", str(VB / "app.py"), *extra],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        assert "wrote 11, read back b'hello, dext'" in out.stdout
        assert "async: wrote 11 (result 0x0), read 11: b'async bytes' (result 0x0)" in out.stdout
        assert "VendorBulkDriver freed" in out.stderr


# ---- HID keyboard --------------------------------------------------------------------------------

def test_hid_keyboard_leds_and_keys() -> None:
    from dkproto.iokit.hid import IOUserHIDDevice

    rd = bytes.fromhex(json.loads((KB / "gadget.json").read_text())["functions"]["hid.0"]["attrs"]["report_desc"]["hex"])
    mod = load_driver_module(KB / "driver.py")
    outputs: list[tuple[int, int, bytes]] = []

    class Keyboard(IOUserHIDDevice):
        def new_device_description(self) -> dict:
            return {"VendorID": 0x1209, "ProductID": 0x0002, "Transport": "USB"}

        def new_report_descriptor(self) -> bytes:
            return rd

        def set_report(self, report, report_type, options, timeout, action):
            outputs.append((report_type, options & 0xFF, report.read_bytes()))
            self.complete_report(action, 0, report.get_length())
            return 0

    kbd = start_service(Keyboard(), None)
    bundle = load_bundle(KB / "Info.plist")
    drv = mod.KeyboardLEDDriver()
    drv.properties.update(bundle.personalities[0].properties)
    start_service(drv, kbd.hid_interface)
    sys.path.insert(0, str(KB))
    import app as kb_app

    conn = kb_app.open_driver()  # IOServiceGetMatchingServices(IOServiceNameMatching("KeyboardLEDDriver"))
    assert conn.user_client is not None and conn.user_client.driver is drv
    kb_app.set_leds(conn, 0b011)  # SetLED(NumLock, true), then SetLED(CapsLock, true)
    assert outputs == [(1, 0, b"\x01"), (1, 0, b"\x03")]
    kb_app.set_leds(conn, 0b010)  # only Num Lock changes
    assert outputs[2:] == [(1, 0, b"\x02")]
    from dkproto.iokit import IODispatchQueue

    queue = IODispatchQueue("test app")
    port = kb_app.notification_port(queue)
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(v=kb_app.wait_key(conn, port)))
    t.start()
    time.sleep(0.2)
    kbd.handle_report(1, bytes([0, 0, 0x0B, 0, 0, 0, 0, 0]))  # 'h' down
    t.join(5)
    assert box["v"] == (0, 7, 0x0B, 1)
    kbd.handle_report(2, bytes(8))  # 'h' up
    deadline = time.monotonic() + 5
    keys: list = []
    while not keys and time.monotonic() < deadline:
        keys = kb_app.get_keys(conn)
        time.sleep(0.02)
    assert keys == [(7, 0x0B, 0)]
    # a WaitKey still pending when the app closes ends with kIOReturnAborted
    from dkproto.iokit import async_reference, io_connect_call_async_scalar_method

    aborted: list = []
    io_connect_call_async_scalar_method(conn, 2, port, async_reference(lambda refcon, result: aborted.append(result)))
    io_service_close(conn)
    deadline = time.monotonic() + 5
    while not aborted and time.monotonic() < deadline:
        time.sleep(0.02)
    assert aborted == [0xE00002EB] and drv.waiters == []  # kIOReturnAborted
    port.destroy()
    queue.cancel()
    kbd.terminate()
    assert kbd.wait_terminated(5) and drv.state is ServiceState.FREED


# ---- CDC-ACM ---------------------------------------------------------------------------------------

def acm_sim() -> SimDevice:
    """The STM32 VCP's descriptors (CDC-ACM: comm 2/2/1 + data 0x0A), renumbered 1209:0003, echoing."""
    blob = bytearray(bytes.fromhex(json.loads((ROOT / "descriptors" / "stm32-virtual-com-port.json")
                                              .read_text())["descriptors_hex"]))
    blob[8:12] = struct.pack("<HH", 0x1209, 0x0003)
    sim = SimDevice.from_descriptors(bytes(blob), "acm")
    sim.line = bytes(7)
    sim.lines: list[int] = []

    @sim.control_request(type="class", recipient="interface", number=0x20, direction="out")
    def set_line_coding(dev, req):
        dev.line = req.data

    @sim.control_request(type="class", recipient="interface", number=0x21, direction="in")
    def get_line_coding(dev, req):
        return dev.line

    @sim.control_request(type="class", recipient="interface", number=0x22, direction="out")
    def set_control_line_state(dev, req):
        dev.lines.append(req.wValue)

    eps = sorted(sim.endpoint_addresses())
    out_ep = [e for e in eps if not e & 0x80 and e != 0][0]
    in_ep = [e for e in eps if e & 0x80 and e != 0x82][-1] if 0x81 in eps else [e for e in eps if e & 0x80][-1]
    sim.test_eps = (out_ep, in_ep)
    return sim


def test_cdc_acm_serial_line_coding_echo_and_unplug() -> None:
    sim = acm_sim()
    running = run_driver(ACM / "driver.py", SimTransport(sim, "sim://acm"))
    try:
        drv = running.driver
        assert running.personality.name == "CDCACMSerial" and running.match.score == 90000
        out_ep = drv.pipe_out.address
        in_ep = drv.pipe_in.address
        sim.loop(out_ep, in_ep)
        port = drv.open_port()
        assert sim.lines[-1] == 0b11  # HwActivate raised DTR and RTS
        port.set_line(115200, 8, 1)
        assert struct.unpack("<IBBB", sim.line) == (115200, 0, 0, 8)
        port.set_line(9600, 7, 2, 3)  # 7E2
        assert struct.unpack("<IBBB", sim.line) == (9600, 2, 2, 7)
        port.write(b"hello\r\n")
        assert port.read_exactly(7, 5) == b"hello\r\n"
        big = bytes(range(256)) * 8
        port.write(big)
        assert port.read_exactly(len(big), 10) == big
        # the driver worked the rings through its mapping of ifmd: SerialPortInterface's indices
        total = 7 + len(big)
        spi = drv.spi
        assert (spi.txPI, spi.txCI, spi.rxPI, spi.rxCI) == (total, total, total, total)
        assert (spi.rxqlogsz, spi.txqlogsz) == (14, 14) and drv.rx_ring.get_length() == 1 << 14
        sim.unplug()
        assert running.wait_stopped(5)
        with pytest.raises((NoDeviceError, DkError)):
            port.write(b"x")
    finally:
        running.stop()


def test_example_plists_match_their_gadgets() -> None:
    """dkproto match agrees: each example's personality wins its own device at the expected score."""
    vb = load_bundle(VB / "Info.plist")
    dev = load_devices_from_sim(loopback_device())
    rep = match(vb, [dev])
    assert [(r.personality.name, r.score) for r in rep.winners()] == [("VendorBulkDriver", 90000)]
    acm = load_bundle(ACM / "Info.plist")
    rep = match(acm, [load_devices_from_sim(acm_sim())])
    assert [(r.personality.name, r.score, r.candidate.label.split()[1]) for r in rep.winners()] == [
        ("CDCACMSerial", 90000, "#0")]


def load_devices_from_sim(sim: SimDevice):
    from dkproto.iokit.matching import device_from_descriptors

    return device_from_descriptors(sim.device_descriptor + b"".join(sim.configurations), name=sim.name)


def test_load_devices_smoke() -> None:
    assert load_devices(ROOT / "descriptors" / "hackrf-one.json")[0].idVendor == 0x1D50


#: Runs the command after it with SIGINT back to its default. A test run started in the background by
#: a shell (``cmd &``) has SIGINT ignored, children inherit that, and Python then never turns SIGINT
#: into KeyboardInterrupt: the Ctrl-C these tests send would be lost.
SIGINT_DEFAULT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                  "os.execvp(sys.argv[1], sys.argv[1:])"]


def test_dkproto_run_console_and_ctrl_c(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "dkproto", "run", str(VB / "driver.py"), "--device", "sim://loopback"],
                         input="print('state', service.state.value)\n", capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "state started" in out.stdout and "VendorBulkDriver freed" in out.stderr
    app = tmp_path / "sleepy.py"
    app.write_text("import sys, time\ndef main(service):\n    print('ready', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([*SIGINT_DEFAULT, sys.executable, "-m", "dkproto", "run", str(VB / "driver.py"), "--device",
                             "sim://loopback", "--app", str(app)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; stopping the driver" in err and "VendorBulkDriver freed" in err


def test_cdc_acm_rings_wrap_at_the_end_and_at_2_32() -> None:
    """The example works SerialPortInterface's free-running 32-bit indices modulo the ring size
    (dkproto/iokit/serial.py: wrap [unconfirmed] in Apple's docs), copying in two parts at the end."""
    import ctypes

    from dkproto.iokit import IOBufferMemoryDescriptor
    from dkproto.iokit.serial import SerialPortInterface

    mod = load_driver_module(ACM / "driver.py")
    ring = IOBufferMemoryDescriptor.create(3, 8).create_mapping()
    spi = SerialPortInterface()
    spi.rxPI = spi.rxCI = 0xFFFFFFFE  # 6 bytes into the ring, 2 before the indices wrap
    src = ctypes.create_string_buffer(b"abcdefghij", 10)
    assert mod.ring_put(ring, spi, "rx", ctypes.addressof(src), 10) == 8  # only 8 fit
    assert spi.rxPI == 6 and ctypes.string_at(ring.get_address(), 8) == b"cdefghab"
    dst = ctypes.create_string_buffer(8)
    assert mod.ring_get(ring, spi, "rx", ctypes.addressof(dst), 5) == 5
    assert dst.raw[:5] == b"abcde" and spi.rxCI == 3
    assert mod.ring_get(ring, spi, "rx", ctypes.addressof(dst), 8) == 3 and dst.raw[:3] == b"fgh"
    assert spi.rxCI == spi.rxPI == 6


def test_the_endpoint_constants_the_examples_compare_with() -> None:
    """tIOUSBEndpointType / tIOUSBEndpointDirection (AppleUSBDefinitions.h), as the accessors return them."""
    from dkproto.iokit.usb_host import (
        IOUSBGetEndpointDirection,
        IOUSBGetEndpointType,
        kIOUSBEndpointDirectionIn,
        kIOUSBEndpointDirectionOut,
        kIOUSBEndpointDirectionUnknown,
        kIOUSBEndpointTypeBulk,
        kIOUSBEndpointTypeControl,
        kIOUSBEndpointTypeInterrupt,
        kIOUSBEndpointTypeIsochronous,
    )

    bulk_in, intr_out, isoch_in = bytes.fromhex("07058102000200"), bytes.fromhex("07050203080001"), \
        bytes.fromhex("07058301000401")
    assert (IOUSBGetEndpointType(bulk_in), IOUSBGetEndpointDirection(bulk_in)) == (kIOUSBEndpointTypeBulk,
                                                                                   kIOUSBEndpointDirectionIn)
    assert (IOUSBGetEndpointType(intr_out), IOUSBGetEndpointDirection(intr_out)) == (kIOUSBEndpointTypeInterrupt,
                                                                                     kIOUSBEndpointDirectionOut)
    assert IOUSBGetEndpointType(isoch_in) == kIOUSBEndpointTypeIsochronous
    control = bytes.fromhex("07050000400000")
    assert (IOUSBGetEndpointType(control), IOUSBGetEndpointDirection(control)) == (kIOUSBEndpointTypeControl,
                                                                                   kIOUSBEndpointDirectionUnknown)
