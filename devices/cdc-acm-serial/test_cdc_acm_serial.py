"""Hardware-in-the-loop suite of the CDC-ACM example: the prototype serial driver on the real
device, driven as ``app.py`` drives it (open the port, set the line, write, read), plus the same
device through the operating system's own CDC-ACM driver for comparison (docs/hil.md).

Runs against ``usb://1209:0003``: the example's gadget (``gadget.json``, the kernel's ``acm``
function) in the lab, or a board with that firmware. In the lab the test also plays the device
end of the line (``/dev/ttyGSN``); elsewhere the device-to-host test needs a replay. Without the
device the committed recordings in ``recordings/`` are replayed (or the tests skip)::

    python -m pytest devices/cdc-acm-serial
    python -m pytest devices/cdc-acm-serial --dk-replay devices/cdc-acm-serial/recordings

The driver keeps a bulk IN read pending whose completion depends on when the device sends, so
the replay keeps order per endpoint only (``strict="endpoints"``).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent

pytestmark = [pytest.mark.dk_device("1209:0003", strict="endpoints"), pytest.mark.dk_recordings("recordings")]


def _load_app() -> Any:
    """This example's own ``app.py`` (other examples have modules of the same name)."""
    spec = importlib.util.spec_from_file_location("cdc_acm_serial_app", HERE / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app = _load_app()


class DeviceEnd:
    """The device end of the lab gadget's line: ``/dev/ttyGSN`` (pyserial)."""

    def __init__(self, node: str) -> None:
        import serial

        self.tty = serial.Serial(node, 115200, timeout=5)
        self.tty.reset_input_buffer()

    def close(self) -> None:
        self.tty.close()


@pytest.fixture
def device_end(dk_mode: str | None) -> Iterator[DeviceEnd | None]:
    """The device end of the line when the test runs live in the lab; None otherwise."""
    nodes = sorted(glob.glob("/dev/ttyGS*"))
    if dk_mode == "replay" or os.environ.get("DKPROTO_LAB") != "1" or not nodes:
        yield None
        return
    end = DeviceEnd(nodes[0])
    try:
        yield end
    finally:
        end.close()


# The operating system's CDC-ACM driver first: the prototype driver below detaches it.
@pytest.mark.dk_serial("1209:0003")
def test_the_os_serial_driver_carries_bytes_both_ways(dk_mode: str | None, dk_transport: Any,
                                                     device_end: DeviceEnd | None) -> None:
    dk_transport.configure(baudrate=115200)
    assert dk_transport.write(0x02, b"via the tty\r\n") == 13
    if device_end is not None:
        assert device_end.tty.read(13) == b"via the tty\r\n"
        device_end.tty.write(b"tty reply\r\n")
    if device_end is not None or dk_mode == "replay":
        got = b""
        while len(got) < 11:
            got += dk_transport.read(0x81, 11 - len(got), timeout=5000)
        assert got == b"tty reply\r\n"


def test_the_driver_matches_the_communication_interface(dk_driver: Any) -> None:
    assert type(dk_driver.driver).__name__ == "CDCACMSerial"
    assert dk_driver.match.score == 90000
    assert dk_driver.provider.properties["bInterfaceClass"] == 2


def test_set_line_reaches_the_device(dk_driver: Any) -> None:
    with dk_driver.driver.open_port() as port:
        port.set_line(57600, 8, 1)
        assert dk_driver.driver.get_line_coding() == (57600, 0, 0, 8)  # GET_LINE_CODING: what the device stored
        port.set_line(115200, 8, 1)
        assert dk_driver.driver.get_line_coding() == (115200, 0, 0, 8)


def test_the_app_writes_a_line(dk_driver: Any, device_end: DeviceEnd | None) -> None:
    service = app.find_serial_service()  # IOServiceGetMatchingServices(IOServiceMatching("IOUserSerial"))
    assert service is dk_driver.driver
    with service.open_port() as port:  # what app.py does
        port.set_line(115200, 8, 1)
        assert port.write(b"hello from the app\r\n") == 20
        if device_end is not None:
            assert device_end.tty.read(20) == b"hello from the app\r\n"
        # the driver's AsyncIO on bulk OUT completed (before the port closes): the TX ring is drained
        driver = dk_driver.driver
        deadline = time.monotonic() + 10
        while (driver.writing or driver.spi.txCI != 20) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not driver.writing and driver.spi.txCI == driver.spi.txPI == 20


def test_the_device_writes_back(dk_mode: str | None, dk_driver: Any, device_end: DeviceEnd | None) -> None:
    if device_end is None and dk_mode != "replay":
        pytest.skip("sending from the device needs its device end: run in the lab or from a recording")
    with dk_driver.driver.open_port() as port:
        port.set_line(115200, 8, 1)
        blob = b"device->host\r\n" + bytes(range(256)) * 4
        if device_end is not None:
            device_end.tty.write(blob)
        assert port.read_exactly(len(blob), 20) == blob
