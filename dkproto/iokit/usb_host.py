"""USBDriverKit host classes over a dkproto transport: ``IOUSBHostDevice``, ``IOUSBHostInterface``,
``IOUSBHostPipe`` (driverkit.md section 4).

The device and interface are *nubs* (providers a driver is started on), as in macOS: the
mirror builds them from a :class:`~dkproto.transport.Transport` (``usb://``, ``sim://`` ...)
with :func:`attach_device`, which publishes the device nub and one interface nub per
interface of the current configuration, all registered for matching. I/O goes through the
transport's API (docs/transports.md): control transfers, endpoint read/write, ``submit`` for
``AsyncIO``, ``abort``, ``clear_halt``.

Sessions follow DriverKit: a device has at most one non-interface client session, an
interface one session; I/O needs a session (``kIOReturnNotOpen``); closing a session, or
``SelectAlternateSetting``, aborts pending I/O with ``kIOReturnAborted`` and closes pipes.
Completions (``CompleteAsyncIO(action, status, actualByteCount, completionTimestamp)``,
``CompleteAsyncDeviceRequest(action, status, bytesTransferred)``) are delivered through the
caller's :class:`~dkproto.iokit.action.OSAction`, on its queue, never inside the submitting call.
Timestamps are ``time.monotonic_ns()`` nanoseconds, not mach ticks (driverkit.md 8.2).

When the device disappears (an I/O fails with ``kIOReturnNoDevice``, or :meth:`IOUSBHostDevice.watch`
sees it gone), the device nub terminates: its interfaces and every driver on them are stopped,
clients first, as on an unplug in macOS.

The module registers the two USB provider families (:mod:`~dkproto.iokit.family`): scored with
QA1076's tables (:mod:`~dkproto.iokit.usb_matching`), gated by ``transport.usb``, published from
any transport no other family claims (``usb://``, ``sim://``, ``spy+usb://``...).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dkproto.errors import (
    BadArgumentError,
    DkError,
    ExclusiveAccessError,
    NoDeviceError,
    NotFoundError,
    NotOpenError,
)
from dkproto.iokit.action import OSAction
from dkproto.iokit.family import (
    ANY_SCHEME,
    Family,
    nub_published,
    nub_republishing,
    register_family,
    republish_failed,
)
from dkproto.iokit.matching import USBDeviceInfo, device_from_descriptors, device_from_dict
from dkproto.iokit.memory import IOBufferMemoryDescriptor, IOMemoryDescriptor
from dkproto.iokit.personality import Personality
from dkproto.iokit.queue import IODispatchQueue
from dkproto.iokit.service import IOService, ServiceState, start_service
from dkproto.iokit.usb_matching import (
    ENT_TRANSPORT_USB,
    check_transport_entitlement,
    score_device,
    score_interface,
    usb_nubs,
    validate_transport_usb,
)
from dkproto.ioreturn import IOReturn
from dkproto.transport.descriptors import get_descriptor

__all__ = [
    "IOUSBGetEndpointAddress",
    "IOUSBGetEndpointDirection",
    "IOUSBGetEndpointMaxPacketSize",
    "IOUSBGetEndpointNumber",
    "IOUSBGetEndpointType",
    "IOUSBGetNextAssociatedDescriptor",
    "IOUSBGetNextAssociatedDescriptorWithType",
    "IOUSBGetNextDescriptor",
    "IOUSBGetNextDescriptorWithType",
    "IOUSBGetNextEndpointDescriptor",
    "IOUSBGetNextInterfaceAssociationDescriptor",
    "IOUSBGetNextInterfaceDescriptor",
    "IOUSBHostDevice",
    "IOUSBHostInterface",
    "IOUSBHostPipe",
    "IOUSBStandardEndpointDescriptors",
    "attach_device",
    "device_info_from_url",
    "io_usb_get_endpoint_address",
    "io_usb_get_endpoint_direction",
    "io_usb_get_endpoint_max_packet_size",
    "io_usb_get_endpoint_number",
    "io_usb_get_endpoint_type",
    "io_usb_get_next_associated_descriptor",
    "io_usb_get_next_associated_descriptor_with_type",
    "io_usb_get_next_descriptor",
    "io_usb_get_next_descriptor_with_type",
    "io_usb_get_next_endpoint_descriptor",
    "io_usb_get_next_interface_association_descriptor",
    "io_usb_get_next_interface_descriptor",
    "kIOUSBAbortAsynchronous",
    "kIOUSBAbortSynchronous",
    "kIOUSBEndpointDirectionIn",
    "kIOUSBEndpointDirectionOut",
    "kIOUSBEndpointDirectionUnknown",
    "kIOUSBEndpointTypeBulk",
    "kIOUSBEndpointTypeControl",
    "kIOUSBEndpointTypeInterrupt",
    "kIOUSBEndpointTypeIsochronous",
    "kIOUSBGetEndpointDescriptorCurrentPolicy",
    "kIOUSBGetEndpointDescriptorOriginal",
    "kIOUSBHostPortStatusConnectedSpeedMask",
    "kIOUSBHostPortStatusConnectedSpeedPhase",
    "kIOUSBHostPortStatusEnabled",
    "kIOUSBLanguageIDEnglishUS",
    "kOpenOptionsSelectAlternateInterface",
    "tIOUSBHostConnectionSpeed",
]

kIOUSBAbortAsynchronous = 0
kIOUSBAbortSynchronous = 1

# tIOUSBDescriptorType (AppleUSBDefinitions.h)
kIOUSBDescriptorTypeInterface = 4
kIOUSBDescriptorTypeEndpoint = 5
kIOUSBDescriptorTypeInterfaceAssociation = 11
kIOUSBDescriptorTypeSuperSpeedUSBEndpointCompanion = 48
kIOUSBDescriptorTypeSuperSpeedPlusIsochronousEndpointCompanion = 49

# tIOUSBEndpointType and tIOUSBEndpointDirection (AppleUSBDefinitions.h): what IOUSBGetEndpointType and
# IOUSBGetEndpointDirection return (bmAttributes bits 0-1; bEndpointAddress bit 7, Unknown for control)
kIOUSBEndpointTypeControl = 0
kIOUSBEndpointTypeIsochronous = 1
kIOUSBEndpointTypeBulk = 2
kIOUSBEndpointTypeInterrupt = 3
kIOUSBEndpointDirectionOut = 0
kIOUSBEndpointDirectionIn = 1
kIOUSBEndpointDirectionUnknown = 2

# IOUSBGetEndpointDescriptorOptions (IOUSBHostPipe::GetDescriptors / AdjustPipe)
kIOUSBGetEndpointDescriptorOriginal = 0
kIOUSBGetEndpointDescriptorCurrentPolicy = 1

# tIOUSBHostPortStatus (IOUSBHostFamilyDefinitions.h), what GetPortStatus returns
kIOUSBHostPortStatusPortTypeMask = 0x0000000F
kIOUSBHostPortStatusPortTypeStandard = 0
kIOUSBHostPortStatusPortTypeCaptive = 1
kIOUSBHostPortStatusPortTypeInternal = 2
kIOUSBHostPortStatusPortTypeAccessory = 3
kIOUSBHostPortStatusConnectedSpeedMask = 0x00000700
kIOUSBHostPortStatusConnectedSpeedPhase = 8
kIOUSBHostPortStatusResetting = 1 << 11
kIOUSBHostPortStatusEnabled = 1 << 12
kIOUSBHostPortStatusSuspended = 1 << 13
kIOUSBHostPortStatusOvercurrent = 1 << 14
kIOUSBHostPortStatusTestMode = 1 << 15
kIOUSBLanguageIDEnglishUS = 0x0409
kOpenOptionsSelectAlternateInterface = 0x10000  # value [unconfirmed]; only the name is used here

_log = logging.getLogger(__name__)


class tIOUSBHostConnectionSpeed(enum.IntEnum):
    """``tIOUSBHostConnectionSpeed`` (xHCI order: Full is 1, Low is 2)."""

    kIOUSBHostConnectionSpeedNone = 0
    kIOUSBHostConnectionSpeedFull = 1
    kIOUSBHostConnectionSpeedLow = 2
    kIOUSBHostConnectionSpeedHigh = 3
    kIOUSBHostConnectionSpeedSuper = 4
    kIOUSBHostConnectionSpeedSuperPlus = 5
    kIOUSBHostConnectionSpeedSuperPlusBy2 = 6


_SPEEDS = {"full": 1, "low": 2, "high": 3, "super": 4, "super+": 5, "super_plus": 5, "superplus": 5}


# ---- descriptor walking (AppleUSBDescriptorParsing.h names) -------------------------------------

def _parse(schema_name: str, data: bytes) -> Any:
    from dkproto.schema import usb as s

    return getattr(s, schema_name).struct.parse(data)


def _end(config: bytes) -> int:
    """Where the configuration set ends: ``wTotalLength``, never past the bytes we hold."""
    return min(len(config), int.from_bytes(config[2:4], "little")) if len(config) >= 4 else 0


def io_usb_get_next_descriptor(config: bytes, offset: int | None) -> int | None:
    """``IOUSBGetNextDescriptor(configurationDescriptor, currentDescriptor)`` by offset.

    As AppleUSBDescriptorParsing: ``None`` starts after the configuration descriptor itself;
    the next descriptor is ``current + bLength``; None at the end (``wTotalLength``) or after a
    descriptor whose ``bLength`` is below 2. dkproto also ends the walk at a descriptor whose
    header or ``bLength`` runs past the end (C would read beyond the buffer).
    """
    end = _end(config)
    if offset is None:
        if end < 2 or config[0] < 2:
            return None
        off = config[0]
    else:
        if not 0 <= offset < end or offset + 2 > end or config[offset] < 2:
            return None
        off = offset + config[offset]
    if off + 2 > end or config[off] < 2 or off + config[off] > end:
        return None
    return off


def io_usb_get_next_descriptor_with_type(config: bytes, offset: int | None, type: int) -> int | None:
    """``IOUSBGetNextDescriptorWithType(configurationDescriptor, currentDescriptor, type)``."""
    off = io_usb_get_next_descriptor(config, offset)
    while off is not None and config[off + 1] != type:
        off = io_usb_get_next_descriptor(config, off)
    return off


def io_usb_get_next_associated_descriptor_with_type(config: bytes, parent: int, offset: int | None,
                                                    type: int | None) -> int | None:
    """``IOUSBGetNextAssociatedDescriptorWithType(configurationDescriptor, parentDescriptor,
    currentDescriptor, type)``: the next descriptor of ``type`` after ``offset`` (after ``parent``
    when None), or None once the next descriptor of the parent's own type (the parent's next
    sibling) comes first. ``type`` None is ``IOUSBGetNextAssociatedDescriptor``."""
    if not 0 <= parent < _end(config) - 1:
        return None
    found = io_usb_get_next_descriptor(config, parent if offset is None else offset)
    while found is not None and type is not None and config[found + 1] != type:
        found = io_usb_get_next_descriptor(config, found)
    if found is None:
        return None
    sibling = io_usb_get_next_descriptor_with_type(config, parent, config[parent + 1])
    return found if sibling is None or sibling > found else None


def io_usb_get_next_associated_descriptor(config: bytes, parent: int, offset: int | None) -> int | None:
    """``IOUSBGetNextAssociatedDescriptor(configurationDescriptor, parentDescriptor, currentDescriptor)``."""
    return io_usb_get_next_associated_descriptor_with_type(config, parent, offset, None)


def io_usb_get_next_interface_association_descriptor(config: bytes, offset: int | None = None) -> int | None:
    """``IOUSBGetNextInterfaceAssociationDescriptor(configurationDescriptor, currentDescriptor)``."""
    return io_usb_get_next_descriptor_with_type(config, offset, kIOUSBDescriptorTypeInterfaceAssociation)


def io_usb_get_next_interface_descriptor(config: bytes, offset: int | None = None) -> int | None:
    """``IOUSBGetNextInterfaceDescriptor(configurationDescriptor, currentDescriptor)``."""
    return io_usb_get_next_descriptor_with_type(config, offset, kIOUSBDescriptorTypeInterface)


def io_usb_get_next_endpoint_descriptor(config: bytes, interface_offset: int, offset: int | None = None
                                        ) -> int | None:
    """``IOUSBGetNextEndpointDescriptor(configurationDescriptor, interfaceDescriptor, currentDescriptor)``:
    the endpoints associated with that interface descriptor (until the next interface descriptor)."""
    return io_usb_get_next_associated_descriptor_with_type(config, interface_offset, offset,
                                                           kIOUSBDescriptorTypeEndpoint)


# Endpoint accessors (AppleUSBDescriptorParsing.h), over an endpoint descriptor's 7 bytes.
def io_usb_get_endpoint_type(ep: bytes) -> int:
    """``IOUSBGetEndpointType(descriptor)``: ``bmAttributes & 3`` (Control 0, Isoch 1, Bulk 2, Interrupt 3)."""
    return ep[3] & 3


def io_usb_get_endpoint_direction(ep: bytes) -> int:
    """``IOUSBGetEndpointDirection(descriptor)``: Out 0, In 1; Unknown 2 for a control endpoint."""
    return 2 if ep[3] & 3 == 0 else ep[2] >> 7


def io_usb_get_endpoint_address(ep: bytes) -> int:
    """``IOUSBGetEndpointAddress(descriptor)``: ``bEndpointAddress & 0x8F``."""
    return ep[2] & 0x8F


def io_usb_get_endpoint_number(ep: bytes) -> int:
    """``IOUSBGetEndpointNumber(descriptor)``: ``bEndpointAddress & 0x0F``."""
    return ep[2] & 0x0F


def io_usb_get_endpoint_max_packet_size(speed: int, ep: bytes) -> int:
    """``IOUSBGetEndpointMaxPacketSize(usbDeviceSpeed, descriptor)``: ``wMaxPacketSize & 0x7FF``."""
    return int.from_bytes(ep[4:6], "little") & 0x7FF


# Apple's names for the C functions above (a dext calls these; the snake_case forms are the same functions).
IOUSBGetNextDescriptor = io_usb_get_next_descriptor
IOUSBGetNextDescriptorWithType = io_usb_get_next_descriptor_with_type
IOUSBGetNextAssociatedDescriptor = io_usb_get_next_associated_descriptor
IOUSBGetNextAssociatedDescriptorWithType = io_usb_get_next_associated_descriptor_with_type
IOUSBGetNextInterfaceAssociationDescriptor = io_usb_get_next_interface_association_descriptor
IOUSBGetNextInterfaceDescriptor = io_usb_get_next_interface_descriptor
IOUSBGetNextEndpointDescriptor = io_usb_get_next_endpoint_descriptor
IOUSBGetEndpointType = io_usb_get_endpoint_type
IOUSBGetEndpointDirection = io_usb_get_endpoint_direction
IOUSBGetEndpointAddress = io_usb_get_endpoint_address
IOUSBGetEndpointNumber = io_usb_get_endpoint_number
IOUSBGetEndpointMaxPacketSize = io_usb_get_endpoint_max_packet_size


# ---- the device ---------------------------------------------------------------------------------

class _DeviceRequest:
    """One queued ``AsyncDeviceRequest``: whose it is, and the error it was aborted with."""

    __slots__ = ("aborted", "done", "owner")

    def __init__(self, owner: IOService | None) -> None:
        self.owner = owner
        self.aborted: int | None = None
        self.done = threading.Event()


class IOUSBHostDevice(IOService):
    """``IOUSBHostDevice``: the device nub, over a transport.

    Args:
        transport: an open transport to the device (not bound to one interface).
    """

    def __init__(self, transport: Any) -> None:
        super().__init__()
        self.transport = transport
        self._sessions: dict[int, IOService] = {}
        self._desc_cache: dict[tuple[int, int, int, int, int], bytes] = {}
        self._gone = False
        self._gone_lock = threading.Lock()
        self._control_queue = IODispatchQueue("IOUSBHostDevice.control")
        self._watch: threading.Thread | None = None
        self._watch_stop = threading.Event()
        self._watch_interval: float | None = None
        self._handover = False  # Reset: the re-enumerated device's new nub takes the transport
        self._requests: list[_DeviceRequest] = []  # AsyncDeviceRequest calls not completed yet
        self._requests_lock = threading.Lock()
        self._iterators: dict[int, Iterator[IOUSBHostInterface]] = {}
        self._next_iterator = 1
        self._t0 = time.monotonic_ns()
        self.interfaces: list[IOUSBHostInterface] = []
        dd = self.copy_device_descriptor()
        self.properties.update({k: int(dd[k]) for k in ("idVendor", "idProduct", "bcdDevice", "bDeviceClass",
                                                        "bDeviceSubClass", "bDeviceProtocol", "bcdUSB")})
        self.properties["USBSpeed"] = self.get_speed()
        info = getattr(transport, "info", None)
        if info is not None and getattr(info, "bus", None) is not None:
            self.properties["locationID"] = (info.bus << 24) | (info.address or 0)
        self.set_name(f"IOUSBHostDevice {dd['idVendor']:04x}:{dd['idProduct']:04x}")

    # sessions
    def open(self, for_client: IOService, options: int = 0, arg: int = 0) -> None:
        """``Open(forClient, options, arg)``: interfaces may hold sessions too, plus one other client.

        Raises:
            ExclusiveAccessError: another (non-interface) client holds the device.
        """
        self._require_present("Open")
        if not isinstance(for_client, IOUSBHostInterface):
            for other in self._sessions.values():
                if other is not for_client and not isinstance(other, IOUSBHostInterface):
                    raise ExclusiveAccessError(f"{self.get_name()}: Open: {type(other).__name__} already holds "
                                               "the device")
        self._sessions[id(for_client)] = for_client

    def close(self, for_client: IOService, options: int = 0) -> None:
        """``Close(forClient, options)``: ends that client's session."""
        self._sessions.pop(id(for_client), None)

    def _require_session(self, for_client: IOService | None, what: str) -> None:
        self._require_present(what)
        if for_client is not None and id(for_client) not in self._sessions:
            raise NotOpenError(f"{self.get_name()}: {what}: {type(for_client).__name__} has not opened the device "
                               "(call open(for_client) first)")

    def _require_present(self, what: str) -> None:
        if self._gone or self.state in (ServiceState.STOPPED, ServiceState.FREED):
            raise NoDeviceError(f"{self.get_name()}: {what}: the device is gone")

    def _io_error(self, exc: DkError) -> DkError:
        if isinstance(exc, NoDeviceError):
            self.device_gone()
        return exc

    def device_gone(self) -> None:
        """The device was unplugged: terminate this nub (its interfaces and drivers stop first)."""
        with self._gone_lock:
            if self._gone:
                return
            self._gone = True
        self._watch_stop.set()
        if self.state is ServiceState.STARTED:
            self.terminate()

    def watch(self, interval: float = 0.25) -> None:
        """Poll the device (GET_STATUS) every ``interval`` s; on ``kIOReturnNoDevice``, terminate.

        No DriverKit counterpart: the kernel learns of unplugs from the hub; here we ask.
        """
        if self._watch is not None:
            return
        self._watch_interval = interval

        def loop() -> None:
            while not self._watch_stop.wait(interval):
                try:
                    self.transport.control_transfer(0x80, 0x00, 0, 0, 2, timeout=1000)
                except NoDeviceError:
                    self.device_gone()
                    return
                except DkError:
                    continue

        self._watch = threading.Thread(target=loop, name=f"watch({self.get_name()})", daemon=True)
        self._watch.start()

    def stop(self, provider: IOService | None) -> None:
        """``Stop``: stop watching, close the transport (unless a ``Reset`` hands it to the new
        device nub), then super."""
        self._watch_stop.set()
        if not self._handover:
            try:
                self.transport.close()
            except DkError:
                pass
        self._control_queue.cancel()
        super().stop(provider)

    # descriptors
    def copy_descriptor(self, type: int, length: int, index: int = 0, language_id: int = 0,
                        request_type: int = 0, request_recipient: int = 0) -> bytes:
        """``CopyDescriptor(type, &length, index, languageID, requestType, requestRecipient, descriptor)``.

        Cached; otherwise GET_DESCRIPTOR. Returns the descriptor bytes (``len()`` is the actual length).
        """
        key = (type, index, language_id, request_type, request_recipient)
        cached = self._desc_cache.get(key)
        if cached is not None and len(cached) >= length:
            return cached[:length]
        self._require_present("CopyDescriptor")
        try:
            data = get_descriptor(self.transport, type, index, length, wIndex=language_id, recipient=request_recipient,
                                  request_type=request_type)
        except DkError as exc:
            raise self._io_error(exc) from exc
        if cached is None or len(data) > len(cached):
            self._desc_cache[key] = data
        return data

    def copy_device_descriptor(self) -> Any:
        """``CopyDeviceDescriptor()``: the parsed ``IOUSBDeviceDescriptor`` (fields by spec name)."""
        return _parse("DEVICE", self.copy_descriptor(1, 18))

    def copy_configuration_descriptor(self, index: int = 0) -> bytes:
        """``CopyConfigurationDescriptor(index)``: the whole configuration set (``wTotalLength`` bytes)."""
        head = self.copy_descriptor(2, 9, index)
        if len(head) < 4:
            raise NotFoundError(f"{self.get_name()}: configuration index {index}: short descriptor",
                                ioreturn=IOReturn.kIOUSBConfigNotFound)
        total = int.from_bytes(head[2:4], "little")
        return self.copy_descriptor(2, total, index)

    def copy_configuration_descriptor_with_value(self, bConfigurationValue: int) -> bytes:
        """``CopyConfigurationDescriptorWithValue(bConfigurationValue)``."""
        n = int(self.copy_device_descriptor()["bNumConfigurations"])
        for i in range(n):
            cfg = self.copy_configuration_descriptor(i)
            if cfg[5] == bConfigurationValue:
                return cfg
        raise NotFoundError(f"{self.get_name()}: no configuration with value {bConfigurationValue}",
                            ioreturn=IOReturn.kIOUSBConfigNotFound)

    def copy_current_configuration_descriptor(self) -> bytes | None:
        """``CopyConfigurationDescriptor(forClient)``: the current configuration, None if unconfigured."""
        value = self.get_configuration()
        return None if value == 0 else self.copy_configuration_descriptor_with_value(value)

    def copy_string_descriptor(self, index: int, language_id: int = kIOUSBLanguageIDEnglishUS) -> str:
        """``CopyStringDescriptor(index, languageID)``, decoded from UTF-16LE."""
        if index == 0:
            raise BadArgumentError("CopyStringDescriptor: index 0 is the LANGID list, not a string")
        raw = self.copy_descriptor(3, 255, index, language_id)
        if len(raw) < 2 or raw[1] != 3:
            raise NotFoundError(f"{self.get_name()}: string {index}: no string descriptor")
        return raw[2:raw[0]].decode("utf-16-le", errors="replace")

    def copy_capability_descriptors(self) -> bytes | None:
        """``CopyCapabilityDescriptors()``: the BOS set, None if the device has none."""
        try:
            head = self.copy_descriptor(15, 5)
        except DkError:
            return None
        return self.copy_descriptor(15, int.from_bytes(head[2:4], "little")) if len(head) >= 5 else None

    # control
    def device_request(self, for_client: IOService | None, bmRequestType: int, bRequest: int,
                       wValue: int, wIndex: int, wLength: int,
                       data_buffer: IOMemoryDescriptor | None = None, completion_timeout_ms: int = 5000) -> int:
        """``DeviceRequest(forClient, bmRequestType, bRequest, wValue, wIndex, wLength, dataBuffer,
        &bytesTransferred, completionTimeoutMs)``: returns bytesTransferred.

        IN data is copied into ``data_buffer``; OUT data is taken from it.
        """
        self._require_session(for_client, "DeviceRequest")
        if wLength and (data_buffer is None or data_buffer.get_length() < wLength):
            raise BadArgumentError(f"DeviceRequest: wLength {wLength} but the buffer holds "
                                   f"{0 if data_buffer is None else data_buffer.get_length()} bytes")
        try:
            if bmRequestType & 0x80:
                data = bytes(self.transport.control_transfer(bmRequestType, bRequest, wValue, wIndex, wLength,
                                                             timeout=completion_timeout_ms))
                if data and data_buffer is not None:
                    data_buffer.write_bytes(0, data)
                return len(data)
            payload = data_buffer.read_bytes(0, wLength) if (wLength and data_buffer is not None) else b""
            n = self.transport.control_transfer(bmRequestType, bRequest, wValue, wIndex, payload,
                                                timeout=completion_timeout_ms)
            return int(n)
        except DkError as exc:
            raise self._io_error(exc) from exc

    def async_device_request(self, for_client: IOService | None, bmRequestType: int, bRequest: int,
                             wValue: int, wIndex: int, wLength: int,
                             data_buffer: IOMemoryDescriptor | None, completion: OSAction,
                             completion_timeout_ms: int = 5000) -> None:
        """``AsyncDeviceRequest(...)``: ``completion`` gets ``CompleteAsyncDeviceRequest(action, status,
        bytesTransferred)`` later."""
        self._require_session(for_client, "AsyncDeviceRequest")
        self._submit_request(for_client, (bmRequestType, bRequest, wValue, wIndex, wLength, data_buffer,
                                          completion_timeout_ms), completion)

    def _submit_request(self, owner: IOService | None, request: tuple[Any, ...], completion: OSAction) -> None:
        """Queue one control request for ``owner`` (what ``AbortDeviceRequests`` aborts)."""
        req = _DeviceRequest(owner)
        with self._requests_lock:
            self._requests.append(req)

        def run() -> None:
            status, n = int(IOReturn.kIOReturnSuccess), 0
            if req.aborted is None:
                try:
                    n = self.device_request(None, *request)
                except DkError as exc:
                    status = int(exc.ioreturn) & 0xFFFFFFFF
            with self._requests_lock:
                if req in self._requests:
                    self._requests.remove(req)
            if req.aborted is not None:  # aborted before or while it ran
                status, n = req.aborted, 0
            try:
                completion.invoke(status, n)
            finally:
                req.done.set()

        self._control_queue.dispatch_async(run)

    def abort_device_requests(self, for_client: IOService | None, options: int = kIOUSBAbortSynchronous,
                              with_error: int = IOReturn.kIOReturnAborted) -> None:
        """``AbortDeviceRequests(forClient, options, withError)``: ``for_client``'s pending
        ``AsyncDeviceRequest`` calls complete with ``with_error`` (Apple: pass kIOReturnAborted);
        other clients' requests are untouched. ``kIOUSBAbortSynchronous`` waits until the aborted
        requests have completed. A request already on the wire finishes its transfer first (dkproto
        cannot cut a control transfer short) and then completes with ``with_error``.
        """
        with self._requests_lock:
            mine = [r for r in self._requests if r.owner is for_client]
            for r in mine:
                r.aborted = int(with_error) & 0xFFFFFFFF
        if options == kIOUSBAbortSynchronous and not self._control_queue.on_queue():
            for r in mine:
                r.done.wait(10.0)

    def get_port_status(self) -> int:
        """``GetPortStatus(uint32_t *portStatus)``: a ``tIOUSBHostPortStatus`` combination.

        Emulated: a standard port, enabled, with the connection speed of :meth:`get_speed` in
        bits 8-10 (``kIOUSBHostPortStatusConnectedSpeedMask``); no speed once the device is gone.
        """
        if self._gone:
            return kIOUSBHostPortStatusPortTypeStandard
        speed = self.get_speed()
        return (kIOUSBHostPortStatusPortTypeStandard | kIOUSBHostPortStatusEnabled
                | ((speed << kIOUSBHostPortStatusConnectedSpeedPhase) & kIOUSBHostPortStatusConnectedSpeedMask))

    def get_frame_number(self) -> tuple[int, int]:
        """``GetFrameNumber(uint64_t *frameNumber, uint64_t *theTime)``: ``(frameNumber, theTime)``.

        Emulated: 1 ms frames counted from when this nub was created (microframes omitted, as
        Apple's), and ``time.monotonic_ns()`` for the time (not mach ticks, driverkit.md 8.2).
        """
        self._require_present("GetFrameNumber")
        now = time.monotonic_ns()
        return (now - self._t0) // 1_000_000, now

    def set_configuration(self, bConfigurationValue: int, match_interfaces: bool = True) -> None:
        """``SetConfiguration(bConfigurationValue, matchInterfaces)``: terminates the interface nubs,
        sends SET_CONFIGURATION, and (``match_interfaces``) publishes the new interfaces."""
        self._require_present("SetConfiguration")
        for intf in list(self.interfaces):
            if intf.state is ServiceState.STARTED:
                intf.terminate()
                intf.wait_terminated(5.0)
        self.interfaces = []
        try:
            self.transport.set_configuration(bConfigurationValue)
        except DkError as exc:
            raise self._io_error(exc) from exc
        if match_interfaces and bConfigurationValue:
            self.publish_interfaces()

    def get_configuration(self) -> int:
        """The current bConfigurationValue (GET_CONFIGURATION), 0 when unconfigured."""
        try:
            return int(self.transport.get_configuration())
        except DkError as exc:
            raise self._io_error(exc) from exc

    def get_speed(self) -> int:
        """``GetSpeed(&speed)``: a ``tIOUSBHostConnectionSpeed``."""
        info = getattr(self.transport, "info", None)
        return _SPEEDS.get((getattr(info, "speed", None) or "").lower(), 0)

    def get_address(self) -> int:
        """``GetAddress(&address)``: the USB device address (0 if unknown)."""
        info = getattr(self.transport, "info", None)
        return int(getattr(info, "address", None) or 0)

    def reset(self) -> None:
        """``Reset()``: re-enumerate the device.

        As in macOS (IOUSBHostDevice.h, driverkit.md 4.1): this nub and its interfaces terminate
        (every driver on them is stopped, clients first) and the re-enumerated device appears as
        a *new* ``IOUSBHostDevice`` with new interface nubs, published for matching again
        (:func:`~dkproto.iokit.family.nub_published`; the old objects are not reused). Returns at
        once; the termination and the new publication follow asynchronously.
        """
        self._require_present("Reset")
        try:
            self.transport.reset()
        except DkError as exc:
            raise self._io_error(exc) from exc
        if self.state is not ServiceState.STARTED:
            return  # never published: nothing to terminate or republish
        self._handover = True
        nub_republishing(self)  # whoever waits on this nub: a successor is coming
        self.terminate()
        threading.Thread(target=self._republish, name=f"reset({self.get_name()})", daemon=True).start()

    def _republish(self) -> None:
        if not self.wait_terminated(30.0):
            _log.error("%s: Reset: the old device nub did not terminate; not republishing", self.get_name())
            republish_failed(self)
            return
        try:
            new = attach_device(self.transport, watch=self._watch_interval)
        except Exception as exc:  # noqa: BLE001 - any failure: the device did not come back
            _log.warning("%s: Reset: the device did not come back: %s", self.get_name(), exc)
            republish_failed(self)
            return
        nub_published(new, [new, *new.interfaces], replaces=self)

    def create_io_buffer(self, options: int, capacity: int) -> IOBufferMemoryDescriptor:
        """``CreateIOBuffer(options, capacity, &buffer)``."""
        return IOBufferMemoryDescriptor.create(options, capacity)

    def create_interface_iterator(self) -> int:
        """``CreateInterfaceIterator(uintptr_t *ref)``: a reference over the current interfaces."""
        self._require_present("CreateInterfaceIterator")
        ref = self._next_iterator
        self._next_iterator += 1
        self._iterators[ref] = iter(list(self.interfaces))
        return ref

    def copy_interface(self, ref: int) -> IOUSBHostInterface | None:
        """``CopyInterface(uintptr_t ref, IOUSBHostInterface **interface)``: the next interface, None at the end.

        Raises:
            BadArgumentError: ``ref`` is not a live iterator.
        """
        it = self._iterators.get(ref)
        if it is None:
            raise BadArgumentError(f"{self.get_name()}: CopyInterface: no interface iterator {ref}")
        return next(it, None)

    def destroy_interface_iterator(self, ref: int) -> None:
        """``DestroyInterfaceIterator(uintptr_t ref)``.

        Raises:
            BadArgumentError: ``ref`` is not a live iterator.
        """
        if self._iterators.pop(ref, None) is None:
            raise BadArgumentError(f"{self.get_name()}: DestroyInterfaceIterator: no interface iterator {ref}")

    def copy_interfaces(self) -> list[IOUSBHostInterface]:
        """Every interface of the current configuration.

        dkproto convenience, not Apple's: a dext loops ``create_interface_iterator`` /
        ``copy_interface`` until None / ``destroy_interface_iterator``.
        """
        return list(self.interfaces)

    def publish_interfaces(self) -> list[IOUSBHostInterface]:
        """Create, start and register one interface nub per interface (alt 0) of the current
        configuration (what the host stack does after SET_CONFIGURATION)."""
        cfg = self.copy_current_configuration_descriptor()
        if cfg is None:
            return []
        off = io_usb_get_next_interface_descriptor(cfg)
        while off is not None:
            if cfg[off + 3] == 0:
                intf = IOUSBHostInterface(self, cfg, off)
                start_service(intf, self)
                intf.register_service()
                self.interfaces.append(intf)
            off = io_usb_get_next_interface_descriptor(cfg, off)
        return list(self.interfaces)

    def matching_info(self) -> USBDeviceInfo:
        """This device as matching sees it (all configurations)."""
        dd = self.copy_descriptor(1, 18)
        blob = bytearray(dd)
        n = int(self.copy_device_descriptor()["bNumConfigurations"])
        for i in range(n):
            blob += self.copy_configuration_descriptor(i)
        info = device_from_descriptors(bytes(blob), name=self.get_name(), source=str(
            getattr(getattr(self.transport, "info", None), "url", "")))
        cur = self.get_configuration()
        if cur in info.config_order:  # match against the configuration actually set
            info.config_order.remove(cur)
            info.config_order.insert(0, cur)
        info.speed = self.properties.get("USBSpeed")
        return info


