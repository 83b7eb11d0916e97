"""hidapi transport: the pure parts (device specs, enumeration entries, the one error mapping).

Opening, reading, writing and feature reports are proven in the lab (tests/lab/test_hid.py).
"""

from __future__ import annotations

import errno

import pytest

from dkproto.errors import (
    DkError,
    DkTimeoutError,
    ExclusiveAccessError,
    NoDeviceError,
    NotOpenError,
    NotPermittedError,
    PipeStalledError,
    URLError,
)
from dkproto.hid.device import HidDeviceInfo, is_device_spec, parse_device_spec
from dkproto.ioreturn import IOReturn
from dkproto.transport.hid import hidapi_errors


def test_device_specs() -> None:
    assert parse_device_spec("/dev/hidraw3") == ("/dev/hidraw3", 0, 0, None)
    assert parse_device_spec("hid:///dev/hidraw3") == ("/dev/hidraw3", 0, 0, None)
    assert parse_device_spec("1d6b:0105") == (None, 0x1D6B, 0x0105, None)
    assert parse_device_spec("1d6b:0105:dklab-hid-mouse") == (None, 0x1D6B, 0x0105, "dklab-hid-mouse")
    with pytest.raises(URLError):
        parse_device_spec(" ")
    assert is_device_spec("/dev/hidraw0") and is_device_spec("046d:c077")
    assert not is_device_spec("mouse.json")


def test_enumeration_entry_from_hidapi() -> None:
    info = HidDeviceInfo.from_hidapi({
        "path": b"/dev/hidraw0", "vendor_id": 0x1D6B, "product_id": 0x105, "serial_number": "s",
        "release_number": 0x100, "manufacturer_string": "m", "product_string": "p", "usage_page": 1,
        "usage": 2, "interface_number": 0, "bus_type": 1,
    })
    assert (info.path, info.vid_pid, info.bus_type, info.interface_number) == ("/dev/hidraw0", "1d6b:0105", "usb", 0)


@pytest.mark.parametrize(
    "exc,cls,code",
    [
        (OSError(errno.EACCES, "Permission denied"), NotPermittedError, IOReturn.kIOReturnNotPermitted),
        (OSError(errno.EBUSY, "busy"), ExclusiveAccessError, IOReturn.kIOReturnExclusiveAccess),
        (OSError(errno.ETIMEDOUT, "timed out"), DkTimeoutError, IOReturn.kIOReturnTimeout),
        (OSError(errno.ENODEV, "No such device"), NoDeviceError, IOReturn.kIOReturnNoDevice),
        (OSError("open failed"), NoDeviceError, IOReturn.kIOReturnNoDevice),
        (OSError(errno.EPIPE, "Broken pipe"), PipeStalledError, IOReturn.kUSBHostReturnPipeStalled),
        (ValueError("not open"), NotOpenError, IOReturn.kIOReturnNotOpen),
        (OSError("read error"), DkError, IOReturn.kIOReturnError),
    ],
)
def test_one_error_mapping(exc: Exception, cls: type[DkError], code: int) -> None:
    with pytest.raises(cls) as ei, hidapi_errors("read", "/dev/hidraw9"):
        raise exc
    assert type(ei.value) is cls and ei.value.ioreturn == code
    assert "read /dev/hidraw9" in str(ei.value) and ei.value.__cause__ is exc
