"""``hid://``: HID devices through hidapi, on :class:`dkproto.hid.device.HidDevice`.

``hid:///dev/hidraw0`` opens a hidapi path; ``hid://VID:PID[?serial=S&interface=N&usage_page=N&usage=N&index=N]``
picks one of hidapi's enumeration entries. The hidapi wrapper, and its ONE hidapi-to-DkError
mapping, is :mod:`dkproto.hid.device` (the HID area's); this module adapts it to the Transport API:

* ``read(endpoint, length, timeout)``: the next input report as hidapi delivers it (the
  report-ID byte first when the descriptor declares report IDs); ``endpoint`` is any IN address.
* ``write(endpoint, data, timeout)``: an output report through hidapi's ``write``: ``data[0]`` is
  the report ID (0 when the descriptor declares none), as hidapi requires.
* ``get_report``/``set_report``: feature reports (``hid_get_feature_report``/``hid_send_feature_report``),
  input reports (``hid_get_input_report``) and output reports (``hid_write``); payloads without
  the report-ID byte, as in the Transport API.
* no control transfers and no USB management: :class:`~dkproto.errors.UnsupportedError`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dkproto.errors import BadArgumentError, NoDeviceError, UnsupportedError
from dkproto.transport.base import (
    DEFAULT_TIMEOUT_MS,
    HID_REPORT_FEATURE,
    HID_REPORT_INPUT,
    HID_REPORT_OUTPUT,
    Transport,
    TransportInfo,
)
from dkproto.transport.url import QueryOptions, parse_url, parse_vid_pid, url_error

__all__ = ["GRAMMAR", "HIDTransport"]

GRAMMAR = ("hid:///dev/hidrawN (a hidapi path) or "
           "hid://VID:PID[?serial=S&interface=N&usage_page=N&usage=N&index=N]")


class HIDTransport(Transport):
    """A HID device through hidapi (``hid://``).

    Args:
        path: a hidapi path, or
        idVendor, idProduct, serial, interface, usage_page, usage, index: an enumerate() match.
        url: for ``info``.
    """

    scheme: ClassVar[str] = "hid"
    grammar: ClassVar[str] = GRAMMAR

    def __init__(self, *, path: str | None = None, idVendor: int | None = None, idProduct: int | None = None,
                 serial: str | None = None, interface: int | None = None, usage_page: int | None = None,
                 usage: int | None = None, index: int = 0, url: str = "") -> None:
        super().__init__()
        self.path = path
        self.idVendor = idVendor
        self.idProduct = idProduct
        self.serial = serial
        self.interface = interface
        self.usage_page = usage_page
        self.usage = usage
        self.index = index
        self.url = url or (f"hid://{path}" if path else f"hid://{idVendor:04x}:{idProduct:04x}")
        self.dev: Any = None  # dkproto.hid.device.HidDevice once open
        self._entry: Any = None  # its HidDeviceInfo

    @classmethod
    def from_url(cls, url: str) -> HIDTransport:
        """Parse ``hid:///PATH`` or ``hid://VID:PID[?...]`` (see :data:`GRAMMAR`)."""
        parsed = parse_url(url, GRAMMAR)
        if parsed.scheme != "hid":
            raise url_error(url, f"scheme {parsed.scheme!r} is not hid", GRAMMAR)
        opts = QueryOptions(parsed, GRAMMAR)
        vidpid = parse_vid_pid(parsed.authority)
        if vidpid is not None and parsed.path in ("", "/"):
            kw: dict[str, Any] = {"idVendor": vidpid[0], "idProduct": vidpid[1], "serial": opts.str("serial"),
                                  "interface": opts.int("interface", None, lo=0, hi=255),
                                  "usage_page": opts.int("usage_page", None, lo=0, hi=0xFFFF),
                                  "usage": opts.int("usage", None, lo=0, hi=0xFFFF),
                                  "index": opts.int("index", 0, lo=0, hi=255)}
            opts.finish()
            return cls(url=url, **kw)
        opts.finish()
        if parsed.authority or not parsed.path:
            raise url_error(url, "give a hidapi path (hid:///dev/hidraw0) or VID:PID", GRAMMAR)
        return cls(path=parsed.path, url=url)

    def _open(self) -> None:
        from dkproto.hid.device import HidDevice, enumerate_devices

        entries = enumerate_devices(self.idVendor or 0, self.idProduct or 0)
        if self.path is None:
            matches = [e for e in entries
                       if (self.serial is None or e.serial_number == self.serial)
                       and (self.interface is None or e.interface_number == self.interface)
                       and (self.usage_page is None or e.usage_page == self.usage_page)
                       and (self.usage is None or e.usage == self.usage)]
            if len(matches) <= self.index:
                raise NoDeviceError(f"no HID device matches {self.url} ({len(matches)} found)")
            entry = matches[self.index]
            self.path = entry.path
        else:
            entry = next((e for e in entries if e.path == self.path), None)
        self._entry = entry
        self.dev = HidDevice(self.path)

    def _close(self) -> None:
        if self.dev is not None:
            try:
                self.dev.close()
            finally:
                self.dev = None

    @property
    def info(self) -> TransportInfo:
        e = self._entry
        if e is None:
            return TransportInfo(url=self.url, scheme="hid", path=self.path, idVendor=self.idVendor,
                                 idProduct=self.idProduct, interface=self.interface)
        return TransportInfo(url=self.url, scheme="hid", path=self.path, idVendor=e.vendor_id,
                             idProduct=e.product_id, serial_number=e.serial_number or None,
                             manufacturer=e.manufacturer_string or None, product=e.product_string or None,
                             interface=e.interface_number if e.interface_number >= 0 else None,
                             extra={"usage_page": e.usage_page, "usage": e.usage, "bus_type": e.bus_type,
                                    "release_number": e.release_number})

    def control_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                         data_or_wLength: bytes | int | None = None,
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        """hidapi has no control transfers; use get_report/set_report, or usb:// on the device."""
        raise UnsupportedError(f"{self.url}: hidapi offers no control transfers; use get_report/set_report "
                               "or open the device with usb://")

    def read(self, endpoint: int = 0x81, length: int = 64, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """The next input report (report-ID byte first when IDs are used); kIOReturnTimeout if none came."""
        self._require_open("read")
        return self.dev.read(-1 if timeout == 0 else timeout, length)  # type: ignore[no-any-return]

    def write(self, endpoint: int = 0x01, data: bytes = b"", timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        """Send an output report; ``data[0]`` is the report ID (0 without IDs). Returns bytes written."""
        self._require_open("write")
        if not data:
            raise BadArgumentError("an output report needs at least the report-ID byte (0 without IDs)")
        return self.dev.write(bytes(data))  # type: ignore[no-any-return]

    def get_report(self, report_type: int, report_id: int, length: int,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """``hid_get_feature_report`` / ``hid_get_input_report``: the payload without the ID byte."""
        self._require_open("get_report")
        if report_type == HID_REPORT_FEATURE:
            data = self.dev.get_feature(report_id, length + 1)
        elif report_type == HID_REPORT_INPUT:
            data = self.dev.get_input(report_id, length + 1)
        else:
            raise UnsupportedError("hidapi cannot read back an output report")
        data = bytes(data)
        return data[1:] if data[:1] == bytes([report_id]) else data

    def set_report(self, report_type: int, report_id: int, data: bytes,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        """``hid_send_feature_report`` / ``hid_write``: ``data`` is the payload without the ID byte."""
        self._require_open("set_report")
        wire = bytes([report_id]) + bytes(data)
        if report_type == HID_REPORT_FEATURE:
            n = self.dev.set_feature(wire)
        elif report_type == HID_REPORT_OUTPUT:
            n = self.dev.write(wire)
        else:
            raise UnsupportedError("an input report cannot be sent to the device")
        return max(0, int(n) - 1)

    def report_descriptor(self) -> bytes:
        """The report descriptor (``hid_get_report_descriptor``, sysfs fallback)."""
        self._require_open("report_descriptor")
        return self.dev.report_descriptor_bytes()  # type: ignore[no-any-return]
