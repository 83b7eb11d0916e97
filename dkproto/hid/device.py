"""HID devices: a report codec bound to any transport.

[HID 1.11: 7.2 Class-Specific Requests] Input reports come from the interrupt IN pipe
(:meth:`HidDevice.read`); output reports go out with :meth:`HidDevice.write`; feature reports
use GET_REPORT/SET_REPORT (:meth:`HidDevice.get_feature`, :meth:`HidDevice.set_feature`).

A :class:`HidDevice` holds a :class:`~dkproto.transport.Transport` and a
:class:`~dkproto.hid.codec.DescriptorCodec` built from the report descriptor read through it
(:meth:`Transport.report_descriptor`). It does no I/O of its own, so any transport with the HID
calls serves: ``hid://`` (hidapi: hidraw on Linux, IOHIDManager on macOS), ``usb://...?interface=N``
(HID class requests and the interrupt pipes through libusb; claiming the interface detaches
usbhid), ``sim://`` (a simulated device that answers GET_DESCRIPTOR(Report) and the HID class
requests), and ``spy+`` around any of them.

Device specs (``HidDevice(spec)``, the ``dkproto hid`` verbs): a transport URL, a hidapi path
(``/dev/hidraw0``, macOS ``DevSrvsID:...``) or ``VID:PID[:serial]`` (both through ``hid://``).
Enumeration, and the one hidapi -> DkError mapping, are the HID transport's
(:mod:`dkproto.transport.hid`); :func:`enumerate_devices` and :class:`HidDeviceInfo` are its.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dkproto.errors import (
    BadArgumentError,
    DkError,
    DkTimeoutError,
    NotFoundError,
    NotOpenError,
    UnsupportedError,
    URLError,
)
from dkproto.hid.codec import DescriptorCodec, ReportValues
from dkproto.hid.parser import ReportDescriptor, parse
from dkproto.transport import (
    HID_REPORT_FEATURE,
    HID_REPORT_INPUT,
    HID_REPORT_OUTPUT,
    Transport,
    open_transport,
)
from dkproto.transport.descriptors import hid_interface
from dkproto.transport.hid import HidDeviceInfo, HIDTransport, enumerate_devices
from dkproto.transport.url import is_url, parse_device_id

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["HidDevice", "HidDeviceInfo", "enumerate_devices", "find_device", "is_device_spec", "parse_device_spec"]

#: hidapi paths on Linux and macOS, and the ``hid:`` prefix of a spec.
_PATH_PREFIXES = ("/dev/hidraw", "hid:", "DevSrvsID:", "IOService:")


def parse_device_spec(spec: str) -> tuple[str | None, int, int, str | None]:
    """Split ``VID:PID[:serial]`` (``hid:`` prefix allowed) or a path (``/dev/hidraw0``, ``hid:///dev/hidraw0``).

    Returns:
        ``(path, vid, pid, serial)``: path set for a path, else vid/pid (and serial).

    Raises:
        URLError: an empty spec.
    """
    s = spec.strip()
    if not s:
        raise URLError("empty HID device: give a path (/dev/hidraw0) or VID:PID[:serial]")
    if s.startswith("hid://"):
        return s[len("hid://"):], 0, 0, None
    ident = None if s.startswith("/") else parse_device_id(s.removeprefix("hid:"), serial=True)
    if ident is None or ident[1] is None:
        return s, 0, 0, None
    return None, ident[0], ident[1], ident[2]


def is_device_spec(spec: str) -> bool:
    """True when ``spec`` names a device :class:`HidDevice` binds to: a transport URL, a hidapi path or
    ``VID:PID[:serial]`` (anything else, the ``dkproto hid`` verbs read as a descriptor file or hex)."""
    return (is_url(spec) or spec.startswith(_PATH_PREFIXES)
            or parse_device_id(spec.removeprefix("hid:"), serial=True) is not None)


def _transport_for(spec: str) -> Transport:
    """The (closed) transport a device spec names: a URL as given, anything else through ``hid://``."""
    if is_url(spec):
        return open_transport(spec.strip())
    path, vid, pid, serial = parse_device_spec(spec)
    if path is not None:
        return HIDTransport(path=path)
    url = f"hid://{vid:04x}:{pid:04x}" + (f"?serial={quote(serial)}" if serial is not None else "")
    return HIDTransport(idVendor=vid, idProduct=pid, serial=serial, url=url)


class HidDevice:
    """A HID device: reports encoded and decoded with its own report descriptor, over a transport.

    Args:
        device: a device spec (a transport URL, a hidapi path or ``VID:PID[:serial]``), or a
            :class:`~dkproto.transport.Transport`. A transport given closed is opened here and
            closed by :meth:`close`; one given open is left open.

    Raises:
        NoDeviceError: nothing matches, or opening failed.
        NotPermittedError: no access (udev rules on Linux, Input Monitoring on macOS).
        URLError: a malformed spec or URL.
    """

    def __init__(self, device: str | Transport) -> None:
        transport = device if isinstance(device, Transport) else _transport_for(device)
        self.spec = device if isinstance(device, str) else transport.info.url
        self.transport = transport
        self._owned = not transport.is_open
        if self._owned:
            transport.open()
        info = transport.info
        self.path: str = info.path or info.url
        self.interface: int = info.interface or 0
        self._closed = False
        self._descriptor: ReportDescriptor | None = None
        self._codec: DescriptorCodec | None = None
        self._pipes: tuple[int | None, int | None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the device (and the transport, when this object opened it); idempotent."""
        if not self._closed:
            self._closed = True
            if self._owned:
                self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> Transport:
        if self._closed:
            raise NotOpenError(f"HID device {self.path} is closed")
        return self.transport

    def _interrupt_pipes(self) -> tuple[int | None, int | None]:
        """The interface's interrupt IN and OUT endpoints, from the active configuration; ``(None,
        None)`` on a transport without control transfers (hidapi reads and writes its own pipes)."""
        if self._pipes is None:
            try:
                found = hid_interface(self._open(), self.interface)
            except UnsupportedError:
                self._pipes = (None, None)
            else:
                self._pipes = (found.in_endpoint, found.out_endpoint)
        return self._pipes

    # -- descriptor --------------------------------------------------------------------------
    def report_descriptor_bytes(self) -> bytes:
        """The report descriptor, through the transport (:meth:`Transport.report_descriptor`)."""
        return self._open().report_descriptor()

    @property
    def descriptor(self) -> ReportDescriptor:
        """The parsed report descriptor (read once)."""
        if self._descriptor is None:
            self._descriptor = parse(self.report_descriptor_bytes())
        return self._descriptor

    @property
    def codec(self) -> DescriptorCodec:
        """Codecs for this device's reports."""
        if self._codec is None:
            self._codec = DescriptorCodec(self.descriptor)
        return self._codec

    def _max_len(self, report_type: str) -> int:
        sizes = [r.size for r in self.descriptor.reports_of(report_type)]
        return max(sizes, default=64) + 1

    def _payload_len(self, report_type: str, report_id: int) -> int:
        """Bytes of a report without its ID byte, from the descriptor (64 when it does not say)."""
        try:
            return max(self.descriptor.report(report_type, report_id).data_size, 1)
        except DkError:
            return 64

    # -- I/O -------------------------------------------------------------------------------
    def read(self, timeout_ms: int = 1000, size: int | None = None) -> bytes:
        """Read one input report (the interrupt IN pipe), report ID byte included when used.

        A zero-length packet (which ends a report of exactly wMaxPacketSize) is not a report:
        reading goes on until the timeout.

        Raises:
            DkTimeoutError: nothing arrived within ``timeout_ms`` (negative: wait forever).
        """
        transport = self._open()
        n = size or self._max_len("input")
        endpoint = self._interrupt_pipes()[0] or 0x81
        timeout = 0 if timeout_ms < 0 else max(timeout_ms, 1)
        deadline = time.monotonic() + timeout / 1000
        while True:
            data = transport.read(endpoint, n, timeout)
            if data:
                return bytes(data)
            if timeout:
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    raise DkTimeoutError(f"read {self.path}: no input report within {timeout_ms} ms")
                timeout = left_ms

    def read_values(self, timeout_ms: int = 1000) -> ReportValues:
        """Read one input report and decode it."""
        return self.codec.decode(self.read(timeout_ms), "input", strict=False)

    def write(self, data: bytes) -> int:
        """Send an output report: ``data`` starts with the report ID (0 if none), as in hidapi.

        Through the interrupt OUT pipe when the interface has one (without the 0 of an ID-less
        report, as on the wire), else SET_REPORT(Output) (``hid_write`` on ``hid://``).
        Returns the bytes of ``data`` sent.
        """
        data = bytes(data)
        if not data:
            raise BadArgumentError("an output report starts with its report ID (0 when the descriptor has none)")
        out_endpoint = self._interrupt_pipes()[1]
        if out_endpoint is None:
            return self._open().set_report(HID_REPORT_OUTPUT, data[0], data[1:]) + 1
        return self._open().write(out_endpoint, data if data[0] else data[1:]) + (0 if data[0] else 1)

    def get_feature(self, report_id: int, size: int | None = None) -> bytes:
        """GET_REPORT(Feature); the result starts with the report ID (0 for an ID-less report).

        ``size`` counts the ID byte (hidapi's buffer length); by default the descriptor's length.
        """
        length = size - 1 if size is not None else self._payload_len("feature", report_id)
        return bytes([report_id]) + self._open().get_report(HID_REPORT_FEATURE, report_id, max(length, 0))

    def set_feature(self, data: bytes) -> int:
        """SET_REPORT(Feature); ``data`` starts with the report ID (0 if none). Returns the bytes sent."""
        data = bytes(data)
        if not data:
            raise BadArgumentError("a feature report starts with its report ID (0 when the descriptor has none)")
        return self._open().set_report(HID_REPORT_FEATURE, data[0], data[1:]) + 1

    def get_input(self, report_id: int, size: int | None = None) -> bytes:
        """GET_REPORT(Input); the result starts with the report ID (0 for an ID-less report)."""
        length = (size or self._max_len("input")) - 1
        return bytes([report_id]) + self._open().get_report(HID_REPORT_INPUT, report_id, max(length, 0))

    # -- with names ------------------------------------------------------------------------
    def _wire(self, report_type: str, report_id: int, values: Mapping[str, Any]) -> bytes:
        data = self.codec.codec(report_type, report_id).build(values)
        return data if report_id else b"\x00" + data

    def write_values(self, report_id: int = 0, values: Mapping[str, Any] | None = None) -> bytes:
        """Build an output report from names and send it; returns the report bytes sent."""
        wire = self._wire("output", report_id, values or {})
        self.write(wire)
        return wire if report_id else wire[1:]

    def set_feature_values(self, report_id: int = 0, values: Mapping[str, Any] | None = None) -> bytes:
        """Build a feature report from names and send it; returns the report bytes sent."""
        wire = self._wire("feature", report_id, values or {})
        self.set_feature(wire)
        return wire if report_id else wire[1:]

    def get_feature_values(self, report_id: int = 0) -> ReportValues:
        """GET_REPORT(Feature) decoded with the device's descriptor."""
        return self.decode_feature(self.get_feature(report_id), report_id)

    def decode_feature(self, data: bytes, report_id: int = 0) -> ReportValues:
        """Decode a feature report as :meth:`get_feature` returns it (a leading 0 for ID-less reports)."""
        if not report_id and data[:1] == b"\x00" and len(data) == self.descriptor.report("feature", 0).size + 1:
            data = data[1:]
        return self.codec.codec("feature", report_id).decode(data, strict=False)


def find_device(spec: str) -> HidDeviceInfo:
    """The HID transport's enumeration entry for a spec (path or ``VID:PID[:serial]``).

    Raises:
        NotFoundError: nothing matches.
    """
    path, vid, pid, serial = parse_device_spec(spec)
    for info in enumerate_devices(vid, pid):
        if path is not None and info.path != path:
            continue
        if serial is not None and info.serial_number != serial:
            continue
        return info
    raise NotFoundError(f"no HID device {spec}")
