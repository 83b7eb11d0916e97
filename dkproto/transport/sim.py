"""``sim://``: an in-process USB device serving a profile, a full back end for unit tests.

A :class:`SimDevice` serves a descriptor set (:class:`dkproto.usb.DescriptorSet`, from bytes,
a descriptor file or a set) through the device side's one seam, :mod:`dkproto.device`: the
standard requests are answered by a :class:`~dkproto.device.StandardResponder` (every
descriptor of the set: device, configurations, BOS, strings in every LANGID, device qualifier,
other-speed configurations, hub descriptor, HID class and report descriptors; GET/SET_CONFIGURATION,
GET/SET_INTERFACE, GET_STATUS, CLEAR/SET_FEATURE...), other control requests by handlers
registered with :func:`~dkproto.device.control_request` (on a SimDevice subclass's methods, or
``@device.control_request(...)`` on one device), and endpoint data moves through queues. An
unhandled request STALLs (:class:`~dkproto.errors.PipeStalledError`), and the log names the
decorator you would need. Device-side controls: :meth:`SimDevice.queue_in`,
:meth:`SimDevice.stall`, :meth:`SimDevice.unplug`.

URL grammar: see :data:`GRAMMAR`. Built-in profiles (:data:`PROFILES`):

* ``loopback``: vendor interface 0 with bulk OUT 0x02 looped to bulk IN 0x81 (like the kernel's
  Loopback gadget) and vendor requests 0x01 (OUT: store data) and 0x02 (IN: return it), like the
  ``functionfs`` test gadget;
* ``hid-keyboard``: a boot keyboard with LEDs (:class:`SimKeyboard`), so ``dkproto hid
  parse|watch|write|get-feature sim://hid-keyboard`` work with no code.
"""

from __future__ import annotations

import collections
import importlib
import inspect
import logging
import threading
import time
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dkproto.device import (
    ControlRequest,
    RequestHandlers,
    StandardResponder,
    control_request,
    load_set,
    set_from_parts,
    split_descriptors,
)
from dkproto.errors import (
    AbortedError,
    BadArgumentError,
    DkError,
    DkTimeoutError,
    NoDeviceError,
    PipeStalledError,
)
from dkproto.transport.base import DEFAULT_TIMEOUT_MS, Transport, TransportInfo
from dkproto.transport.url import parse_url, url_error

if TYPE_CHECKING:
    from dkproto.usb import DescriptorSet

__all__ = ["BOOT_KEYBOARD_REPORT_DESCRIPTOR", "GRAMMAR", "PROFILES", "ControlRequest", "SimDevice", "SimKeyboard",
           "SimTransport", "control_request", "hid_keyboard_device", "loopback_device"]

log = logging.getLogger(__name__)

GRAMMAR = ("sim://PROFILE with PROFILE a built-in name (loopback, hid-keyboard), module:attr (a SimDevice, a SimDevice "
           "subclass or a function annotated '-> SimDevice'), or a path to a descriptor file (corpus .json, "
           "raw sysfs 'descriptors' bytes)")

#: A descriptor file larger than this (16 MiB) is refused unread.
MAX_DESCRIPTOR_FILE = 16 << 20

ControlHandler = Callable[["SimDevice", ControlRequest], "bytes | int | None"]


