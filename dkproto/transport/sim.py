"""``sim://``: an in-process USB device serving a profile, a full back end for unit tests.

A :class:`SimDevice` has descriptors (from bytes or a descriptor file), answers the standard
requests from them (GET_DESCRIPTOR, GET/SET_CONFIGURATION, GET/SET_INTERFACE, GET_STATUS,
CLEAR/SET_FEATURE(ENDPOINT_HALT)), dispatches other control requests to handlers registered
with decorators (facedancer style), and moves endpoint data through queues. An unhandled
request STALLs, and the log suggests the decorator you would need. Device-side controls:
:meth:`SimDevice.queue_in`, :meth:`SimDevice.stall`, :meth:`SimDevice.unplug`.

URL grammar: see :data:`GRAMMAR`. Built-in profile ``loopback``: vendor interface 0 with bulk
OUT 0x02 looped to bulk IN 0x81 (like the kernel's Loopback gadget) and vendor requests
0x01 (OUT: store data) and 0x02 (IN: return it), like the ``functionfs`` test gadget.
"""

from __future__ import annotations

import collections
import importlib
import inspect
import json
import logging
import threading
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from dkproto._paths import read_file
from dkproto.errors import (
    AbortedError,
    BadArgumentError,
    DkError,
    DkTimeoutError,
    NoDeviceError,
    PipeStalledError,
)
from dkproto.schema.enums import Recipient
from dkproto.transport.base import DEFAULT_TIMEOUT_MS, ControlRequest, Transport, TransportInfo
from dkproto.transport.url import parse_url, url_error

__all__ = ["GRAMMAR", "PROFILES", "ControlRequest", "SimDevice", "SimTransport", "loopback_device"]

log = logging.getLogger(__name__)

GRAMMAR = ("sim://PROFILE with PROFILE a built-in name (loopback), module:attr (a SimDevice, a SimDevice "
           "subclass or a function annotated '-> SimDevice'), or a path to a descriptor file (corpus .json, "
           "raw sysfs 'descriptors' bytes)")

#: A descriptor file larger than this (16 MiB) is refused unread.
MAX_DESCRIPTOR_FILE = 16 << 20

ControlHandler = Callable[["SimDevice", "ControlRequest"], "bytes | int | None"]