# ---- interfaces ---------------------------------------------------------------------------------

class IOUSBHostInterface(IOService):
    """``IOUSBHostInterface``: an interface nub of an :class:`IOUSBHostDevice`."""

    def __init__(self, device: IOUSBHostDevice, config: bytes, offset: int) -> None:
        super().__init__()
        self.device = device
        self._config = config
        self._offset = offset
        self._session: IOService | None = None
        self._pipes: dict[int, IOUSBHostPipe] = {}
        self._idle_timeout_ms = 0
        d = self.get_interface_descriptor()
        self.bInterfaceNumber = int(d["bInterfaceNumber"])
        self.properties.update({k: device.properties[k] for k in ("idVendor", "idProduct", "bcdDevice")})
        self.properties.update(bConfigurationValue=config[5], bInterfaceNumber=self.bInterfaceNumber,
                               bAlternateSetting=int(d["bAlternateSetting"]),
                               bInterfaceClass=int(d["bInterfaceClass"]),
                               bInterfaceSubClass=int(d["bInterfaceSubClass"]),
                               bInterfaceProtocol=int(d["bInterfaceProtocol"]))
        self.set_name(f"IOUSBHostInterface #{self.bInterfaceNumber}")

    def open(self, for_client: IOService, options: int = 0, arg: int | None = None) -> None:
        """``Open(forClient, options, arg)``: one session at a time; claims the interface.

        With ``kOpenOptionsSelectAlternateInterface`` in ``options``, selects alternate ``arg``.
        """
        self.device._require_present("IOUSBHostInterface::Open")
        if self._session is not None and self._session is not for_client:
            raise ExclusiveAccessError(f"{self.get_name()}: Open: already open by {type(self._session).__name__}")
        try:
            self.device.transport.claim_interface(self.bInterfaceNumber)
        except DkError as exc:
            raise self.device._io_error(exc) from exc
        self._session = for_client
        if options & kOpenOptionsSelectAlternateInterface and arg is not None:
            self.select_alternate_setting(arg)

    def close(self, for_client: IOService, options: int = 0) -> None:
        """``Close(forClient, options)``: aborts I/O on the interface and its pipes, closes them."""
        if self._session is not for_client:
            return
        self._close_pipes()
        self._session = None
        if not self.device._gone:
            try:
                self.device.transport.release_interface(self.bInterfaceNumber)
            except DkError:
                pass

    def _close_pipes(self) -> None:
        for pipe in list(self._pipes.values()):
            pipe._close()
        self._pipes.clear()

    def _require_open(self, what: str) -> None:
        self.device._require_present(what)
        if self._session is None:
            raise NotOpenError(f"{self.get_name()}: {what}: the interface is not open (call open(self) first)")

    def stop(self, provider: IOService | None) -> None:
        """``Stop``: a provider going away closes what is still open."""
        if self._session is not None:
            self.close(self._session)
        super().stop(provider)

    def copy_configuration_descriptor(self) -> bytes:
        """``CopyConfigurationDescriptor()``: the configuration set this interface belongs to."""
        return self._config

    def get_interface_descriptor(self, config: bytes | None = None) -> Any:
        """``GetInterfaceDescriptor(configurationDescriptor)``: the parsed interface descriptor."""
        cfg = self._config if config is None else config
        return _parse("INTERFACE", cfg[self._offset:self._offset + 9])

    def endpoint_descriptors(self) -> list[Any]:
        """Every endpoint descriptor of the current setting, parsed.

        dkproto convenience, not Apple's: a dext walks ``copy_configuration_descriptor()`` with
        ``IOUSBGetNextEndpointDescriptor(cfg, get_interface_offset(), cur)`` until None.
        """
        out = []
        off = io_usb_get_next_endpoint_descriptor(self._config, self._offset)
        while off is not None:
            out.append(_parse("ENDPOINT", self._config[off:off + 7]))
            off = io_usb_get_next_endpoint_descriptor(self._config, self._offset, off)
        return out

    def get_interface_offset(self) -> int:
        """Where ``GetInterfaceDescriptor(cfg)`` points in ``copy_configuration_descriptor()``'s bytes:
        the ``interfaceDescriptor`` to pass to ``IOUSBGetNextEndpointDescriptor``/``...Associated...``.

        dkproto's form of Apple's pointer into the configuration (the walkers take offsets).
        """
        return self._offset

    def copy_string_descriptor(self, index: int, language_id: int = kIOUSBLanguageIDEnglishUS) -> str:
        """``CopyStringDescriptor(index, languageID)``."""
        return self.device.copy_string_descriptor(index, language_id)

    def copy_pipe(self, address: int) -> IOUSBHostPipe:
        """``CopyPipe(address, &pipe)``: ``address`` is the full bEndpointAddress (0x80 for IN)."""
        self._require_open("CopyPipe")
        pipe = self._pipes.get(address)
        if pipe is not None:
            return pipe
        off = io_usb_get_next_endpoint_descriptor(self._config, self._offset)
        while off is not None:
            if self._config[off + 2] == address and self._config[off] >= 7:
                pipe = IOUSBHostPipe(self, _parse("ENDPOINT", self._config[off:off + 7]), offset=off)
                self._pipes[address] = pipe
                return pipe
            off = io_usb_get_next_endpoint_descriptor(self._config, self._offset, off)
        raise NotFoundError(f"{self.get_name()}: CopyPipe: no endpoint 0x{address:02x} in alternate setting "
                            f"{self.properties['bAlternateSetting']}", ioreturn=IOReturn.kIOUSBEndpointNotFound)

    def select_alternate_setting(self, bAlternateSetting: int) -> None:
        """``SelectAlternateSetting(bAlternateSetting)``: aborts pending I/O, closes pipes, SET_INTERFACE."""
        self._require_open("SelectAlternateSetting")
        off = io_usb_get_next_interface_descriptor(self._config)
        target = None
        while off is not None:
            if self._config[off + 2] == self.bInterfaceNumber and self._config[off + 3] == bAlternateSetting:
                target = off
                break
            off = io_usb_get_next_interface_descriptor(self._config, off)
        if target is None:
            raise NotFoundError(f"{self.get_name()}: no alternate setting {bAlternateSetting}",
                                ioreturn=IOReturn.kIOUSBInterfaceNotFound)
        self._close_pipes()
        try:
            self.device.transport.set_alternate_setting(self.bInterfaceNumber, bAlternateSetting)
        except DkError as exc:
            raise self.device._io_error(exc) from exc
        self._offset = target
        self.properties["bAlternateSetting"] = bAlternateSetting

    def device_request(self, bmRequestType: int, bRequest: int, wValue: int, wIndex: int,
                       wLength: int, data_buffer: IOMemoryDescriptor | None = None,
                       completion_timeout_ms: int = 5000) -> int:
        """``DeviceRequest(bmRequestType, ..., &bytesTransferred, completionTimeoutMs)`` (no forClient)."""
        self._require_open("DeviceRequest")
        return self.device.device_request(None, bmRequestType, bRequest, wValue, wIndex, wLength, data_buffer,
                                          completion_timeout_ms)

    def async_device_request(self, bmRequestType: int, bRequest: int, wValue: int, wIndex: int,
                             wLength: int, data_buffer: IOMemoryDescriptor | None,
                             completion: OSAction, completion_timeout_ms: int = 5000) -> None:
        """``AsyncDeviceRequest(...)`` on the interface."""
        self._require_open("AsyncDeviceRequest")
        self.device._submit_request(self, (bmRequestType, bRequest, wValue, wIndex, wLength, data_buffer,
                                           completion_timeout_ms), completion)

    def abort_device_requests(self, options: int = kIOUSBAbortSynchronous,
                              with_error: int = IOReturn.kIOReturnAborted) -> None:
        """``AbortDeviceRequests(options, withError)``: this interface's pending ``AsyncDeviceRequest``
        calls complete with ``with_error`` (IOUSBHostInterface.iig; pass kIOReturnAborted)."""
        self.device.abort_device_requests(self, options, with_error)

    def get_frame_number(self) -> tuple[int, int]:
        """``GetFrameNumber(uint64_t *frameNumber, uint64_t *theTime)``: the device's (emulated)."""
        return self.device.get_frame_number()

    def get_port_status(self) -> int:
        """``GetPortStatus(uint32_t *portStatus)``: the device's port (emulated, see the device's)."""
        return self.device.get_port_status()

    def set_idle_policy(self, device_idle_timeout_ms: int) -> None:
        """``SetIdlePolicy(uint32_t deviceIdleTimeout)``: ms after all pipes go idle before the device
        may suspend. Recorded only (dkproto does no power management).

        Raises:
            BadArgumentError: outside ``uint32_t``.
        """
        if not 0 <= device_idle_timeout_ms <= 0xFFFFFFFF:
            raise BadArgumentError(f"SetIdlePolicy({device_idle_timeout_ms}): not a uint32_t")
        self._idle_timeout_ms = device_idle_timeout_ms

    def get_idle_policy(self) -> int:
        """``GetIdlePolicy(uint32_t *deviceIdleTimeout)``."""
        return self._idle_timeout_ms

    def copy_device(self) -> IOUSBHostDevice:
        """``CopyDevice(&device)``."""
        return self.device

    def create_io_buffer(self, options: int, capacity: int) -> IOBufferMemoryDescriptor:
        """``CreateIOBuffer(options, capacity, &buffer)``."""
        return IOBufferMemoryDescriptor.create(options, capacity)


