"""The ``Transport`` ABC: dkproto's only I/O seam, and ``TransportInfo``.

Everything that moves bytes to or from a device goes through a :class:`Transport`:
``usb://`` (pyusb + libusb), ``hid://`` (hidapi), ``serial://`` (pyserial), ``sim://``
(an in-process device), ``MockTransport`` (unit tests) and wrappers such as ``spy+``.
Callers (the CLI, the DriverKit mirror in ``dkproto.iokit``, tests) program against this
class only, so a wrapper (spy today, record and replay later) slots in without touching them.

The interface is deliberately small (style lesson 5):

* lifecycle: :meth:`Transport.open`, :meth:`Transport.close`, context manager, :attr:`Transport.info`;
* transfers: :meth:`Transport.control_transfer`, :meth:`Transport.read`, :meth:`Transport.write`,
  HID reports :meth:`Transport.get_report` / :meth:`Transport.set_report` and the report
  descriptor :meth:`Transport.report_descriptor`;
* asynchronous transfers: :meth:`Transport.submit` (returns a :class:`Transfer`, calls a
  completion callback) and :meth:`Transport.abort`;
* USB device management, which only USB-like back ends implement (others raise
  :class:`~dkproto.errors.UnsupportedError`, kIOReturnUnsupported): :meth:`Transport.set_configuration`,
  :meth:`Transport.claim_interface`, :meth:`Transport.release_interface`,
  :meth:`Transport.set_alternate_setting`, :meth:`Transport.clear_halt`, :meth:`Transport.reset`.

Units and conventions follow DriverKit (``IOUSBHostPipe``, ``IOUSBHostDevice::DeviceRequest``):
timeouts are in **milliseconds, 0 means wait forever**; endpoints are full ``bEndpointAddress``
values with the direction bit (0x81 is IN 1, 0x02 is OUT 2); every failure is a
:class:`~dkproto.errors.DkError` carrying its IOReturn.
"""

from __future__ import annotations

import abc
import collections
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from dkproto.device.request import ControlRequest  # re-exported: it lives in dkproto.device
from dkproto.errors import (
    AbortedError,
    BadArgumentError,
    DkError,
    DkTimeoutError,
    NotOpenError,
    UnsupportedError,
    error_for_ioreturn,
)
from dkproto.ioreturn import IOReturn
from dkproto.transport.descriptors import read_report_descriptor

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "HID_REPORT_FEATURE",
    "HID_REPORT_INPUT",
    "HID_REPORT_OUTPUT",
    "ControlRequest",
    "InternalObserver",
    "Transfer",
    "TransferCallback",
    "Transport",
    "TransportInfo",
    "TransportWrapper",
]

log = logging.getLogger(__name__)

#: Default timeout for transfers, in milliseconds (0 would mean "forever").
DEFAULT_TIMEOUT_MS = 1000

#: ``IOHIDReportType`` values (``kIOHIDReportTypeInput`` 0, ``Output`` 1, ``Feature`` 2).
HID_REPORT_INPUT = 0
HID_REPORT_OUTPUT = 1
HID_REPORT_FEATURE = 2



