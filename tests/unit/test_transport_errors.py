"""The one libusb/pyusb -> DkError mapping, and the pyserial and hidapi ones."""

from __future__ import annotations

import errno

import pytest
import serial
import usb.core

from dkproto.errors import (
    AbortedError,
    BadArgumentError,
    DkError,
    DkTimeoutError,
    ExclusiveAccessError,
    MissingToolError,
    NoDeviceError,
    NotFoundError,
    NotPermittedError,
    OverrunError,
    PipeStalledError,
    UnsupportedError,
)
from dkproto.ioreturn import IOReturn
from dkproto.transport.serial import serial_error
from dkproto.transport.usb import TRANSFER_STATUS_TO_ERROR, udev_rule, usb_error, usb_errors


@pytest.mark.parametrize("code, cls, ioreturn", [
    (-1, DkError, IOReturn.kIOReturnIOError),
    (-2, BadArgumentError, IOReturn.kIOReturnBadArgument),
    (-3, NotPermittedError, IOReturn.kIOReturnNotPermitted),
    (-4, NoDeviceError, IOReturn.kIOReturnNoDevice),
    (-5, NotFoundError, IOReturn.kIOReturnNotFound),
    (-6, ExclusiveAccessError, IOReturn.kIOReturnExclusiveAccess),
    (-7, DkTimeoutError, IOReturn.kIOReturnTimeout),
    (-8, OverrunError, IOReturn.kIOReturnOverrun),
    (-9, PipeStalledError, IOReturn.kUSBHostReturnPipeStalled),
    (-10, AbortedError, IOReturn.kIOReturnAborted),
    (-11, DkError, IOReturn.kIOReturnNoMemory),
    (-12, UnsupportedError, IOReturn.kIOReturnUnsupported),
    (-99, DkError, IOReturn.kIOReturnError),
])
def test_libusb_codes(code: int, cls: type[DkError], ioreturn: IOReturn) -> None:
    err = usb_error(code, "bulk read 0x81")
    assert type(err) is cls
    assert err.ioreturn == ioreturn
    assert err.backend_code == code
    assert err.message.startswith("bulk read 0x81: LIBUSB_ERROR_")


def test_pyusb_exceptions_keep_backend_code() -> None:
    exc = usb.core.USBError("Pipe error", -9, errno.EPIPE)
    err = usb_error(exc, "control request")
    assert isinstance(err, PipeStalledError) and err.backend_code == -9
    assert isinstance(usb_error(usb.core.USBTimeoutError("Operation timed out", -7, 110), "x"), DkTimeoutError)
    assert isinstance(usb_error(NotImplementedError("nope"), "x"), UnsupportedError)
    assert isinstance(usb_error(ValueError("Invalid endpoint address 0x5"), "x"), BadArgumentError)
    assert isinstance(usb_error(usb.core.NoBackendError("No backend"), "x"), MissingToolError)
    # no libusb code, only errno
    assert isinstance(usb_error(usb.core.USBError("gone", None, errno.ENODEV), "x"), NoDeviceError)


def test_access_error_names_udev_rule() -> None:
    err = usb_error(-3, "opening usb://1d6b:0104", idVendor=0x1D6B, idProduct=0x0104)
    assert isinstance(err, NotPermittedError) and isinstance(err, PermissionError)
    assert udev_rule(0x1D6B, 0x0104) in err.message
    assert 'ATTRS{idVendor}=="1d6b", ATTRS{idProduct}=="0104"' in err.message


def test_context_manager_chains() -> None:
    with pytest.raises(ExclusiveAccessError) as info, usb_errors("claiming interface 0"):
        raise usb.core.USBError("Resource busy", -6, errno.EBUSY)
    assert isinstance(info.value.__cause__, usb.core.USBError)
    assert "[kIOReturnExclusiveAccess" in info.value.one_line()


def test_async_transfer_statuses() -> None:
    expected = {1: DkError, 2: DkTimeoutError, 3: AbortedError, 4: PipeStalledError, 5: NoDeviceError,
                6: OverrunError}
    for status, cls in expected.items():
        assert type(usb_error(TRANSFER_STATUS_TO_ERROR[status], "async")) is cls


def test_serial_errors(tmp_path: object) -> None:
    assert isinstance(serial_error(serial.SerialException(errno.ENOENT, "could not open port"), "open"),
                      NoDeviceError)
    assert isinstance(serial_error(serial.SerialException(
        "[Errno 13] could not open port /dev/ttyACM0: [Errno 13] Permission denied"), "open"), NotPermittedError)
    assert isinstance(serial_error(serial.SerialException("could not exclusively lock port"), "open"),
                      ExclusiveAccessError)
    assert isinstance(serial_error(serial.SerialTimeoutException("Write timeout"), "write"), DkTimeoutError)
    assert isinstance(serial_error(serial.SerialException(
        "device reports readiness to read but returned no data (device disconnected?)"), "read"), NoDeviceError)
    assert isinstance(serial_error(ValueError("Not a valid baudrate"), "configure"), BadArgumentError)