# ---- pipes --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class IOUSBStandardEndpointDescriptors:
    """``IOUSBStandardEndpointDescriptors`` (IOUSBHostPipe ``GetDescriptors``/``AdjustPipe``).

    ``descriptor`` is the parsed endpoint descriptor (fields by spec name); the companions are
    the raw bytes of the ``IOUSBSuperSpeedEndpointCompanionDescriptor`` (6 bytes) and
    ``IOUSBSuperSpeedPlusIsochronousEndpointCompanionDescriptor`` (8 bytes), None when the
    device has none (C leaves them zeroed).
    """

    bcdUSB: int
    descriptor: Any
    ssCompanionDescriptor: bytes | None = None
    sspCompanionDescriptor: bytes | None = None


class IOUSBHostPipe:
    """``IOUSBHostPipe``: one endpoint of an open interface."""

    def __init__(self, interface: IOUSBHostInterface, endpoint: Any, *, offset: int | None = None) -> None:
        self.interface = interface
        self.descriptor = endpoint
        self._ep_offset = offset  # the endpoint descriptor's offset in the interface's configuration
        self._policy: IOUSBStandardEndpointDescriptors | None = None
        self.address = int(endpoint["bEndpointAddress"])
        self.transfer_type = int(endpoint["bmAttributes"]) & 3
        self._open = True
        self._pending: set[Any] = set()
        self._lock = threading.Lock()
        self._abort_error = int(IOReturn.kIOReturnAborted)
        self._idle = 0

    def __repr__(self) -> str:
        return f"IOUSBHostPipe(0x{self.address:02x}{'' if self._open else ', closed'})"

    def _require(self, what: str) -> None:
        if not self._open:
            raise NotOpenError(f"IOUSBHostPipe 0x{self.address:02x}: {what}: the pipe is closed "
                               "(interface closed or alternate setting changed)")
        self.interface._require_open(f"IOUSBHostPipe::{what}")

    def _check_timeout(self, timeout_ms: int) -> None:
        if self.transfer_type == 3 and timeout_ms != 0:
            raise BadArgumentError(f"IOUSBHostPipe 0x{self.address:02x}: interrupt endpoints take a completion "
                                   f"timeout of 0 (got {timeout_ms} ms)")

    def io(self, data_buffer: IOMemoryDescriptor | None, data_buffer_length: int, completion_timeout_ms: int = 0
           ) -> int:
        """``IO(dataBuffer, dataBufferLength, &bytesTransferred, completionTimeoutMs)``: synchronous.

        Returns bytesTransferred; IN data lands in ``data_buffer``. Timeouts in ms, 0 = never;
        interrupt endpoints require 0.
        """
        self._require("IO")
        self._check_timeout(completion_timeout_ms)
        self._check_buffer(data_buffer, data_buffer_length)
        t = self.interface.device.transport
        try:
            if self.address & 0x80:
                data = bytes(t.read(self.address, data_buffer_length, timeout=completion_timeout_ms))
                if data and data_buffer is not None:
                    data_buffer.write_bytes(0, data)
                return len(data)
            payload = data_buffer.read_bytes(0, data_buffer_length) if data_buffer is not None else b""
            return int(t.write(self.address, payload, timeout=completion_timeout_ms))
        except DkError as exc:
            raise self.interface.device._io_error(exc) from exc

    def _check_buffer(self, data_buffer: IOMemoryDescriptor | None, length: int) -> None:
        if length and (data_buffer is None or data_buffer.get_length() < length):
            raise BadArgumentError(f"IOUSBHostPipe 0x{self.address:02x}: dataBufferLength {length} exceeds the "
                                   f"buffer ({0 if data_buffer is None else data_buffer.get_length()} bytes)")

    def async_io(self, data_buffer: IOMemoryDescriptor | None, data_buffer_length: int, completion: OSAction,
                 completion_timeout_ms: int = 0) -> None:
        """``AsyncIO(dataBuffer, dataBufferLength, completion, completionTimeoutMs)``.

        ``completion`` later receives ``CompleteAsyncIO(action, status, actualByteCount,
        completionTimestamp)`` on its queue.
        """
        self._require("AsyncIO")
        self._check_timeout(completion_timeout_ms)
        self._check_buffer(data_buffer, data_buffer_length)
        t = self.interface.device.transport
        is_in = bool(self.address & 0x80)
        arg: bytes | int = data_buffer_length if is_in else (
            data_buffer.read_bytes(0, data_buffer_length) if data_buffer is not None else b"")

        def done(xfer: Any) -> None:
            with self._lock:
                self._pending.discard(xfer)
            status = int(xfer.status) & 0xFFFFFFFF
            if status == IOReturn.kIOReturnAborted:
                status = self._abort_error
            if is_in and xfer.data and data_buffer is not None:
                data_buffer.write_bytes(0, bytes(xfer.data)[:data_buffer.get_length()])
            if status == IOReturn.kIOReturnNoDevice:
                self.interface.device.device_gone()
            completion.invoke(status, int(xfer.actual_length), int(xfer.timestamp_ns))

        try:
            xfer = t.submit(self.address, arg, done, timeout=completion_timeout_ms)
        except DkError as exc:
            raise self.interface.device._io_error(exc) from exc
        with self._lock:
            if not xfer.done():
                self._pending.add(xfer)

    def abort(self, options: int = kIOUSBAbortSynchronous, with_error: int = IOReturn.kIOReturnAborted,
              for_client: IOService | None = None) -> None:
        """``Abort(options, withError, forClient)``: pending I/O completes with ``with_error``."""
        self._abort_error = int(with_error) & 0xFFFFFFFF
        t = self.interface.device.transport
        if options == kIOUSBAbortAsynchronous:
            threading.Thread(target=self._abort_now, args=(t,), daemon=True).start()
        else:
            self._abort_now(t)

    def _abort_now(self, t: Any) -> None:
        try:
            t.abort(self.address)
        except DkError as exc:
            _log.debug("abort 0x%02x: %s", self.address, exc)

    def clear_stall(self, with_request: bool = True) -> None:
        """``ClearStall(withRequest)``: abort pending I/O, reset the toggle; ``True`` also sends
        CLEAR_FEATURE(ENDPOINT_HALT) (recommended)."""
        self._require("ClearStall")
        self.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)
        if with_request:
            try:
                self.interface.device.transport.clear_halt(self.address)
            except DkError as exc:
                raise self.interface.device._io_error(exc) from exc

    def get_speed(self) -> int:
        """``GetSpeed(&speed)``."""
        return self.interface.device.get_speed()

    def get_device_address(self) -> int:
        """``GetDeviceAddress(&address)``."""
        return self.interface.device.get_address()

    def set_idle_policy(self, idle_timeout_ms: int) -> None:
        """``SetIdlePolicy(idleTimeoutMs)``: recorded (no power management here)."""
        self._idle = idle_timeout_ms

    def get_idle_policy(self) -> int:
        """``GetIdlePolicy(&idleTimeoutMs)``."""
        return self._idle

    def _original_descriptors(self) -> IOUSBStandardEndpointDescriptors:
        cfg = self.interface._config
        ss = ssp = None
        if self._ep_offset is not None:  # the companions follow the endpoint descriptor (USB 3.2 9.6.7-8)
            off = io_usb_get_next_descriptor(cfg, self._ep_offset)
            if off is not None and cfg[off + 1] == kIOUSBDescriptorTypeSuperSpeedUSBEndpointCompanion:
                ss = bytes(cfg[off:off + cfg[off]])
                off = io_usb_get_next_descriptor(cfg, off)
                if off is not None and cfg[off + 1] == kIOUSBDescriptorTypeSuperSpeedPlusIsochronousEndpointCompanion:
                    ssp = bytes(cfg[off:off + cfg[off]])
        return IOUSBStandardEndpointDescriptors(int(self.interface.device.properties.get("bcdUSB", 0)),
                                                self.descriptor, ss, ssp)

    def get_descriptors(self, options: int = kIOUSBGetEndpointDescriptorOriginal) -> IOUSBStandardEndpointDescriptors:
        """``GetDescriptors(IOUSBStandardEndpointDescriptors *descriptors, IOUSBGetEndpointDescriptorOptions type)``.

        ``kIOUSBGetEndpointDescriptorOriginal``: the endpoint descriptor and its SuperSpeed /
        SuperSpeedPlus isochronous companions as the device reported them;
        ``kIOUSBGetEndpointDescriptorCurrentPolicy``: as last set with :meth:`adjust_pipe`
        (the original until then).

        Raises:
            BadArgumentError: another ``options`` value.
        """
        if options == kIOUSBGetEndpointDescriptorOriginal:
            return self._original_descriptors()
        if options == kIOUSBGetEndpointDescriptorCurrentPolicy:
            return self._policy if self._policy is not None else self._original_descriptors()
        raise BadArgumentError(f"IOUSBHostPipe 0x{self.address:02x}: GetDescriptors: unknown type {options}")

    def adjust_pipe(self, descriptors: IOUSBStandardEndpointDescriptors) -> None:
        """``AdjustPipe(const IOUSBStandardEndpointDescriptors *descriptors)``: a new policy for this
        endpoint (e.g. a smaller interval). Recorded: :meth:`get_descriptors` with
        ``kIOUSBGetEndpointDescriptorCurrentPolicy`` returns it; transfers are not re-timed.

        Raises:
            BadArgumentError: the descriptor is for another endpoint address or transfer type.
        """
        self._require("AdjustPipe")
        ep = descriptors.descriptor
        if int(ep["bEndpointAddress"]) != self.address or int(ep["bmAttributes"]) & 3 != self.transfer_type:
            raise BadArgumentError(f"IOUSBHostPipe 0x{self.address:02x}: AdjustPipe: the descriptor is for "
                                   f"endpoint 0x{int(ep['bEndpointAddress']):02x}")
        self._policy = descriptors

    def _close(self) -> None:
        if self._open:
            self.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)
            self._open = False