class SimDevice(RequestHandlers):
    """An in-process USB device.

    Args:
        device_descriptor: the 18-byte device descriptor (None with ``descriptor_set``).
        configurations: each configuration descriptor set (``wTotalLength`` bytes).
        strings: US-English string descriptors by index (index 0, the LANGID list, is made).
        name: shown in ``info`` and logs.
        descriptor_set: instead of the three above, a whole set (strings in every LANGID,
            BOS, qualifier, other-speed configurations, hub descriptor: see :meth:`from_set`).
        report_descriptors: HID report descriptors by interface number (GET_DESCRIPTOR 0x22), over
            those the set carries.
    """

    responder: StandardResponder

    def __init__(self, device_descriptor: bytes | None, configurations: list[bytes] | None = None,
                 strings: dict[int, str] | None = None, name: str = "sim", *,
                 descriptor_set: DescriptorSet | None = None,
                 report_descriptors: Mapping[int, bytes] | None = None) -> None:
        if descriptor_set is None:
            if device_descriptor is None or len(device_descriptor) != 18 or device_descriptor[1] != 1:
                got = "none" if device_descriptor is None else f"{len(device_descriptor)} bytes"
                raise BadArgumentError(f"{name}: the device descriptor must be 18 bytes of type 1, got {got}")
            try:
                descriptor_set = set_from_parts(device_descriptor, configurations or [], strings=strings,
                                                source=name)
            except DkError as exc:
                raise type(exc)(f"{name}: {exc}", ioreturn=exc.ioreturn) from exc
        elif device_descriptor is not None or configurations or strings:
            raise BadArgumentError(f"{name}: give a descriptor set or its parts, not both")
        self.name = name
        self.responder = StandardResponder(descriptor_set, report_descriptors=report_descriptors, name=name)
        self.plugged = True
        self._out_handlers: dict[int, Callable[[SimDevice, bytes], None]] = {}
        self._in_queues: dict[int, collections.deque[bytes]] = collections.defaultdict(collections.deque)
        self._cond = threading.Condition()
        self._abort_gen: dict[int, int] = collections.defaultdict(int)
        self.log: list[ControlRequest] = []

    # ----------------------------------------------------------------- what it serves
    @property
    def descriptor_set(self) -> DescriptorSet:
        """The set served."""
        return self.responder.descriptor_set

    @property
    def device_descriptor(self) -> bytes:
        """The 18-byte device descriptor served."""
        return self.responder.device

    @property
    def configurations(self) -> list[bytes]:
        """Each configuration served (``wTotalLength`` bytes)."""
        return self.responder.configurations

    @property
    def strings(self) -> dict[int, str]:
        """Strings by index, in the set's first LANGID."""
        ds = self.responder.descriptor_set
        langids = ds.langids()
        first = langids[0] if langids else None
        return {index: text for (langid, index) in ds.strings
                if index and (first is None or langid == first) and (text := ds.string(index, langid)) is not None}

    @property
    def configuration(self) -> int:
        """The bConfigurationValue set (0: unconfigured)."""
        return self.responder.configuration

    @property
    def alternate(self) -> dict[int, int]:
        """bInterfaceNumber -> the alternate setting selected."""
        return self.responder.alternates

    @property
    def halted(self) -> set[int]:
        """Halted endpoint addresses."""
        return self.responder.halted

    @property
    def idVendor(self) -> int:
        """idVendor from the device descriptor."""
        return int.from_bytes(self.device_descriptor[8:10], "little")

    @property
    def idProduct(self) -> int:
        """idProduct from the device descriptor."""
        return int.from_bytes(self.device_descriptor[10:12], "little")

    def endpoint_addresses(self) -> set[int]:
        """Every endpoint address of every configuration."""
        return self.responder.endpoint_addresses()

    _endpoints = endpoint_addresses  # the name before dkproto.device; use endpoint_addresses()

    # ----------------------------------------------------------------- building
    @classmethod
    def from_set(cls, descriptor_set: DescriptorSet, name: str = "sim",
                 report_descriptors: Mapping[int, bytes] | None = None) -> SimDevice:
        """Serving a whole :class:`~dkproto.usb.DescriptorSet` (checked: framed as a device presents it)."""
        try:
            split_descriptors(descriptor_set.to_bytes())
        except DkError as exc:
            raise type(exc)(f"{name}: {exc}", ioreturn=exc.ioreturn) from exc
        return cls(None, name=name, descriptor_set=descriptor_set, report_descriptors=report_descriptors)

    @classmethod
    def from_descriptors(cls, blob: bytes, name: str = "sim", strings: dict[int, str] | None = None) -> SimDevice:
        """From the Linux sysfs ``descriptors`` layout: device descriptor, then each configuration."""
        try:
            device, configs = split_descriptors(blob)
        except DkError as exc:
            raise type(exc)(f"{name}: {exc}", ioreturn=exc.ioreturn) from exc
        return cls(device, configs, strings, name)

    @classmethod
    def from_file(cls, path: str | Path) -> SimDevice:
        """From a descriptor file: any format :func:`dkproto.usb.load` reads (corpus or dkproto
        JSON, hex text, raw sysfs ``descriptors`` bytes), the whole set served."""
        path = Path(path)
        try:
            ds = load_set(path, max_bytes=MAX_DESCRIPTOR_FILE)
        except DkError as exc:
            raise type(exc)(f"sim: descriptor file {exc}", ioreturn=exc.ioreturn) from exc
        return cls(None, name=str(ds.meta.get("name") or path.stem), descriptor_set=ds)

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
            self.responder.reset()
            self._in_queues.clear()

    # ----------------------------------------------------------------- host side
    def _check(self, endpoint: int) -> None:
        if not self.plugged:
            raise NoDeviceError(f"{self.name}: device unplugged")
        if endpoint in self.halted:
            raise PipeStalledError(f"{self.name}: endpoint 0x{endpoint:02x} is halted")

    def _check_endpoint(self, endpoint: int) -> None:
        eps = self.endpoint_addresses()
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
        """Serve one control request through :meth:`~dkproto.device.RequestHandlers.handle_control`:
        a handler, else the standard responder, else a STALL (PipeStalledError)."""
        with self._cond:
            self._check(0)
        is_in = bool(bmRequestType & 0x80)
        data = b"" if is_in or data_or_wLength is None else bytes(data_or_wLength)
        wlength = int(data_or_wLength or 0) if is_in else len(data)
        request = ControlRequest(bmRequestType, bRequest, wValue, wIndex, wlength, data)
        self.log.append(request)
        try:
            result = self.handle_control(request)
        finally:
            with self._cond:
                self._cond.notify_all()  # a halt cleared or set: blocked readers look again
        if is_in:
            return result if isinstance(result, bytes) else b""
        return wlength if result is None else int(result)


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

    @dev.control_request(type="vendor", number=0x01, direction="out")
    def _store(device: SimDevice, req: ControlRequest) -> None:
        store["data"] = req.data

    @dev.control_request(type="vendor", number=0x02, direction="in")
    def _fetch(device: SimDevice, req: ControlRequest) -> bytes:
        return store["data"]

    return dev