class SimDevice:
    """An in-process USB device.

    Args:
        device_descriptor: the 18-byte device descriptor.
        configurations: each configuration descriptor set (``wTotalLength`` bytes).
        strings: string descriptors by index (index 0, the LANGID list, is built).
        name: shown in ``info`` and logs.
    """

    def __init__(self, device_descriptor: bytes, configurations: list[bytes] | None = None,
                 strings: dict[int, str] | None = None, name: str = "sim") -> None:
        if len(device_descriptor) != 18 or device_descriptor[1] != 1:
            raise BadArgumentError(f"{name}: the device descriptor must be 18 bytes of type 1, "
                                   f"got {len(device_descriptor)} bytes")
        self.device_descriptor = bytes(device_descriptor)
        self.configurations = [bytes(c) for c in (configurations or [])]
        self.strings = dict(strings or {})
        self.name = name
        self.configuration = 0
        self.alternate: dict[int, int] = {}
        self.halted: set[int] = set()
        self.plugged = True
        self._handlers: dict[tuple[int, int], ControlHandler] = {}
        self._out_handlers: dict[int, Callable[[SimDevice, bytes], None]] = {}
        self._in_queues: dict[int, collections.deque[bytes]] = collections.defaultdict(collections.deque)
        self._cond = threading.Condition()
        self._abort_gen: dict[int, int] = collections.defaultdict(int)
        self.log: list[ControlRequest] = []

    @property
    def idVendor(self) -> int:
        """idVendor from the device descriptor."""
        return int.from_bytes(self.device_descriptor[8:10], "little")

    @property
    def idProduct(self) -> int:
        """idProduct from the device descriptor."""
        return int.from_bytes(self.device_descriptor[10:12], "little")

    # ----------------------------------------------------------------- building
    @classmethod
    def from_descriptors(cls, blob: bytes, name: str = "sim", strings: dict[int, str] | None = None) -> SimDevice:
        """From the Linux sysfs ``descriptors`` layout: device descriptor, then each configuration.

        Only the framing (18 bytes, then ``wTotalLength`` per configuration) is read here; decoding
        the descriptors is :mod:`dkproto.usb`'s job.
        """
        blob = bytes(blob)
        if len(blob) < 18:
            raise BadArgumentError(f"{name}: {len(blob)} bytes is too short for a device descriptor (18)")
        configs, off = [], 18
        while off < len(blob):
            if off + 4 > len(blob) or blob[off + 1] != 2:
                raise BadArgumentError(f"{name}: offset {off}: expected a configuration descriptor (type 2)")
            total = int.from_bytes(blob[off + 2:off + 4], "little")
            if total < 9 or off + total > len(blob):
                raise BadArgumentError(f"{name}: offset {off}: wTotalLength {total} runs past the end "
                                       f"({len(blob) - off} bytes left)")
            configs.append(blob[off:off + total])
            off += total
        return cls(blob[:18], configs, strings, name)

    @classmethod
    def from_file(cls, path: str | Path) -> SimDevice:
        """From a corpus ``.json`` item (``descriptors_hex``) or a raw sysfs ``descriptors`` file."""
        path = Path(path)
        try:
            raw = read_file(path, max_bytes=MAX_DESCRIPTOR_FILE)
        except DkError as exc:
            raise type(exc)(f"sim: descriptor file {exc}", ioreturn=exc.ioreturn) from exc
        if path.suffix == ".json":
            try:
                item = json.loads(raw)
                blob = bytes.fromhex(item["descriptors_hex"])
            except (ValueError, KeyError, TypeError) as exc:
                raise BadArgumentError(f"sim: {path} is not a corpus item with descriptors_hex ({exc})") from exc
            return cls.from_descriptors(blob, item.get("name", path.stem))
        return cls.from_descriptors(raw, path.stem)

    def request_handler(self, bmRequestType: int, bRequest: int) -> Callable[[ControlHandler], ControlHandler]:
        """Decorator: handle control requests with this exact bmRequestType and bRequest.

        The handler gets ``(device, request)`` and returns the IN data (bytes), or for OUT
        ``None``/a byte count; raising :class:`~dkproto.errors.PipeStalledError` stalls.
        """
        def register(fn: ControlHandler) -> ControlHandler:
            self._handlers[(bmRequestType, bRequest)] = fn
            return fn
        return register

    def vendor_request(self, bRequest: int, direction: str = "in",
                       recipient: str = "device") -> Callable[[ControlHandler], ControlHandler]:
        """Decorator: a vendor request (``direction`` ``in``/``out``, ``recipient`` device/interface/endpoint/other)."""
        return self.request_handler((0x80 if direction == "in" else 0) | 0x40 | Recipient[recipient.upper()], bRequest)

    def class_request(self, bRequest: int, direction: str = "in",
                      recipient: str = "interface") -> Callable[[ControlHandler], ControlHandler]:
        """Decorator: a class request (see :meth:`vendor_request`)."""
        return self.request_handler((0x80 if direction == "in" else 0) | 0x20 | Recipient[recipient.upper()], bRequest)

    def on_write(self, endpoint: int) -> Callable[[Callable[[SimDevice, bytes], None]], Callable[[SimDevice, bytes], None]]:
        """Decorator: called with the bytes the host writes to OUT ``endpoint``."""
        def register(fn: Callable[[SimDevice, bytes], None]) -> Callable[[SimDevice, bytes], None]:
            self._out_handlers[endpoint] = fn
            return fn
        return register

    def loop(self, out_endpoint: int, in_endpoint: int) -> None:
        """What the host writes to ``out_endpoint`` can be read back from ``in_endpoint``."""
        self._out_handlers[out_endpoint] = lambda dev, data: dev.queue_in(in_endpoint, data)

    # ----------------------------------------------------------------- device-side controls
    def queue_in(self, endpoint: int, data: bytes) -> None:
        """Make ``data`` available to the host's next read of IN ``endpoint``."""
        with self._cond:
            self._in_queues[endpoint].append(bytes(data))
            self._cond.notify_all()

    def stall(self, endpoint: int) -> None:
        """Halt an endpoint: host transfers on it fail with a stall until it clears the halt."""
        with self._cond:
            self.halted.add(endpoint)
            self._cond.notify_all()

    def cancel_reads(self, endpoint: int | None = None) -> None:
        """Make blocked host reads (of ``endpoint``, or all) fail with kIOReturnAborted."""
        with self._cond:
            for ep in ([endpoint] if endpoint is not None else list(self._abort_gen) + list(self._in_queues)):
                self._abort_gen[ep] += 1
            self._cond.notify_all()

    def unplug(self) -> None:
        """Disconnect: every transfer, pending ones included, fails with kIOReturnNoDevice."""
        with self._cond:
            self.plugged = False
            self._cond.notify_all()

    def plug(self) -> None:
        """Reconnect (unconfigured, queues emptied)."""
        with self._cond:
            self.plugged = True
            self.configuration = 0
            self.halted.clear()
            self._in_queues.clear()

    # ----------------------------------------------------------------- host side
    def _check(self, endpoint: int) -> None:
        if not self.plugged:
            raise NoDeviceError(f"{self.name}: device unplugged")
        if endpoint in self.halted:
            raise PipeStalledError(f"{self.name}: endpoint 0x{endpoint:02x} is halted")

    def _endpoints(self) -> set[int]:
        eps: set[int] = set()
        for config in self.configurations:
            off = 0
            while off + 2 <= len(config) and config[off] >= 2:
                if config[off + 1] == 5 and config[off] >= 7 and off + 3 <= len(config):
                    eps.add(config[off + 2])
                off += config[off]
        return eps

    def _check_endpoint(self, endpoint: int) -> None:
        eps = self._endpoints()
        if eps and endpoint not in eps:
            raise BadArgumentError(f"{self.name}: no endpoint 0x{endpoint:02x} (endpoints: "
                                   f"{', '.join(f'0x{e:02x}' for e in sorted(eps))})")

    def host_read(self, endpoint: int, length: int, timeout_ms: int) -> bytes:
        """The host reads IN ``endpoint``: waits for queued data up to ``timeout_ms`` (0 = forever)."""
        self._check_endpoint(endpoint)
        deadline = None if timeout_ms == 0 else time.monotonic() + timeout_ms / 1000
        with self._cond:
            generation = self._abort_gen[endpoint]
            while True:
                self._check(endpoint)
                if self._abort_gen[endpoint] != generation:
                    raise AbortedError(f"{self.name}: read from endpoint 0x{endpoint:02x} aborted")
                queue = self._in_queues[endpoint]
                if queue:
                    data = queue.popleft()
                    if len(data) > length:
                        queue.appendleft(data[length:])  # the rest stays for the next read
                        data = data[:length]
                    return data
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise DkTimeoutError(f"{self.name}: read from endpoint 0x{endpoint:02x} timed out "
                                         f"after {timeout_ms} ms")
                self._cond.wait(remaining)

    def host_write(self, endpoint: int, data: bytes) -> int:
        """The host writes OUT ``endpoint``."""
        self._check_endpoint(endpoint)
        with self._cond:
            self._check(endpoint)
        handler = self._out_handlers.get(endpoint)
        if handler is not None:
            handler(self, bytes(data))
        return len(data)

    def control(self, bmRequestType: int, bRequest: int, wValue: int, wIndex: int,
                data_or_wLength: bytes | int | None) -> bytes | int:
        """Serve one control request (standard ones from the descriptors, others from handlers)."""
        with self._cond:
            self._check(0)
        is_in = bool(bmRequestType & 0x80)
        data = b"" if is_in or data_or_wLength is None else bytes(data_or_wLength)  # type: ignore[arg-type]
        wlength = int(data_or_wLength or 0) if is_in else len(data)  # type: ignore[arg-type]
        request = ControlRequest(bmRequestType, bRequest, wValue, wIndex, wlength, data)
        self.log.append(request)
        handler = self._handlers.get((bmRequestType, bRequest))
        if handler is not None:
            result = handler(self, request)
        elif bmRequestType & 0x60 == 0:
            result = self._standard(request)
        else:
            kind = request.type
            recipient = request.recipient
            log.warning("%s: no handler for %r; STALL. Add:\n    @device.%s_request(0x%02x, direction=%r, "
                        "recipient=%r)", self.name, request, kind, bRequest, "in" if is_in else "out", recipient)
            raise PipeStalledError(f"{self.name}: {kind} request 0x{bRequest:02x} not handled (STALL)")
        if is_in:
            return bytes(result or b"")[:wlength]
        return wlength if result is None else int(result)

    def _standard(self, req: ControlRequest) -> bytes | int | None:
        recipient = req.bmRequestType & 0x1F
        if req.bRequest == 0x06 and req.is_in:  # GET_DESCRIPTOR
            dtype, index = req.wValue >> 8, req.wValue & 0xFF
            if dtype == 1:
                return self.device_descriptor
            if dtype == 2 and index < len(self.configurations):
                return self.configurations[index]
            if dtype == 3:
                if index == 0:
                    return bytes([4, 3, 0x09, 0x04])
                if index in self.strings:
                    text = self.strings[index].encode("utf-16-le")
                    return bytes([2 + len(text), 3]) + text
        elif req.bRequest == 0x00 and req.is_in:  # GET_STATUS
            if recipient == 2:
                return bytes([1 if req.wIndex & 0xFF in self.halted else 0, 0])
            return b"\x00\x00"
        elif req.bRequest == 0x08 and req.is_in:  # GET_CONFIGURATION
            return bytes([self.configuration])
        elif req.bRequest == 0x09 and not req.is_in:  # SET_CONFIGURATION
            values = [c[5] for c in self.configurations if len(c) > 5]
            if req.wValue != 0 and req.wValue not in values:
                raise PipeStalledError(f"{self.name}: no configuration {req.wValue}")
            self.configuration = req.wValue
            self.alternate.clear()
            self.halted.clear()
            return None
        elif req.bRequest == 0x0A and req.is_in:  # GET_INTERFACE
            return bytes([self.alternate.get(req.wIndex, 0)])
        elif req.bRequest == 0x0B and not req.is_in:  # SET_INTERFACE
            self.alternate[req.wIndex] = req.wValue
            return None
        elif req.bRequest in (0x01, 0x03) and recipient == 2 and req.wValue == 0:  # CLEAR/SET_FEATURE(HALT)
            with self._cond:
                (self.halted.discard if req.bRequest == 0x01 else self.halted.add)(req.wIndex & 0xFF)
                self._cond.notify_all()
            return None
        raise PipeStalledError(f"{self.name}: standard request 0x{req.bRequest:02x} "
                               f"(wValue=0x{req.wValue:04x}) not supported (STALL)")