# ---- publishing --------------------------------------------------------------------------------

def attach_device(transport: Any, *, configure: bool = True, watch: float | None = None) -> IOUSBHostDevice:
    """Publish a device as macOS does on plug-in: an :class:`IOUSBHostDevice` nub (started,
    registered) and, if the device is configured (or ``configure`` sets configuration 1
    when it is not), one :class:`IOUSBHostInterface` per interface.

    Args:
        transport: a transport (opened here if not open yet).
        configure: SET_CONFIGURATION to the first configuration when unconfigured.
        watch: poll interval in seconds for unplug detection (None: only on I/O errors).
    """
    if not getattr(transport, "is_open", True):
        transport.open()
    dev = IOUSBHostDevice(transport)
    start_service(dev, None)
    dev.register_service()
    cur = dev.get_configuration()
    if cur == 0 and configure:
        first = dev.copy_configuration_descriptor(0)
        dev.set_configuration(first[5], match_interfaces=False)
    dev.publish_interfaces()
    if watch:
        dev.watch(watch)
    return dev


def device_info_from_url(url: str) -> USBDeviceInfo:
    """Read a live device's descriptors through its transport, for matching (``dkproto match --device``):
    :func:`dkproto.usb.read.read_descriptor_set`, the one reader of a whole set, then the current
    configuration first."""
    from dkproto.transport import open_transport
    from dkproto.usb.read import read_descriptor_set

    with open_transport(url) as t:
        ds = read_descriptor_set(t, source=url)
        info = device_from_descriptors(ds.to_bytes(), name=url, source=url)
        try:
            cur = t.get_configuration()
        except DkError:
            cur = 0
        if cur in info.config_order:
            info.config_order.remove(cur)
            info.config_order.insert(0, cur)
        return info


