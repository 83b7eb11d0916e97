"""HIDDriverKit mirror: ``IOHIDInterface``, ``IOUserHIDDevice``, ``IOUserHIDEventService`` (driverkit.md 5).

The stack, as in macOS::

    hid:// transport (hidapi)  --or--  IOUserHIDDevice (your dext makes the device)
                 \\                          /
                  IOHIDInterface nub  (reports in, GetReport/SetReport out)
                          |
                  IOUserHIDEventService  (handle_report -> dispatch keyboard/pointer/scroll events)

Report descriptors are parsed with :mod:`dkproto.hid` (engineer H4's parser and codecs);
the event service reads fields by their layout, as ``IOHIDInterface::processReport`` updates
elements. Report buffers carry the report-ID byte only when the descriptor declares report
IDs (the DriverKit convention, driverkit.md 8.2); hidapi's ID prefix is normalized here.
Timestamps are ``time.monotonic_ns()``.

The module registers the HID families (:mod:`~dkproto.iokit.family`): ``IOHIDInterface`` as a
provider (HID matching keys; published on a HID ``IOUSBHostInterface`` of a described device, and
from ``hid://`` transports), ``IOUserHIDEventService`` and ``IOUserHIDDevice`` as driver classes
with their family entitlements (driverkit.md 5.1).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dkproto.errors import (
    BadArgumentError,
    DkError,
    DkTimeoutError,
    NoDeviceError,
    NotOpenError,
    UnsupportedError,
)
from dkproto.iokit.action import OSAction, create_action
from dkproto.iokit.family import Family, register_family
from dkproto.iokit.matching import Candidate, MatchResult, compare_properties
from dkproto.iokit.memory import IOBufferMemoryDescriptor, IOMemoryDescriptor
from dkproto.iokit.personality import Personality
from dkproto.iokit.service import IOService, ServiceState, start_service
from dkproto.ioreturn import IOReturn

__all__ = [
    "ENT_FAMILY_HID_DEVICE",
    "ENT_FAMILY_HID_EVENTSERVICE",
    "ENT_TRANSPORT_HID",
    "HIDEvent",
    "IOHIDDigitizerStylusData",
    "IOHIDDigitizerTouchData",
    "IOHIDInterface",
    "IOHIDReportType",
    "IOUserHIDDevice",
    "IOUserHIDEventDriver",
    "IOUserHIDEventService",
    "kIOHIDEventDriverHandlesReport",
    "kIOHIDPrimaryUsageKey",
    "kIOHIDPrimaryUsagePageKey",
    "kIOHIDProductIDKey",
    "kIOHIDTransportKey",
    "kIOHIDVendorIDKey",
]

kIOHIDReportIntervalKey = "ReportInterval"
kIOHIDVendorIDKey = "VendorID"
kIOHIDProductIDKey = "ProductID"
kIOHIDTransportKey = "Transport"
kIOHIDVersionNumberKey = "VersionNumber"
kIOHIDCountryCodeKey = "CountryCode"
kIOHIDLocationIDKey = "LocationID"
kIOHIDManufacturerKey = "Manufacturer"
kIOHIDProductKey = "Product"
kIOHIDSerialNumberKey = "SerialNumber"
kIOHIDPrimaryUsagePageKey = "PrimaryUsagePage"
kIOHIDPrimaryUsageKey = "PrimaryUsage"
#: IOHIDEventServiceKeys.h: a Boolean property an IOUserHIDEventDriver sets (``SetProperties``, in
#: ``handleStart``) to get each report in ``handleReport`` before any processing (no
#: ``IOHIDInterface::processReport``: the driver updates the elements itself).
kIOHIDEventDriverHandlesReport = "IOHIDEventDriverHandlesReport"

ENT_TRANSPORT_HID = "com.apple.developer.driverkit.transport.hid"
ENT_FAMILY_HID_DEVICE = "com.apple.developer.driverkit.family.hid.device"
ENT_FAMILY_HID_EVENTSERVICE = "com.apple.developer.driverkit.family.hid.eventservice"

_log = logging.getLogger(__name__)


class IOHIDReportType(enum.IntEnum):
    """``IOHIDReportType``."""

    kIOHIDReportTypeInput = 0
    kIOHIDReportTypeOutput = 1
    kIOHIDReportTypeFeature = 2
    kIOHIDReportTypeCount = 3


_TYPE_NAMES = {0: "input", 1: "output", 2: "feature"}


def _fixed(v: float) -> int:
    """To ``IOFixed`` (16.16)."""
    return round(v * 65536)


@dataclass(frozen=True, slots=True)
class HIDEvent:
    """One dispatched event, as the event system would receive it.

    ``kind`` is ``keyboard`` (usage_page, usage, value), ``relative_pointer`` (dx, dy as
    IOFixed, buttons), ``absolute_pointer`` (x, y as IOFixed in 0..1, buttons), ``scroll``
    (dx, dy, dz as IOFixed), ``digitizer_stylus`` (``contacts``: one
    :class:`IOHIDDigitizerStylusData`) or ``digitizer_touch`` (``contacts``: the
    :class:`IOHIDDigitizerTouchData` of every contact).
    """

    kind: str
    timestamp: int
    usage_page: int = 0
    usage: int = 0
    value: int = 0
    dx: int = 0
    dy: int = 0
    dz: int = 0
    buttons: int = 0
    x: int = 0
    y: int = 0
    contacts: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class IOHIDDigitizerStylusData:
    """``IOHIDDigitizerStylusData`` (HIDDriverKit IOHIDDigitizerStructs.h): IOFixed x, y, pressures
    and tilt in 0..1 (16.16), single-bit flags as 0/1."""

    identifier: int = 0
    x: int = 0
    y: int = 0
    tipPressure: int = 0
    barrelPressure: int = 0
    tiltX: int = 0
    tiltY: int = 0
    twist: int = 0
    pointerType: int = 0
    effect: int = 0
    uniqueID: int = 0
    inRange: int = 0
    tip: int = 0
    barrelSwitch: int = 0
    invert: int = 0
    eraser: int = 0
    tipChanged: int = 0
    positionChanged: int = 0
    rangeChanged: int = 0


@dataclass(frozen=True, slots=True)
class IOHIDDigitizerTouchData:
    """``IOHIDDigitizerTouchData`` (HIDDriverKit IOHIDDigitizerStructs.h): one contact; IOFixed x, y
    in 0..1, single-bit flags as 0/1."""

    identifier: int = 0
    x: int = 0
    y: int = 0
    inRange: int = 0
    touch: int = 0
    touchValid: int = 0
    touchChanged: int = 0
    positionChanged: int = 0
    rangeChanged: int = 0


def _extract(data: bytes, bit: int, size: int, signed: bool) -> int:
    v = (int.from_bytes(data, "little") >> bit) & ((1 << size) - 1)
    if signed and v & (1 << (size - 1)):
        v -= 1 << size
    return v


class IOHIDInterface(IOService):
    """``IOHIDInterface``: a HID device's reports, the provider of event services.

    Build it over a ``hid://`` transport with :meth:`from_transport`, or let an
    :class:`IOUserHIDDevice` publish one.
    """

    def __init__(self, report_descriptor: bytes, properties: dict[str, Any], *, transport: Any = None,
                 device: IOUserHIDDevice | None = None) -> None:
        super().__init__()
        from dkproto.hid import parse

        self.report_descriptor = bytes(report_descriptor)
        self.descriptor = parse(self.report_descriptor)
        self.transport = transport
        self.device = device
        self.properties.update(properties)
        apps = [c for c in self.descriptor.collections if c.type == 1]
        if apps:
            self.properties.setdefault(kIOHIDPrimaryUsagePageKey, apps[0].usage >> 16)
            self.properties.setdefault(kIOHIDPrimaryUsageKey, apps[0].usage & 0xFFFF)
            self.properties.setdefault("DeviceUsagePairs", [{"DeviceUsagePage": c.usage >> 16,
                                                             "DeviceUsage": c.usage & 0xFFFF} for c in apps])
        self._client: IOService | None = None
        self._action: OSAction | None = None
        #: (type, report ID) -> (timestamp, bytes) of the last report ``process_report`` saw.
        self.last_reports: dict[tuple[int, int], tuple[int, bytes]] = {}
        self._reader: threading.Thread | None = None
        self._stop_reading = threading.Event()
        self.set_name(f"IOHIDInterface {self.properties.get(kIOHIDVendorIDKey, 0):04x}:"
                      f"{self.properties.get(kIOHIDProductIDKey, 0):04x}")

    @classmethod
    def from_transport(cls, transport: Any) -> IOHIDInterface:
        """A started, registered nub over an open ``hid://`` transport."""
        if not getattr(transport, "is_open", True):
            transport.open()
        info = transport.info
        props = {kIOHIDVendorIDKey: info.idVendor or 0, kIOHIDProductIDKey: info.idProduct or 0,
                 kIOHIDTransportKey: "USB", kIOHIDProductKey: info.product or "",
                 kIOHIDManufacturerKey: info.manufacturer or "", kIOHIDSerialNumberKey: info.serial_number or ""}
        # Transport.report_descriptor: hid:// asks hidapi (sysfs as its fallback), the others GET_DESCRIPTOR
        nub = cls(bytes(transport.report_descriptor()), props, transport=transport)
        start_service(nub, None)
        nub.register_service()
        return nub

    @property
    def uses_report_ids(self) -> bool:
        """True when the descriptor declares report IDs."""
        return bool(self.descriptor.uses_report_ids)

    def get_elements(self) -> list[Any]:
        """``getElements()``: the parsed fields of every report (dkproto.hid ``Field`` objects)."""
        return [f for r in self.descriptor.reports.values() for f in r.fields]

    def open(self, for_client: IOService, options: int = 0, action: OSAction | None = None) -> None:
        """``Open(forClient, options, action TYPE(ReportAvailable))``: input reports start flowing
        to ``action`` as ``ReportAvailable(timestamp, reportID, reportLength, type, report)``."""
        if self._client is not None and self._client is not for_client:
            from dkproto.errors import ExclusiveAccessError

            raise ExclusiveAccessError(f"{self.get_name()}: already open by {type(self._client).__name__}")
        self._client = for_client
        self._action = action
        if self.transport is not None and self._reader is None:
            self._stop_reading.clear()
            self._reader = threading.Thread(target=self._read_loop, name=f"{self.get_name()} reader", daemon=True)
            self._reader.start()

    def close(self, for_client: IOService, options: int = 0) -> None:
        """``Close(forClient, options)``."""
        if self._client is not for_client:
            return
        self._client = None
        self._action = None
        self._stop_reading.set()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(2.0)
        self._reader = None

    def _present(self) -> bool:
        """False once the OS node behind the transport (``/dev/hidrawN``) has disappeared.

        A replayed transport has no node on this machine (``local_nodes`` is False): the path in
        its info is the recording's, so only its errors (NoDeviceError) tell that the device is gone.
        """
        import os

        if not getattr(self.transport, "local_nodes", True):
            return True
        path = getattr(getattr(self.transport, "info", None), "path", None)
        return not (isinstance(path, str) and path.startswith("/dev/") and not os.path.exists(path))

    def _read_loop(self) -> None:
        while not self._stop_reading.is_set():
            try:
                data = self.transport.read(0x81, 4096, timeout=200)
            except DkTimeoutError:
                if not self._present():
                    self.device_gone()
                    return
                continue
            except NoDeviceError:
                self.device_gone()
                return
            except DkError as exc:
                if self._stop_reading.is_set():
                    return
                if not self._present():
                    self.device_gone()
                    return
                _log.warning("%s: read failed: %s", self.get_name(), exc)
                time.sleep(0.05)
                continue
            self.report_available(time.monotonic_ns(), data, IOHIDReportType.kIOHIDReportTypeInput)

    def device_gone(self) -> None:
        """The device went away: terminate this nub (its event service stops first)."""
        self._stop_reading.set()
        if self.state is ServiceState.STARTED:
            self.terminate()

    def report_available(self, timestamp: int, report: bytes, report_type: int = 0) -> None:
        """Deliver one report to the open client's ``ReportAvailable`` action (asynchronously)."""
        action = self._action
        if action is None:
            return
        rid = report[0] if (self.uses_report_ids and report) else 0
        md = IOBufferMemoryDescriptor.with_bytes(report)
        action.invoke(timestamp, rid, len(report), report_type, md)

    def process_report(self, timestamp: int, report: bytes, report_length: int, report_type: int,
                       report_id: int = 0) -> None:
        """``processReport(timestamp, report, reportLength, type, reportID)``: update the element
        values from a report. dkproto keeps the last report of each (type, ID); the event driver
        decodes fields from it."""
        self.last_reports[(int(report_type), int(report_id))] = (int(timestamp), bytes(report[:report_length]))

    def set_report(self, report: IOMemoryDescriptor | bytes, report_type: int, report_id: int = 0,
                   options: int = 0) -> int:
        """``SetReport(report, reportType, reportID, options)``; ``report`` holds the payload
        (with the ID byte first when the descriptor uses IDs, like DriverKit buffers)."""
        data = report.read_bytes() if isinstance(report, IOMemoryDescriptor) else bytes(report)
        payload = data[1:] if (self.uses_report_ids and data and data[0] == report_id) else data
        if self.device is not None:
            md = IOBufferMemoryDescriptor.with_bytes(data)
            return self.device._system_set_report(md, report_type, report_id)
        if self.transport is None:
            raise NotOpenError(f"{self.get_name()}: no device behind this interface")
        try:
            return int(self.transport.set_report(report_type, report_id, payload))
        except NoDeviceError:
            self.device_gone()
            raise

    def get_report(self, report_type: int, report_id: int = 0, length: int = 64, options: int = 0) -> bytes:
        """``GetReport(report, reportType, reportID, options)``: the report (ID byte first if IDs are used)."""
        if self.device is not None:
            md = IOBufferMemoryDescriptor.create(0, length + 1)
            n = self.device._system_get_report(md, report_type, report_id)
            return md.read_bytes(0, n)
        if self.transport is None:
            raise NotOpenError(f"{self.get_name()}: no device behind this interface")
        data = bytes(self.transport.get_report(report_type, report_id, length))
        return (bytes([report_id]) + data) if self.uses_report_ids else data

    def stop(self, provider: IOService | None) -> None:
        """``Stop``: stop reading, close the transport."""
        self._stop_reading.set()
        if self.transport is not None:
            try:
                self.transport.close()
            except DkError:
                pass
        super().stop(provider)