def loopback_device() -> SimDevice:
    """The built-in ``loopback`` profile (pid.codes test VID:PID 1209:0001)."""
    device = bytes.fromhex("12 01 0002 ff 00 00 40 0912 0100 0001 01 02 03 01")
    config = bytes.fromhex(
        "09 02 2000 01 01 00 80 fa"    # configuration 1: 1 interface, bus powered, 500 mA
        "09 04 00 00 02 ff 00 00 00"   # interface 0: 2 endpoints, vendor specific
        "07 05 81 02 0002 00"          # bulk IN 0x81, wMaxPacketSize 512
        "07 05 02 02 0002 00")         # bulk OUT 0x02, wMaxPacketSize 512
    dev = SimDevice(device, [config], {1: "dkproto", 2: "sim loopback", 3: "0001"}, name="sim://loopback")
    dev.loop(0x02, 0x81)
    store: dict[str, bytes] = {"data": b""}

    @dev.vendor_request(0x01, direction="out")
    def _store(device: SimDevice, req: ControlRequest) -> None:
        store["data"] = req.data

    @dev.vendor_request(0x02, direction="in")
    def _fetch(device: SimDevice, req: ControlRequest) -> bytes:
        return store["data"]

    return dev


#: Built-in profiles: name -> factory.
PROFILES: dict[str, Callable[[], SimDevice]] = {"loopback": loopback_device}


