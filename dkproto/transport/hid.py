"""``hid://``: HID devices through hidapi (hidraw on Linux, IOHIDManager on macOS).

This module is the only one of dkproto that imports hidapi (``tests/unit/test_transport_seam.py``
checks it): the ``hid://`` transport, hidapi's enumeration (:func:`enumerate_devices`) and THE
hidapi -> DkError mapping (:func:`hidapi_errors`). :class:`dkproto.hid.device.HidDevice` is a
report codec on top of any transport, this one included.

``hid:///dev/hidraw0`` opens a hidapi path; ``hid://VID:PID[?serial=S&interface=N&usage_page=N&usage=N&index=N]``
picks one of hidapi's enumeration entries. On Linux the ``hidraw`` flavour of cython-hidapi is used
(the kernel's hidraw nodes, with usbhid/hid-generic bound as usual); ``DKPROTO_HIDAPI=libusb``
selects the libusb flavour (cython-hidapi's ``hid`` module). The Transport API on hidapi:

* ``read(endpoint, length, timeout)``: the next input report as hidapi delivers it (the
  report-ID byte first when the descriptor declares report IDs); ``endpoint`` is any IN address.
* ``write(endpoint, data, timeout)``: an output report through hidapi's ``write``: ``data[0]`` is
  the report ID (0 when the descriptor declares none), as hidapi requires.
* ``get_report``/``set_report``: feature reports (``hid_get_feature_report``/``hid_send_feature_report``),
  input reports (``hid_get_input_report``) and output reports (``hid_write``); payloads without
  the report-ID byte, as in the Transport API.
* ``report_descriptor()``: ``hid_get_report_descriptor`` (hidapi >= 0.14); on Linux, sysfs when
  that call is missing or fails.
* no control transfers and no USB management: :class:`~dkproto.errors.UnsupportedError`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, cast

from dkproto._paths import read_file
from dkproto.errors import (
    BadArgumentError,
    DkError,
    DkTimeoutError,
    ExclusiveAccessError,
    MissingToolError,
    NoDeviceError,
    NotOpenError,
    NotPermittedError,
    PipeStalledError,
    UnsupportedError,
)
from dkproto.transport.base import (
    DEFAULT_TIMEOUT_MS,
    HID_REPORT_FEATURE,
    HID_REPORT_INPUT,
    HID_REPORT_OUTPUT,
    Transport,
    TransportInfo,
)
from dkproto.transport.descriptors import MAX_REPORT_DESCRIPTOR
from dkproto.transport.url import QueryOptions, parse_url, parse_vid_pid, url_error

__all__ = ["BUS_TYPES", "GRAMMAR", "SYSFS_HIDRAW", "HIDTransport", "HidDeviceInfo", "enumerate_devices",
           "hidapi_errors", "hidapi_module"]

log = logging.getLogger(__name__)

GRAMMAR = ("hid:///dev/hidrawN (a hidapi path) or "
           "hid://VID:PID[?serial=S&interface=N&usage_page=N&usage=N&index=N]")

#: Where Linux lists hidraw nodes (``hidrawN/device/report_descriptor``).
SYSFS_HIDRAW = Path("/sys/class/hidraw")

#: hid_device_info.bus_type -> its name.
BUS_TYPES = {0: "unknown", 1: "usb", 2: "bluetooth", 3: "i2c", 4: "spi"}


def hidapi_module() -> ModuleType:
    """The cython-hidapi module to use: ``hidraw`` on Linux (unless ``DKPROTO_HIDAPI=libusb``), ``hid``
    elsewhere.

    Raises:
        MissingToolError: hidapi is not installed.
    """
    default = "hidraw" if sys.platform.startswith("linux") else "hid"
    if os.environ.get("DKPROTO_HIDAPI", default) == "hidraw":
        try:
            import hidraw
        except ImportError:
            pass
        else:
            return cast(ModuleType, hidraw)  # hidapi ships no type information
    try:
        import hid
    except ImportError as exc:
        raise MissingToolError("hidapi is not installed: pip install hidapi") from exc
    return cast(ModuleType, hid)


@contextlib.contextmanager
def hidapi_errors(op: str, where: str = "", dev: Any = None) -> Iterator[None]:
    """THE translation of hidapi exceptions into DkErrors (one place, style lesson 7).

    Args:
        op: the hidapi operation (``read``, ``open``, ``get_feature_report``...).
        where: the device path, for the message.
        dev: the hidapi device, whose ``error()`` text is added to the message.
    """
    try:
        yield
    except DkError:
        raise
    except (OSError, ValueError) as exc:
        detail = ""
        if dev is not None:
            with contextlib.suppress(Exception):
                detail = dev.error() or ""
        msg = str(exc) or detail or exc.__class__.__name__
        if detail and detail not in msg:
            msg = f"{msg} ({detail})"
        text = f"{op} {where}: {msg}".replace("  ", " ")
        low = msg.lower()
        code = getattr(exc, "errno", None)
        if isinstance(exc, ValueError) and "not open" in low:
            raise NotOpenError(text, backend_code=code) from exc
        if code in (errno.EACCES, errno.EPERM) or "permission" in low or "access" in low:
            raise NotPermittedError(text, backend_code=code) from exc
        if code in (errno.EBUSY,) or "busy" in low:
            raise ExclusiveAccessError(text, backend_code=code) from exc
        if code in (errno.ETIMEDOUT,) or "timed out" in low or "timeout" in low:
            raise DkTimeoutError(text, backend_code=code) from exc
        if code in (errno.ENODEV, errno.ENOENT, errno.ENXIO) or "open failed" in low or "no such" in low \
                or "not found" in low or "disconnected" in low:
            raise NoDeviceError(text, backend_code=code) from exc
        if code in (errno.EPIPE,) or "pipe" in low or "broken" in low:
            raise PipeStalledError(text, backend_code=code) from exc
        if code in (errno.EINVAL,):
            raise BadArgumentError(text, backend_code=code) from exc
        raise DkError(text, backend_code=code) from exc


@dataclass(frozen=True, slots=True)
class HidDeviceInfo:
    """One entry of :func:`enumerate_devices` (``hid_device_info``)."""

    path: str
    vendor_id: int
    product_id: int
    serial_number: str
    manufacturer_string: str
    product_string: str
    usage_page: int
    usage: int
    interface_number: int
    release_number: int
    bus_type: str

    @classmethod
    def from_hidapi(cls, d: Mapping[str, Any]) -> HidDeviceInfo:
        """From hidapi's dict."""
        path = d.get("path") or b""
        return cls(
            path=path.decode(errors="replace") if isinstance(path, bytes) else str(path),
            vendor_id=int(d.get("vendor_id") or 0),
            product_id=int(d.get("product_id") or 0),
            serial_number=d.get("serial_number") or "",
            manufacturer_string=d.get("manufacturer_string") or "",
            product_string=d.get("product_string") or "",
            usage_page=int(d.get("usage_page") or 0),
            usage=int(d.get("usage") or 0),
            interface_number=int(d["interface_number"]) if d.get("interface_number") is not None else -1,
            release_number=int(d.get("release_number") or 0),
            bus_type=BUS_TYPES.get(int(d.get("bus_type") or 0), str(d.get("bus_type"))),
        )

    @property
    def vid_pid(self) -> str:
        """``1209:7001``."""
        return f"{self.vendor_id:04x}:{self.product_id:04x}"


