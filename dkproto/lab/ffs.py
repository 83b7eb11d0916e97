"""FunctionFS devices written in Python: the device side of the lab's prototypes.

A :class:`FfsDevice` subclass declares one interface (class codes, endpoints, optional class
descriptors) and answers control requests through :mod:`dkproto.device`, the device sides' one
seam: handlers registered with :func:`~dkproto.device.control_request`, the standard requests
that reach the function (an interface's GET_DESCRIPTOR: HID class and report descriptors) from
a :class:`~dkproto.device.StandardResponder` over the function's own descriptors, and a STALL
for a handler raising :class:`~dkproto.errors.PipeStalledError` or a request nobody answers.
Its endpoints are served by threads with plain blocking I/O on the FunctionFS ``epN`` files.
Descriptor and string blobs are built with the ``functionfs`` package (PyPI, in the ``lab``
extra: ``getInterfaceInAllSpeeds``, ``getDescsV2``, ``getStrings``); its AIO event loop is
not used, because per-endpoint threads make the fault controls (stall, delay, drop) simple
and deterministic, and TCG speed is the bottleneck anyway.

Control requests (see ``docs/lab.md``; example programs are in ``devices/lab/``)::

    from dkproto.device import ControlRequest, control_request

    class Echo(FfsDevice):
        interface = {"bInterfaceClass": 0xFF}
        endpoints = [Endpoint(0x81, "bulk"), Endpoint(0x01, "bulk")]

        @control_request(type="vendor", recipient="device", number=0x01, direction="in")
        def get_version(self, req: ControlRequest) -> bytes:
            return b"\\x01\\x00"

        def on_out(self, address: int, data: bytes) -> None:   # bulk/interrupt OUT data
            self.send(0x81, data)                                # queue an IN transfer

An IN handler returns the data (cut to ``wLength``); an OUT handler gets ``req.data`` and
returns ``None``; raising :class:`~dkproto.errors.PipeStalledError` stalls. A request with no
handler STALLs and the log names the decorator to add. Fault controls: :meth:`FfsDevice.stall`
(halt an endpoint until the host clears it), :meth:`FfsDevice.delay` and :meth:`FfsDevice.drop`
(the next matching control request or endpoint transfer is answered late, or never).
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import select
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dkproto.device import US_ENGLISH, ControlRequest, RequestHandlers, StandardResponder, control_request
from dkproto.errors import BadArgumentError, DkTimeoutError, MissingToolError, PipeStalledError, StateError

if TYPE_CHECKING:
    from dkproto.usb import DescriptorSet

__all__ = [
    "Endpoint",
    "FfsDevice",
    "FfsHidDevice",
]

# f_fs event types (include/uapi/linux/usb/functionfs.h, enum usb_functionfs_event_type)
BIND, UNBIND, ENABLE, DISABLE, SETUP, SUSPEND, RESUME = range(7)
EVENT_NAMES = ("BIND", "UNBIND", "ENABLE", "DISABLE", "SETUP", "SUSPEND", "RESUME")
EVENT_SIZE = 12  # struct usb_functionfs_event: 8-byte setup packet, type, 3 pad bytes

_XFER = {"control": 0, "isochronous": 1, "bulk": 2, "interrupt": 3}


def _functionfs() -> Any:
    try:
        import functionfs
    except ImportError as exc:
        raise MissingToolError("FunctionFS devices need the 'functionfs' package: pip install 'dkproto[lab]'") from exc
    return functionfs


@dataclass(frozen=True, kw_only=False, slots=True)
class Endpoint:
    """An endpoint of the interface.

    Args:
        address: ``bEndpointAddress`` (0x81 IN 1, 0x02 OUT 2...).
        kind: ``bulk`` or ``interrupt``.
        wMaxPacketSize: default: the largest for the speed.
        bInterval: for interrupt endpoints, in milliseconds.
    """

    address: int
    kind: str = "bulk"
    wMaxPacketSize: int | None = None
    bInterval: float | None = None

    @property
    def is_in(self) -> bool:
        return bool(self.address & 0x80)


@dataclass(slots=True)
class _Fault:
    kind: str  # "delay" or "drop"
    seconds: float = 0.0
    count: int = 1


class FfsDevice(RequestHandlers):
    """A FunctionFS function served from Python (one interface).

    Subclasses set :attr:`interface`, :attr:`endpoints`, optionally :attr:`class_descriptors`
    and :attr:`strings`, and register handlers with :func:`~dkproto.device.control_request`.
    OUT data arrives in :meth:`on_out`; IN data is queued with :meth:`send`. The standard
    requests FunctionFS hands the function are answered by :attr:`responder`, made from
    :meth:`descriptor_set` and :meth:`report_descriptors`.

    Args:
        mount: the FunctionFS mount point (holding ``ep0``).
    """

    interface: ClassVar[dict[str, int]] = {"bInterfaceClass": 0xFF}
    endpoints: ClassVar[list[Endpoint]] = []
    class_descriptors: ClassVar[list[Any]] = []
    strings: ClassVar[list[str]] = ["dkproto FunctionFS interface"]

    def __init__(self, mount: str | os.PathLike[str]) -> None:
        self.mount = Path(mount)
        self.log = logging.getLogger(f"dkproto.lab.{type(self).__name__}({self.mount.name})")
        self.enabled = threading.Event()
        self.requests: list[ControlRequest] = []  # every control request seen, for tests
        self.unhandled: list[ControlRequest] = []
        self._faults: dict[tuple[str, int | None], list[_Fault]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ep0: int | None = None
        self._ep_fds: dict[int, int] = {}
        self._in_queues: dict[int, queue.Queue[bytes | None]] = {}
        self._responder: StandardResponder | None = None
        self.events: list[str] = []

    # -- descriptors -----------------------------------------------------------------------------

    def _speed_descriptors(self) -> tuple[list[Any], list[Any], list[Any]]:
        """The interface's full-, high- and SuperSpeed descriptor lists (``functionfs`` structures)."""
        functionfs = _functionfs()
        from functionfs import ch9

        eps = []
        for ep in self.endpoints:
            kw: dict[str, Any] = {"bEndpointAddress": ep.address,
                                  "bmAttributes": {"bulk": ch9.USB_ENDPOINT_XFER_BULK,
                                                   "interrupt": ch9.USB_ENDPOINT_XFER_INT}[ep.kind]}
            if ep.wMaxPacketSize is not None:
                kw["wMaxPacketSize"] = ep.wMaxPacketSize
            if ep.bInterval is not None:
                kw["bInterval"] = ep.bInterval
            eps.append({"endpoint": kw})
        intf = dict(self.interface)
        intf.setdefault("iInterface", 1)
        fs, hs, ss = functionfs.getInterfaceInAllSpeeds(intf, eps, self.class_descriptors)
        return list(fs), list(hs), list(ss)

    def descriptor_blobs(self) -> tuple[bytes, bytes]:
        """(descriptors, strings) as written to ``ep0`` (FunctionFS v2 format)."""
        functionfs = _functionfs()
        fs, hs, ss = self._speed_descriptors()
        descs = functionfs.getDescsV2(functionfs.ALL_CTRL_RECIP, fs_list=fs, hs_list=hs, ss_list=ss)
        strings = functionfs.getStrings({US_ENGLISH: list(self.strings)})
        return bytes(functionfs.serialise(descs)), bytes(functionfs.serialise(strings))

    def descriptor_set(self) -> DescriptorSet:
        """The function as the host sees it at high speed: one configuration holding its interface.

        The interface is number 0, as FunctionFS numbers it in the requests it hands the
        function; there is no device descriptor (the gadget's is configfs's).
        """
        from dkproto.usb import parse

        functionfs = _functionfs()
        body = b"".join(bytes(functionfs.serialise(d)) for d in self._speed_descriptors()[1])
        head = struct.pack("<BBHBBBBB", 9, 2, 9 + len(body), 1, 1, 0, 0x80, 50)
        return parse(head + body, source=f"FunctionFS {type(self).__name__}")

    def report_descriptors(self) -> dict[int, bytes]:
        """HID report descriptors by interface number, for GET_DESCRIPTOR(0x22). Default: none."""
        return {}

    def _make_responder(self) -> StandardResponder:
        return StandardResponder(self.descriptor_set(), report_descriptors=self.report_descriptors(),
                                 name=type(self).__name__)

    @property
    def responder(self) -> StandardResponder:
        """Answers the standard requests FunctionFS hands the function (made by :meth:`start`, or on
        first use)."""
        if self._responder is None:
            self._responder = self._make_responder()
        return self._responder

    @responder.setter
    def responder(self, value: StandardResponder) -> None:
        self._responder = value

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Write the descriptors to ``ep0``, open the endpoints and start serving (threads)."""
        descs, strings = self.descriptor_blobs()
        self._responder = self._make_responder()  # now: the host's first request must not wait for it
        self._ep0 = os.open(self.mount / "ep0", os.O_RDWR)
        os.write(self._ep0, descs)
        os.write(self._ep0, strings)
        for i, ep in enumerate(self.endpoints, 1):
            self._ep_fds[ep.address] = os.open(self.mount / f"ep{i}", os.O_RDWR)
            if ep.is_in:
                self._in_queues[ep.address] = queue.Queue()
        self._spawn(self._ep0_loop, "ep0")
        for ep in self.endpoints:
            self._spawn(self._in_loop if ep.is_in else self._out_loop, f"ep{ep.address:02x}", ep)

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=f"ffs-{self.mount.name}-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Stop serving and close the endpoint files (call after the gadget is unbound)."""
        self._stop.set()
        for q in self._in_queues.values():
            q.put(None)
        for fd in list(self._ep_fds.values()) + ([self._ep0] if self._ep0 is not None else []):
            try:
                os.close(fd)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=1.0)
        self._ep_fds.clear()
        self._ep0 = None

    def wait_enabled(self, timeout: float = 10.0) -> None:
        """Wait until the host has selected the configuration (ENABLE event)."""
        if not self.enabled.wait(timeout):
            raise DkTimeoutError(f"{type(self).__name__}: not enabled by the host within {timeout} s")

    # -- ep0 ---------------------------------------------------------------------------------------

    def _ep0_loop(self) -> None:
        assert self._ep0 is not None
        fd = self._ep0
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([fd], [], [], 0.2)
                if not r:
                    continue
                buf = os.read(fd, EVENT_SIZE * 4)
            except OSError as exc:
                if self._stop.is_set() or exc.errno in (errno.EBADF, errno.ESHUTDOWN):
                    return
                if exc.errno in (errno.EINTR, errno.EAGAIN, errno.EIDRM, errno.EL2HLT):
                    continue  # EIDRM: a dropped request was cancelled by the next SETUP
                self.log.warning("ep0 read failed: %s", exc)
                time.sleep(0.05)
                continue
            for off in range(0, len(buf) - EVENT_SIZE + 1, EVENT_SIZE):
                bm, req, value, index, length, etype = struct.unpack_from("<BBHHHB", buf, off)
                self.events.append(EVENT_NAMES[etype] if etype < len(EVENT_NAMES) else str(etype))
                if etype == SETUP:
                    self._setup(ControlRequest(bm, req, value, index, length))
                elif etype == ENABLE:
                    self.enabled.set()
                    self.on_enable()
                elif etype in (DISABLE, UNBIND):
                    self.enabled.clear()
                    self.on_disable()

    def _take_fault(self, kind_key: tuple[str, int | None]) -> _Fault | None:
        with self._lock:
            faults = self._faults.get(kind_key)
            if not faults:
                return None
            fault = faults[0]
            fault.count -= 1
            if fault.count <= 0:
                faults.pop(0)
            return fault

    def _setup(self, req: ControlRequest) -> None:
        assert self._ep0 is not None
        fd = self._ep0
        if not req.direction_in and req.wLength:
            try:
                data = os.read(fd, req.wLength)
            except OSError as exc:
                self.log.warning("%s: data stage failed: %s", req.describe(), exc)
                return
            req = ControlRequest(req.bmRequestType, req.bRequest, req.wValue, req.wIndex, req.wLength, data)
        self.requests.append(req)
        fault = self._take_fault(("ctrl", req.bRequest)) or self._take_fault(("ctrl", None))
        if fault is not None:
            if fault.kind == "drop":
                # Give no data or status stage; keep off ep0 (a read there would STALL the
                # pending request) until the host has given up and sent its next SETUP.
                self.log.info("dropping %s (fault control), holding ep0 %.1f s", req.describe(), fault.seconds)
                self._stop.wait(fault.seconds)
                return
            time.sleep(fault.seconds)
        try:
            result = self.handle_control(req)
        except PipeStalledError:
            self._stall_ep0(req)
            return
        except Exception:
            self.log.exception("answering %s failed: stalled", req.describe())
            self._stall_ep0(req)
            return
        try:
            if req.direction_in:
                os.write(fd, result if isinstance(result, bytes) else b"")
            elif not req.wLength:
                os.read(fd, 0)  # status stage
        except OSError as exc:
            self.log.info("%s: host went away (%s)", req.describe(), exc.strerror)

    def on_unhandled(self, req: ControlRequest) -> bytes | int | None:
        """A request nobody answers: recorded in :attr:`unhandled`, logged with the decorator
        that would handle it, STALLed."""
        self.unhandled.append(req)
        return super().on_unhandled(req)

    def _stall_ep0(self, req: ControlRequest) -> None:
        assert self._ep0 is not None
        try:
            if req.direction_in:
                os.read(self._ep0, 0)
            else:
                os.write(self._ep0, b"")
        except OSError as exc:
            if exc.errno != errno.EL2HLT:
                self.log.debug("stall of %s: %s", req.describe(), exc)

    # -- endpoints ---------------------------------------------------------------------------------

    def _out_loop(self, ep: Endpoint) -> None:
        fd = self._ep_fds[ep.address]
        size = 16384
        while not self._stop.is_set():
            try:
                data = os.read(fd, size)
            except OSError as exc:
                if self._stop.is_set() or exc.errno == errno.EBADF:
                    return
                if exc.errno in (errno.ESHUTDOWN, errno.ECONNRESET, errno.EINTR, errno.EAGAIN, errno.EBADMSG):
                    time.sleep(0.02)  # disabled, reset or halted: wait for re-enable
                    continue
                self.log.warning("ep 0x%02x read failed: %s", ep.address, exc)
                time.sleep(0.05)
                continue
            fault = self._take_fault(("ep", ep.address))
            if fault is not None:
                if fault.kind == "drop":
                    continue
                time.sleep(fault.seconds)
            try:
                self.on_out(ep.address, data)
            except Exception:
                self.log.exception("on_out(0x%02x) failed", ep.address)

    def _in_loop(self, ep: Endpoint) -> None:
        fd = self._ep_fds[ep.address]
        q = self._in_queues[ep.address]
        while not self._stop.is_set():
            data = q.get()
            if data is None:
                return
            fault = self._take_fault(("ep", ep.address))
            if fault is not None:
                if fault.kind == "drop":
                    continue
                time.sleep(fault.seconds)
            while not self._stop.is_set():
                try:
                    os.write(fd, data)
                    break
                except OSError as exc:
                    if self._stop.is_set() or exc.errno == errno.EBADF:
                        return
                    if exc.errno in (errno.ESHUTDOWN, errno.ECONNRESET, errno.EINTR, errno.EAGAIN, errno.EBADMSG):
                        time.sleep(0.02)
                        continue
                    self.log.warning("ep 0x%02x write failed: %s", ep.address, exc)
                    break

    def host_address(self, address: int) -> int:
        """The ``bEndpointAddress`` the host sees for a declared endpoint (the UDC may renumber).

        Valid while the function is enabled (FUNCTIONFS_ENDPOINT_DESC ioctl).
        """
        import fcntl

        from functionfs import ENDPOINT_DESC, USBEndpointDescriptor

        fd = self._ep_fds.get(address)
        if fd is None:
            raise BadArgumentError(f"{type(self).__name__}: no endpoint 0x{address:02x}")
        desc = USBEndpointDescriptor()
        fcntl.ioctl(fd, ENDPOINT_DESC, desc, True)
        return int(desc.bEndpointAddress)

    def send(self, address: int, data: bytes) -> None:
        """Queue ``data`` as one IN transfer on endpoint ``address`` (sent when the host reads)."""
        if address not in self._in_queues:
            raise BadArgumentError(f"{type(self).__name__}: no IN endpoint 0x{address:02x}")
        self._in_queues[address].put(bytes(data))

    def on_out(self, address: int, data: bytes) -> None:
        """Data the host sent on an OUT endpoint. Default: log it."""
        self.log.debug("OUT 0x%02x: %d bytes", address, len(data))

    def on_enable(self) -> None:
        """The host set the configuration (override to reset state)."""

    def on_disable(self) -> None:
        """The configuration was dropped or the gadget unbound."""

    # -- fault controls ----------------------------------------------------------------------------

    def stall(self, address: int) -> None:
        """Halt an endpoint (the host sees STALL until it sends CLEAR_FEATURE(ENDPOINT_HALT))."""
        fd = self._ep_fds.get(address)
        if fd is None:
            raise BadArgumentError(f"{type(self).__name__}: no endpoint 0x{address:02x}")
        if not self.enabled.is_set():
            raise StateError(f"{type(self).__name__}.stall(0x{address:02x}): the function is not enabled")
        try:
            # f_fs halts an endpoint on I/O in the wrong direction.
            if address & 0x80:
                os.read(fd, 0)
            else:
                os.write(fd, b"")
        except OSError as exc:
            if exc.errno != errno.EBADMSG:
                raise

    def delay(self, seconds: float, *, request: int | None = None, endpoint: int | None = None,
              count: int = 1) -> None:
        """Answer the next ``count`` matching transfers ``seconds`` late.

        Args:
            request: a control request number (``bRequest``); ``None`` with ``endpoint=None``
                means any control request.
            endpoint: an endpoint address instead of a control request.
        """
        self._add_fault(_Fault("delay", seconds, count), request, endpoint)

    def drop(self, *, request: int | None = None, endpoint: int | None = None, count: int = 1,
             hold: float = 1.0) -> None:
        """Never answer the next ``count`` matching transfers (the host times out).

        For an OUT endpoint the data is read and discarded; for an IN endpoint the queued
        data is discarded; for a control request no data or status stage is given, and ep0 is
        left alone for ``hold`` seconds (make it longer than the host's timeout: reading ep0
        while the request is still pending would STALL it instead).
        """
        self._add_fault(_Fault("drop", hold if endpoint is None else 0.0, count), request, endpoint)

    def _add_fault(self, fault: _Fault, request: int | None, endpoint: int | None) -> None:
        key: tuple[str, int | None] = ("ep", endpoint) if endpoint is not None else ("ctrl", request)
        with self._lock:
            self._faults.setdefault(key, []).append(fault)


