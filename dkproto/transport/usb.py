"""``usb://``: any USB device through pyusb and the libusb from ``libusb-package``.

Synchronous calls go through pyusb. Asynchronous transfers (:meth:`USBTransport.submit`,
DriverKit's ``AsyncIO``) use libusb's own asynchronous API (``libusb_submit_transfer`` and
completion callbacks) on the **same** libusb library, context and device handle that pyusb
opened, through the ctypes prototypes pyusb's libusb1 back end already declares. See
``docs/transports.md`` ("Why asynchronous transfers use libusb's async API") for the choice.

All libusb and pyusb errors become :class:`~dkproto.errors.DkError` subclasses in one place,
:func:`usb_error`, which keeps the libusb code in ``backend_code``.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

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
from dkproto.transport.base import (
    DEFAULT_TIMEOUT_MS,
    Transfer,
    TransferCallback,
    Transport,
    TransportInfo,
    _make_transfer,
)
from dkproto.transport.url import QueryOptions, parse_url, parse_vid_pid, url_error

__all__ = [
    "GRAMMAR",
    "LIBUSB_ERRORS",
    "USBTransport",
    "get_backend",
    "udev_rule",
    "usb_error",
    "usb_errors",
]

log = logging.getLogger(__name__)

GRAMMAR = ("usb://VID:PID[?serial=S&index=N&interface=N&config=N&alt=N&detach=1|0] "
           "or usb://BUS/ADDRESS[?...] (VID, PID hex; BUS, ADDRESS decimal)")

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

_SPEEDS = {1: "low", 2: "full", 3: "high", 4: "super", 5: "super-plus"}
_ENDPOINT_TYPES = {0: "control", 1: "isochronous", 2: "bulk", 3: "interrupt"}


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
            name = type(exc_or_code).__name__
            if name == "USBTimeoutError":
                code = -7
            elif name == "NoBackendError":
                return MissingToolError(f"{what}: no libusb back end ({detail}); "
                                        "install it with: pip install libusb-package", backend_code=None)
            elif isinstance(exc_or_code, NotImplementedError):
                code = -12
            elif isinstance(exc_or_code, (ValueError, TypeError)):
                return BadArgumentError(f"{what}: {detail}")
            else:
                errno = getattr(exc_or_code, "errno", None)
                code = {19: -4, 110: -7, 32: -9, 16: -6, 13: -3, 75: -8, 4: -10}.get(errno or 0, -99)
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
    import usb.core

    try:
        yield
    except DkError:
        raise
    except (usb.core.USBError, NotImplementedError, ValueError, usb.core.NoBackendError) as exc:
        raise usb_error(exc, what, idVendor=idVendor, idProduct=idProduct) from exc


_BACKEND: Any = None


def _pyusb_errors() -> tuple[type[BaseException], ...]:
    import usb.core

    return (usb.core.USBError, NotImplementedError, ValueError, usb.core.NoBackendError)


_PYUSB_ERRORS = _pyusb_errors()


def get_backend() -> Any:
    """pyusb's libusb1 back end on the libusb shipped by ``libusb-package`` (one per process)."""
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