def enumerate_devices(vendor_id: int = 0, product_id: int = 0) -> list[HidDeviceInfo]:
    """Every HID device (``hid_enumerate``), optionally filtered by VID/PID (0: any); sorted by path."""
    hid = hidapi_module()
    with hidapi_errors("enumerate"):
        found = hid.enumerate(vendor_id, product_id)
    return sorted((HidDeviceInfo.from_hidapi(d) for d in found), key=lambda i: i.path)


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
        self.url = url or (f"hid://{path}" if path else f"hid://{idVendor or 0:04x}:{idProduct or 0:04x}")
        self.dev: Any = None  # the hidapi device once open
        self._entry: HidDeviceInfo | None = None

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

    # ----------------------------------------------------------------- lifecycle
    def _open(self) -> None:
        entries = enumerate_devices(self.idVendor or 0, self.idProduct or 0)
        if self.path is None:
            matches = [e for e in entries
                       if (self.serial is None or e.serial_number == self.serial)
                       and (self.interface is None or e.interface_number == self.interface)
                       and (self.usage_page is None or e.usage_page == self.usage_page)
                       and (self.usage is None or e.usage == self.usage)]
            if len(matches) <= self.index:
                raise NoDeviceError(f"no HID device matches {self.url} ({len(matches)} found; see dkproto hid list)")
            self._entry = matches[self.index]
            self.path = self._entry.path
        else:
            self._entry = next((e for e in entries if e.path == self.path), None)
        dev = hidapi_module().device()
        with hidapi_errors("open", self.path, dev):
            dev.open_path(self.path.encode())
        self.dev = dev

    def _close(self) -> None:
        dev, self.dev = self.dev, None
        if dev is not None:
            with contextlib.suppress(Exception):  # a vanished device: hid_close frees it anyway
                dev.close()

    def _hidapi(self, what: str) -> Any:
        """The open hidapi device (NotOpenError when closed)."""
        self._require_open(what)
        return self.dev

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

    # ----------------------------------------------------------------- transfers
    def control_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                         data_or_wLength: bytes | int | None = None,
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        """hidapi has no control transfers; use get_report/set_report, or usb:// on the device."""
        raise UnsupportedError(f"{self.url}: hidapi offers no control transfers; use get_report/set_report "
                               "or open the device with usb://")

    def read(self, endpoint: int = 0x81, length: int = 64, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """The next input report (report-ID byte first when IDs are used); kIOReturnTimeout if none came."""
        dev = self._hidapi("read")
        with hidapi_errors("read", self.path or "", dev):
            data = dev.read(length, -1 if timeout == 0 else timeout)
        if not data:
            raise DkTimeoutError(f"read {self.path}: no input report within {timeout} ms")
        return bytes(data)

    def write(self, endpoint: int = 0x01, data: bytes = b"", timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        """Send an output report; ``data[0]`` is the report ID (0 without IDs). Returns bytes written."""
        dev = self._hidapi("write")
        if not data:
            raise BadArgumentError("an output report needs at least the report-ID byte (0 without IDs)")
        with hidapi_errors("write", self.path or "", dev):
            n = dev.write(bytes(data))
        if n < 0:
            raise DkError(f"write {self.path}: hid_write failed ({dev.error()})")
        return int(n)

    def get_report(self, report_type: int, report_id: int, length: int,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """``hid_get_feature_report`` / ``hid_get_input_report``: the payload without the ID byte."""
        dev = self._hidapi("get_report")
        if report_type == HID_REPORT_FEATURE:
            op, getter = "get_feature_report", dev.get_feature_report
        elif report_type == HID_REPORT_INPUT:
            op, getter = "get_input_report", dev.get_input_report
        else:
            raise UnsupportedError("hidapi cannot read back an output report")
        with hidapi_errors(op, self.path or "", dev):
            data = bytes(getter(report_id, length + 1))
        return data[1:] if data[:1] == bytes([report_id]) else data

    def set_report(self, report_type: int, report_id: int, data: bytes,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        """``hid_send_feature_report`` / ``hid_write``: ``data`` is the payload without the ID byte."""
        dev = self._hidapi("set_report")
        wire = bytes([report_id]) + bytes(data)
        if report_type == HID_REPORT_FEATURE:
            with hidapi_errors("send_feature_report", self.path or "", dev):
                n = dev.send_feature_report(wire)
            if n < 0:
                raise DkError(f"set feature {self.path}: hid_send_feature_report failed ({dev.error()})")
        elif report_type == HID_REPORT_OUTPUT:
            n = self.write(0x01, wire, timeout)
        else:
            raise UnsupportedError("an input report cannot be sent to the device")
        return max(0, int(n) - 1)

    def report_descriptor(self, interface: int | None = None, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """The report descriptor of the device opened: ``hid_get_report_descriptor``; on Linux, the
        hidraw node's sysfs ``report_descriptor`` when this hidapi lacks that call or it fails (a
        build with another signature, an error). ``interface`` is ignored: a hidapi device is one
        interface. The one fallback: callers (``HidDevice``, ``IOHIDInterface``) just call this.

        Raises:
            MissingToolError: this hidapi has no ``get_report_descriptor`` and there is no sysfs file.
            DkError: hidapi's error (:func:`hidapi_errors`) when there is no sysfs file.
        """
        dev = self._hidapi("report_descriptor")
        getter = getattr(dev, "get_report_descriptor", None)
        failure: DkError | None = None
        if getter is not None:
            try:
                with hidapi_errors("get_report_descriptor", self.path or "", dev):
                    return bytes(getter())
            except TypeError as exc:  # hidapi builds differ in its signature
                failure = UnsupportedError(f"get_report_descriptor {self.path}: {exc}")
            except DkError as exc:
                failure = exc
        node = Path(self.path or "").name
        sysfs = SYSFS_HIDRAW / node / "device" / "report_descriptor"
        if node.startswith("hidraw") and sysfs.is_file():
            if failure is not None:
                log.info("report descriptor of %s from sysfs (hidapi: %s)", self.path, failure)
            return read_file(sysfs, max_bytes=MAX_REPORT_DESCRIPTOR)
        if failure is not None:
            raise failure
        raise MissingToolError("this hidapi has no get_report_descriptor (needs hidapi >= 0.14)")