def iter_pipes(interface: IOUSBHostInterface) -> Iterator[IOUSBHostPipe]:
    """Copy every pipe of an open interface."""
    for ep in interface.endpoint_descriptors():
        yield interface.copy_pipe(int(ep["bEndpointAddress"]))


# ---- the USB families (docs/iokit.md, "Add a DriverKit family") -------------------------------

_DEVICE_KEYS = ("idVendor", "idProduct", "bcdDevice", "bDeviceClass", "bDeviceSubClass", "bDeviceProtocol")


def _publish(transport: Any, watch: float | None) -> tuple[IOService, list[IOService]]:
    """The runner's hook: attach the device; the device nub and its interface nubs are matched."""
    dev = attach_device(transport, watch=watch)
    return dev, [dev, *dev.interfaces]


def _device_info(nub: IOService) -> USBDeviceInfo | None:
    """The device fields ``transport.usb`` is compared with, from a device nub or an interface's device."""
    dev = nub.device if isinstance(nub, IOUSBHostInterface) else nub
    if not isinstance(dev, IOUSBHostDevice):
        return None
    return device_from_dict({k: dev.properties[k] for k in _DEVICE_KEYS})


def _default_url(p: Personality) -> str | None:
    """``usb://VVVV:PPPP`` from a personality's integer ``idVendor`` and ``idProduct``."""
    vid, pid = p.properties.get("idVendor"), p.properties.get("idProduct")
    return f"usb://{vid:04x}:{pid:04x}" if isinstance(vid, int) and isinstance(pid, int) else None


register_family(Family(
    IOUSBHostDevice, entitlement=ENT_TRANSPORT_USB, validate_entitlement=validate_transport_usb,
    check_entitlement=check_transport_entitlement, score=score_device, nubs=usb_nubs, schemes=(ANY_SCHEME,),
    publish=_publish, device_info=_device_info, default_url=_default_url))
register_family(Family(
    IOUSBHostInterface, entitlement=ENT_TRANSPORT_USB, check_entitlement=check_transport_entitlement,
    score=score_interface, device_info=_device_info, default_url=_default_url))