class USBTransport(Transport):
    """A USB device through pyusb (``usb://``). See :data:`GRAMMAR`.

    Args:
        idVendor, idProduct: match by IDs, or
        bus, address: match by position.
        serial: iSerialNumber to match.
        index: which of several matches (0-based).
        interface: bInterfaceNumber to claim at open (also the default wIndex for HID reports).
        config: bConfigurationValue to set at open.
        alt: bAlternateSetting to select on ``interface`` at open.
        detach: detach a Linux kernel driver before claiming (reattached on release).
        url: the URL (for messages and ``info``).
    """

    scheme: ClassVar[str] = "usb"
    grammar: ClassVar[str] = GRAMMAR

    def __init__(self, *, idVendor: int | None = None, idProduct: int | None = None,
                 bus: int | None = None, address: int | None = None, serial: str | None = None,
                 index: int = 0, interface: int | None = None, config: int | None = None,
                 alt: int | None = None, detach: bool = True, url: str = "") -> None:
        super().__init__()
        self.idVendor = idVendor
        self.idProduct = idProduct
        self.bus = bus
        self.address = address
        self.serial = serial
        self.index = index
        self.interface = interface
        self.config = config
        self.alt = alt
        self.detach = detach
        self.url = url or self._make_url()
        self.device: Any = None
        self._claimed: set[int] = set()
        self._detached: set[int] = set()
        self._info: TransportInfo | None = None
        self._ep_types: dict[int, int] = {}
        self._usb_async: _LibusbAsync | None = None
        self._lock = threading.Lock()

    def _make_url(self) -> str:
        if self.idVendor is not None and self.idProduct is not None:
            return f"usb://{self.idVendor:04x}:{self.idProduct:04x}"
        return f"usb://{self.bus}/{self.address}"

    # ----------------------------------------------------------------- URL
    @classmethod
    def from_url(cls, url: str) -> USBTransport:
        """Parse ``usb://VID:PID[?...]`` or ``usb://BUS/ADDRESS[?...]`` (see :data:`GRAMMAR`)."""
        parsed = parse_url(url, GRAMMAR)
        if parsed.scheme != "usb":
            raise url_error(url, f"scheme {parsed.scheme!r} is not usb", GRAMMAR)
        kw: dict[str, Any] = {}
        vidpid = parse_vid_pid(parsed.authority)
        if vidpid is not None and parsed.path in ("", "/"):
            kw["idVendor"], kw["idProduct"] = vidpid
        elif parsed.authority.isdigit() and parsed.path[1:].isdigit():
            kw["bus"], kw["address"] = int(parsed.authority), int(parsed.path[1:])
            if not (0 < kw["bus"] < 256 and 0 < kw["address"] < 128):
                raise url_error(url, "BUS must be 1..255 and ADDRESS 1..127", GRAMMAR)
        else:
            raise url_error(url, f"{parsed.authority + parsed.path!r} is neither VID:PID nor BUS/ADDRESS",
                            GRAMMAR)
        opts = QueryOptions(parsed, GRAMMAR)
        kw["serial"] = opts.str("serial")
        kw["index"] = opts.int("index", 0, lo=0, hi=255)
        kw["interface"] = opts.int("interface", None, lo=0, hi=255)
        kw["config"] = opts.int("config", None, lo=0, hi=255)
        kw["alt"] = opts.int("alt", None, lo=0, hi=255)
        kw["detach"] = opts.bool("detach", True)
        opts.finish()
        if kw["alt"] is not None and kw["interface"] is None:
            raise url_error(url, "alt= needs interface=", GRAMMAR)
        return cls(url=url, **kw)

    # ----------------------------------------------------------------- lifecycle
    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Any pyusb/libusb error inside becomes :meth:`_translate`'s DkError."""
        try:
            yield
        except _PYUSB_ERRORS as exc:
            raise self._translate(exc, what) from exc

    def _gone(self, wait_s: float = 0.3) -> bool:
        """True if libusb says the device is gone (polls briefly: an unplug shows as EIO first)."""
        if self.device is None or self.device._ctx.handle is None:
            return False
        backend = self.device._ctx.backend
        handle = self.device._ctx.handle.handle
        return _probe_gone(backend.lib, handle, wait_s)

    def _match(self, dev: Any) -> bool:
        if self.bus is not None and (dev.bus != self.bus or dev.address != self.address):
            return False
        if self.idVendor is not None and (dev.idVendor != self.idVendor or dev.idProduct != self.idProduct):
            return False
        if self.serial is not None:
            import usb.util

            try:
                if usb.util.get_string(dev, dev.iSerialNumber) != self.serial:
                    return False
            except Exception:  # unreadable serial: not a match
                return False
        return True

    def _open(self) -> None:
        import usb.core

        with self._errors(f"finding {self.url}"):
            found = [d for d in usb.core.find(find_all=True, backend=get_backend()) if self._match(d)]
        if len(found) <= self.index:
            raise NoDeviceError(f"no USB device matches {self.url}"
                                + (f" (only {len(found)} match)" if found else ""))
        self.device = found[self.index]
        self.idVendor, self.idProduct = self.device.idVendor, self.device.idProduct
        try:
            with self._errors(f"opening {self.url}"):
                self.device._ctx.managed_open()  # pyusb opens lazily; open now so errors surface here
            if self.config is not None:
                self.set_configuration(self.config)
            if self.interface is not None:
                self.claim_interface(self.interface)
                if self.alt is not None:
                    self.set_alternate_setting(self.interface, self.alt)
        except BaseException:
            self._close()
            raise

    def _close(self) -> None:
        import usb.util

        if self._usb_async is not None:
            self._usb_async.shutdown()
            self._usb_async = None
        if self.device is None:
            return
        for n in sorted(self._claimed):
            try:
                usb.util.release_interface(self.device, n)
            except Exception as exc:  # device gone: nothing to release
                log.debug("release_interface(%d) on close: %s", n, exc)
        self._claimed.clear()
        for n in sorted(self._detached):
            try:
                self.device.attach_kernel_driver(n)
            except Exception as exc:
                log.debug("attach_kernel_driver(%d) on close: %s", n, exc)
        self._detached.clear()
        try:
            usb.util.dispose_resources(self.device)
        except Exception as exc:
            log.debug("dispose_resources on close: %s", exc)
        self._ep_types.clear()

    @property
    def info(self) -> TransportInfo:
        if self._info is None and self.device is not None:
            dev = self.device
            strings: dict[str, str | None] = {}
            for key, index in (("serial_number", dev.iSerialNumber), ("manufacturer", dev.iManufacturer),
                               ("product", dev.iProduct)):
                strings[key] = None
                if index and self.is_open:
                    try:
                        import usb.util

                        strings[key] = usb.util.get_string(dev, index)
                    except Exception:  # unreadable string: leave it out
                        pass
            self._info = TransportInfo(url=self.url, scheme="usb", idVendor=dev.idVendor, idProduct=dev.idProduct,
                                       bus=dev.bus, address=dev.address, interface=self.interface,
                                       speed=_SPEEDS.get(dev.speed or 0), **strings)
        if self._info is None:
            return TransportInfo(url=self.url, scheme="usb", idVendor=self.idVendor, idProduct=self.idProduct,
                                 bus=self.bus, address=self.address, interface=self.interface)
        return self._info

    # ----------------------------------------------------------------- transfers
    def control_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                         data_or_wLength: bytes | int | None = None,
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        """``IOUSBHostDevice::DeviceRequest`` through ``libusb_control_transfer``."""
        self._require_open("control_transfer")
        if bmRequestType & 0x80 and data_or_wLength is None:
            data_or_wLength = 0
        what = f"control request bmRequestType=0x{bmRequestType:02x} bRequest=0x{bRequest:02x}"
        with self._errors(what):
            result = self.device.ctrl_transfer(bmRequestType, bRequest, wValue, wIndex, data_or_wLength, timeout)
        return result.tobytes() if hasattr(result, "tobytes") else result  # type: ignore[no-any-return]

    def read(self, endpoint: int, length: int, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """``IOUSBHostPipe::IO`` on an IN pipe (bulk, interrupt or isochronous)."""
        if not self._is_open:
            self._require_open("read")
        try:  # hot path: no context manager, the message is built only on failure
            return self.device.read(endpoint, length, timeout).tobytes()  # type: ignore[no-any-return]
        except _PYUSB_ERRORS as exc:
            raise self._translate(exc, f"read from endpoint 0x{endpoint:02x}") from exc

    def write(self, endpoint: int, data: bytes, timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        """``IOUSBHostPipe::IO`` on an OUT pipe."""
        if not self._is_open:
            self._require_open("write")
        try:
            return self.device.write(endpoint, data, timeout)  # type: ignore[no-any-return]
        except _PYUSB_ERRORS as exc:
            raise self._translate(exc, f"write to endpoint 0x{endpoint:02x}") from exc

    def _translate(self, exc: BaseException, what: str) -> DkError:
        """:func:`usb_error`, plus: an I/O error on a device that has gone is kIOReturnNoDevice."""
        err = usb_error(exc, what, idVendor=self.idVendor, idProduct=self.idProduct)
        if err.backend_code == -1 and self._gone():
            return NoDeviceError(f"{what}: the device was disconnected", backend_code=-4)
        return err

    # ----------------------------------------------------------------- device management
    def set_configuration(self, bConfigurationValue: int) -> None:
        """``IOUSBHostDevice::SetConfiguration``."""
        if self.device is None:
            self._require_open("set_configuration")
        with self._errors(f"SET_CONFIGURATION {bConfigurationValue}"):
            self.device.set_configuration(bConfigurationValue)
        self._ep_types.clear()

    def claim_interface(self, bInterfaceNumber: int) -> None:
        """``IOUSBHostInterface::Open``: detach the Linux kernel driver (if ``detach``), then claim."""
        import usb.util

        if self.device is None:
            self._require_open("claim_interface")
        n = bInterfaceNumber
        if self.detach and sys.platform.startswith("linux") and n not in self._detached:
            with self._errors(f"detaching the kernel driver from interface {n}"):
                try:
                    active = self.device.is_kernel_driver_active(n)
                except NotImplementedError:
                    active = False
                if active:
                    self.device.detach_kernel_driver(n)
                    self._detached.add(n)
        with self._errors(f"claiming interface {n}"):
            usb.util.claim_interface(self.device, n)
        self._claimed.add(n)

    def release_interface(self, bInterfaceNumber: int) -> None:
        """``IOUSBHostInterface::Close``: release, then reattach the kernel driver we detached."""
        import usb.util

        self._require_open("release_interface")
        n = bInterfaceNumber
        with self._errors(f"releasing interface {n}"):
            usb.util.release_interface(self.device, n)
        self._claimed.discard(n)
        if n in self._detached:
            self._detached.discard(n)
            with self._errors(f"reattaching the kernel driver to interface {n}"):
                self.device.attach_kernel_driver(n)

    def set_alternate_setting(self, bInterfaceNumber: int, bAlternateSetting: int) -> None:
        """``IOUSBHostInterface::SelectAlternateSetting`` (aborts pending transfers first)."""
        if self.device is None:
            self._require_open("set_alternate_setting")
        if self._usb_async is not None:
            self._usb_async.abort(None)
        with self._errors(f"SET_INTERFACE {bInterfaceNumber} alt {bAlternateSetting}"):
            self.device.set_interface_altsetting(bInterfaceNumber, bAlternateSetting)
        self._ep_types.clear()

    def clear_halt(self, endpoint: int) -> None:
        """``IOUSBHostPipe::ClearStall(true)``: CLEAR_FEATURE(ENDPOINT_HALT) and toggle reset."""
        self._require_open("clear_halt")
        with self._errors(f"clearing the halt on endpoint 0x{endpoint:02x}"):
            self.device.clear_halt(endpoint)

    def reset(self) -> None:
        """``IOUSBHostDevice::Reset`` (``libusb_reset_device``)."""
        self._require_open("reset")
        if self._usb_async is not None:
            self._usb_async.abort(None)
        with self._errors("resetting the device"):
            self.device.reset()

    def detach_kernel_driver(self, bInterfaceNumber: int) -> None:
        """Detach the Linux kernel driver from an interface (reattached on close)."""
        self._require_open("detach_kernel_driver")
        with self._errors(f"detaching the kernel driver from interface {bInterfaceNumber}"):
            self.device.detach_kernel_driver(bInterfaceNumber)
        self._detached.add(bInterfaceNumber)

    def attach_kernel_driver(self, bInterfaceNumber: int) -> None:
        """Reattach the Linux kernel driver to an interface."""
        self._require_open("attach_kernel_driver")
        with self._errors(f"attaching the kernel driver to interface {bInterfaceNumber}"):
            self.device.attach_kernel_driver(bInterfaceNumber)
        self._detached.discard(bInterfaceNumber)

    def endpoint_type(self, endpoint: int) -> str:
        """``control``, ``isochronous``, ``bulk`` or ``interrupt`` for an endpoint of the current setting."""
        return _ENDPOINT_TYPES[self._endpoint_info(endpoint)]

    def _endpoint_info(self, endpoint: int) -> int:
        """Claim the endpoint's interface (as pyusb's read/write would) and return its transfer type."""
        if endpoint not in self._ep_types:
            with self._errors(f"looking up endpoint 0x{endpoint:02x}"):
                _intf, ep = self.device._ctx.setup_request(self.device, endpoint)
            self._ep_types[endpoint] = ep.bmAttributes & 3
        return self._ep_types[endpoint]

    # ----------------------------------------------------------------- asynchronous transfers
    def submit(self, endpoint: int, data_or_length: bytes | int, callback: TransferCallback | None = None,
               timeout: int = DEFAULT_TIMEOUT_MS, user_data: Any = None) -> Transfer:
        """``IOUSBHostPipe::AsyncIO`` via ``libusb_submit_transfer``: every submitted transfer is on the wire.

        Raises at once (like AsyncIO's return value) when libusb refuses the submission
        (no device, bad endpoint); otherwise the outcome arrives in the callback.
        """
        if not self._is_open:
            self._require_open("submit")
        transfer = _make_transfer(endpoint, data_or_length, callback, timeout, user_data)
        ep_type = self._ep_types.get(endpoint)
        if ep_type is None:
            ep_type = self._endpoint_info(endpoint)
        if ep_type != 2 and ep_type != 3:
            raise UnsupportedError(f"asynchronous {_ENDPOINT_TYPES[ep_type]} transfers on endpoint "
                                   f"0x{endpoint:02x} are not supported; use read()/write()")
        engine = self._usb_async
        if engine is None:
            with self._lock:
                if self._usb_async is None:
                    self._usb_async = _LibusbAsync(self)
                engine = self._usb_async
        engine.submit(transfer, ep_type)
        return transfer

    def abort(self, endpoint: int | None = None) -> None:
        """``IOUSBHostPipe::Abort``: cancel in-flight transfers; they complete with kIOReturnAborted."""
        if self._usb_async is not None:
            self._usb_async.abort(endpoint)


_ABANDONED: list[Any] = []
_ENGINES: weakref.WeakSet[_LibusbAsync] = weakref.WeakSet()


_ATEXIT_REGISTERED = False


def _shutdown_engines() -> None:
    """Stop event threads before pyusb's finalizers call ``libusb_exit`` at interpreter exit
    (an event thread still inside ``libusb_handle_events`` would make libusb abort)."""
    for engine in list(_ENGINES):
        try:
            engine.shutdown()
        except Exception:  # exiting anyway
            pass


def _probe_gone(lib: Any, handle: Any, wait_s: float) -> bool:
    """Ask libusb for the active configuration until it answers, says NO_DEVICE, or time runs out.

    ``libusb_get_configuration`` reads sysfs or issues an ioctl; it never runs the event loop, so
    it is safe inside a transfer callback.
    """
    import time

    deadline = time.monotonic() + wait_s
    while True:
        value = ctypes.c_int()
        rc = lib.libusb_get_configuration(handle, ctypes.byref(value))
        if rc == -4:
            return True
        if rc == 0 and time.monotonic() >= deadline:
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


# a pooled libusb transfer: (pointer, struct, address, buffer, capacity, memoryview of the
# buffer, cancel function)
_PoolEntry = tuple[Any, Any, int, Any, int, memoryview, Callable[[], None]]
_SUCCESS = IOReturn.kIOReturnSuccess
_monotonic_ns = time.monotonic_ns


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _LibusbAsync:
    """libusb asynchronous transfers on pyusb's own context and handle, one event thread.

    libusb transfer structs and their buffers are pooled per endpoint and reused, so a
    resubmission from a callback costs a few ctypes field writes and ``libusb_submit_transfer``.
    """

    def __init__(self, transport: USBTransport) -> None:
        from usb.backend import libusb1 as be

        self.transport = transport
        backend = transport.device._ctx.backend
        self.lib = backend.lib
        self.ctx = backend.ctx
        self.handle = transport.device._ctx.handle.handle
        lib = self.lib
        lib.libusb_cancel_transfer.argtypes = [be._libusb_transfer_p]
        lib.libusb_cancel_transfer.restype = ctypes.c_int
        lib.libusb_submit_transfer.restype = ctypes.c_int
        lib.libusb_handle_events_timeout_completed.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Timeval),
                                                               ctypes.POINTER(ctypes.c_int)]
        lib.libusb_handle_events_timeout_completed.restype = ctypes.c_int
        # The callback takes the transfer's address as a plain integer (the key of _inflight), so a
        # completion needs no ctypes Structure object; cast to the field's function-pointer type.
        self._submit_transfer = lib.libusb_submit_transfer
        self._raw_cb = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(self._on_complete)
        self._cb = ctypes.cast(self._raw_cb, be._libusb_transfer_cb_fn_p)
        self._lock = threading.Lock()
        # address of the libusb_transfer -> (Transfer, pool entry)
        self._inflight: dict[int, tuple[Transfer, _PoolEntry]] = {}
        self._pool: dict[int, list[_PoolEntry]] = {}
        self._stop = False
        self._idle = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._events, name="dkproto-libusb-events", daemon=True)
        self._thread.start()
        _ENGINES.add(self)
        global _ATEXIT_REGISTERED
        if not _ATEXIT_REGISTERED:
            # registered now, after pyusb's back end exists, so that it runs BEFORE pyusb's
            # finalizers (atexit is last-in, first-out)
            atexit.register(_shutdown_engines)
            _ATEXIT_REGISTERED = True

    def _take(self, endpoint: int, ep_type: int, length: int) -> _PoolEntry:
        """A pooled entry for ``endpoint`` with room for ``length`` bytes, or a new one."""
        free = self._pool.get(endpoint)
        while free:
            try:
                entry = free.pop()
            except IndexError:
                break
            if entry[4] >= length:
                return entry
            self.lib.libusb_free_transfer(entry[0])
        ptr = self.lib.libusb_alloc_transfer(0)
        if not ptr:
            raise DkError("libusb_alloc_transfer failed", ioreturn=IOReturn.kIOReturnNoMemory)
        cap = max(length, 1)
        buf = (ctypes.c_ubyte * cap)()
        t = ptr.contents
        t.dev_handle = self.handle
        t.flags = 0
        t.endpoint = endpoint
        t.type = ep_type  # LIBUSB_TRANSFER_TYPE_BULK 2 / INTERRUPT 3: the bmAttributes values
        t.callback = self._cb
        t.buffer = ctypes.cast(buf, ctypes.c_void_p)
        t.num_iso_packets = 0
        key = ctypes.addressof(t)
        # the buffer as a memoryview (copies in and out without a ctypes call) and the
        # cancel function for Transfer.cancel(), both made once per pooled struct
        view = memoryview(buf).cast("B")
        return ptr, t, key, buf, cap, view, functools.partial(self._cancel, key)

    def submit(self, transfer: Transfer, ep_type: int) -> None:
        length = transfer.length
        endpoint = transfer.endpoint
        free = self._pool.get(endpoint)
        entry = None
        if free:  # the common case: a resubmission reuses a struct
            try:
                entry = free.pop()
            except IndexError:  # another thread took the last one
                pass
        if entry is None or entry[4] < length:
            if entry is not None:
                self.lib.libusb_free_transfer(entry[0])
            entry = self._take(endpoint, ep_type, length)
        ptr, t, key, _buf, _cap, view, cancel = entry
        if length and not endpoint & 0x80:
            view[:length] = transfer.data
        t.timeout = transfer.timeout
        t.length = length
        transfer._cancel = cancel
        self._inflight[key] = (transfer, entry)
        rc = self._submit_transfer(ptr)
        if self._idle:  # the event thread sleeps: wake it (see _events)
            with self._wake:
                self._wake.notify()
        if rc < 0:
            self._inflight.pop(key, None)
            self.lib.libusb_free_transfer(ptr)
            raise usb_error(rc, f"submitting a transfer on endpoint 0x{transfer.endpoint:02x}",
                            idVendor=self.transport.idVendor, idProduct=self.transport.idProduct)

    def _on_complete(self, key: int) -> None:
        item = self._inflight.pop(key, None)
        if item is None:
            return
        transfer, entry = item
        t = entry[1]
        status, actual = t.status, t.actual_length
        endpoint = transfer.endpoint
        data = entry[5][:actual].tobytes() if endpoint & 0x80 else b""
        if self._stop:
            self.lib.libusb_free_transfer(entry[0])
        else:
            pool = self._pool.get(endpoint)
            if pool is None:
                pool = self._pool[endpoint] = []
            pool.append(entry)
        if status == 0:
            # Transfer.complete() for a success, inlined: this runs once per completion and is
            # most of the Python work per transfer (docs/performance.md, Transports)
            if transfer._finished:
                return
            transfer.status = _SUCCESS
            if endpoint & 0x80:
                transfer.data = data
            transfer.actual_length = actual
            transfer.timestamp_ns = _monotonic_ns()
            transfer._finished = True
            event = transfer._event
            if event is not None:
                event.set()
            callback = transfer.callback
            if callback is not None:
                try:
                    callback(transfer)
                except Exception:  # a callback's bug must not kill the completion thread
                    log.exception("completion callback for endpoint 0x%02x raised", endpoint)
            return
        code = TRANSFER_STATUS_TO_ERROR.get(status, -99)
        if code == -1 and _probe_gone(self.lib, self.handle, 0.3):
            code = -4  # an unplug often surfaces as LIBUSB_TRANSFER_ERROR first
        err = usb_error(code, f"asynchronous transfer on endpoint 0x{endpoint:02x}",
                        idVendor=self.transport.idVendor, idProduct=self.transport.idProduct)
        transfer.complete(err.ioreturn, data, actual, error=err)

    def _events(self) -> None:
        """Handle libusb events while asynchronous transfers are in flight; sleep otherwise.

        Sleeping matters: an event thread polling beside pyusb's synchronous calls on the same
        context makes every synchronous transfer wait for libusb's event lock and the GIL
        (measured in the lab: 4x slower synchronous I/O after the first asynchronous transfer).
        """
        tv = _Timeval(0, 100_000)
        handle_events = self.lib.libusb_handle_events_timeout_completed
        wake = self._wake
        while True:
            if not self._inflight:
                with wake:
                    self._idle = True  # set before looking, so a submit either is seen or notifies
                    while not self._inflight and not self._stop:
                        wake.wait(1.0)
                    self._idle = False
                    if self._stop and not self._inflight:
                        return
            rc = handle_events(self.ctx, ctypes.byref(tv), None)
            if rc < 0 and rc != -10:
                log.debug("libusb_handle_events: %d", rc)

    def _cancel(self, key: int) -> None:
        item = self._inflight.get(key)
        if item is not None:
            self.lib.libusb_cancel_transfer(item[1][0])

    def abort(self, endpoint: int | None, wait_s: float = 5.0) -> None:
        import time

        keys = [k for k, item in list(self._inflight.items()) if endpoint is None or item[0].endpoint == endpoint]
        for key in keys:
            self._cancel(key)
        deadline = time.monotonic() + wait_s
        while any(k in self._inflight for k in keys) and time.monotonic() < deadline:
            time.sleep(0.002)

    def shutdown(self) -> None:
        if self._stop:
            return
        self.abort(None)
        self._stop = True
        with self._wake:
            self._wake.notify()
        self._thread.join(timeout=2)
        leftover = list(self._inflight.values())
        _ABANDONED.extend(leftover)  # libusb may still own these buffers: never free them
        for transfer, _entry in leftover:  # never leave a caller waiting forever
            transfer.complete(IOReturn.kIOReturnAborted, error=AbortedError(
                f"transfer on endpoint 0x{transfer.endpoint:02x} abandoned at close"))
        for free in self._pool.values():
            for entry in free:
                self.lib.libusb_free_transfer(entry[0])
        self._pool.clear()