class IOUserHIDEventService(IOService):
    """``IOUserHIDEventService`` (HIDDriverKit IOUserHIDEventService.iig): started on an
    :class:`IOHIDInterface`; the base of event services.

    As Apple's ``IOUserHIDEventService::Start`` (IOHIDFamily HIDDriverKit/IOUserHIDEventService.cpp):
    super, then ``handle_start``, then the interface is opened with a ``ReportAvailable``
    action (so ``handle_start`` runs before any report). Each report goes through
    ``IOHIDInterface::processReport`` then :meth:`handle_report`, or straight to
    :meth:`handle_report` when the service set ``kIOHIDEventDriverHandlesReport``. The base
    ``handle_report`` does nothing: decoding reports into events is :class:`IOUserHIDEventDriver`'s
    job. Dispatched events go to ``self.events`` and to ``event_sink``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.events: list[HIDEvent] = []
        self.event_sink: Callable[[HIDEvent], None] | None = None
        self.interface: IOHIDInterface | None = None
        self._report_action: OSAction | None = None

    def start(self, provider: IOService | None) -> None:
        """``Start``: super, ``handle_start(provider)``, then open the interface (Apple's order)."""
        super().start(provider)
        if not isinstance(provider, IOHIDInterface):
            raise BadArgumentError(f"{type(self).__name__}: provider must be an IOHIDInterface, not "
                                   f"{type(provider).__name__}")
        if self.handle_start(provider) is False:
            raise DkError(f"{type(self).__name__}.handle_start returned false")  # Start fails: kIOReturnError
        self.interface = provider
        self._report_action = create_action(self, "_report_available")
        provider.open(self, 0, self._report_action)

    def handle_start(self, provider: IOHIDInterface) -> bool:
        """``handleStart(provider)``: set up (the interface is not open yet); return False to fail."""
        return True

    def stop(self, provider: IOService | None) -> None:
        """``Stop``: close the interface, cancel the report action, then super."""
        if self.interface is not None:
            self.interface.close(self)
        if self._report_action is not None:
            self._report_action.cancel()
        super().stop(provider)

    def conforms_to(self, usage_page: int, usage: int) -> bool:
        """``conformsTo(usagePage, usage)``: one of the provider's ``DeviceUsagePairs``."""
        pairs = self.interface.properties.get("DeviceUsagePairs", []) if self.interface is not None else []
        return any(p.get("DeviceUsagePage") == usage_page and p.get("DeviceUsage") == usage for p in pairs)

    def get_elements(self) -> list[Any]:
        """``getElements()``: the interface's elements."""
        return self.interface.get_elements() if self.interface is not None else []

    def _report_available(self, action: OSAction, timestamp: int, report_id: int, length: int, report_type: int,
                          report: IOMemoryDescriptor) -> None:
        data = report.read_bytes(0, length)
        if not self.properties.get(kIOHIDEventDriverHandlesReport) and self.interface is not None:
            self.interface.process_report(timestamp, data, length, report_type, report_id)
        self.handle_report(timestamp, data, length, report_type, report_id)

    def handle_report(self, timestamp: int, report: bytes, report_length: int,
                      report_type: int = IOHIDReportType.kIOHIDReportTypeInput, report_id: int = 0) -> None:
        """``handleReport(timestamp, report, reportLength, type, reportID)``: Apple's base does nothing."""

    def _post(self, event: HIDEvent) -> int:
        self.events.append(event)
        if self.event_sink is not None:
            self.event_sink(event)
        return int(IOReturn.kIOReturnSuccess)

    def dispatch_keyboard_event(self, timestamp: int, usage_page: int, usage: int, value: int, options: int = 0,
                                repeat: bool = True) -> int:
        """``dispatchKeyboardEvent(timeStamp, usagePage, usage, value, options, repeat)``."""
        return self._post(HIDEvent("keyboard", timestamp, usage_page=usage_page, usage=usage, value=value))

    def dispatch_relative_pointer_event(self, timestamp: int, dx: int, dy: int, button_state: int,
                                        options: int = 0, accelerate: bool = True) -> int:
        """``dispatchRelativePointerEvent(timeStamp, dx, dy, buttonState, options, accelerate)`` (IOFixed)."""
        return self._post(HIDEvent("relative_pointer", timestamp, dx=dx, dy=dy, buttons=button_state))

    def dispatch_absolute_pointer_event(self, timestamp: int, x: int, y: int, button_state: int,
                                        options: int = 0, accelerate: bool = True) -> int:
        """``dispatchAbsolutePointerEvent(timeStamp, IOFixed x, IOFixed y, buttonState, options, accelerate)``:
        x and y in 0..1 (16.16; driverkit.md 5.4)."""
        return self._post(HIDEvent("absolute_pointer", timestamp, x=x, y=y, buttons=button_state))

    def dispatch_relative_scroll_wheel_event(self, timestamp: int, dx: int, dy: int, dz: int, options: int = 0,
                                             accelerate: bool = True) -> int:
        """``dispatchRelativeScrollWheelEvent(timeStamp, dx, dy, dz, options, accelerate)`` (IOFixed)."""
        return self._post(HIDEvent("scroll", timestamp, dx=dx, dy=dy, dz=dz))

    def dispatch_digitizer_stylus_event(self, timestamp: int, stylus_data: IOHIDDigitizerStylusData | None) -> int:
        """``dispatchDigitizerStylusEvent(timeStamp, IOHIDDigitizerStylusData *stylusData)``: NULL data is
        kIOReturnBadArgument (IOUserHIDEventService.cpp)."""
        if stylus_data is None:
            return int(IOReturn.kIOReturnBadArgument)
        return self._post(HIDEvent("digitizer_stylus", timestamp, contacts=(stylus_data,)))

    def dispatch_digitizer_touch_event(self, timestamp: int, touch_data: list[IOHIDDigitizerTouchData] | None,
                                       touch_data_count: int | None = None) -> int:
        """``dispatchDigitizerTouchEvent(timeStamp, IOHIDDigitizerTouchData *touchData, uint32_t touchDataCount)``:
        NULL data or a zero count is kIOReturnBadArgument (IOUserHIDEventService.cpp)."""
        count = len(touch_data or ()) if touch_data_count is None else touch_data_count
        if not touch_data or count <= 0 or count > len(touch_data):
            return int(IOReturn.kIOReturnBadArgument)
        return self._post(HIDEvent("digitizer_touch", timestamp, contacts=tuple(touch_data[:count])))

    def set_report(self, report: bytes, report_type: int, report_id: int = 0) -> int:
        """Send a report through the provider: ``IOHIDInterface::SetReport``.

        dkproto convenience, not Apple's: a dext calls ``SetReport`` on its interface.
        """
        if self.interface is None:
            raise NotOpenError(f"{type(self).__name__}: not started")
        return self.interface.set_report(report, report_type, report_id)


_DIGITIZER_FINGER = 0x000D0022
_DIGITIZER_STYLUS = 0x000D0020
_DIGITIZER_PUCK = 0x000D0021


class IOUserHIDEventDriver(IOUserHIDEventService):
    """``IOUserHIDEventDriver`` (HIDDriverKit): Apple's ready-made event driver, a subclass of
    :class:`IOUserHIDEventService` (driverkit.md 5.1, 5.4).

    ``handle_report`` decodes each input report with the descriptor's layout and calls, in turn,
    ``handle_keyboard_report`` (page 0x07; press/release per usage), ``handle_relative_pointer_report``
    (relative X/Y, buttons page 0x09), ``handle_absolute_pointer_report`` (absolute X/Y outside a
    digitizer collection), ``handle_scroll_report`` (Wheel, AC Pan) and ``handle_digitizer_report``
    (page 0x0D Finger/Stylus collections), each ``(timestamp, reportID)`` as Apple's. Override
    any of them; ``set_led(usage, on)`` drives an LED (page 0x08) with an output report.
    """

    def __init__(self) -> None:
        super().__init__()
        self._keys_down: set[tuple[int, int]] = set()
        self._buttons = 0
        self._abs_buttons = 0
        self._decoded: dict[str, Any] = {}
        self._contacts: dict[tuple[int, int], tuple[int, int, int, int]] = {}  # (kind, id) -> x, y, range, tip
        self._leds: dict[int, bool] = {}

    def handle_report(self, timestamp: int, report: bytes, report_length: int,
                      report_type: int = IOHIDReportType.kIOHIDReportTypeInput, report_id: int = 0) -> None:
        """``handleReport(timestamp, report, reportLength, type, reportID)``: decode, then the handlers."""
        if int(report_type) != IOHIDReportType.kIOHIDReportTypeInput or self.interface is None:
            return
        try:
            self._decoded = self._decode(report[:report_length], report_id)
        except DkError as exc:
            self.log.warning("handleReport: %s", exc)
            return
        self.handle_keyboard_report(timestamp, report_id)
        self.handle_relative_pointer_report(timestamp, report_id)
        self.handle_absolute_pointer_report(timestamp, report_id)
        self.handle_scroll_report(timestamp, report_id)
        self.handle_digitizer_report(timestamp, report_id)

    def _decode(self, report: bytes, report_id: int) -> dict[str, Any]:
        """Every field of the input report ``report_id``, sorted into what the handlers need."""
        assert self.interface is not None
        rd = self.interface.descriptor
        layout = rd.report("input", report_id)
        collections = rd.collections
        data = report[1:] if report_id else report
        out: dict[str, Any] = {"keyboard": False, "keys": set(), "rel": False, "dx": 0, "dy": 0, "buttons": 0,
                               "abs": False, "x": 0, "y": 0, "scroll": False, "wheel": 0, "pan": 0, "contacts": {}}
        for f in layout.fields:
            if f.is_padding:
                continue
            digi = next((c for c in reversed(f.collection)
                         if collections[c].usage in (_DIGITIZER_FINGER, _DIGITIZER_STYLUS, _DIGITIZER_PUCK)), None)
            if f.usages and (f.usages[0] >> 16) == 0x07:
                out["keyboard"] = True
            for i in range(f.report_count):
                bit = f.bit_offset + i * f.report_size
                if bit + f.report_size > len(data) * 8:
                    break
                v = _extract(data, bit, f.report_size, f.signed)
                if f.is_variable:
                    usage = f.element_usage(i)
                else:
                    idx = v - f.logical_minimum
                    if not 0 <= idx < len(f.usages) or not f.usages[idx] & 0xFFFF:
                        continue  # out of range or usage 0: "no event"
                    usage, v = f.usages[idx], 1
                page, u = usage >> 16, usage & 0xFFFF
                relative = bool(f.flags & 4)
                if digi is not None:
                    kind = collections[digi].usage
                    contact = out["contacts"].setdefault(digi, {"kind": kind})
                    if page == 0x01 and u in (0x30, 0x31):
                        contact["x" if u == 0x30 else "y"] = _unit(v, f.logical_minimum, f.logical_maximum)
                    elif page == 0x0D:
                        contact[u] = v if u in (0x51, 0x30, 0x31) else int(bool(v))
                        if u in (0x30, 0x31):  # tip / barrel pressure, normalized
                            contact[u] = _unit(v, f.logical_minimum, f.logical_maximum)
                elif page == 0x07:
                    if v and u > 3:  # 0-3 are "no event"/error codes
                        out["keys"].add((page, u))
                elif page == 0x09:
                    if v:
                        out["buttons"] |= 1 << (u - 1)
                    out["rel" if not out["abs"] else "abs"] = True
                elif page == 0x01 and u in (0x30, 0x31) and relative:
                    out["dx" if u == 0x30 else "dy"], out["rel"] = v, True
                elif page == 0x01 and u in (0x30, 0x31):
                    out["x" if u == 0x30 else "y"] = _unit(v, f.logical_minimum, f.logical_maximum)
                    out["abs"], out["rel"] = True, False
                elif page == 0x01 and u == 0x38:
                    out["wheel"], out["scroll"] = v, True
                elif page == 0x0C and u == 0x238:
                    out["pan"], out["scroll"] = v, True
        return out

    def handle_keyboard_report(self, timestamp: int, report_id: int) -> None:
        """``handleKeyboardReport(timestamp, reportID)``: a keyboard event per key that changed."""
        d = self._decoded
        if not d.get("keyboard"):
            return
        keys: set[tuple[int, int]] = d["keys"]
        for page, u in sorted(keys - self._keys_down):
            self.dispatch_keyboard_event(timestamp, page, u, 1, 0)
        for page, u in sorted(self._keys_down - keys):
            self.dispatch_keyboard_event(timestamp, page, u, 0, 0)
        self._keys_down = keys

    def handle_relative_pointer_report(self, timestamp: int, report_id: int) -> None:
        """``handleRelativePointerReport(timestamp, reportID)``."""
        d = self._decoded
        if d.get("rel") and (d["dx"] or d["dy"] or d["buttons"] != self._buttons):
            self.dispatch_relative_pointer_event(timestamp, _fixed(d["dx"]), _fixed(d["dy"]), d["buttons"], 0)
            self._buttons = d["buttons"]

    def handle_absolute_pointer_report(self, timestamp: int, report_id: int) -> None:
        """``handleAbsolutePointerReport(timestamp, reportID)``: x, y as IOFixed in 0..1."""
        d = self._decoded
        if d.get("abs"):
            self.dispatch_absolute_pointer_event(timestamp, d["x"], d["y"], d["buttons"], 0)
            self._abs_buttons = d["buttons"]

    def handle_scroll_report(self, timestamp: int, report_id: int) -> None:
        """``handleScrollReport(timestamp, reportID)``."""
        d = self._decoded
        if d.get("scroll") and (d["wheel"] or d["pan"]):
            self.dispatch_relative_scroll_wheel_event(timestamp, _fixed(d["pan"]), _fixed(d["wheel"]), 0, 0)

    def handle_digitizer_report(self, timestamp: int, report_id: int) -> None:
        """``handleDigitizerReport(timestamp, reportID)``: one stylus event per stylus collection, one
        touch event with every finger collection (Tip Switch 0x42, In Range 0x32, Contact ID 0x51)."""
        touches: list[IOHIDDigitizerTouchData] = []
        for c in self._decoded.get("contacts", {}).values():
            kind, ident = c["kind"], int(c.get(0x51, 0))
            x, y = c.get("x", 0), c.get("y", 0)
            tip = int(c.get(0x42, 0))
            rng = int(c.get(0x32, 1 if tip else 0))
            px, py, prng, ptip = self._contacts.get((kind, ident), (x, y, 0, 0))
            self._contacts[(kind, ident)] = (x, y, rng, tip)
            changed = {"positionChanged": int((x, y) != (px, py)), "rangeChanged": int(rng != prng)}
            if kind == _DIGITIZER_FINGER:
                touches.append(IOHIDDigitizerTouchData(ident, x, y, rng, tip, int(c.get(0x47, 1)),
                                                       int(tip != ptip), **changed))
            else:
                self.dispatch_digitizer_stylus_event(timestamp, IOHIDDigitizerStylusData(
                    identifier=ident, x=x, y=y, tipPressure=c.get(0x30, 0), barrelPressure=c.get(0x31, 0),
                    inRange=rng, tip=tip, barrelSwitch=int(c.get(0x44, 0)), invert=int(c.get(0x3C, 0)),
                    eraser=int(c.get(0x45, 0)), tipChanged=int(tip != ptip), **changed))
        if touches:
            self.dispatch_digitizer_touch_event(timestamp, touches, len(touches))

    def set_led(self, usage: int, on: bool) -> None:
        """``SetLED(uint32_t usage, bool on)``: set one LED (page 0x08: Num Lock 1, Caps Lock 2,
        Scroll Lock 3...) by sending the output report that holds it, with the other LEDs of that
        report as last set.

        Raises:
            NotFoundError: the device has no output element for that LED usage.
        """
        from dkproto.errors import NotFoundError

        if self.interface is None:
            raise NotOpenError(f"{type(self).__name__}.SetLED: not started")
        self._leds[usage & 0xFFFF] = bool(on)
        rd = self.interface.descriptor
        for (kind, report_id), rep in rd.reports.items():
            fields = [f for f in rep.fields if not f.is_padding]
            if kind != "output" or not any((0x00080000 | (usage & 0xFFFF)) in f.usages for f in fields):
                continue
            size = (rep.size_bits + 7) // 8
            value = 0
            for f in fields:
                for i in range(f.report_count):
                    u = f.element_usage(i)
                    if u >> 16 == 0x08 and self._leds.get(u & 0xFFFF) and f.is_variable:
                        value |= 1 << (f.bit_offset + i * f.report_size)
            payload = value.to_bytes(size, "little")
            self.set_report((bytes([report_id]) if report_id else b"") + payload,
                            IOHIDReportType.kIOHIDReportTypeOutput, report_id)
            return
        raise NotFoundError(f"{type(self).__name__}.SetLED: no output element for LED usage 0x{usage:02x}")


def _unit(v: int, lo: int, hi: int) -> int:
    """A logical value as IOFixed in 0..1 (absolute pointer and digitizer coordinates)."""
    if hi <= lo:
        return 0
    return _fixed(min(max(v - lo, 0), hi - lo) / (hi - lo))


class IOUserHIDDevice(IOService):
    """``IOUserHIDDevice``: your dext *is* the HID device.

    Override :meth:`new_device_description` and :meth:`new_report_descriptor`; call
    :meth:`handle_report` to post input reports; override :meth:`get_report` /
    :meth:`set_report` (the system calls them with the report type, and the report ID in the
    low 8 bits of ``options``; finish with :meth:`complete_report`). On start, the
    device publishes an :class:`IOHIDInterface` nub (``self.hid_interface``) that event services
    match on, as AppleUserHIDDevice does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hid_interface: IOHIDInterface | None = None

    def start(self, provider: IOService | None) -> None:
        """``Start``: super, ``handle_start``, then publish the IOHIDInterface."""
        super().start(provider)
        if self.handle_start(provider) is False:
            raise DkError(f"{type(self).__name__}.handleStart returned false")
        desc = self.new_device_description()
        rd = self.new_report_descriptor()
        if not isinstance(desc, dict) or not rd:
            raise BadArgumentError(f"{type(self).__name__}: newDeviceDescription/newReportDescriptor returned nothing")
        self.properties.update(desc)
        nub = IOHIDInterface(bytes(rd), dict(desc), device=self)
        start_service(nub, self)
        nub.register_service()
        self.hid_interface = nub

    def handle_start(self, provider: IOService | None) -> bool:
        """``handleStart(provider)``."""
        return True

    def new_device_description(self) -> dict[str, Any]:
        """``newDeviceDescription()``: VendorID, ProductID, Transport, Product...; override."""
        raise UnsupportedError(f"{type(self).__name__} must override new_device_description")

    def new_report_descriptor(self) -> bytes:
        """``newReportDescriptor()``: the HID 1.11 report descriptor bytes; override."""
        raise UnsupportedError(f"{type(self).__name__} must override new_report_descriptor")

    def handle_report(self, timestamp: int, report: IOMemoryDescriptor | bytes, report_length: int | None = None,
                      report_type: int = IOHIDReportType.kIOHIDReportTypeInput, options: int = 0) -> None:
        """``handleReport(timestamp, report, reportLength, reportType, options)``: post a report."""
        if self.hid_interface is None:
            raise NotOpenError(f"{type(self).__name__}.handleReport: not started")
        data = report.read_bytes() if isinstance(report, IOMemoryDescriptor) else bytes(report)
        if report_length is not None:
            data = data[:report_length]
        self.hid_interface.report_available(timestamp, data, report_type)

    def get_report(self, report: IOMemoryDescriptor, report_type: int, options: int, completion_timeout: int,
                   action: OSAction | None) -> int:
        """``getReport(report, reportType, options, completionTimeout, action)``: report ID is
        ``options & 0xFF``. Fill ``report``, then ``complete_report(action, status, n)``; return the status."""
        return int(IOReturn.kIOReturnUnsupported)

    def set_report(self, report: IOMemoryDescriptor, report_type: int, options: int, completion_timeout: int,
                   action: OSAction | None) -> int:
        """``setReport(report, reportType, options, completionTimeout, action)``: report ID is ``options & 0xFF``."""
        return int(IOReturn.kIOReturnUnsupported)

    def complete_report(self, action: OSAction | None, status: int, actual_byte_count: int) -> None:
        """``CompleteReport(action, status, actualByteCount)``."""
        if action is not None:
            action.invoke(int(status), int(actual_byte_count))

    def _system_call(self, fn: Callable[..., int], md: IOMemoryDescriptor, report_type: int, report_id: int) -> int:
        done = threading.Event()
        box = [0, 0]

        def complete(action: OSAction, status: int, n: int) -> None:
            box[0], box[1] = status, n
            done.set()

        action = OSAction(self, complete, name="CompleteReport", queue=None)
        kr = self.copy_dispatch_queue().dispatch_sync(fn, md, report_type, report_id & 0xFF, 1000, action)
        if kr:
            from dkproto.errors import error_for_ioreturn

            raise error_for_ioreturn(kr, f"{type(self).__name__}: {fn.__name__}(type {report_type}, id {report_id})")
        if not done.wait(5):
            raise DkTimeoutError(f"{type(self).__name__}.{fn.__name__}: no CompleteReport within 5 s")
        if box[0]:
            from dkproto.errors import error_for_ioreturn

            raise error_for_ioreturn(box[0], f"{type(self).__name__}: CompleteReport status")
        return box[1]

    def _system_set_report(self, md: IOMemoryDescriptor, report_type: int, report_id: int) -> int:
        return self._system_call(self.set_report, md, report_type, report_id)

    def _system_get_report(self, md: IOMemoryDescriptor, report_type: int, report_id: int) -> int:
        return self._system_call(self.get_report, md, report_type, report_id)


# ---- the HID families (docs/iokit.md, "Add a DriverKit family") -------------------------------

#: The keys an ``IOHIDInterface`` personality is matched on (besides ``DeviceUsagePairs``).
_HID_KEYS = frozenset({kIOHIDVendorIDKey, kIOHIDProductIDKey, kIOHIDPrimaryUsagePageKey,
                       kIOHIDPrimaryUsageKey, kIOHIDTransportKey, "DeviceUsagePage", "DeviceUsage",
                       kIOHIDLocationIDKey, kIOHIDVersionNumberKey, kIOHIDCountryCodeKey})


def _score(p: Personality, c: Candidate, keys: dict[str, Any], res: MatchResult) -> int | None:
    """Every HID key present must equal the interface's (usages: among its usage pairs); the score is
    ``IOProbeScore``."""
    hid = {k: v for k, v in keys.items() if k in _HID_KEYS or k == "DeviceUsagePairs"}
    for k in keys:
        if k not in hid:
            res.warnings.append(f"{k} is not a {c.provider_class} matching key: ignored")
    return p.io_probe_score if compare_properties(hid, c.properties, res.reasons) else None


def _nubs_on_interface(parent: Candidate) -> list[Candidate]:
    """The ``IOHIDInterface`` a HID-class USB interface publishes, when its top-level usages are known."""
    dev, intf = parent.device, parent.interface
    if dev is None or intf is None or intf.bInterfaceClass != 3 or not intf.hid_usages:
        return []
    page, usage = intf.hid_usages[0]
    props = {kIOHIDVendorIDKey: dev.idVendor, kIOHIDProductIDKey: dev.idProduct, kIOHIDTransportKey: "USB",
             kIOHIDPrimaryUsagePageKey: page, kIOHIDPrimaryUsageKey: usage,
             "DeviceUsagePairs": [{"DeviceUsagePage": p, "DeviceUsage": u} for p, u in intf.hid_usages]}
    label = f"IOHIDInterface #{intf.bInterfaceNumber} (usage 0x{page:02x}:0x{usage:02x})"
    return [Candidate(IOHIDInterface.__name__, props, label, dev, intf)]


def _publish(transport: Any, watch: float | None) -> tuple[IOService, list[IOService]]:
    """The runner's hook: one interface nub over the ``hid://`` transport."""
    nub = IOHIDInterface.from_transport(transport)
    return nub, [nub]


def _default_url(p: Personality) -> str | None:
    """``hid://VVVV:PPPP`` from a personality's integer ``VendorID`` and ``ProductID``."""
    vid, pid = p.properties.get(kIOHIDVendorIDKey), p.properties.get(kIOHIDProductIDKey)
    return f"hid://{vid:04x}:{pid:04x}" if isinstance(vid, int) and isinstance(pid, int) else None


# transport.hid is the entitlement for code using IOHIDInterface directly; an event service needs
# family.hid.eventservice instead (driverkit.md 5.1), which its IOClass names. Boolean: no check here.
register_family(Family(
    IOHIDInterface, entitlement=ENT_TRANSPORT_HID, score=_score, published_on=("IOUSBHostInterface",),
    children=_nubs_on_interface, schemes=("hid",), publish=_publish, default_url=_default_url))
register_family(Family(IOUserHIDEventService, entitlement=ENT_FAMILY_HID_EVENTSERVICE,
                       io_classes=("AppleUserHIDEventService",)))
register_family(Family(IOUserHIDDevice, entitlement=ENT_FAMILY_HID_DEVICE,
                       io_classes=("AppleUserHIDDevice", "AppleUserUSBHostHIDDevice")))
