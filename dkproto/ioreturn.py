"""IOReturn: the status codes of IOKit and DriverKit, with Apple's names and values.

Values come from XNU ``iokit/IOKit/IOReturn.h`` and the USB family headers
(``IOKit/usb/USB.h``, ``IOUSBHostFamilyDefinitions.h``); see
``docs/reference/driverkit.md`` section 1. Members keep Apple's spelling
(``kIOReturnTimeout``) so that ported code reads the same.

Composition helpers mirror ``mach/error.h``: ``err_system``, ``err_sub``,
``iokit_common_err``, ``iokit_family_err``, ``iokit_usb_err`` and
``iokit_usbhost_err``.
"""

from __future__ import annotations

import enum

__all__ = [
    "IOReturn",
    "err_get_code",
    "err_get_sub",
    "err_get_system",
    "err_sub",
    "err_system",
    "iokit_common_err",
    "iokit_family_err",
    "iokit_usb_err",
    "iokit_usbhost_err",
    "iokit_vendor_specific_err",
    "ioreturn_name",
    "sub_iokit_common",
    "sub_iokit_usb",
    "sys_iokit",
]


def err_system(x: int) -> int:
    """``err_system(x)``: the 6-bit system field, shifted into place."""
    return (x & 0x3F) << 26


def err_sub(x: int) -> int:
    """``err_sub(x)``: the 12-bit subsystem field, shifted into place."""
    return (x & 0xFFF) << 14


def err_get_system(err: int) -> int:
    """``err_get_system(err)``."""
    return (err >> 26) & 0x3F


def err_get_sub(err: int) -> int:
    """``err_get_sub(err)``."""
    return (err >> 14) & 0xFFF


def err_get_code(err: int) -> int:
    """``err_get_code(err)``."""
    return err & 0x3FFF


sys_iokit = err_system(0x38)  # 0xE0000000
sub_iokit_common = err_sub(0)
sub_iokit_usb = err_sub(1)  # 0x4000
iokit_usbhost_group = 1 << 12


def iokit_common_err(code: int) -> int:
    """``iokit_common_err(c)`` = ``sys_iokit | sub_iokit_common | c``."""
    return sys_iokit | sub_iokit_common | code


def iokit_family_err(sub: int, code: int) -> int:
    """``iokit_family_err(sub, c)`` = ``sys_iokit | sub | c``."""
    return sys_iokit | sub | code


def iokit_vendor_specific_err(code: int) -> int:
    """``iokit_vendor_specific_err(c)`` = ``0xE3FF8000 | c``."""
    return 0xE3FF8000 | code


def iokit_usb_err(code: int) -> int:
    """``iokit_usb_err(c)`` (legacy IOUSBFamily range, USB.h)."""
    return iokit_family_err(sub_iokit_usb, code)


def iokit_usbhost_err(code: int) -> int:
    """``iokit_usbhost_err(m)`` (IOUSBHostFamily range, 0xE0005000 | m)."""
    return iokit_family_err(sub_iokit_usb, iokit_usbhost_group | (code & 0xFFF))


