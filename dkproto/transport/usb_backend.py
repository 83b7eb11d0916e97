"""The libusb back end of ``usb://`` (private to the USB transport): pyusb's libusb1 back end on the
libusb shipped by ``libusb-package``, and THE libusb/pyusb -> DkError mapping.

Only the USB transport's modules (:mod:`dkproto.transport.usb`, ``usb_async``, ``usb_enum`` and
this one) import pyusb or ``libusb_package`` (``tests/unit/test_transport_seam.py`` checks it).
Everything else reaches USB devices through :func:`dkproto.transport.open_transport` and
:func:`dkproto.transport.usb.find_devices`.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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

__all__ = [
    "ENDPOINT_TYPES",
    "LIBUSB_ERRORS",
    "PYUSB_ERRORS",
    "PYUSB_OS_ERRORS",
    "SPEEDS",
    "TRANSFER_STATUS_TO_ERROR",
    "get_backend",
    "probe_gone",
    "udev_rule",
    "usb_error",
    "usb_errors",
]

# libusb_error codes (libusb.h) -> (name, DkError class, IOReturn)
LIBUSB_ERRORS: dict[int, tuple[str, type[DkError], IOReturn]] = {
    -1: ("LIBUSB_ERROR_IO", DkError, IOReturn.kIOReturnIOError),
    -2: ("LIBUSB_ERROR_INVALID_PARAM", BadArgumentError, IOReturn.kIOReturnBadArgument),
    -3: ("LIBUSB_ERROR_ACCESS", NotPermittedError, IOReturn.kIOReturnNotPermitted),
    -4: ("LIBUSB_ERROR_NO_DEVICE", NoDeviceError, IOReturn.kIOReturnNoDevice),
    -5: ("LIBUSB_ERROR_NOT_FOUND", NotFoundError, IOReturn.kIOReturnNotFound),
    -6: ("LIBUSB_ERROR_BUSY", ExclusiveAccessError, IOReturn.kIOReturnExclusiveAccess),
    -7: ("LIBUSB_ERROR_TIMEOUT", DkTimeoutError, IOReturn.kIOReturnTimeout),
    -8: ("LIBUSB_ERROR_OVERFLOW", OverrunError, IOReturn.kIOReturnOverrun),
    -9: ("LIBUSB_ERROR_PIPE", PipeStalledError, IOReturn.kUSBHostReturnPipeStalled),
    -10: ("LIBUSB_ERROR_INTERRUPTED", AbortedError, IOReturn.kIOReturnAborted),
    -11: ("LIBUSB_ERROR_NO_MEM", DkError, IOReturn.kIOReturnNoMemory),
    -12: ("LIBUSB_ERROR_NOT_SUPPORTED", UnsupportedError, IOReturn.kIOReturnUnsupported),
    -99: ("LIBUSB_ERROR_OTHER", DkError, IOReturn.kIOReturnError),
}

# libusb_transfer_status (asynchronous completions) -> the libusb_error it means
TRANSFER_STATUS_TO_ERROR: dict[int, int] = {
    1: -1,   # LIBUSB_TRANSFER_ERROR
    2: -7,   # LIBUSB_TRANSFER_TIMED_OUT
    3: -10,  # LIBUSB_TRANSFER_CANCELLED -> aborted
    4: -9,   # LIBUSB_TRANSFER_STALL
    5: -4,   # LIBUSB_TRANSFER_NO_DEVICE
    6: -8,   # LIBUSB_TRANSFER_OVERFLOW
}

#: ``enum libusb_speed`` -> the name :class:`~dkproto.transport.base.TransportInfo` uses.
SPEEDS = {1: "low", 2: "full", 3: "high", 4: "super", 5: "super-plus"}
#: bmAttributes & 3 of an endpoint -> its transfer type.
ENDPOINT_TYPES = {0: "control", 1: "isochronous", 2: "bulk", 3: "interrupt"}

#: What pyusb raises: ``USBError`` (and ``USBTimeoutError``), ``NotImplementedError``
#: (LIBUSB_ERROR_NOT_SUPPORTED), ``ValueError`` (its argument checks), ``NoBackendError``.
PYUSB_ERRORS: tuple[type[BaseException], ...] = (usb.core.USBError, NotImplementedError, ValueError,
                                                 usb.core.NoBackendError)
#: Those, and the OSError a vanished device may raise: what cleanup and best-effort reads tolerate.
PYUSB_OS_ERRORS: tuple[type[BaseException], ...] = (*PYUSB_ERRORS, OSError)

# errno values pyusb may carry without a libusb code -> the libusb code they mean
_ERRNO_CODES = {19: -4, 110: -7, 32: -9, 16: -6, 13: -3, 75: -8, 4: -10}


def udev_rule(idVendor: int | None, idProduct: int | None) -> str:
    """The udev rule line that gives the logged-in user access to this device on Linux."""
    vid = f'ATTRS{{idVendor}}=="{idVendor:04x}", ' if idVendor is not None else ""
    pid = f'ATTRS{{idProduct}}=="{idProduct:04x}", ' if idProduct is not None else ""
    return f'SUBSYSTEM=="usb", {vid}{pid}MODE="0660", TAG+="uaccess"'


def usb_error(exc_or_code: BaseException | int, what: str, *, idVendor: int | None = None,
              idProduct: int | None = None) -> DkError:
    """THE translation from libusb/pyusb to dkproto's error tree (one place, style lesson 7).

    Args:
        exc_or_code: a pyusb ``USBError``/``USBTimeoutError``, ``NotImplementedError`` (pyusb's
            LIBUSB_ERROR_NOT_SUPPORTED), ``ValueError`` (pyusb argument checks),
            ``usb.core.NoBackendError``, or a libusb error code (negative int).
        what: the operation and target, for the message (``"bulk read 0x81"``).
        idVendor: for the udev rule in LIBUSB_ERROR_ACCESS messages.
        idProduct: same.

    Returns:
        The most specific DkError; ``backend_code`` is the libusb error code. The caller raises it
        ``from`` the original exception.
    """
    code: int | None
    detail = ""
    if isinstance(exc_or_code, int):
        code = exc_or_code
    else:
        code = getattr(exc_or_code, "backend_error_code", None)
        detail = getattr(exc_or_code, "strerror", None) or str(exc_or_code)
        if code is None:
            if isinstance(exc_or_code, usb.core.USBTimeoutError):
                code = -7
            elif isinstance(exc_or_code, usb.core.NoBackendError):
                return MissingToolError(f"{what}: no libusb back end ({detail}); "
                                        "install it with: pip install libusb-package", backend_code=None)
            elif isinstance(exc_or_code, NotImplementedError):
                code = -12
            elif isinstance(exc_or_code, (ValueError, TypeError)):
                return BadArgumentError(f"{what}: {detail}")
            else:
                code = _ERRNO_CODES.get(getattr(exc_or_code, "errno", None) or 0, -99)
    name, cls, ioreturn = LIBUSB_ERRORS.get(code, (f"libusb error {code}", DkError, IOReturn.kIOReturnError))
    message = f"{what}: {name}" + (f" ({detail})" if detail and name not in detail else "")
    if cls is NotPermittedError and sys.platform.startswith("linux"):
        message += (f"; to allow it, add the udev rule '{udev_rule(idVendor, idProduct)}' to "
                    "/etc/udev/rules.d/70-dkproto.rules, then run "
                    "'sudo udevadm control --reload && sudo udevadm trigger' and replug")
    return cls(message, ioreturn=ioreturn, backend_code=code)


@contextmanager
def usb_errors(what: str, idVendor: int | None = None, idProduct: int | None = None) -> Iterator[None]:
    """Context manager: any pyusb/libusb error inside becomes :func:`usb_error`'s DkError."""
    try:
        yield
    except DkError:
        raise
    except PYUSB_ERRORS as exc:
        raise usb_error(exc, what, idVendor=idVendor, idProduct=idProduct) from exc


_BACKEND: Any = None


def get_backend() -> Any:
    """pyusb's libusb1 back end on the libusb shipped by ``libusb-package`` (one per process).

    Raises:
        MissingToolError: ``libusb-package`` is not installed, or has no libusb for this platform.
    """
    global _BACKEND
    if _BACKEND is None:
        try:
            import libusb_package
        except ImportError as exc:
            raise MissingToolError("usb:// needs libusb-package: pip install libusb-package") from exc
        _BACKEND = libusb_package.get_libusb1_backend()
        if _BACKEND is None:
            raise MissingToolError("no libusb-1.0 library found (libusb-package has none for this platform)")
    return _BACKEND


def probe_gone(lib: Any, handle: Any, wait_s: float) -> bool:
    """Ask libusb for the active configuration until it answers, says NO_DEVICE, or time runs out.

    An unplug often surfaces as LIBUSB_ERROR_IO first; this tells the two apart.
    ``libusb_get_configuration`` reads sysfs or issues an ioctl; it never runs the event loop, so
    it is safe inside a transfer callback.
    """
    deadline = time.monotonic() + wait_s
    while True:
        value = ctypes.c_int()
        rc = lib.libusb_get_configuration(handle, ctypes.byref(value))
        if rc == -4:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