#: The boot keyboard report descriptor of HID 1.11 Appendix E.6: input (8 bytes) a modifier byte, a
#: reserved byte and 6 key codes (0..101); output (1 byte) 5 LEDs (Num Lock, Caps Lock, Scroll Lock,
#: Compose, Kana) and 3 bits of padding. No report IDs.
BOOT_KEYBOARD_REPORT_DESCRIPTOR = bytes.fromhex(
    "05010906a101"                    # Usage Page (Generic Desktop), Usage (Keyboard), Collection (Application)
    "050719e029e71500250175019508"    # Usage Page (Keyboard), Usage Min/Max (0xE0-0xE7), 8 x 1 bit
    "8102"                            # Input (Data, Variable, Absolute): the modifier byte
    "950175088101"                    # Input (Constant): the reserved byte
    "95057501050819012905"            # Usage Page (LEDs), Usage Min/Max (1-5), 5 x 1 bit
    "9102"                            # Output (Data, Variable, Absolute): the LEDs
    "950175039101"                    # Output (Constant): 3 bits of padding
    "95067508150025650507190029658100"  # 6 x 8 bits, keys 0..101: Input (Data, Array)
    "c0")                             # End Collection


class SimKeyboard(SimDevice):
    """The built-in ``hid-keyboard`` profile: a USB boot keyboard with LEDs (pid.codes test VID:PID 1209:0003).

    One HID interface (0: class 3, boot subclass, keyboard protocol) with an interrupt IN endpoint
    0x81 (8 bytes) and :data:`BOOT_KEYBOARD_REPORT_DESCRIPTOR`; no interrupt OUT, so the LEDs come
    as SET_REPORT(Output), as a boot keyboard's do. It answers the HID class requests (HID 1.11
    §7.2): GET_REPORT (input: the last report queued; output: the LEDs), SET_REPORT (output),
    GET/SET_IDLE and GET/SET_PROTOCOL; a feature report, a report ID or another interface STALLs.

    Device side: :meth:`press` and :meth:`release` queue input reports (:meth:`SimDevice.queue_in`
    on 0x81); :attr:`leds` is the LED byte the host last set, :attr:`outputs` every one, in order.
    """

    #: the interface and its interrupt IN endpoint
    INTERFACE, IN_ENDPOINT = 0, 0x81

    def __init__(self) -> None:
        rdesc = BOOT_KEYBOARD_REPORT_DESCRIPTOR
        device = bytes.fromhex("12 01 0002 00 00 00 40 0912 0300 0001 01 02 03 01")
        config = (bytes.fromhex("09 02 2200 01 01 00 a0 32"   # configuration 1: 1 interface, remote wakeup, 100 mA
                                "09 04 00 00 01 03 01 01 00"  # interface 0: 1 endpoint, HID, boot, keyboard
                                "09 21 1101 00 01 22") + len(rdesc).to_bytes(2, "little")
                  + bytes.fromhex("07 05 81 03 0800 0a"))      # interrupt IN 0x81, 8 bytes, every 10 ms
        super().__init__(device, [config], {1: "dkproto", 2: "sim hid-keyboard", 3: "0003"},
                         name="sim://hid-keyboard", report_descriptors={self.INTERFACE: rdesc})
        self.leds = 0
        self.outputs: list[bytes] = []
        self.last_input = bytes(8)
        self.idle = 0
        self.protocol = 1  # report protocol; 0 is the boot protocol (the same reports here)

    # ----------------------------------------------------------------- device side
    def press(self, *keys: int, modifiers: int = 0) -> bytes:
        """Queue the input report of ``keys`` (Keyboard page usages, at most 6) held with
        ``modifiers`` (bit 0 Left Control ... bit 7 Right GUI); returns it."""
        if len(keys) > 6 or not all(0 <= k <= 101 for k in keys) or not 0 <= modifiers <= 0xFF:
            raise BadArgumentError(f"{self.name}: at most 6 key codes 0..101 and a modifier byte, "
                                   f"got {keys} and {modifiers}")
        report = bytes([modifiers, 0, *keys]) + bytes(6 - len(keys))
        self.last_input = report
        self.queue_in(self.IN_ENDPOINT, report)
        return report

    def release(self) -> bytes:
        """Queue the all-keys-up report; returns it."""
        return self.press()

    # ----------------------------------------------------------------- HID class requests
    def _check_request(self, req: ControlRequest, report_types: tuple[int, ...] = ()) -> None:
        if req.wIndex & 0xFF != self.INTERFACE:
            raise PipeStalledError(f"{self.name}: {req.describe()}: no HID interface {req.wIndex & 0xFF}")
        if report_types and (req.wValue >> 8 not in report_types or req.wValue & 0xFF):
            raise PipeStalledError(f"{self.name}: {req.describe()}: no such report (type {req.wValue >> 8}, "
                                   f"ID {req.wValue & 0xFF})")

    @control_request(type="class", recipient="interface", number=0x01, direction="in")
    def get_report(self, req: ControlRequest) -> bytes:
        """GET_REPORT: input (type 1), the last report; output (type 2), the LEDs."""
        self._check_request(req, (1, 2))
        return self.last_input if req.wValue >> 8 == 1 else bytes([self.leds])

    @control_request(type="class", recipient="interface", number=0x09, direction="out")
    def set_report(self, req: ControlRequest) -> None:
        """SET_REPORT(Output): the LED byte."""
        self._check_request(req, (2,))
        if len(req.data) != 1:
            raise PipeStalledError(f"{self.name}: {req.describe()}: the LED report is 1 byte, not {len(req.data)}")
        self.leds = req.data[0]
        self.outputs.append(req.data)

    @control_request(type="class", recipient="interface", number=0x02, direction="in")
    def get_idle(self, req: ControlRequest) -> bytes:
        self._check_request(req)
        return bytes([self.idle])

    @control_request(type="class", recipient="interface", number=0x0A, direction="out")
    def set_idle(self, req: ControlRequest) -> None:
        self._check_request(req)
        self.idle = req.wValue >> 8

    @control_request(type="class", recipient="interface", number=0x03, direction="in")
    def get_protocol(self, req: ControlRequest) -> bytes:
        self._check_request(req)
        return bytes([self.protocol])

    @control_request(type="class", recipient="interface", number=0x0B, direction="out")
    def set_protocol(self, req: ControlRequest) -> None:
        self._check_request(req)
        if req.wValue > 1:
            raise PipeStalledError(f"{self.name}: {req.describe()}: protocol 0 (boot) or 1 (report)")
        self.protocol = req.wValue


def hid_keyboard_device() -> SimKeyboard:
    """The built-in ``hid-keyboard`` profile (:class:`SimKeyboard`)."""
    return SimKeyboard()


#: Built-in profiles: name -> factory.
PROFILES: dict[str, Callable[[], SimDevice]] = {"loopback": loopback_device, "hid-keyboard": hid_keyboard_device}


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
            from dkproto._usercode import user_code_error

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