def _is_factory(obj: Any) -> bool:
    """True for a function declared to return a SimDevice (``def make() -> SimDevice``)."""
    if not inspect.isfunction(obj):
        return False
    try:
        ret = typing.get_type_hints(obj).get("return")
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: read it as text
        ret = obj.__annotations__.get("return")
    if isinstance(ret, str):
        return ret.rsplit(".", 1)[-1] == "SimDevice"
    return isinstance(ret, type) and issubclass(ret, SimDevice)


def load_profile(spec: str, url: str = "") -> SimDevice:
    """A SimDevice from a profile name, ``module:attr`` or a descriptor-file path.

    ``module:attr`` must name a SimDevice, a SimDevice subclass (called with no arguments) or a
    function annotated ``-> SimDevice``; anything else is refused without being called.
    """
    url = url or f"sim://{spec}"
    if spec in PROFILES:
        return PROFILES[spec]()
    try:
        is_file = Path(spec).exists()
    except (OSError, ValueError):  # a NUL byte, a name too long
        is_file = False
    if ":" in spec and not is_file:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # ImportError, a SyntaxError, a sys.exit at import...
            raise url_error(url, f"cannot import {module_name!r} ({type(exc).__name__}: {exc})", GRAMMAR) from exc
        obj: Any = getattr(module, attr, None)
        if isinstance(obj, SimDevice):
            return obj
        if not ((isinstance(obj, type) and issubclass(obj, SimDevice)) or _is_factory(obj)):
            what = "does not exist" if obj is None else f"is a {type(obj).__name__}"
            raise url_error(url, f"{module_name}.{attr} {what}, not a SimDevice, a SimDevice subclass or a "
                            "function annotated '-> SimDevice' (nothing was called)", GRAMMAR)
        try:
            inspect.signature(obj).bind()
        except (TypeError, ValueError):
            raise url_error(url, f"{module_name}.{attr} cannot be called without arguments", GRAMMAR) from None
        try:
            device = obj()
        except (KeyboardInterrupt, DkError):
            raise
        except BaseException as exc:
            from dkproto.iokit.status import user_code_error

            raise user_code_error(exc, f"making the {url} device", getattr(module, "__file__", None)) from exc
        if not isinstance(device, SimDevice):
            raise url_error(url, f"{spec} returned {type(device).__name__}, not a SimDevice", GRAMMAR)
        return device
    if is_file:
        return SimDevice.from_file(spec)
    raise url_error(url, f"no profile, module or file named {spec!r} "
                    f"(built-ins: {', '.join(PROFILES)})", GRAMMAR)


