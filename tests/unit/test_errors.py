"""The exception tree and the IOReturn table, pinned to the reference values."""

from __future__ import annotations

import pytest

import dkproto
from dkproto import errors
from dkproto.ioreturn import (
    IOReturn,
    err_get_code,
    err_get_sub,
    err_get_system,
    iokit_common_err,
    iokit_usb_err,
    iokit_usbhost_err,
    iokit_vendor_specific_err,
    ioreturn_name,
    sys_iokit,
)

# (name, value) from docs/reference/driverkit.md §1.2 and §1.3.
REFERENCE = {
    "kIOReturnSuccess": 0,
    "kIOReturnError": 0xE00002BC,
    "kIOReturnNoMemory": 0xE00002BD,
    "kIOReturnNoDevice": 0xE00002C0,
    "kIOReturnBadArgument": 0xE00002C2,
    "kIOReturnExclusiveAccess": 0xE00002C5,
    "kIOReturnUnsupported": 0xE00002C7,
    "kIOReturnNotOpen": 0xE00002CD,
    "kIOReturnBusy": 0xE00002D5,
    "kIOReturnTimeout": 0xE00002D6,
    "kIOReturnNotPermitted": 0xE00002E2,
    "kIOReturnUnderrun": 0xE00002E7,
    "kIOReturnOverrun": 0xE00002E8,
    "kIOReturnNoCompletion": 0xE00002EA,
    "kIOReturnAborted": 0xE00002EB,
    "kIOReturnNotResponding": 0xE00002ED,
    "kIOReturnNotFound": 0xE00002F0,
    "kIOUSBPipeStalled": 0xE000404F,
    "kIOUSBTransactionTimeout": 0xE0004051,
    "kIOUSBUnknownPipeErr": 0xE0004061,
    "kUSBHostReturnPipeStalled": 0xE0005000,
    "kUSBHostReturnNoPower": 0xE0005001,
}


@pytest.mark.parametrize(("name", "value"), sorted(REFERENCE.items()))
def test_ioreturn_values_match_reference(name: str, value: int) -> None:
    assert IOReturn[name] == value


def test_unassigned_codes_are_absent() -> None:
    # 0x2CB and 0x2DC are unassigned in IOReturn.h.
    for code in (0xE00002CB, 0xE00002DC):
        assert IOReturn.coerce(code) == code
        assert not isinstance(IOReturn.coerce(code), IOReturn)


def test_composition_helpers() -> None:
    assert sys_iokit == 0xE0000000
    assert iokit_common_err(0x2BC) == IOReturn.kIOReturnError
    assert iokit_usb_err(0x4F) == IOReturn.kIOUSBPipeStalled
    assert iokit_usbhost_err(0) == IOReturn.kUSBHostReturnPipeStalled
    assert iokit_usbhost_err(1) == IOReturn.kUSBHostReturnNoPower
    assert iokit_vendor_specific_err(1) == 0xE3FF8001
    assert err_get_system(IOReturn.kIOUSBPipeStalled) == 0x38
    assert err_get_sub(IOReturn.kIOUSBPipeStalled) == 1
    assert err_get_code(IOReturn.kIOReturnTimeout) == 0x2D6


def test_signed_and_names() -> None:
    assert IOReturn.kIOReturnError.signed == -536870212
    assert IOReturn.coerce(-536870212) is IOReturn.kIOReturnError
    assert ioreturn_name(0xE00002D6) == "kIOReturnTimeout (0xe00002d6)"
    assert ioreturn_name(0x1234) == "0x00001234"


@pytest.mark.parametrize(
    ("cls", "code", "builtin"),
    [
        (errors.NoDeviceError, IOReturn.kIOReturnNoDevice, ConnectionError),
        (errors.BadArgumentError, IOReturn.kIOReturnBadArgument, ValueError),
        (errors.DecodeError, IOReturn.kIOReturnBadArgument, ValueError),
        (errors.ExclusiveAccessError, IOReturn.kIOReturnExclusiveAccess, None),
        (errors.UnsupportedError, IOReturn.kIOReturnUnsupported, None),
        (errors.NotOpenError, IOReturn.kIOReturnNotOpen, None),
        (errors.DkTimeoutError, IOReturn.kIOReturnTimeout, TimeoutError),
        (errors.NotPermittedError, IOReturn.kIOReturnNotPermitted, PermissionError),
        (errors.OverrunError, IOReturn.kIOReturnOverrun, None),
        (errors.AbortedError, IOReturn.kIOReturnAborted, None),
        (errors.PipeStalledError, IOReturn.kUSBHostReturnPipeStalled, None),
        (errors.NotFoundError, IOReturn.kIOReturnNotFound, LookupError),
    ],
)
def test_every_error_carries_its_ioreturn(cls: type, code: IOReturn, builtin: type | None) -> None:
    err = cls("boom")
    assert isinstance(err, errors.DkError)
    assert err.ioreturn == code
    if builtin is not None:
        assert isinstance(err, builtin)
    assert err.one_line() == f"boom [{code.name} (0x{int(code):08x})]"


def test_instance_overrides_ioreturn() -> None:
    err = errors.PipeStalledError("stall", ioreturn=IOReturn.kIOUSBPipeStalled, backend_code=-9)
    assert err.ioreturn is IOReturn.kIOUSBPipeStalled
    assert err.backend_code == -9


def test_decode_error_names_offset_descriptor_and_rule() -> None:
    err = errors.DecodeError("bLength 7 < 9", offset=18, descriptor="Interface", rule="bLength")
    assert str(err) == "offset 18, Interface: bLength 7 < 9"
    assert (err.offset, err.descriptor, err.rule) == (18, "Interface", "bLength")


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (IOReturn.kIOUSBPipeStalled, errors.PipeStalledError),
        (IOReturn.kUSBHostReturnPipeStalled, errors.PipeStalledError),
        (IOReturn.kIOUSBTransactionTimeout, errors.DkTimeoutError),
        (IOReturn.kIOReturnNoDevice, errors.NoDeviceError),
        (IOReturn.kIOReturnNoMemory, errors.DkError),
    ],
)
def test_error_for_ioreturn_keeps_exact_code(code: IOReturn, cls: type) -> None:
    err = errors.error_for_ioreturn(code)
    assert type(err) is cls
    assert err.ioreturn == code


def test_public_api_is_curated() -> None:
    assert dkproto.__all__ == sorted(dkproto.__all__)
    for name in dkproto.__all__:
        assert hasattr(dkproto, name), name
