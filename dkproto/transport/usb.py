"""``usb://``: any USB device through pyusb and the libusb from ``libusb-package``.

The USB transport is this module and its private helpers, the only modules of dkproto that
import pyusb or ``libusb_package`` (``tests/unit/test_transport_seam.py`` checks it):

* :mod:`~dkproto.transport.usb_backend`: the libusb back end and THE libusb/pyusb -> DkError
  mapping, :func:`usb_error` (which keeps the libusb code in ``backend_code``);
* :mod:`~dkproto.transport.usb_enum`: :func:`find_devices`, the devices on the bus (no device opened);
* :mod:`~dkproto.transport.usb_async`: asynchronous transfers (:meth:`USBTransport.submit`,
  DriverKit's ``AsyncIO``) through libusb's own asynchronous API on the **same** libusb library,
  context and device handle that pyusb opened. See ``docs/transports.md`` ("Why asynchronous
  transfers use libusb's async API") for the choice.

Synchronous calls go straight through pyusb. The string descriptors this transport reads on its
own (``info``'s serial number, manufacturer and product; the serial number a ``?serial=`` URL
matches) are control transfers through :meth:`USBTransport.control_transfer`'s own path and
:meth:`~dkproto.transport.base.Transport._internal`, so a recorder sees them
(:attr:`~dkproto.transport.base.Transport.internal_observer`): the requests pyusb's
``usb.util.get_string`` makes, decoded as it decodes them.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import usb.core
import usb.util

from dkproto.errors import DkError, NoDeviceError, UnsupportedError
from dkproto.transport.base import (
    DEFAULT_TIMEOUT_MS,
    InternalObserver,
    Transfer,
    TransferCallback,
    Transport,
    TransportInfo,
    _make_transfer,
)
from dkproto.transport.url import QueryOptions, parse_url, parse_vid_pid, url_error
from dkproto.transport.usb_async import LibusbAsync
from dkproto.transport.usb_backend import (
    ENDPOINT_TYPES,
    LIBUSB_ERRORS,
    PYUSB_ERRORS,
    PYUSB_OS_ERRORS,
    SPEEDS,
    TRANSFER_STATUS_TO_ERROR,
    get_backend,
    probe_gone,
    udev_rule,
    usb_error,
    usb_errors,
)
from dkproto.transport.usb_enum import UsbDeviceInfo, find_devices, pyusb_devices

__all__ = [
    "GRAMMAR",
    "LIBUSB_ERRORS",
    "TRANSFER_STATUS_TO_ERROR",
    "USBTransport",
    "UsbDeviceInfo",
    "find_devices",
    "get_backend",
    "udev_rule",
    "usb_error",
    "usb_errors",
]

log = logging.getLogger(__name__)

GRAMMAR = ("usb://VID:PID[?serial=S&index=N&interface=N&config=N&alt=N&detach=1|0] "
           "or usb://BUS/ADDRESS[?...] (VID, PID hex; BUS, ADDRESS decimal)")

# the hot path (read/write) catches this tuple without an attribute lookup
_PYUSB_ERRORS = PYUSB_ERRORS

#: wLength of the string descriptor requests, as pyusb's ``usb.util.get_langids`` and
#: ``get_string`` ask (254, "maximum even length"): the device sees the same requests as before.
STRING_WLENGTH = 254
_STRING_DESCRIPTOR = 0x03
#: What makes a string unreadable (None in ``info``, no match for ``?serial=``).
_STRING_ERRORS: tuple[type[BaseException], ...] = (DkError, *PYUSB_OS_ERRORS)

#: One transfer kept for later: (op, fields, outcome) as :meth:`Transport._internal` tells them.
_Heard = tuple[str, dict[str, Any], Any]


class _Strings:
    """The string descriptors of one pyusb device, read as ``usb.util.get_string`` reads them, each
    control transfer through the transport's :meth:`~dkproto.transport.base.Transport._internal`.

    ``langids`` is pyusb's ``Device.langids`` cache (string 0 is read once per device). With
    ``heard`` set, the transfers are kept there instead of told to the transport's observer (a
    device that ``?serial=`` examines may not be the one the transport opens).
    """

    def __init__(self, transport: USBTransport, dev: Any, heard: list[_Heard] | None = None) -> None:
        self.transport = transport
        self.dev = dev
        self.langids: tuple[int, ...] | None = None
        self.heard = heard

    def _request(self, by: str, index: int, langid: int) -> bytes:
        """GET_DESCRIPTOR(String ``index``, ``langid``), wLength 254, pyusb's default timeout."""
        t = self.transport
        args: dict[str, Any] = {"bmRequestType": 0x80, "bRequest": 0x06, "wValue": _STRING_DESCRIPTOR << 8 | index,
                                "wIndex": langid, "data_or_wLength": STRING_WLENGTH, "timeout": DEFAULT_TIMEOUT_MS}
        heard = self.heard
        observer: InternalObserver | None = None if heard is None else (
            lambda op, fields, outcome: heard.append((op, fields, outcome)))
        data = t._internal(by, "control_transfer", args, lambda: t._ctrl(
            self.dev, 0x80, 0x06, args["wValue"], langid, STRING_WLENGTH, DEFAULT_TIMEOUT_MS), observer=observer)
        return bytes(data)  # IN: bytes

    def _langids(self, by: str) -> tuple[int, ...]:
        """``Device.langids``: string 0's LANGIDs; () when it is short, odd or unreadable."""
        if self.langids is None:
            try:
                buf = self._request(by, 0, 0)
            except DkError as exc:
                if not isinstance(exc.__cause__, usb.core.USBError):
                    raise  # pyusb caches () only for a USBError; the others reach get_string's caller
                buf = b""
            if len(buf) < 4 or buf[0] < 4 or buf[0] & 1:
                self.langids = ()
            else:
                self.langids = tuple(lo | hi << 8 for lo, hi in zip(buf[2:buf[0]:2], buf[3:buf[0]:2]))
        return self.langids

    def get(self, index: int, by: str) -> str | None:
        """``usb.util.get_string(dev, index)``: None for index 0 (no traffic).

        Raises:
            DkError: the request failed.
            ValueError: no LANGID, a descriptor shorter than 2 bytes, or text that is not UTF-16LE.
        """
        if not index:
            return None
        langids = self._langids(by)
        if not langids:
            raise ValueError("The device has no langid (permission issue, no string descriptors supported or "
                             "device error)")
        buf = self._request(by, index, langids[0])
        if len(buf) < 2:
            raise ValueError("Invalid descriptor")
        return buf[2:buf[0] & 0xFE].decode("utf-16-le")


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
        self._usb_async: LibusbAsync | None = None
        self._strings: _Strings | None = None
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
        return probe_gone(backend.lib, handle, wait_s)

    def _match(self, strings: _Strings) -> bool:
        dev = strings.dev
        if self.bus is not None and (dev.bus != self.bus or dev.address != self.address):
            return False
        if self.idVendor is not None and (dev.idVendor != self.idVendor or dev.idProduct != self.idProduct):
            return False
        if self.serial is not None:
            try:
                if strings.get(dev.iSerialNumber, "open") != self.serial:
                    return False
            except _STRING_ERRORS:  # unreadable serial: not a match
                return False
        return True

    def _open(self) -> None:
        with self._errors(f"finding {self.url}"):
            found = [s for s in (_Strings(self, d, []) for d in pyusb_devices()) if self._match(s)]
        if len(found) <= self.index:
            raise NoDeviceError(f"no USB device matches {self.url}"
                                + (f" (only {len(found)} match)" if found else ""))
        chosen = found[self.index]
        heard, chosen.heard = chosen.heard or [], None
        self._strings = chosen
        observer = self.internal_observer
        if observer is not None:  # the serial number read from this device (not from the others)
            for op, fields, outcome in heard:
                observer(op, fields, outcome)
        self.device = chosen.dev
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
        if self._usb_async is not None:
            self._usb_async.shutdown()
            self._usb_async = None
        if self.device is None:
            return
        for n in sorted(self._claimed):
            try:
                usb.util.release_interface(self.device, n)
            except PYUSB_OS_ERRORS as exc:  # device gone: nothing to release
                log.debug("release_interface(%d) on close: %s", n, exc)
        self._claimed.clear()
        for n in sorted(self._detached):
            try:
                self.device.attach_kernel_driver(n)
            except PYUSB_OS_ERRORS as exc:
                log.debug("attach_kernel_driver(%d) on close: %s", n, exc)
        self._detached.clear()
        try:
            usb.util.dispose_resources(self.device)
        except PYUSB_OS_ERRORS as exc:
            log.debug("dispose_resources on close: %s", exc)
        self._ep_types.clear()

    @property
    def info(self) -> TransportInfo:
        if self._info is None and self.device is not None:
            dev = self.device
            self._info = TransportInfo(url=self.url, scheme="usb", idVendor=dev.idVendor, idProduct=dev.idProduct,
                                       bus=dev.bus, address=dev.address, interface=self.interface,
                                       speed=SPEEDS.get(dev.speed or 0), serial_number=self._string(dev.iSerialNumber),
                                       manufacturer=self._string(dev.iManufacturer),
                                       product=self._string(dev.iProduct))
        if self._info is None:
            return TransportInfo(url=self.url, scheme="usb", idVendor=self.idVendor, idProduct=self.idProduct,
                                 bus=self.bus, address=self.address, interface=self.interface)
        return self._info

    def _string(self, index: int) -> str | None:
        """String descriptor ``index`` (when open), or None when there is none or it cannot be read.

        Read as ``usb.util.get_string`` reads it (string 0 once for the LANGIDs, then the string in
        the first LANGID, wLength 254), through :meth:`_internal` with ``by="info"``.
        """
        if not index or not self.is_open:
            return None
        strings = self._strings
        if strings is None or strings.dev is not self.device:
            strings = self._strings = _Strings(self, self.device)
        try:
            return strings.get(index, "info")
        except _STRING_ERRORS as exc:  # unreadable string: leave it out
            log.debug("string %d of %s: %s", index, self.url, exc)
            return None

    # ----------------------------------------------------------------- transfers
    def control_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                         data_or_wLength: bytes | int | None = None,
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        """``IOUSBHostDevice::DeviceRequest`` through ``libusb_control_transfer``."""
        self._require_open("control_transfer")
        return self._ctrl(self.device, bmRequestType, bRequest, wValue, wIndex, data_or_wLength, timeout)

    def _ctrl(self, dev: Any, bmRequestType: int, bRequest: int, wValue: int, wIndex: int,
              data_or_wLength: bytes | int | None, timeout: int) -> bytes | int:
        """``libusb_control_transfer`` on pyusb device ``dev`` (the open one, or one ``?serial=``
        examines): the one place control requests go to pyusb."""
        if bmRequestType & 0x80 and data_or_wLength is None:
            data_or_wLength = 0
        what = f"control request bmRequestType=0x{bmRequestType:02x} bRequest=0x{bRequest:02x}"
        with self._errors(what):
            result = dev.ctrl_transfer(bmRequestType, bRequest, wValue, wIndex, data_or_wLength, timeout)
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
        return ENDPOINT_TYPES[self._endpoint_info(endpoint)]

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
        # the common cases build the Transfer directly (a resubmission from a callback runs this
        # once per completion); anything else takes _make_transfer's checks and messages
        if endpoint & 0x80 and type(data_or_length) is int and data_or_length >= 0:
            transfer = Transfer(endpoint, data_or_length, b"", timeout, callback, user_data)
        elif not endpoint & 0x80 and type(data_or_length) is bytes:
            transfer = Transfer(endpoint, len(data_or_length), data_or_length, timeout, callback, user_data)
        else:
            transfer = _make_transfer(endpoint, data_or_length, callback, timeout, user_data)
        ep_type = self._ep_types.get(endpoint)
        if ep_type is None:
            ep_type = self._endpoint_info(endpoint)
        if ep_type != 2 and ep_type != 3:
            raise UnsupportedError(f"asynchronous {ENDPOINT_TYPES[ep_type]} transfers on endpoint "
                                   f"0x{endpoint:02x} are not supported; use read()/write()")
        engine = self._usb_async
        if engine is None:
            with self._lock:
                if self._usb_async is None:
                    self._usb_async = LibusbAsync(self)
                engine = self._usb_async
        engine.submit(transfer, ep_type)
        return transfer

    def abort(self, endpoint: int | None = None) -> None:
        """``IOUSBHostPipe::Abort``: cancel in-flight transfers; they complete with kIOReturnAborted."""
        if self._usb_async is not None:
            self._usb_async.abort(endpoint)
