"""``hid://``: HID devices through hidapi (``hidraw`` on Linux, IOHIDManager on macOS).

``hid:///dev/hidraw0`` opens a hidapi path; ``hid://VID:PID[?serial=S&interface=N&usage_page=N&usage=N&index=N]``
picks one of ``hid.enumerate()``'s entries. Mapping onto the Transport calls:

* ``read(endpoint, length, timeout)``: the next input report as hidapi delivers it (the
  report-ID byte first when the descriptor declares report IDs); ``endpoint`` is any IN address.
* ``write(endpoint, data, timeout)``: an output report through hidapi's ``write``: ``data[0]`` is
  the report ID (0 when the descriptor declares none), as hidapi requires.
* ``get_report``/``set_report``: feature reports (``hid_get_feature_report``/``hid_send_feature_report``),
  input reports (``hid_get_input_report``) and output reports (``hid_write``); payloads without
  the report-ID byte, as in the Transport API.
* no control transfers and no USB management: :class:`~dkproto.errors.UnsupportedError`.

All hidapi errors are translated in :func:`hid_error`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from dkproto.errors import (
    BadArgumentError,
    DkError,
    DkTimeoutError,
    MissingToolError,
    NoDeviceError,
    NotPermittedError,
    UnsupportedError,
)
from dkproto.ioreturn import IOReturn
from dkproto.transport.base import (
    DEFAULT_TIMEOUT_MS,
    HID_REPORT_FEATURE,
    HID_REPORT_INPUT,
    HID_REPORT_OUTPUT,
    Transport,
    TransportInfo,
)
from dkproto.transport.url import QueryOptions, parse_url, parse_vid_pid, url_error

__all__ = ["GRAMMAR", "HIDTransport", "enumerate_hid", "hid_error"]

GRAMMAR = ("hid:///dev/hidrawN (a hidapi path) or "
           "hid://VID:PID[?serial=S&interface=N&usage_page=N&usage=N&index=N]")


def _hidapi() -> Any:
    try:
        import hid
    except ImportError as exc:
        raise MissingToolError("hid:// needs hidapi: pip install hidapi (and libhidapi-hidraw0 on Linux)") from exc
    return hid


def enumerate_hid(idVendor: int = 0, idProduct: int = 0) -> list[dict[str, Any]]:  # noqa: N803
    """hidapi's device list (``path`` decoded to text), optionally filtered by IDs."""
    out = []
    for entry in _hidapi().enumerate(idVendor, idProduct):
        entry = dict(entry)
        if isinstance(entry.get("path"), bytes):
            entry["path"] = entry["path"].decode(errors="replace")
        out.append(entry)
    return sorted(out, key=lambda e: e["path"])


def hid_error(exc: BaseException, what: str, path: str | None = None, idVendor: int | None = None,  # noqa: N803
              idProduct: int | None = None) -> DkError:  # noqa: N803
    """THE translation from hidapi errors to dkproto's tree (hidapi only gives text, so look at the node)."""
    text = str(exc) or type(exc).__name__
    if path and path.startswith("/"):
        if not os.path.exists(path):
            return NoDeviceError(f"{what}: {path} is gone ({text})", backend_code=text)
        if not os.access(path, os.R_OK | os.W_OK):
            rule = 'KERNEL=="hidraw*", '
            if idVendor is not None:
                rule += f'ATTRS{{idVendor}}=="{idVendor:04x}", ATTRS{{idProduct}}=="{(idProduct or 0):04x}", '
            rule += 'MODE="0660", TAG+="uaccess"'
            hint = (f"; to allow it, add the udev rule '{rule}' to /etc/udev/rules.d/70-dkproto.rules and run "
                    "'sudo udevadm control --reload && sudo udevadm trigger'") if sys.platform.startswith("linux") else ""
            return NotPermittedError(f"{what}: no read/write access to {path}{hint}", backend_code=text)
    if isinstance(exc, ValueError):
        return BadArgumentError(f"{what}: {text}", backend_code=text)
    if "open failed" in text:
        return NoDeviceError(f"{what}: {text}", backend_code=text)
    return DkError(f"{what}: {text}", ioreturn=IOReturn.kIOReturnIOError, backend_code=text)


