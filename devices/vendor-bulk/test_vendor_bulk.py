"""Hardware-in-the-loop suite of the vendor bulk example: the driver on the real device, driven as
``app.py`` drives it (docs/hil.md).

Runs against ``usb://1209:0001``: the example's gadget (``gadget.json``, the kernel's Loopback
function) in the lab, a board with that firmware, or ``--dk-url sim://loopback``. Without the
device it replays the committed recordings in ``recordings/`` (or skips when there are none)::

    python -m pytest devices/vendor-bulk                                      # device, else recordings
    python -m pytest devices/vendor-bulk --dk-replay devices/vendor-bulk/recordings
    python -m pytest devices/vendor-bulk --dk-url sim://loopback              # the in-process device
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent

pytestmark = [pytest.mark.dk_device("1209:0001"), pytest.mark.dk_recordings("recordings")]


def _load(name: str) -> ModuleType:
    """This example's own ``client.py`` (other examples have modules of the same names)."""
    spec = importlib.util.spec_from_file_location(f"vendor_bulk_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


client = _load("client")


def test_the_device_is_a_vendor_interface_with_a_bulk_pair(dk_usb_device: Any) -> None:
    from dkproto.iokit.usb_host import (
        IOUSBGetEndpointDirection,
        IOUSBGetEndpointType,
        IOUSBGetNextEndpointDescriptor,
    )

    assert (dk_usb_device.properties["idVendor"], dk_usb_device.properties["idProduct"]) == (0x1209, 0x0001)
    (interface,) = dk_usb_device.interfaces
    assert interface.properties["bInterfaceClass"] == 0xFF
    config, intf = interface.copy_configuration_descriptor(), interface.get_interface_offset()
    kinds = set()
    ep = IOUSBGetNextEndpointDescriptor(config, intf, None)
    while ep is not None:
        kinds.add((IOUSBGetEndpointDirection(config[ep:ep + 7]), IOUSBGetEndpointType(config[ep:ep + 7])))
        ep = IOUSBGetNextEndpointDescriptor(config, intf, ep)
    assert {(1, 2), (0, 2)} <= kinds  # bulk IN and bulk OUT


def test_the_driver_matches_and_starts(dk_driver: Any) -> None:
    assert dk_driver.personality.name == "VendorBulkDriver"
    assert dk_driver.match.score == 90000
    assert dk_driver.running


def test_the_app_finds_the_driver_by_matching(dk_driver: Any) -> None:
    from dkproto.iokit import io_service_close

    conn = client.open_driver()  # IOServiceGetMatchingServices + IOIteratorNext + IOServiceOpen
    try:
        assert conn.user_client is not None and conn.user_client.driver is dk_driver.driver
    finally:
        io_service_close(conn)


@pytest.fixture
def vb(dk_user_client: Any) -> Iterator[Any]:
    """The app's connection with its notification port on the app's queue."""
    conn = client.VendorBulk(dk_user_client)
    try:
        yield conn
    finally:
        conn.close()


def test_write_then_read_back(vb: Any) -> None:
    assert vb.write(b"hello, dext") == 11
    assert vb.read(512) == b"hello, dext"
    assert vb.stats() == (11, 11)


def test_a_read_started_first_completes_with_what_the_write_sent(vb: Any) -> None:
    rd = vb.read_async(64)
    wr = vb.write_async(b"async bytes")
    assert wr.wait(10) == [11]
    assert rd.wait(10) == [11] and vb.copy_read_data() == b"async bytes"


def test_a_transfer_of_several_packets_ending_short(vb: Any) -> None:
    big = bytes(range(256)) * 15 + b"end"  # 3843 bytes: 7 full 512-byte packets and a short one
    assert vb.write(big) == len(big)
    assert vb.read(4096) == big


def test_one_read_at_a_time_and_none_beyond_the_buffer(vb: Any) -> None:
    from dkproto.errors import BadArgumentError, DkError
    from dkproto.ioreturn import IOReturn

    with pytest.raises(BadArgumentError):
        vb.read_async(64 * 1024 + 1)  # the driver's BUFFER_SIZE + 1
    rd = vb.read_async(64)
    with pytest.raises(DkError) as busy:
        vb.read_async(64)
    assert busy.value.ioreturn == IOReturn.kIOReturnBusy
    with pytest.raises(DkError) as not_ready:  # the buffer is being filled
        vb.copy_read_data()
    assert not_ready.value.ioreturn == IOReturn.kIOReturnNotReady
    assert vb.write(b"ping") == 4
    assert rd.wait(10) == [4] and vb.copy_read_data() == b"ping"