class IOReturn(enum.IntEnum):
    """IOKit status codes, unsigned 32-bit values (``kern_return_t`` as unsigned)."""

    kIOReturnSuccess = 0
    kIOReturnInvalid = 0xE0000001
    kIOReturnError = 0xE00002BC
    kIOReturnNoMemory = 0xE00002BD
    kIOReturnNoResources = 0xE00002BE
    kIOReturnIPCError = 0xE00002BF
    kIOReturnNoDevice = 0xE00002C0
    kIOReturnNotPrivileged = 0xE00002C1
    kIOReturnBadArgument = 0xE00002C2
    kIOReturnLockedRead = 0xE00002C3
    kIOReturnLockedWrite = 0xE00002C4
    kIOReturnExclusiveAccess = 0xE00002C5
    kIOReturnBadMessageID = 0xE00002C6
    kIOReturnUnsupported = 0xE00002C7
    kIOReturnVMError = 0xE00002C8
    kIOReturnInternalError = 0xE00002C9
    kIOReturnIOError = 0xE00002CA
    kIOReturnCannotLock = 0xE00002CC
    kIOReturnNotOpen = 0xE00002CD
    kIOReturnNotReadable = 0xE00002CE
    kIOReturnNotWritable = 0xE00002CF
    kIOReturnNotAligned = 0xE00002D0
    kIOReturnBadMedia = 0xE00002D1
    kIOReturnStillOpen = 0xE00002D2
    kIOReturnRLDError = 0xE00002D3
    kIOReturnDMAError = 0xE00002D4
    kIOReturnBusy = 0xE00002D5
    kIOReturnTimeout = 0xE00002D6
    kIOReturnOffline = 0xE00002D7
    kIOReturnNotReady = 0xE00002D8
    kIOReturnNotAttached = 0xE00002D9
    kIOReturnNoChannels = 0xE00002DA
    kIOReturnNoSpace = 0xE00002DB
    kIOReturnPortExists = 0xE00002DD
    kIOReturnCannotWire = 0xE00002DE
    kIOReturnNoInterrupt = 0xE00002DF
    kIOReturnNoFrames = 0xE00002E0
    kIOReturnMessageTooLarge = 0xE00002E1
    kIOReturnNotPermitted = 0xE00002E2
    kIOReturnNoPower = 0xE00002E3
    kIOReturnNoMedia = 0xE00002E4
    kIOReturnUnformattedMedia = 0xE00002E5
    kIOReturnUnsupportedMode = 0xE00002E6
    kIOReturnUnderrun = 0xE00002E7
    kIOReturnOverrun = 0xE00002E8
    kIOReturnDeviceError = 0xE00002E9
    kIOReturnNoCompletion = 0xE00002EA
    kIOReturnAborted = 0xE00002EB
    kIOReturnNoBandwidth = 0xE00002EC
    kIOReturnNotResponding = 0xE00002ED
    kIOReturnIsoTooOld = 0xE00002EE
    kIOReturnIsoTooNew = 0xE00002EF
    kIOReturnNotFound = 0xE00002F0

    # Legacy IOUSBFamily range (USB.h), iokit_usb_err(c) = 0xE0004000 | c.
    kIOUSBCRCErr = 0xE0004001
    kIOUSBBitstufErr = 0xE0004002
    kIOUSBDataToggleErr = 0xE0004003
    kIOUSBPIDCheckErr = 0xE0004006
    kIOUSBWrongPIDErr = 0xE0004007
    kIOUSBReserved1Err = 0xE000400A
    kIOUSBReserved2Err = 0xE000400B
    kIOUSBBufferOverrunErr = 0xE000400C
    kIOUSBBufferUnderrunErr = 0xE000400D
    kIOUSBNotSent1Err = 0xE000400E
    kIOUSBNotSent2Err = 0xE000400F
    kIOUSBLinkErr = 0xE0004010
    kIOUSBTooManyTransactionsPending = 0xE0004042
    kIOUSBInvalidSSEndpoint = 0xE0004043
    kIOUSBStreamsNotSupported = 0xE0004044
    kIOUSBDeviceCountExceeded = 0xE0004045
    kIOUSBEndpointCountExceeded = 0xE0004046
    kIOUSBDevicePortWasNotSuspended = 0xE0004047
    kIOUSBClearPipeStallNotRecursive = 0xE0004048
    kIOUSBDeviceTransferredToCompanion = 0xE0004049
    kIOUSBSyncRequestOnWLThread = 0xE000404A
    kIOUSBHighSpeedSplitError = 0xE000404B
    kIOUSBLowLatencyFrameListNotPreviouslyAllocated = 0xE000404C
    kIOUSBLowLatencyBufferNotPreviouslyAllocated = 0xE000404D
    kIOUSBInterfaceNotFound = 0xE000404E
    kIOUSBPipeStalled = 0xE000404F
    kIOUSBTransactionReturned = 0xE0004050
    kIOUSBTransactionTimeout = 0xE0004051
    kIOUSBPortWasSuspended = 0xE0004052
    kIOUSBConfigNotFound = 0xE0004056
    kIOUSBEndpointNotFound = 0xE0004057
    kIOUSBNotEnoughPowerErr = 0xE000405D
    kIOUSBNotEnoughPipesErr = 0xE000405E
    kIOUSBNoAsyncPortErr = 0xE000405F
    kIOUSBTooManyPipesErr = 0xE0004060
    kIOUSBUnknownPipeErr = 0xE0004061

    # IOUSBHostFamily range (the stack behind USBDriverKit), 0xE0005000 | m.
    kUSBHostReturnPipeStalled = 0xE0005000
    kUSBHostReturnNoPower = 0xE0005001

    @classmethod
    def coerce(cls, value: int) -> IOReturn | int:
        """Return the member for ``value`` (signed or unsigned), or the plain int if unknown."""
        value &= 0xFFFFFFFF
        try:
            return cls(value)
        except ValueError:
            return value

    @property
    def signed(self) -> int:
        """The value as a signed 32-bit ``kern_return_t``."""
        return self.value - (1 << 32) if self.value & 0x80000000 else self.value


# Aliases Apple defines with the same value (kept out of the enum so names stay unique).
kIOUSBDeviceNotHighSpeed = IOReturn.kIOUSBDeviceTransferredToCompanion


def ioreturn_name(value: int) -> str:
    """``kIOReturnTimeout (0xe00002d6)`` for a known code, ``0x...`` otherwise."""
    v = IOReturn.coerce(value)
    if isinstance(v, IOReturn):
        return f"{v.name} (0x{v.value:08x})"
    return f"0x{v:08x}"
