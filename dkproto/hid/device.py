"""HID devices through hidapi (hidraw on Linux, IOHIDManager on macOS).

[HID 1.11: 7.2 Class-Specific Requests] Input reports come from the interrupt IN pipe
(:meth:`HidDevice.read`); output reports go out with :meth:`HidDevice.write`; feature reports
use GET_REPORT/SET_REPORT (:meth:`HidDevice.get_feature`, :meth:`HidDevice.set_feature`).

On Linux the ``hidraw`` flavour of cython-hidapi is used (the kernel's hidraw nodes, with
usbhid/hid-generic bound as usual); ``DKPROTO_HIDAPI=libusb`` selects the libusb flavour.
Every hidapi failure is translated in ONE place, :func:`_hidapi_errors`, into the DkError tree
with the IOReturn a DriverKit driver would see.

The report descriptor comes from ``hid_get_report_descriptor`` (hidapi >= 0.14); on Linux,
when that is missing, from ``/sys/class/hidraw/<node>/device/report_descriptor``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from dkproto._paths import read_file
from dkproto.errors import (
    BadArgumentError,
    DkError,
    DkTimeoutError,
    ExclusiveAccessError,
    MissingToolError,
    NoDeviceError,
    NotFoundError,
    NotOpenError,
    NotPermittedError,
    URLError,
)
from dkproto.hid.codec import DescriptorCodec, ReportValues
from dkproto.hid.parser import MAX_PARSED_BYTES, ReportDescriptor, parse

__all__ = ["HidDevice", "HidDeviceInfo", "enumerate_devices", "hidapi_module", "parse_device_spec"]

BUS_TYPES = {0: "unknown", 1: "usb", 2: "bluetooth", 3: "i2c", 4: "spi"}


def hidapi_module() -> ModuleType:
    """The cython-hidapi module to use (``hidraw`` on Linux, ``hid`` elsewhere).

    Raises:
        MissingToolError: hidapi is not installed.
    """
    want = os.environ.get("DKPROTO_HIDAPI", "hidraw" if sys.platform.startswith("linux") else "hid")
    names = [want, "hid"] if want != "hid" else ["hid"]
    for name in names:
        try:
            return __import__(name)
        except ImportError:
            continue
    raise MissingToolError("hidapi is not installed: pip install hidapi")


@contextlib.contextmanager
def _hidapi_errors(op: str, where: str = "", dev: Any = None) -> Iterator[None]:
    """Translate hidapi exceptions into DkErrors (the one mapping point)."""
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
            from dkproto.errors import PipeStalledError

            raise PipeStalledError(text, backend_code=code) from exc
        if code in (errno.EINVAL,):
            raise BadArgumentError(text, backend_code=code) from exc
        raise DkError(text, backend_code=code) from exc


@dataclass(frozen=True, slots=True)
class HidDeviceInfo:
    """One entry of :func:`enumerate_devices` (hid_device_info)."""

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
    """Every HID device (hid_enumerate), optionally filtered by VID/PID; sorted by path."""
    hid = hidapi_module()
    with _hidapi_errors("enumerate"):
        found = hid.enumerate(vendor_id, product_id)
    return sorted((HidDeviceInfo.from_hidapi(d) for d in found), key=lambda i: i.path)


_SPEC_RE = re.compile(r"^(?:hid:)?([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4})(?::(.+))?$")


def parse_device_spec(spec: str) -> tuple[str | None, int, int, str | None]:
    """Split ``VID:PID[:serial]`` or a path (``/dev/hidraw0``, ``hid:///dev/hidraw0``).

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
    m = _SPEC_RE.match(s)
    if m and not s.startswith("/"):
        return None, int(m.group(1), 16), int(m.group(2), 16), m.group(3)
    return s, 0, 0, None


def _looks_like_device(spec: str) -> bool:
    return bool(_SPEC_RE.match(spec)) or spec.startswith(("/dev/hidraw", "hid:", "DevSrvsID:", "IOService:"))


class HidDevice:
    """An open HID device.

    Args:
        spec: a hidapi path (``/dev/hidraw3``) or ``VID:PID[:serial]``.

    Raises:
        NoDeviceError: nothing matches, or opening failed.
        NotPermittedError: no access (udev rules on Linux, Input Monitoring on macOS).
    """

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._hid = hidapi_module()
        self._dev: Any = None
        self._descriptor: ReportDescriptor | None = None
        self._codec: DescriptorCodec | None = None
        path, vid, pid, serial = parse_device_spec(spec)
        dev = self._hid.device()
        if path is None:
            matches = [i for i in enumerate_devices(vid, pid) if serial is None or i.serial_number == serial]
            if not matches:
                raise NoDeviceError(f"no HID device {spec} (see dkproto hid list)")
            path = matches[0].path
        self.path = path
        with _hidapi_errors("open", path, dev):
            dev.open_path(path.encode())
        self._dev = dev

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the device (hid_close); idempotent."""
        if self._dev is not None:
            with contextlib.suppress(Exception):
                self._dev.close()
            self._dev = None

    def __enter__(self) -> HidDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_dev(self) -> Any:
        if self._dev is None:
            raise NotOpenError(f"HID device {self.path} is closed")
        return self._dev

    # -- descriptor --------------------------------------------------------------------------
    def report_descriptor_bytes(self) -> bytes:
        """The report descriptor (hid_get_report_descriptor; sysfs on Linux as a fallback)."""
        dev = self._open_dev()
        getter = getattr(dev, "get_report_descriptor", None)
        if getter is not None:
            with _hidapi_errors("get_report_descriptor", self.path, dev):
                return bytes(getter())
        node = Path(self.path).name
        sysfs = Path(f"/sys/class/hidraw/{node}/device/report_descriptor")
        if sysfs.exists():
            return read_file(sysfs, max_bytes=MAX_PARSED_BYTES)
        raise MissingToolError("this hidapi has no get_report_descriptor (needs hidapi >= 0.14)")

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

    # -- I/O -------------------------------------------------------------------------------
    def read(self, timeout_ms: int = 1000, size: int | None = None) -> bytes:
        """Read one input report (hid_read_timeout), report ID byte included when used.

        Raises:
            DkTimeoutError: nothing arrived within ``timeout_ms`` (negative: wait forever).
        """
        dev = self._open_dev()
        n = size or self._max_len("input")
        with _hidapi_errors("read", self.path, dev):
            data = dev.read(n, timeout_ms)
        if not data:
            raise DkTimeoutError(f"read {self.path}: no input report within {timeout_ms} ms")
        return bytes(data)

    def read_values(self, timeout_ms: int = 1000) -> ReportValues:
        """Read one input report and decode it."""
        return self.codec.decode(self.read(timeout_ms), "input", strict=False)

    def write(self, data: bytes) -> int:
        """Send an output report (hid_write). ``data`` starts with the report ID (0 if none)."""
        dev = self._open_dev()
        with _hidapi_errors("write", self.path, dev):
            n = dev.write(bytes(data))
        if n < 0:
            raise DkError(f"write {self.path}: hid_write failed ({dev.error()})")
        return int(n)

    def get_feature(self, report_id: int, size: int | None = None) -> bytes:
        """GET_REPORT(Feature) (hid_get_feature_report); the result starts with the report ID."""
        dev = self._open_dev()
        if size is None:
            try:
                size = self.descriptor.report("feature", report_id).size
            except DkError:
                size = 64
            size = max(size, 1) + (0 if report_id else 1)
        with _hidapi_errors("get_feature_report", self.path, dev):
            data = dev.get_feature_report(report_id, size)
        return bytes(data)

    def set_feature(self, data: bytes) -> int:
        """SET_REPORT(Feature) (hid_send_feature_report); ``data`` starts with the report ID (0 if none)."""
        dev = self._open_dev()
        with _hidapi_errors("send_feature_report", self.path, dev):
            n = dev.send_feature_report(bytes(data))
        if n < 0:
            raise DkError(f"set feature {self.path}: hid_send_feature_report failed ({dev.error()})")
        return int(n)

    def get_input(self, report_id: int, size: int | None = None) -> bytes:
        """GET_REPORT(Input) (hid_get_input_report)."""
        dev = self._open_dev()
        with _hidapi_errors("get_input_report", self.path, dev):
            data = dev.get_input_report(report_id, size or self._max_len("input"))
        return bytes(data)

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
    """The enumeration entry for a spec (path or VID:PID[:serial]).

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
