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
    assert (dk_usb_device.properties["idVendor"], dk_usb_device.properties["idProduct"]) == (0x1209, 0x0001)
    (interface,) = dk_usb_device.interfaces
    assert interface.properties["bInterfaceClass"] == 0xFF
    kinds = {(int(ep["bEndpointAddress"]) & 0x80, int(ep["bmAttributes"]) & 3)
             for ep in interface.endpoint_descriptors()}
    assert {(0x80, 2), (0x00, 2)} <= kinds  # bulk IN and bulk OUT


def test_the_driver_matches_and_starts(dk_driver: Any) -> None:
    assert dk_driver.personality.name == "VendorBulkDriver"
    assert dk_driver.match.score == 90000
    assert dk_driver.running


def test_sync_write_then_read_back(dk_user_client: Any) -> None:
    assert client.write(dk_user_client, b"hello, dext") == 11
    assert client.read(dk_user_client, 512) == b"hello, dext"
    assert client.stats(dk_user_client) == (11, 11)


def test_async_read_completes_with_what_the_async_write_sent(dk_user_client: Any) -> None:
    calls = client.AsyncCalls(dk_user_client)
    try:
        rd = calls.read(64)
        wr = calls.write(b"async bytes")
        assert wr["done"].wait(10) and rd["done"].wait(10), "async completions did not arrive"
        assert (wr["result"], wr["args"]) == (0, [11])
        assert rd["result"] == 0 and client.unpack_read(rd) == b"async bytes"
    finally:
        calls.close()


def test_a_transfer_of_several_packets_ending_short(dk_user_client: Any) -> None:
    big = bytes(range(256)) * 15 + b"end"  # 3843 bytes: 7 full 512-byte packets and a short one
    assert client.write(dk_user_client, big) == len(big)
    assert client.read(dk_user_client, 4096) == big


def test_the_app_cannot_read_more_asynchronously_than_fits_a_completion(dk_user_client: Any) -> None:
    from dkproto.errors import DkError

    calls = client.AsyncCalls(dk_user_client)
    try:
        with pytest.raises(DkError):
            calls.read(121)
    finally:
        calls.close()