@dataclass(frozen=True, kw_only=True)
class TransportInfo:
    """What a transport is bound to: where the device is and what it says it is.

    Fields that a back end does not know are ``None``. USB field names are the spec's.

    Attributes:
        url: the URL the transport was opened with (normalized by the scheme).
        scheme: the scheme that handles it (``usb``, ``hid``, ``serial``, ``sim``, ``mock``...).
        idVendor: USB vendor ID.
        idProduct: USB product ID.
        serial_number: the iSerialNumber string, if read.
        manufacturer: the iManufacturer string, if read.
        product: the iProduct string, if read.
        bus: USB bus number.
        address: USB device address on that bus.
        interface: the bInterfaceNumber this transport is bound to, if any.
        path: an OS path (``/dev/hidraw0``, ``/dev/ttyACM0``) when there is one.
        speed: link speed as text (``low``, ``full``, ``high``, ``super``), if known.
        extra: anything else the back end wants to say (shown by ``--json``).
    """

    url: str
    scheme: str
    idVendor: int | None = None
    idProduct: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    bus: int | None = None
    address: int | None = None
    interface: int | None = None
    path: str | None = None
    speed: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``None`` fields left out)."""
        out: dict[str, Any] = {}
        for name in ("url", "scheme", "idVendor", "idProduct", "serial_number", "manufacturer",
                     "product", "bus", "address", "interface", "path", "speed"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.extra:
            out["extra"] = dict(self.extra)
        return out


_R = TypeVar("_R")

#: A completion callback: called once with the finished :class:`Transfer`.
TransferCallback = Callable[["Transfer"], None]

#: :attr:`Transport.internal_observer`: called as ``observer(op, request, outcome)`` after each wire
#: transfer a transport makes on its own (see :meth:`Transport._internal`).
InternalObserver = Callable[[str, dict[str, Any], Any], None]


class Transfer:
    """One asynchronous transfer (``IOUSBHostPipe::AsyncIO``), returned by :meth:`Transport.submit`.

    When it completes, ``status`` holds the IOReturn (``kIOReturnSuccess``, ``kIOReturnTimeout``,
    ``kIOReturnAborted``, ``kUSBHostReturnPipeStalled``, ``kIOReturnNoDevice``...),
    ``actual_length`` the byte count, ``data`` the bytes read (IN) or sent (OUT),
    ``timestamp_ns`` the completion time (``time.monotonic_ns()``), ``error`` the matching
    :class:`~dkproto.errors.DkError` (or ``None``), and the callback runs once. These are the
    arguments of DriverKit's ``CompleteAsyncIO(action, status, actualByteCount,
    completionTimestamp)``.

    Callbacks run on the transport's completion thread, never inside :meth:`Transport.submit`.
    They must not block; they may submit new transfers.

    Args:
        endpoint: bEndpointAddress (direction bit set for IN).
        length: bytes asked for (IN) or to send (OUT).
        data: the bytes to send (OUT); ``b""`` for IN.
        timeout: milliseconds, 0 for none.
        callback: called once on completion.
        user_data: anything the caller wants back in the callback (``OSAction`` reference).
    """

    __slots__ = (
        "__weakref__",
        "_cancel",
        "_event",
        "_finished",
        "actual_length",
        "callback",
        "data",
        "endpoint",
        "error",
        "length",
        "status",
        "timeout",
        "timestamp_ns",
        "user_data",
    )

    def __init__(self, endpoint: int, length: int, data: bytes = b"", timeout: int = DEFAULT_TIMEOUT_MS,
                 callback: TransferCallback | None = None, user_data: Any = None) -> None:
        self.endpoint = endpoint
        self.length = length
        self.data = data
        self.timeout = timeout
        self.callback = callback
        self.user_data = user_data
        self.status: IOReturn | int = IOReturn.kIOReturnInvalid
        self.actual_length = 0
        self.timestamp_ns = 0
        self.error: DkError | None = None
        self._finished = False
        self._event: threading.Event | None = None  # created only if someone waits
        self._cancel: Callable[[], None] | None = None

    @property
    def is_in(self) -> bool:
        """True for an IN (device-to-host) transfer."""
        return bool(self.endpoint & 0x80)

    def done(self) -> bool:
        """True once the transfer has completed (in any status)."""
        return self._finished

    def wait(self, timeout: float | None = None) -> Transfer:
        """Block until completion.

        Args:
            timeout: seconds to wait, ``None`` for ever.

        Raises:
            DkTimeoutError: the transfer did not complete in time (it stays in flight).
        """
        if self._finished:
            return self
        event = self._event
        if event is None:
            event = self._event = threading.Event()
        # complete() sets _finished before it reads _event: one of the two sees the other
        if not self._finished and not event.wait(timeout):
            raise DkTimeoutError(f"transfer on endpoint 0x{self.endpoint:02x} still pending after {timeout} s")
        return self

    def result(self, timeout: float | None = None) -> bytes | int:
        """Wait, then return the data read (IN) or the byte count written (OUT), or raise ``error``."""
        self.wait(timeout)
        if self.error is not None:
            raise self.error
        return self.data if self.is_in else self.actual_length

    def cancel(self) -> None:
        """Ask the back end to cancel; the transfer then completes with ``kIOReturnAborted``."""
        if not self.done() and self._cancel is not None:
            self._cancel()

    def complete(self, status: IOReturn | int, data: bytes = b"", actual_length: int | None = None,
                 error: DkError | None = None) -> None:
        """Finish the transfer and run the callback. Back ends call this exactly once.

        Args:
            status: the IOReturn.
            data: bytes read (IN); for OUT the original data is kept.
            actual_length: bytes moved (defaults to ``len(data)`` for IN).
            error: the DkError for a non-success status (built from ``status`` if omitted).
        """
        if self._finished:
            return
        self.status = status
        if self.is_in:
            self.data = data
        self.actual_length = len(data) if actual_length is None else actual_length
        if status != IOReturn.kIOReturnSuccess and error is None:
            error = error_for_ioreturn(int(status), f"transfer on endpoint 0x{self.endpoint:02x} failed")
        self.error = error
        self.timestamp_ns = time.monotonic_ns()
        self._finished = True
        event = self._event
        if event is not None:
            event.set()
        if self.callback is not None:
            try:
                self.callback(self)
            except Exception:  # a callback's bug must not kill the completion thread
                log.exception("completion callback for endpoint 0x%02x raised", self.endpoint)

    def __repr__(self) -> str:
        state = f"status=0x{int(self.status) & 0xFFFFFFFF:08x}" if self.done() else "pending"
        return f"<Transfer ep=0x{self.endpoint:02x} len={self.length} {state} actual={self.actual_length}>"


def _check_uint(name: str, value: Any, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
        raise BadArgumentError(f"control request: {name} {value!r} is not an integer 0..0x{hi:X} "
                               f"({hi.bit_length()}-bit field of the SETUP packet)")


def check_control_request(bmRequestType: Any, bRequest: Any, wValue: Any, wIndex: Any, data_or_wLength: Any,
                          timeout: Any) -> None:
    """Refuse a control request no SETUP packet can carry (kIOReturnBadArgument), before any back end.

    bmRequestType and bRequest are 8-bit, wValue, wIndex and wLength 16-bit (USB 2.0 9.3): an IN
    request takes wLength (an int, or None for 0), an OUT request its data stage as a bytes-like
    object (or None) of at most 65,535 bytes; never an int (``bytes(n)`` would be n zero bytes).
    The timeout is milliseconds >= 0. :class:`Transport` runs this for every subclass's
    ``control_transfer``.
    """
    _check_uint("bmRequestType", bmRequestType, 0xFF)
    _check_uint("bRequest", bRequest, 0xFF)
    _check_uint("wValue", wValue, 0xFFFF)
    _check_uint("wIndex", wIndex, 0xFFFF)
    if bmRequestType & 0x80:
        if data_or_wLength is not None:
            if not isinstance(data_or_wLength, int):
                raise BadArgumentError(f"control request: an IN request (bmRequestType 0x{bmRequestType:02x}) "
                                       f"takes wLength (an int), not {type(data_or_wLength).__name__}")
            _check_uint("wLength", data_or_wLength, 0xFFFF)
    elif data_or_wLength is not None:
        if isinstance(data_or_wLength, (int, str)):
            raise BadArgumentError(f"control request: an OUT request (bmRequestType 0x{bmRequestType:02x}) takes "
                                   f"its data stage as bytes, not {type(data_or_wLength).__name__} "
                                   f"{data_or_wLength!r}")
        try:
            size = memoryview(data_or_wLength).nbytes
        except TypeError:
            raise BadArgumentError(f"control request: OUT data must be bytes-like, not "
                                   f"{type(data_or_wLength).__name__}") from None
        if size > 0xFFFF:
            raise BadArgumentError(f"control request: {size:,} bytes of OUT data do not fit wLength "
                                   "(16-bit, at most 65,535)")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        raise BadArgumentError(f"control request: timeout {timeout!r} is not an integer >= 0 (milliseconds)")


def check_write_data(data: Any, what: str) -> None:
    """Refuse OUT data that is not bytes-like (an int would become that many zero bytes)."""
    if isinstance(data, (int, str)) or not isinstance(data, (bytes, bytearray, memoryview)) and not _buffer(data):
        raise BadArgumentError(f"{what}: data must be bytes-like, not {type(data).__name__} {data!r}"[:200])


def _buffer(data: Any) -> bool:
    try:
        memoryview(data)
    except TypeError:
        return False
    return True


def _checked_control(fn: Callable[..., bytes | int]) -> Callable[..., bytes | int]:
    @functools.wraps(fn)
    def control_transfer(self: Transport, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                         data_or_wLength: bytes | int | None = None,
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        check_control_request(bmRequestType, bRequest, wValue, wIndex, data_or_wLength, timeout)
        return fn(self, bmRequestType, bRequest, wValue, wIndex, data_or_wLength, timeout)

    control_transfer.__dk_checked__ = True  # type: ignore[attr-defined]
    return control_transfer


def _checked_write(fn: Callable[..., int]) -> Callable[..., int]:
    @functools.wraps(fn)
    def write(self: Transport, *args: Any, **kw: Any) -> int:
        data = args[1] if len(args) > 1 else kw.get("data", b"")
        if not isinstance(data, (bytes, bytearray)):
            check_write_data(data, f"{type(self).__name__}.write")
        return fn(self, *args, **kw)

    write.__dk_checked__ = True  # type: ignore[attr-defined]
    return write


class Transport(abc.ABC):
    """A device connection chosen by URL. Subclasses implement the abstract methods.

    Life cycle: created closed by ``open_transport(url)`` (or the class's ``from_url``);
    :meth:`open` acquires OS handles, :meth:`close` releases every one of them (also after
    errors and unplugs). Using a closed transport raises :class:`~dkproto.errors.NotOpenError`.

    Class attributes:
        scheme: the URL scheme this class serves.
        grammar: the URL grammar, quoted in :class:`~dkproto.errors.URLError` messages.
    """

    scheme: ClassVar[str] = ""
    grammar: ClassVar[str] = ""

    #: Told about every transfer the transport puts on the wire **on its own**, inside one of its
    #: calls, rather than because the caller asked for it: ``usb://`` reading the string
    #: descriptors for :attr:`info`, or the serial number a ``?serial=`` URL matches, during
    #: :meth:`open`. None (the default): nobody is told. See :meth:`_internal` for the arguments.
    #: A recorder sets it on the transport it wraps before opening it (a
    #: :class:`TransportWrapper` forwards it to its inner transport).
    internal_observer: InternalObserver | None = None

    def __init_subclass__(cls, **kw: Any) -> None:
        """Every subclass's ``control_transfer`` and ``write`` check their arguments first
        (:func:`check_control_request`, :func:`check_write_data`): one rule for every back end."""
        super().__init_subclass__(**kw)
        for name, wrap in (("control_transfer", _checked_control), ("write", _checked_write)):
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "__dk_checked__", False) \
                    and not getattr(fn, "__isabstractmethod__", False):
                setattr(cls, name, wrap(fn))

    def __init__(self) -> None:
        self._is_open = False
        self._async: _ThreadedAsync | None = None

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_url(cls, url: str) -> Transport:
        """Build a (closed) transport from a URL of this class's scheme.

        Raises:
            URLError: the URL does not follow :attr:`grammar`; the message quotes it.
        """
        raise UnsupportedError(f"{cls.__name__} cannot be opened by URL")

    # ----------------------------------------------------------------- identity
    @property
    def device_scheme(self) -> str:
        """The scheme of the device itself: ``hid`` for ``hid://``, and also for a wrapper around
        one (``spy+hid://``, a recorded ``hid://``) or a replay of one. The DriverKit mirror picks
        the family that publishes the device's nubs by it."""
        return self.scheme

    @property
    def local_nodes(self) -> bool:
        """True when ``info.path`` names a node on this machine (``/dev/hidraw3``), so its
        disappearance means an unplug; False for a replay, whose paths are the recording's."""
        return True

    # ----------------------------------------------------------------- lifecycle
    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._is_open

    def open(self) -> Self:
        """Acquire the device (claim, detach kernel drivers...). Returns ``self``.

        Raises:
            NoDeviceError, NotPermittedError, ExclusiveAccessError: as the back end reports.
        """
        if not self._is_open:
            self._open()
            self._is_open = True
        return self

    def close(self) -> None:
        """Abort pending transfers and release every handle. Safe to call twice."""
        if not self._is_open:
            return
        self._is_open = False
        try:
            if self._async is not None:
                self._async.shutdown()
                self._async = None
        finally:
            self._close()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _require_open(self, what: str) -> None:
        if not self._is_open:
            raise NotOpenError(f"{type(self).__name__}.{what}: transport is not open (call open() first)")

    def _internal(self, by: str, op: str, request: dict[str, Any], fn: Callable[[], _R], *,
                  observer: InternalObserver | None = None) -> _R:
        """Run ``fn``, one wire transfer the transport makes on its own, and tell the observer.

        THE path for such transfers: a back end that puts a transfer on the wire that its caller
        did not ask for (a string descriptor read for :attr:`info`) runs it through here, so a
        recorder or a capture sees every transfer the device saw.

        Args:
            by: what it was made for: ``"info"`` (:attr:`info`) or ``"open"`` (:meth:`open`).
            op: the operation, named as :class:`TransportWrapper` names it (``"control_transfer"``).
            request: its arguments, named as :class:`TransportWrapper` names them (for a control
                transfer ``bmRequestType``, ``bRequest``, ``wValue``, ``wIndex``,
                ``data_or_wLength``, ``timeout``).
            fn: the transfer itself.
            observer: who to tell instead of :attr:`internal_observer` (a back end that only
                knows later whether the transfer belongs to this transport's device).

        The observer is called once, after ``fn`` ended, as ``observer(op, fields, outcome)``:
        ``fields`` is ``request`` plus ``by``, ``started`` and ``ended`` (``time.monotonic()``
        when ``fn`` began and ended); ``outcome`` is what ``fn`` returned, or the
        :class:`~dkproto.errors.DkError` it raised (which is then raised on). An observer that
        raises is logged and ignored: it never changes what the device sees or the caller gets.
        """
        sink = self.internal_observer if observer is None else observer
        if sink is None:
            return fn()
        started = time.monotonic()
        try:
            result = fn()
        except DkError as exc:
            _tell(sink, op, {**request, "by": by, "started": started, "ended": time.monotonic()}, exc)
            raise
        except Exception as exc:
            failure = DkError(f"{type(exc).__name__}: {exc}")
            _tell(sink, op, {**request, "by": by, "started": started, "ended": time.monotonic()}, failure)
            raise
        _tell(sink, op, {**request, "by": by, "started": started, "ended": time.monotonic()}, result)
        return result

    @abc.abstractmethod
    def _open(self) -> None:
        """Back-end open; called once by :meth:`open`."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Back-end close; must release everything even after errors."""

    @property
    @abc.abstractmethod
    def info(self) -> TransportInfo:
        """Where and what the device is."""

    # ----------------------------------------------------------------- transfers
    @abc.abstractmethod
    def control_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                         data_or_wLength: bytes | int | None = None,
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        """A control transfer on the default pipe (``IOUSBHostDevice::DeviceRequest``).

        Args:
            bmRequestType: direction (0x80 IN), type (standard 0x00, class 0x20, vendor 0x40)
                and recipient (device 0, interface 1, endpoint 2, other 3).
            bRequest: the request number.
            wValue: request value.
            wIndex: request index (interface or endpoint for those recipients).
            data_or_wLength: for IN, wLength (int); for OUT, the data stage bytes (or ``None``).
            timeout: milliseconds, 0 for none.

        Returns:
            IN: the bytes received (may be shorter than wLength). OUT: bytes sent.

        Raises:
            PipeStalledError: the device stalled the request (it does not support it).
            DkTimeoutError, NoDeviceError, BadArgumentError: as the back end reports.
        """

    @abc.abstractmethod
    def read(self, endpoint: int, length: int, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """Read up to ``length`` bytes from an IN endpoint (bulk, interrupt or isochronous).

        ``IOUSBHostPipe::IO`` on an IN pipe. For serial ports the endpoint only names the
        direction (use 0x81); for hidapi it is the interrupt IN endpoint (any IN address).

        Raises:
            DkTimeoutError: nothing came within ``timeout`` ms.
            PipeStalledError, OverrunError, NoDeviceError: as the back end reports.
        """

    @abc.abstractmethod
    def write(self, endpoint: int, data: bytes, timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        """Write ``data`` to an OUT endpoint; returns the bytes sent (``IOUSBHostPipe::IO``)."""

    def get_report(self, report_type: int, report_id: int, length: int,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """HID GET_REPORT (``IOHIDDevice::getReport``): the report payload, without the ID byte.

        Args:
            report_type: :data:`HID_REPORT_INPUT`, :data:`HID_REPORT_OUTPUT` or :data:`HID_REPORT_FEATURE`.
            report_id: the report ID (0 when the descriptor declares none).
            length: the most bytes to return (payload only).
            timeout: milliseconds.

        The default sends the HID class request to the transport's interface (wIndex).
        """
        iface = self.info.interface or 0
        data = self.control_transfer(0xA1, 0x01, ((report_type + 1) << 8) | report_id, iface,
                                     length + (1 if report_id else 0), timeout)
        data = bytes(data)  # IN: always bytes
        if report_id and data[:1] == bytes([report_id]):
            data = data[1:]
        return data

    def set_report(self, report_type: int, report_id: int, data: bytes,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        """HID SET_REPORT (``IOHIDDevice::setReport``): send a payload (without the ID byte).

        Returns the payload bytes sent.
        """
        iface = self.info.interface or 0
        wire = (bytes([report_id]) if report_id else b"") + bytes(data)
        sent = self.control_transfer(0x21, 0x09, ((report_type + 1) << 8) | report_id, iface, wire, timeout)
        return max(0, int(sent) - (1 if report_id else 0))

    def report_descriptor(self, interface: int | None = None, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """The HID report descriptor of an interface (what ``IOHIDDevice`` parses at start).

        Args:
            interface: bInterfaceNumber; default the transport's interface (0 when it has none).
            timeout: milliseconds, per control request.

        The default reads it through control transfers (GET_DESCRIPTOR(Report), HID 1.11 7.1.1,
        ``wDescriptorLength`` bytes from the interface's HID descriptor): see
        :func:`dkproto.transport.descriptors.read_report_descriptor`. ``hid://`` asks hidapi.

        Raises:
            UnsupportedError: not a HID interface, or no way to read it on this transport.
        """
        return read_report_descriptor(self, (self.info.interface or 0) if interface is None else interface, timeout)

    # ----------------------------------------------------------------- asynchronous transfers
    def submit(self, endpoint: int, data_or_length: bytes | int, callback: TransferCallback | None = None,
               timeout: int = DEFAULT_TIMEOUT_MS, user_data: Any = None) -> Transfer:
        """Queue an asynchronous transfer (``IOUSBHostPipe::AsyncIO``) and return at once.

        Several transfers may be in flight per endpoint (the queue depth is how many you
        submit before waiting); they complete in order per endpoint.

        Args:
            endpoint: bEndpointAddress; IN (0x80 set) reads, OUT writes.
            data_or_length: IN: bytes to read; OUT: the bytes to write.
            callback: called once with the finished :class:`Transfer` on the completion thread.
            timeout: milliseconds, 0 for none.
            user_data: stored on the transfer for the callback.

        The base implementation runs the synchronous :meth:`read`/:meth:`write` on one worker
        thread per endpoint (one transfer on the wire at a time, the rest queued). The USB back
        end overrides it with libusb's asynchronous API (all of them on the wire at once).
        """
        self._require_open("submit")
        transfer = _make_transfer(endpoint, data_or_length, callback, timeout, user_data)
        if self._async is None:
            self._async = _ThreadedAsync(self)
        self._async.submit(transfer)
        return transfer

    def abort(self, endpoint: int | None = None) -> None:
        """Cancel pending asynchronous transfers (``IOUSBHostPipe::Abort``).

        They complete with ``kIOReturnAborted``. ``endpoint=None`` aborts every endpoint.
        Returns once the aborted transfers have completed (``kIOUSBAbortSynchronous``).
        """
        if self._async is not None:
            self._async.abort(endpoint)

    def _interrupt(self, endpoint: int | None) -> None:
        """Hook for the threaded async engine: make a blocked synchronous read/write on
        ``endpoint`` (``None``: all) return with :class:`~dkproto.errors.AbortedError`, if the
        back end can. The default cannot; the transfer then ends at its timeout."""

    # ----------------------------------------------------------------- USB device management
    def _unsupported(self, what: str) -> UnsupportedError:
        return UnsupportedError(f"{what} is not supported by {self.scheme or type(self).__name__}:// transports")

    def set_configuration(self, bConfigurationValue: int) -> None:
        """SET_CONFIGURATION (``IOUSBHostDevice::SetConfiguration``)."""
        raise self._unsupported("set_configuration")

    def get_configuration(self) -> int:
        """GET_CONFIGURATION: the current bConfigurationValue (0 = unconfigured)."""
        data = bytes(self.control_transfer(0x80, 0x08, 0, 0, 1))  # IN: bytes
        return data[0] if data else 0

    def claim_interface(self, bInterfaceNumber: int) -> None:
        """Claim an interface (``IOUSBHostInterface::Open``), detaching a kernel driver on Linux."""
        raise self._unsupported("claim_interface")

    def release_interface(self, bInterfaceNumber: int) -> None:
        """Release a claimed interface (``IOUSBHostInterface::Close``) and reattach its kernel driver."""
        raise self._unsupported("release_interface")

    def set_alternate_setting(self, bInterfaceNumber: int, bAlternateSetting: int) -> None:
        """SET_INTERFACE (``IOUSBHostInterface::SelectAlternateSetting``)."""
        raise self._unsupported("set_alternate_setting")

    def clear_halt(self, endpoint: int) -> None:
        """Clear an endpoint halt and its data toggle (``IOUSBHostPipe::ClearStall(true)``)."""
        raise self._unsupported("clear_halt")

    def reset(self) -> None:
        """Reset the device (``IOUSBHostDevice::Reset``); the transport stays bound to it."""
        raise self._unsupported("reset")


def _tell(observer: InternalObserver, op: str, fields: dict[str, Any], outcome: Any) -> None:
    try:
        observer(op, fields, outcome)
    except Exception:  # an observer's failure must not change the device's traffic
        log.exception("internal transfer observer failed on %s", op)


def _make_transfer(endpoint: int, data_or_length: bytes | int, callback: TransferCallback | None,
                   timeout: int, user_data: Any) -> Transfer:
    if endpoint & 0x80:
        if not isinstance(data_or_length, int) or data_or_length < 0:
            raise BadArgumentError(f"IN endpoint 0x{endpoint:02x}: give a length (int >= 0), not data")
        return Transfer(endpoint, data_or_length, b"", timeout, callback, user_data)
    if isinstance(data_or_length, int):
        raise BadArgumentError(f"OUT endpoint 0x{endpoint:02x}: give the bytes to write, not a length")
    data = bytes(data_or_length)
    return Transfer(endpoint, len(data), data, timeout, callback, user_data)


class _ThreadedAsync:
    """Default asynchronous engine: one worker thread per endpoint running sync transfers."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._lock = threading.Lock()
        self._queues: dict[int, collections.deque[Transfer]] = {}
        self._cond = threading.Condition(self._lock)
        self._workers: dict[int, threading.Thread] = {}
        self._running: dict[int, Transfer] = {}
        self._stop = False

    def submit(self, transfer: Transfer) -> None:
        ep = transfer.endpoint
        with self._cond:
            queue = self._queues.setdefault(ep, collections.deque())
            queue.append(transfer)
            transfer._cancel = lambda: self._cancel_one(transfer)
            if ep not in self._workers:
                worker = threading.Thread(target=self._run, args=(ep,), name=f"dkproto-async-ep{ep:02x}",
                                          daemon=True)
                self._workers[ep] = worker
                worker.start()
            self._cond.notify_all()

    def _cancel_one(self, transfer: Transfer) -> None:
        with self._cond:
            queue = self._queues.get(transfer.endpoint)
            if queue is not None and transfer in queue:
                queue.remove(transfer)
            else:
                return  # running: a synchronous transfer cannot be cancelled, it ends at its timeout
        transfer.complete(IOReturn.kIOReturnAborted, error=AbortedError(
            f"transfer on endpoint 0x{transfer.endpoint:02x} aborted"))

    def _run(self, ep: int) -> None:
        while True:
            with self._cond:
                while not self._stop and not self._queues[ep]:
                    self._cond.wait()
                if self._stop:
                    return
                transfer = self._queues[ep].popleft()
                self._running[ep] = transfer
            try:
                if transfer.is_in:
                    data = self._transport.read(ep, transfer.length, transfer.timeout)
                    transfer.complete(IOReturn.kIOReturnSuccess, data)
                else:
                    n = self._transport.write(ep, transfer.data, transfer.timeout)
                    transfer.complete(IOReturn.kIOReturnSuccess, actual_length=n)
            except DkError as exc:
                transfer.complete(exc.ioreturn, error=exc)
            except Exception as exc:  # noqa: BLE001 - never leave a transfer pending
                transfer.complete(IOReturn.kIOReturnError, error=DkError(f"{type(exc).__name__}: {exc}"))
            finally:
                with self._cond:
                    self._running.pop(ep, None)
                    self._cond.notify_all()

    def _pending(self, endpoint: int | None) -> Iterator[Transfer]:
        for ep, queue in list(self._queues.items()):
            if endpoint is None or ep == endpoint:
                yield from list(queue)

    def abort(self, endpoint: int | None, wait_s: float = 5.0) -> None:
        for transfer in list(self._pending(endpoint)):
            self._cancel_one(transfer)
        self._transport._interrupt(endpoint)
        deadline = time.monotonic() + wait_s
        with self._cond:
            while any(endpoint is None or ep == endpoint for ep in self._running):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)

    def shutdown(self) -> None:
        self.abort(None)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for worker in self._workers.values():
            if worker is not threading.current_thread():
                worker.join(timeout=5)


class TransportWrapper(Transport):
    """A transport that forwards everything to an inner one through a single hook.

    Every public call goes through :meth:`_call` with the operation's name and arguments, so a
    wrapper that logs (``spy+``), records or injects faults overrides only that one method,
    and callers do not change. Subclasses set :attr:`scheme` (the prefix before ``+``).

    Args:
        inner: the wrapped transport (opened and closed with the wrapper).
    """

    def __init__(self, inner: Transport) -> None:
        super().__init__()
        self.inner = inner

    @property
    def internal_observer(self) -> InternalObserver | None:
        """The inner transport's (a wrapper makes no transfer of its own): set through any stack
        of wrappers, it reaches the transport that talks to the device."""
        return self.inner.internal_observer

    @internal_observer.setter
    def internal_observer(self, observer: InternalObserver | None) -> None:
        self.inner.internal_observer = observer

    def _call(self, op: str, args: dict[str, Any], fn: Callable[[], _R]) -> _R:
        """Run one operation. Override to observe: ``return fn()`` must stay the core."""
        return fn()

    def _open(self) -> None:
        self._call("open", {}, self.inner.open)

    def _close(self) -> None:
        self._call("close", {}, self.inner.close)

    @property
    def info(self) -> TransportInfo:
        return self.inner.info

    @property
    def device_scheme(self) -> str:
        return self.inner.device_scheme

    @property
    def local_nodes(self) -> bool:
        return self.inner.local_nodes

    def control_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                         data_or_wLength: bytes | int | None = None,
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        args = {"bmRequestType": bmRequestType, "bRequest": bRequest, "wValue": wValue, "wIndex": wIndex,
                "data_or_wLength": data_or_wLength, "timeout": timeout}
        return self._call("control_transfer", args, lambda: self.inner.control_transfer(
            bmRequestType, bRequest, wValue, wIndex, data_or_wLength, timeout))

    def read(self, endpoint: int, length: int, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        return self._call("read", {"endpoint": endpoint, "length": length, "timeout": timeout},
                          lambda: self.inner.read(endpoint, length, timeout))

    def write(self, endpoint: int, data: bytes, timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        return self._call("write", {"endpoint": endpoint, "data": bytes(data), "timeout": timeout},
                          lambda: self.inner.write(endpoint, data, timeout))

    def get_report(self, report_type: int, report_id: int, length: int,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        return self._call("get_report", {"report_type": report_type, "report_id": report_id, "length": length},
                          lambda: self.inner.get_report(report_type, report_id, length, timeout))

    def set_report(self, report_type: int, report_id: int, data: bytes,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        return self._call("set_report", {"report_type": report_type, "report_id": report_id, "data": bytes(data)},
                          lambda: self.inner.set_report(report_type, report_id, data, timeout))

    def report_descriptor(self, interface: int | None = None, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        return self._call("report_descriptor", {"interface": interface},
                          lambda: self.inner.report_descriptor(interface, timeout))

    def submit(self, endpoint: int, data_or_length: bytes | int, callback: TransferCallback | None = None,
               timeout: int = DEFAULT_TIMEOUT_MS, user_data: Any = None) -> Transfer:
        def completed(transfer: Transfer) -> None:
            self._call("complete", {"transfer": transfer}, lambda: None)
            if callback is not None:
                callback(transfer)

        args = {"endpoint": endpoint, "data_or_length": data_or_length, "timeout": timeout}
        return self._call("submit", args, lambda: self.inner.submit(
            endpoint, data_or_length, completed, timeout, user_data))

    def abort(self, endpoint: int | None = None) -> None:
        self._call("abort", {"endpoint": endpoint}, lambda: self.inner.abort(endpoint))

    def set_configuration(self, bConfigurationValue: int) -> None:
        self._call("set_configuration", {"bConfigurationValue": bConfigurationValue},
                   lambda: self.inner.set_configuration(bConfigurationValue))

    def get_configuration(self) -> int:
        return self._call("get_configuration", {}, self.inner.get_configuration)

    def claim_interface(self, bInterfaceNumber: int) -> None:
        self._call("claim_interface", {"bInterfaceNumber": bInterfaceNumber},
                   lambda: self.inner.claim_interface(bInterfaceNumber))

    def release_interface(self, bInterfaceNumber: int) -> None:
        self._call("release_interface", {"bInterfaceNumber": bInterfaceNumber},
                   lambda: self.inner.release_interface(bInterfaceNumber))

    def set_alternate_setting(self, bInterfaceNumber: int, bAlternateSetting: int) -> None:
        self._call("set_alternate_setting", {"bInterfaceNumber": bInterfaceNumber,
                                             "bAlternateSetting": bAlternateSetting},
                   lambda: self.inner.set_alternate_setting(bInterfaceNumber, bAlternateSetting))

    def clear_halt(self, endpoint: int) -> None:
        self._call("clear_halt", {"endpoint": endpoint}, lambda: self.inner.clear_halt(endpoint))

    def reset(self) -> None:
        self._call("reset", {}, self.inner.reset)