class SimTransport(Transport):
    """A transport onto a :class:`SimDevice` in this process (``sim://``).

    Args:
        device: the simulated device.
        url: for ``info``.
        interface: default interface (wIndex of HID reports).
    """

    scheme: ClassVar[str] = "sim"
    grammar: ClassVar[str] = GRAMMAR

    def __init__(self, device: SimDevice, url: str = "", interface: int | None = None) -> None:
        super().__init__()
        self.device = device
        self.url = url or f"sim://{device.name}"
        self.interface = interface
        self._claimed: set[int] = set()

    @classmethod
    def from_url(cls, url: str) -> SimTransport:
        """``sim://PROFILE`` (see :data:`GRAMMAR`)."""
        parsed = parse_url(url, GRAMMAR)
        if parsed.scheme != "sim":
            raise url_error(url, f"scheme {parsed.scheme!r} is not sim", GRAMMAR)
        spec = parsed.authority + parsed.path
        if not spec:
            raise url_error(url, "no profile named", GRAMMAR)
        interface = None
        if parsed.query:
            from dkproto.transport.url import QueryOptions

            opts = QueryOptions(parsed, GRAMMAR)
            interface = opts.int("interface", None, lo=0, hi=255)
            opts.finish()
        return cls(load_profile(spec, url), url, interface)

    def _open(self) -> None:
        if not self.device.plugged:
            raise NoDeviceError(f"{self.url}: device unplugged")

    def _close(self) -> None:
        self._claimed.clear()

    @property
    def info(self) -> TransportInfo:
        dd = self.device.device_descriptor
        return TransportInfo(url=self.url, scheme="sim", idVendor=self.device.idVendor,
                             idProduct=self.device.idProduct, serial_number=self.device.strings.get(dd[16]),
                             manufacturer=self.device.strings.get(dd[14]), product=self.device.strings.get(dd[15]),
                             interface=self.interface, speed="high")

    def control_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                         data_or_wLength: bytes | int | None = None,
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        self._require_open("control_transfer")
        return self.device.control(bmRequestType, bRequest, wValue, wIndex, data_or_wLength)

    def read(self, endpoint: int, length: int, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        self._require_open("read")
        if not endpoint & 0x80:
            raise BadArgumentError(f"read from endpoint 0x{endpoint:02x}: not an IN endpoint (0x80 bit clear)")
        return self.device.host_read(endpoint, length, timeout)

    def write(self, endpoint: int, data: bytes, timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        self._require_open("write")
        if endpoint & 0x80:
            raise BadArgumentError(f"write to endpoint 0x{endpoint:02x}: not an OUT endpoint (0x80 bit set)")
        return self.device.host_write(endpoint, data)

    def set_configuration(self, bConfigurationValue: int) -> None:
        self.control_transfer(0x00, 0x09, bConfigurationValue, 0, None)

    def claim_interface(self, bInterfaceNumber: int) -> None:
        self._require_open("claim_interface")
        self._claimed.add(bInterfaceNumber)

    def release_interface(self, bInterfaceNumber: int) -> None:
        self._require_open("release_interface")
        self._claimed.discard(bInterfaceNumber)

    def set_alternate_setting(self, bInterfaceNumber: int, bAlternateSetting: int) -> None:
        self.abort(None)
        self.control_transfer(0x01, 0x0B, bAlternateSetting, bInterfaceNumber, None)

    def clear_halt(self, endpoint: int) -> None:
        self.control_transfer(0x02, 0x01, 0, endpoint, None)

    def reset(self) -> None:
        self._require_open("reset")
        self.device.plug()

    def _interrupt(self, endpoint: int | None) -> None:
        self.device.cancel_reads(endpoint)
