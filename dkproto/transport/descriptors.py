"""Descriptors through any transport's default pipe: what a host reads before it talks HID to an
interface (USB 2.0 9.4.3 GET_DESCRIPTOR, HID 1.11 6.2.1 and 7.1.1).

These run on any :class:`~dkproto.transport.base.Transport` with control transfers (``usb://``,
``sim://``, ``MockTransport``, a ``spy+`` wrapper around one); ``hid://`` has none and raises
:class:`~dkproto.errors.UnsupportedError`. :meth:`Transport.report_descriptor` is built on
:func:`read_report_descriptor`; :class:`dkproto.hid.device.HidDevice` finds its interrupt
endpoints with :func:`hid_interface`.

This module holds THE one implementation of each of these operations:

* :func:`get_descriptor`: one GET_DESCRIPTOR, standard or class, to the device or an interface;
* :func:`interfaces_of`: the interfaces of a configuration's bytes, with what HID needs of them
  (class, the report descriptor's ``wDescriptorLength``, the interrupt endpoints);
* :func:`get_report_descriptor`: GET_DESCRIPTOR(Report) of one interface, ``length`` bytes.

:func:`dkproto.usb.read.read_descriptor_set` (the whole set, every configuration) and
:mod:`dkproto.iokit` (``IOUSBHostDevice::CopyDescriptor``) use them. The layering runs one way:
``dkproto.usb`` imports ``dkproto.transport``, never the reverse, so this module reads raw bytes
(no walker, no schemas) and ``import dkproto.transport`` stays light and free of cycles.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dkproto.errors import BadArgumentError, DecodeError, NotFoundError, UnsupportedError

if TYPE_CHECKING:
    from dkproto.transport.base import Transport

__all__ = [
    "MAX_REPORT_DESCRIPTOR",
    "RECIPIENT_DEVICE",
    "RECIPIENT_INTERFACE",
    "REQUEST_TYPE_CLASS",
    "REQUEST_TYPE_STANDARD",
    "HidInterfaceInfo",
    "active_configuration",
    "get_descriptor",
    "get_report_descriptor",
    "hid_interface",
    "interfaces_of",
    "iter_descriptors",
    "read_report_descriptor",
]

#: wLength asked for when the HID descriptor does not give the report descriptor's length
#: (the kernel's HID_MAX_DESCRIPTOR_SIZE).
MAX_REPORT_DESCRIPTOR = 4096

#: ``request_type`` of :func:`get_descriptor` (bmRequestType bits 6..5; DriverKit's
#: ``kIOUSBDeviceRequestTypeValueStandard`` / ``...Class``).
REQUEST_TYPE_STANDARD, REQUEST_TYPE_CLASS = 0, 1
#: ``recipient`` of :func:`get_descriptor` (bmRequestType bits 4..0; ``kIOUSBDeviceRequestRecipientValue...``).
RECIPIENT_DEVICE, RECIPIENT_INTERFACE = 0, 1

_TIMEOUT_MS = 1000
_DEVICE, _CONFIGURATION, _INTERFACE, _ENDPOINT, _HID, _REPORT = 0x01, 0x02, 0x04, 0x05, 0x21, 0x22


def get_descriptor(transport: Transport, descriptor_type: int, index: int = 0, length: int = 255, *,
                   wIndex: int = 0, recipient: int = RECIPIENT_DEVICE, request_type: int = REQUEST_TYPE_STANDARD,
                   timeout: int = _TIMEOUT_MS) -> bytes:
    """GET_DESCRIPTOR(``descriptor_type``, ``index``) on the default pipe; the bytes the device returned.

    ``bmRequestType`` is ``0x80 | request_type << 5 | recipient``: 0x80 a standard descriptor of
    the device, 0x81 one of an interface (HID, report), 0xA0 a class descriptor of the device (a
    hub's 0x29/0x2A), as DriverKit's ``CopyDescriptor(..., requestType, requestRecipient, ...)``.

    Args:
        wIndex: the language ID (strings), or the interface number (``recipient=1``).
        recipient: 0 device, 1 interface, 2 endpoint, 3 other.
        request_type: 0 standard, 1 class, 2 vendor.

    Raises:
        BadArgumentError: ``request_type`` or ``recipient`` out of range.
    """
    if request_type not in (0, 1, 2) or recipient not in (0, 1, 2, 3):
        raise BadArgumentError(f"GET_DESCRIPTOR: request type {request_type} (0..2) or recipient {recipient} "
                               "(0..3) out of range")
    data = transport.control_transfer(0x80 | request_type << 5 | recipient, 0x06, (descriptor_type << 8) | index,
                                      wIndex, length, timeout)
    return b"" if isinstance(data, int) else bytes(data)  # IN: bytes (an int would be a back end's bug)


def get_report_descriptor(transport: Transport, interface: int, length: int, timeout: int = _TIMEOUT_MS) -> bytes:
    """GET_DESCRIPTOR(Report) to ``interface`` (HID 1.11 7.1.1), ``length`` bytes asked (its
    ``wDescriptorLength``); the bytes the device returned."""
    return get_descriptor(transport, _REPORT, 0, length, wIndex=interface, recipient=RECIPIENT_INTERFACE,
                          timeout=timeout)


def iter_descriptors(block: bytes) -> Iterator[bytes]:
    """The descriptors of a configuration (or any run of them), one by one, by ``bLength``.

    Stops at a ``bLength`` below 2 or one that runs past the end (what the kernel ignores too).
    """
    offset = 0
    while offset + 2 <= len(block):
        length = block[offset]
        if length < 2 or offset + length > len(block):
            return
        yield block[offset:offset + length]
        offset += length


def active_configuration(transport: Transport, timeout: int = _TIMEOUT_MS) -> bytes:
    """The whole configuration descriptor (``wTotalLength`` bytes) of the active configuration.

    GET_CONFIGURATION, then the 9-byte head of each configuration until its bConfigurationValue
    matches (the first one when the device is unconfigured), then the whole of it.

    Raises:
        DecodeError: the device returned a short device or configuration descriptor.
        UnsupportedError: the transport has no control transfers (``hid://``).
    """
    value = transport.get_configuration()
    device = get_descriptor(transport, _DEVICE, 0, 18, timeout=timeout)
    if len(device) < 18:
        raise DecodeError(f"the device descriptor is {len(device)} bytes, not 18", descriptor="Device Descriptor",
                          rule="bLength")
    index, head = 0, b""
    for candidate in range(max(device[17], 1)):
        got = get_descriptor(transport, _CONFIGURATION, candidate, 9, timeout=timeout)
        if len(got) < 9:
            raise DecodeError(f"configuration {candidate} returned {len(got)} bytes, not 9",
                              descriptor="Configuration Descriptor", rule="bLength")
        if candidate == 0 or got[5] == value:
            index, head = candidate, got
        if got[5] == value:
            break
    total = int.from_bytes(head[2:4], "little")
    return get_descriptor(transport, _CONFIGURATION, index, total, timeout=timeout) if total > len(head) else head


@dataclass(frozen=True)
class HidInterfaceInfo:
    """One interface descriptor (one alternate setting) of a configuration, as HID needs it.

    Attributes:
        bInterfaceNumber, bInterfaceClass: from the interface descriptor (HID is class 3).
        report_descriptor_length: wDescriptorLength of the Report entry of its HID descriptor
            (0x21, read under a HID interface only), or None when it has none.
        in_endpoint, out_endpoint: its first interrupt IN and OUT bEndpointAddress, or None.
        bAlternateSetting: from the interface descriptor.
    """

    bInterfaceNumber: int
    bInterfaceClass: int
    report_descriptor_length: int | None = None
    in_endpoint: int | None = None
    out_endpoint: int | None = None
    bAlternateSetting: int = 0


def interfaces_of(config: bytes) -> Iterator[HidInterfaceInfo]:
    """Every interface descriptor of a configuration (``wTotalLength`` bytes), every alternate
    setting, in order, with what follows it up to the next one: the HID descriptor's Report
    length (under a HID interface) and the interrupt endpoints. Raw bytes, by ``bLength``
    (:func:`iter_descriptors`)."""
    found: HidInterfaceInfo | None = None
    for desc in iter_descriptors(config):
        kind = desc[1]
        if kind == _INTERFACE and len(desc) >= 9:
            if found is not None:
                yield found
            found = HidInterfaceInfo(desc[2], desc[5], bAlternateSetting=desc[3])
        elif found is None:
            continue
        elif kind == _HID and len(desc) >= 6 and found.bInterfaceClass == 3:
            entries = desc[6:6 + 3 * desc[5]]
            length = next((int.from_bytes(entries[i + 1:i + 3], "little") for i in range(0, len(entries) - 2, 3)
                           if entries[i] == _REPORT), found.report_descriptor_length)
            found = replace(found, report_descriptor_length=length)
        elif kind == _ENDPOINT and len(desc) >= 4 and desc[3] & 3 == 3:
            if desc[2] & 0x80 and found.in_endpoint is None:
                found = replace(found, in_endpoint=desc[2])
            elif not desc[2] & 0x80 and found.out_endpoint is None:
                found = replace(found, out_endpoint=desc[2])
    if found is not None:
        yield found


def hid_interface(transport: Transport, interface: int, timeout: int = _TIMEOUT_MS) -> HidInterfaceInfo:
    """What the active configuration says of ``interface`` (alternate setting 0).

    Raises:
        NotFoundError: the active configuration has no such interface.
        UnsupportedError: the transport has no control transfers (``hid://``).
    """
    for info in interfaces_of(active_configuration(transport, timeout)):
        if info.bInterfaceNumber == interface and info.bAlternateSetting == 0:
            return info
    raise NotFoundError(f"interface {interface} is not in the active configuration")


def read_report_descriptor(transport: Transport, interface: int, timeout: int = _TIMEOUT_MS) -> bytes:
    """The report descriptor of a HID interface of the active configuration: its HID descriptor's
    ``wDescriptorLength`` (:func:`hid_interface`), then :func:`get_report_descriptor`.

    Raises:
        UnsupportedError: the interface is not HID (bInterfaceClass 3), or the transport has no
            control transfers.
        NotFoundError: no such interface in the active configuration.
        PipeStalledError: the device refused the request.
    """
    info = hid_interface(transport, interface, timeout)
    if info.bInterfaceClass != 3:
        raise UnsupportedError(f"interface {interface} is not a HID interface (bInterfaceClass "
                               f"0x{info.bInterfaceClass:02x}, not 0x03)")
    length = min(info.report_descriptor_length or MAX_REPORT_DESCRIPTOR, 0xFFFF)
    return get_report_descriptor(transport, interface, length, timeout)