class HIDTransport(Transport):
    """A HID device through hidapi (``hid://``).

    Args:
        path: a hidapi path, or
        idVendor, idProduct, serial, interface, usage_page, usage, index: an enumerate() match.
        url: for ``info``.
    """

    scheme: ClassVar[str] = "hid"
    grammar: ClassVar[str] = GRAMMAR

    def __init__(self, *, path: str | None = None, idVendor: int | None = None, idProduct: int | None = None,  # noqa: N803
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
        self.dev: Any = None
        self._entry: dict[str, Any] = {}

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

    def _errors_ctx(self, what: str) -> Any:
        return _hid_errors(what, self)

    def _open(self) -> None:
        hid = _hidapi()
        if self.path is None:
            matches = [e for e in enumerate_hid(self.idVendor or 0, self.idProduct or 0)
                       if (self.serial is None or e.get("serial_number") == self.serial)
                       and (self.interface is None or e.get("interface_number") == self.interface)
                       and (self.usage_page is None or e.get("usage_page") == self.usage_page)
                       and (self.usage is None or e.get("usage") == self.usage)]
            if len(matches) <= self.index:
                raise NoDeviceError(f"no HID device matches {self.url} ({len(matches)} found)")
            self._entry = matches[self.index]
            self.path = self._entry["path"]
        else:
            self._entry = next((e for e in enumerate_hid() if e["path"] == self.path), {})
            if not self._entry and not os.path.exists(self.path):
                raise NoDeviceError(f"no HID device at {self.path}")
        dev = hid.device()
        with self._errors_ctx(f"opening {self.url}"):
            dev.open_path(self.path.encode())
        self.dev = dev

    def _close(self) -> None:
        if self.dev is not None:
            try:
                self.dev.close()
            finally:
                self.dev = None

    @property
    def info(self) -> TransportInfo:
        e = self._entry
        return TransportInfo(url=self.url, scheme="hid", path=self.path,
                             idVendor=e.get("vendor_id", self.idVendor), idProduct=e.get("product_id", self.idProduct),
                             serial_number=e.get("serial_number") or None,
                             manufacturer=e.get("manufacturer_string") or None,
                             product=e.get("product_string") or None,
                             interface=e.get("interface_number", self.interface),
                             extra={k: e[k] for k in ("usage_page", "usage", "release_number", "bus_type") if k in e})

    def control_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,  # noqa: N803
                         data_or_wLength: bytes | int | None = None,  # noqa: N803
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        """hidapi has no control transfers; use get_report/set_report, or usb:// on the device."""
        raise UnsupportedError(f"{self.url}: hidapi offers no control transfers; use get_report/set_report "
                               "or open the device with usb://")

    def read(self, endpoint: int = 0x81, length: int = 64, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """The next input report (report-ID byte first when IDs are used); kIOReturnTimeout if none came."""
        self._require_open("read")
        with self._errors_ctx(f"reading an input report from {self.url}"):
            data = self.dev.read(length, -1 if timeout == 0 else timeout)
        if not data:
            raise DkTimeoutError(f"{self.url}: no input report within {timeout} ms")
        return bytes(data)

    def write(self, endpoint: int = 0x01, data: bytes = b"", timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        """Send an output report; ``data[0]`` is the report ID (0 without IDs). Returns bytes written."""
        self._require_open("write")
        if not data:
            raise BadArgumentError("an output report needs at least the report-ID byte (0 without IDs)")
        with self._errors_ctx(f"writing an output report to {self.url}"):
            n = self.dev.write(bytes(data))
        if n < 0:
            raise hid_error(OSError(self.dev.error() or "write failed"), f"writing to {self.url}", self.path,
                            self.idVendor, self.idProduct)
        return int(n)

    def get_report(self, report_type: int, report_id: int, length: int,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """``hid_get_feature_report`` / ``hid_get_input_report``: the payload without the ID byte."""
        self._require_open("get_report")
        with self._errors_ctx(f"GET_REPORT type {report_type} id {report_id} on {self.url}"):
            if report_type == HID_REPORT_FEATURE:
                data = self.dev.get_feature_report(report_id, length + 1)
            elif report_type == HID_REPORT_INPUT:
                data = self.dev.get_input_report(report_id, length + 1)
            else:
                raise UnsupportedError("hidapi cannot read back an output report")
        data = bytes(data)
        return data[1:] if data[:1] == bytes([report_id]) else data

    def set_report(self, report_type: int, report_id: int, data: bytes,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        """``hid_send_feature_report`` / ``hid_write``: ``data`` is the payload without the ID byte."""
        self._require_open("set_report")
        wire = bytes([report_id]) + bytes(data)
        with self._errors_ctx(f"SET_REPORT type {report_type} id {report_id} on {self.url}"):
            if report_type == HID_REPORT_FEATURE:
                n = self.dev.send_feature_report(wire)
            elif report_type == HID_REPORT_OUTPUT:
                n = self.dev.write(wire)
            else:
                raise UnsupportedError("an input report cannot be sent to the device")
        if n < 0:
            raise hid_error(OSError(self.dev.error() or "set report failed"), f"SET_REPORT on {self.url}",
                            self.path, self.idVendor, self.idProduct)
        return max(0, int(n) - 1)

    def report_descriptor(self) -> bytes:
        """The report descriptor as hidapi reads it (``hid_get_report_descriptor``)."""
        self._require_open("report_descriptor")
        with self._errors_ctx(f"reading the report descriptor of {self.url}"):
            return bytes(self.dev.get_report_descriptor())


@contextmanager
def _hid_errors(what: str, transport: HIDTransport) -> Iterator[None]:
    try:
        yield
    except DkError:
        raise
    except (OSError, ValueError) as exc:
        raise hid_error(exc, what, transport.path, transport.idVendor, transport.idProduct) from exc