@dataclass(kw_only=True)
class _HidState:
    features: dict[int, bytes] = field(default_factory=dict)
    outputs: queue.Queue[bytes] = field(default_factory=queue.Queue)
    idle: int = 0
    protocol: int = 1


class FfsHidDevice(FfsDevice):
    """A HID device on FunctionFS: unlike the kernel's ``hid`` function it answers
    GET_REPORT and SET_REPORT for feature (and input/output) reports.

    Subclass and set :attr:`report_descriptor` (and ``interface`` subclass/protocol), or pass
    ``report_descriptor=`` to the constructor. Feature reports live in ``self.hid.features``
    (report ID -> bytes, the ID byte included when IDs are used); set them from tests,
    read what the host stored. Output reports (interrupt OUT or SET_REPORT(Output)) land in
    :meth:`read_output`; :meth:`send_input` queues an input report.
    """

    interface: ClassVar[dict[str, int]] = {"bInterfaceClass": 0x03, "bInterfaceSubClass": 0,
                                           "bInterfaceProtocol": 0}
    endpoints: ClassVar[list[Endpoint]] = [Endpoint(0x81, "interrupt", 64, 1), Endpoint(0x02, "interrupt", 64, 1)]
    strings: ClassVar[list[str]] = ["dkproto FunctionFS HID"]
    report_descriptor: ClassVar[bytes] = bytes.fromhex(
        # vendor page 0xFF00, usage 1: 8-byte input, output and feature report (no report IDs)
        "0600ff0901a1011500 26ff00 7508 9508 0920 8102 0921 9102 0922 b102 c0".replace(" ", ""))

    def __init__(self, mount: str | os.PathLike[str], report_descriptor: bytes | None = None) -> None:
        if report_descriptor is not None:
            self.report_descriptor = report_descriptor  # type: ignore[misc]
        super().__init__(mount)
        self.hid = _HidState()

    @property
    def class_descriptors(self) -> list[Any]:  # type: ignore[override]
        from functionfs import hid

        klass = hid.getUSBHIDDescriptorClass(1)
        d = klass(bLength=9, bDescriptorType=hid.HID_DT_HID, bcdHID=0x0111, bCountryCode=0, bNumDescriptors=1)
        d.tail[0].bDescriptorType = hid.HID_DT_REPORT
        d.tail[0].wDescriptorLength = len(self.report_descriptor)
        return [d]

    def report_descriptors(self) -> dict[int, bytes]:
        """The report descriptor, for the responder's GET_DESCRIPTOR(0x22) (its HID descriptor is in
        :attr:`class_descriptors`)."""
        return {0: self.report_descriptor}

    @control_request(type="class", recipient="interface", number=0x01, direction="in")
    def get_report(self, req: ControlRequest) -> bytes:
        report_type, report_id = req.wValue >> 8, req.wValue & 0xFF
        if report_type == 3 and report_id in self.hid.features:
            return self.hid.features[report_id]
        raise PipeStalledError(f"{type(self).__name__}: {req.describe()}: no such report (STALL)")

    @control_request(type="class", recipient="interface", number=0x09, direction="out")
    def set_report(self, req: ControlRequest) -> None:
        report_type, report_id = req.wValue >> 8, req.wValue & 0xFF
        if report_type == 3:
            self.hid.features[report_id] = req.data
        elif report_type == 2:
            self.hid.outputs.put(req.data)
        else:
            raise PipeStalledError(f"{type(self).__name__}: {req.describe()}: no such report (STALL)")

    @control_request(type="class", recipient="interface", number=0x0A, direction="out")
    def set_idle(self, req: ControlRequest) -> None:
        self.hid.idle = req.wValue >> 8

    @control_request(type="class", recipient="interface", number=0x02, direction="in")
    def get_idle(self, req: ControlRequest) -> bytes:
        return bytes([self.hid.idle])

    @control_request(type="class", recipient="interface", number=0x0B, direction="out")
    def set_protocol(self, req: ControlRequest) -> None:
        self.hid.protocol = req.wValue & 1

    @control_request(type="class", recipient="interface", number=0x03, direction="in")
    def get_protocol(self, req: ControlRequest) -> bytes:
        return bytes([self.hid.protocol])

    def on_out(self, address: int, data: bytes) -> None:
        self.hid.outputs.put(data)

    def send_input(self, report: bytes) -> None:
        """Queue one input report on the interrupt IN endpoint."""
        self.send(0x81, report)

    def read_output(self, timeout: float = 2.0) -> bytes:
        """The next output report from the host (interrupt OUT or SET_REPORT(Output))."""
        try:
            return self.hid.outputs.get(timeout=timeout)
        except queue.Empty:
            raise DkTimeoutError(f"{type(self).__name__}: no output report within {timeout} s") from None
