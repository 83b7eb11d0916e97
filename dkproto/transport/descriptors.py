"""Descriptors through any transport's default pipe: what a host reads before it talks HID to an
interface (USB 2.0 9.4.3 GET_DESCRIPTOR, HID 1.11 6.2.1 and 7.1.1).

These run on any :class:`~dkproto.transport.base.Transport` with control transfers (``usb://``,
``sim://``, ``MockTransport``, a ``spy+`` wrapper around one); ``hid://`` has none and raises
:class:`~dkproto.errors.UnsupportedError`. :meth:`Transport.report_descriptor` is built on
:func:`read_report_descriptor`; :class:`dkproto.hid.device.HidDevice` finds its interrupt
endpoints with :func:`hid_interface`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dkproto.errors import DecodeError, NotFoundError, UnsupportedError

if TYPE_CHECKING:
    from dkproto.transport.base import Transport

__all__ = [
    "MAX_REPORT_DESCRIPTOR",
    "HidInterfaceInfo",
    "active_configuration",
    "get_descriptor",
    "hid_interface",
    "iter_descriptors",
    "read_report_descriptor",
]

#: wLength asked for when the HID descriptor does not give the report descriptor's length
#: (the kernel's HID_MAX_DESCRIPTOR_SIZE).
MAX_REPORT_DESCRIPTOR = 4096

_TIMEOUT_MS = 1000
_DEVICE, _CONFIGURATION, _INTERFACE, _ENDPOINT, _HID, _REPORT = 0x01, 0x02, 0x04, 0x05, 0x21, 0x22


def get_descriptor(transport: Transport, descriptor_type: int, index: int = 0, length: int = 255, *,
                   wIndex: int = 0, recipient: int = 0, timeout: int = _TIMEOUT_MS) -> bytes:
    """GET_DESCRIPTOR(``descriptor_type``, ``index``) on the default pipe; the bytes the device returned.

    Args:
        wIndex: the language ID (strings), or the interface number (class descriptors, ``recipient=1``).
        recipient: 0 device (standard descriptors), 1 interface (HID class descriptors).
    """
    data = transport.control_transfer(0x80 | recipient, 0x06, (descriptor_type << 8) | index, wIndex, length,
                                      timeout)
    return bytes(data)  # IN: always bytes


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
    """One interface of the active configuration (alternate setting 0), as HID needs it.

    Attributes:
        bInterfaceNumber, bInterfaceClass: from the interface descriptor (HID is class 3).
        report_descriptor_length: wDescriptorLength of the Report entry of its HID descriptor
            (0x21), or None when it has none.
        in_endpoint, out_endpoint: its interrupt IN and OUT bEndpointAddress, or None.
    """

    bInterfaceNumber: int
    bInterfaceClass: int
    report_descriptor_length: int | None = None
    in_endpoint: int | None = None
    out_endpoint: int | None = None


def hid_interface(transport: Transport, interface: int, timeout: int = _TIMEOUT_MS) -> HidInterfaceInfo:
    """What the active configuration says of ``interface`` (alternate setting 0).

    Raises:
        NotFoundError: the active configuration has no such interface.
        UnsupportedError: the transport has no control transfers (``hid://``).
    """
    number = klass = -1
    length = in_ep = out_ep = None
    for desc in iter_descriptors(active_configuration(transport, timeout)):
        kind = desc[1]
        if kind == _INTERFACE and len(desc) >= 9:
            if number >= 0:
                break  # the next interface (or alternate setting): ours is complete
            if desc[2] == interface and desc[3] == 0:
                number, klass = desc[2], desc[5]
        elif number < 0:
            continue
        elif kind == _HID and len(desc) >= 6:
            entries = desc[6:6 + 3 * desc[5]]
            length = next((int.from_bytes(entries[i + 1:i + 3], "little") for i in range(0, len(entries) - 2, 3)
                           if entries[i] == _REPORT), length)
        elif kind == _ENDPOINT and len(desc) >= 4 and desc[3] & 3 == 3:
            if desc[2] & 0x80:
                in_ep = in_ep if in_ep is not None else desc[2]
            else:
                out_ep = out_ep if out_ep is not None else desc[2]
    if number < 0:
        raise NotFoundError(f"interface {interface} is not in the active configuration")
    return HidInterfaceInfo(number, klass, length, in_ep, out_ep)


def read_report_descriptor(transport: Transport, interface: int, timeout: int = _TIMEOUT_MS) -> bytes:
    """GET_DESCRIPTOR(Report) of a HID interface (HID 1.11 7.1.1), ``wDescriptorLength`` bytes.

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
    return get_descriptor(transport, _REPORT, 0, length, wIndex=interface, recipient=1, timeout=timeout)
