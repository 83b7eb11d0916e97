"""A dkproto session as a usbmon capture: what each call is on the USB wire (layer 2, pure).

:func:`export_pcapng` turns a session (``dkproto.session``) into a pcapng file of link type 220
(``LINKTYPE_USB_LINUX_MMAPPED``) that Wireshark and tshark dissect as if the kernel's usbmon had
seen the traffic; :class:`PcapngSessionSink` does the same event by event, as the sink of a
recording. Every call that moves bytes becomes a Submit (``'S'``) and a Complete (``'C'``) record
with one URB id: the Submit at the call's ``t``, the Complete at ``t + dt``; an asynchronous
``submit``/``complete`` pair at their own times.

What each op is on the wire (``docs/capture.md`` has the table):

* ``control``: a control transfer on endpoint 0 (``epnum`` 0x80 for IN), SETUP on the Submit; also
  one with ``by`` (a transfer the transport made on its own, such as ``usb://``'s string reads for
  ``info``: it was on the wire; records are sorted by time, so it comes where the kernel saw it);
* ``read``/``write``: a transfer on the endpoint, interrupt or isochronous when the session read
  a configuration descriptor saying so (GET_DESCRIPTOR(Configuration)), else bulk; on ``hid://``
  always interrupt;
* ``get_report``/``set_report``: HID GET_REPORT/SET_REPORT (HID 1.11 7.2) to the interface, the
  report-ID byte on the wire when the ID is not 0; a ``hid://`` output report (``write``,
  ``set_report`` type output) goes to the interface's interrupt OUT endpoint when the session's
  configuration descriptor shows one, else as SET_REPORT(Output), as Linux's usbhid does;
* ``report_descriptor``: GET_DESCRIPTOR(Report, 0x22) to the interface;
* ``set_configuration``, ``get_configuration``, ``set_alternate_setting``, ``clear_halt``: the
  standard requests the kernel sends for them (SET_CONFIGURATION, GET_CONFIGURATION,
  SET_INTERFACE, CLEAR_FEATURE(ENDPOINT_HALT));
* ``open``, ``close``, ``claim_interface``, ``release_interface``, ``abort``, ``reset`` and the
  serial line calls put no URB on the bus: nothing is written for them.

A failed call's Complete carries the URB status of its IOReturn
(:func:`dkproto.capture.usbmon.status_for_ioreturn`); a device that is gone is a submission
error record (``'E'``, ``-ENODEV``); a call that failed before reaching the bus (bad argument,
unsupported, no permission) has no record and is counted in :attr:`ExportSummary.skipped`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from dkproto.capture.pcapng import PcapngWriter
from dkproto.capture.usbmon import (
    ERRNO,
    LINKTYPE_USB_LINUX_MMAPPED,
    SETUP,
    URB_DIR_IN,
    XFER_BULK,
    XFER_CONTROL,
    XFER_INTERRUPT,
    UsbmonPacket,
    status_for_ioreturn,
    usb_to_xfer_type,
)
from dkproto.errors import BadArgumentError
from dkproto.session import Event, Session, load_session, status_name

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ExportSummary", "PcapngSessionSink", "UsbmonEncoder", "as_event", "export_pcapng", "session_packets"]

_EINPROGRESS = -ERRNO["EINPROGRESS"]
_ENODEV = -ERRNO["ENODEV"]
_HID_GET_REPORT, _HID_SET_REPORT = 0x01, 0x09
_NO_URB = {"open", "close", "claim_interface", "release_interface", "abort", "reset", "configure", "set_dtr",
           "set_rts", "send_break", "modem_lines", "reset_input"}


@dataclass
class ExportSummary:
    """What an export wrote.

    Attributes:
        events: events read.
        packets: usbmon records written.
        skipped: why -> how many events have no record (``no URB`` for open/close/claim...,
            ``failed before the bus`` for a bad argument or an unsupported call...).
    """

    events: int = 0
    packets: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class _Device:
    busnum: int
    devnum: int
    scheme: str = ""
    interface: int = 0
    #: bEndpointAddress -> (xfer_type, bInterval, bInterfaceNumber), from configuration descriptors.
    endpoints: dict[int, tuple[int, int, int]] = field(default_factory=dict)


@dataclass
class _Transfer:
    xfer_type: int
    endpoint: int
    setup: bytes | None = None  # 8 bytes for control
    length: int = 0  # asked for (IN) or sent (OUT)
    out: bytes = b""
    interval: int = 0


def _config_endpoints(data: bytes) -> dict[int, tuple[int, int, int]]:
    """Endpoints of a configuration descriptor's bytes (bounded walk; a bad length ends it)."""
    out: dict[int, tuple[int, int, int]] = {}
    pos, iface = 0, 0
    while pos + 2 <= len(data):
        length, kind = data[pos], data[pos + 1]
        if length < 2 or pos + length > len(data):
            break
        if kind == 0x04 and length >= 3:
            iface = data[pos + 2]
        elif kind == 0x05 and length >= 7:
            out[data[pos + 2]] = (usb_to_xfer_type(data[pos + 3]), data[pos + 6], iface)
        pos += length
    return out


def as_event(event: Event | Mapping[str, Any]) -> Event:
    """An :class:`~dkproto.session.Event` of an event dict as a recorder appends it (bytes or hex
    values, ``status`` a name or an IOReturn)."""
    if isinstance(event, Event):
        return event
    status = event.get("status", "kIOReturnSuccess")
    if not isinstance(status, str):
        status = status_name(int(status))
    fields = {k: (bytes(v).hex() if isinstance(v, (bytes, bytearray, memoryview)) else v)
              for k, v in event.items() if k not in ("seq", "t", "dt", "dev", "op", "status", "error")}
    error = event.get("error")
    return Event(int(event.get("seq", 0)), float(event.get("t", 0.0)), float(event.get("dt", 0.0)),
                 int(event.get("dev", 0)), str(event.get("op", "")), fields, status,
                 None if error is None else str(error))


class UsbmonEncoder:
    """Turns session events into usbmon records, one event at a time.

    Args:
        base_ns: the wall-clock time of the session's ``t = 0``, nanoseconds since 1970.

    Attributes:
        skipped: why -> how many events wrote no record.
    """

    def __init__(self, base_ns: int = 0) -> None:
        self.base_ns = base_ns
        self.skipped: dict[str, int] = {}
        self._devices: dict[int, _Device] = {}
        self._next_urb = 1
        self._pending: dict[int, tuple[int, _Transfer]] = {}  # submit id -> (URB id, transfer)

    # ------------------------------------------------------------------------- what we know
    def device(self, dev: int) -> _Device:
        """The bus/address of device ``dev`` (a stable made-up one until its ``open`` says)."""
        d = self._devices.get(dev)
        if d is None:
            d = self._devices[dev] = _Device(0 if dev < 127 else 1000 + dev // 127, dev % 127 + 1)
        return d

    def learn(self, event: Event) -> None:
        """Take what an event tells about its device: bus and address (``open``), endpoint types
        (a configuration descriptor read)."""
        d = self.device(event.dev)
        f = event.fields
        if event.op == "open":
            d.scheme = str(f.get("scheme", ""))
            info = f.get("info") if isinstance(f.get("info"), dict) else {}
            assert isinstance(info, dict)
            bus, address = info.get("bus"), info.get("address")
            if isinstance(bus, int) and isinstance(address, int) and 0 <= bus <= 0xFFFF and 0 <= address <= 0xFF:
                d.busnum, d.devnum = bus, address
            if isinstance(info.get("interface"), int):
                d.interface = int(info["interface"]) & 0xFF
        elif (event.op == "control" and event.ok and f.get("bmRequestType") == 0x80 and f.get("bRequest") == 6
              and isinstance(f.get("wValue"), int) and f["wValue"] >> 8 == 0x02):
            d.endpoints.update(_config_endpoints(event.bytes_of("in")))

    # ------------------------------------------------------------------------- records
    def _urb(self) -> int:
        urb = self._next_urb
        self._next_urb += 1
        return urb

    def _ns(self, seconds: float) -> int:
        return self.base_ns + round(seconds * 1e9)

    def _record(self, d: _Device, tr: _Transfer, urb: int, kind: str, ts_ns: int, status: int) -> UsbmonPacket:
        is_in = bool(tr.endpoint & 0x80)
        sec, nsec = divmod(ts_ns, 1_000_000_000)
        return UsbmonPacket(id=urb, type=kind, xfer_type=tr.xfer_type, epnum=tr.endpoint, devnum=d.devnum,
                            busnum=d.busnum, ts_sec=sec, ts_usec=nsec // 1000, status=status,
                            interval=tr.interval, xfer_flags=URB_DIR_IN if is_in else 0)

    def _submit(self, d: _Device, tr: _Transfer, urb: int, ts_ns: int, kind: str = "S",
                status: int = _EINPROGRESS) -> UsbmonPacket:
        p = self._record(d, tr, urb, kind, ts_ns, status)
        p.length = tr.length
        if tr.setup is not None:
            p.setup, p.flag_setup = tr.setup, 0
        if tr.endpoint & 0x80:
            p.flag_data = ord("<")
        else:
            p.data = tr.out
        return p

    def _complete(self, d: _Device, tr: _Transfer, urb: int, ts_ns: int, status: int, moved: int,
                  data: bytes) -> UsbmonPacket:
        p = self._record(d, tr, urb, "C", ts_ns, status)
        p.length = moved
        if tr.endpoint & 0x80:
            p.data = data
        else:
            p.flag_data = ord(">")
        return p

    def _transfer_of(self, d: _Device, op: str, f: Mapping[str, Any], data: bytes) -> _Transfer | None:
        """The transfer a synchronous op puts on the wire (None: it puts none)."""
        hid = d.scheme == "hid"
        if op == "control":
            setup = SETUP.build({k: f[k] for k in ("bmRequestType", "bRequest", "wValue", "wIndex", "wLength")})
            return _Transfer(XFER_CONTROL, 0x80 if f["bmRequestType"] & 0x80 else 0x00, setup, f["wLength"],
                             bytes.fromhex(f.get("out", "")))
        if op == "read":
            ep = f["endpoint"]
            if hid:
                ep = self._hid_endpoint(d, True) or ep
                return _Transfer(XFER_INTERRUPT, ep, None, f["length"], b"", self._interval(d, ep))
            return _Transfer(self._xfer(d, ep), ep, None, f["length"], b"", self._interval(d, ep))
        if op == "write":
            ep = f["endpoint"]
            if hid:
                wire = data[1:] if data[:1] == b"\x00" else data
                report_id = data[0] if data else 0
                return self._hid_output(d, report_id, wire)
            return _Transfer(self._xfer(d, ep), ep, None, len(data), data, self._interval(d, ep))
        if op == "get_report":
            rid = f["report_id"]
            return self._ctrl(0xA1, _HID_GET_REPORT, ((f["report_type"] + 1) << 8 | rid) & 0xFFFF, d.interface,
                              f["length"] + (1 if rid else 0))
        if op == "set_report":
            rid = f["report_id"]
            wire = (bytes([rid]) if rid else b"") + data
            if hid and f["report_type"] == 1:
                return self._hid_output(d, rid, wire)
            return self._ctrl(0x21, _HID_SET_REPORT, ((f["report_type"] + 1) << 8 | rid) & 0xFFFF, d.interface,
                              wire)
        if op == "report_descriptor":
            iface = f.get("interface")
            iface = d.interface if iface is None else iface
            want = len(bytes.fromhex(f["data"])) if isinstance(f.get("data"), str) and f["data"] else 4096
            return self._ctrl(0x81, 0x06, 0x2200, iface, want)
        if op == "set_configuration":
            return self._ctrl(0x00, 0x09, f["bConfigurationValue"], 0, b"")
        if op == "get_configuration":
            return self._ctrl(0x80, 0x08, 0, 0, 1)
        if op == "set_alternate_setting":
            return self._ctrl(0x01, 0x0B, f["bAlternateSetting"], f["bInterfaceNumber"], b"")
        if op == "clear_halt":
            return self._ctrl(0x02, 0x01, 0, f["endpoint"], b"")
        return None

    @staticmethod
    def _ctrl(bmRequestType: int, bRequest: int, wValue: int, wIndex: int, data: bytes | int) -> _Transfer:
        length = data if isinstance(data, int) else len(data)
        setup = SETUP.build({"bmRequestType": bmRequestType, "bRequest": bRequest, "wValue": wValue,
                             "wIndex": wIndex, "wLength": length})
        return _Transfer(XFER_CONTROL, 0x80 if bmRequestType & 0x80 else 0x00, setup, length,
                         b"" if isinstance(data, int) else data)

    def _xfer(self, d: _Device, ep: int) -> int:
        known = d.endpoints.get(ep)
        return known[0] if known is not None and known[0] != XFER_CONTROL else XFER_BULK

    def _interval(self, d: _Device, ep: int) -> int:
        known = d.endpoints.get(ep)
        return known[1] if known is not None and known[0] in (0, XFER_INTERRUPT) else 0

    def _hid_endpoint(self, d: _Device, is_in: bool) -> int | None:
        for ep, (xfer, _interval, iface) in d.endpoints.items():
            if xfer == XFER_INTERRUPT and bool(ep & 0x80) == is_in and iface == d.interface:
                return ep
        return None

    def _hid_output(self, d: _Device, report_id: int, wire: bytes) -> _Transfer:
        ep = self._hid_endpoint(d, False)
        if ep is None:  # no interrupt OUT endpoint known: the control pipe, as usbhid does without one
            return self._ctrl(0x21, _HID_SET_REPORT, 0x0200 | report_id, d.interface, wire)
        return _Transfer(XFER_INTERRUPT, ep, None, len(wire), wire, self._interval(d, ep))

    def packets(self, event: Event) -> list[UsbmonPacket]:
        """The records of one event (after :meth:`learn` saw it)."""
        op, f = event.op, event.fields
        if op in _NO_URB:
            self._skip("no URB (open, close, claim, abort, reset, serial line calls)")
            return []
        status = 0 if event.ok else status_for_ioreturn(event.code)
        if status is None:
            self._skip(f"failed before the bus ({event.status})")
            return []
        d = self.device(event.dev)
        t0, t1 = self._ns(event.t), self._ns(event.t + event.dt)
        if op == "submit":
            return self._async_submit(d, event, status, t0)
        if op == "complete":
            return self._async_complete(d, event, status, t0)
        data = event.bytes_of("data") if op in ("write", "set_report") else b""
        tr = self._transfer_of(d, op, f, data)
        if tr is None:
            self._skip(f"op {op!r} has no wire form")
            return []
        urb = self._urb()
        if status == _ENODEV:
            return [self._submit(d, tr, urb, t0, "E", status)]
        moved, got = self._result(event, tr)
        return [self._submit(d, tr, urb, t0), self._complete(d, tr, urb, t1, status, moved, got)]

    @staticmethod
    def _result(event: Event, tr: _Transfer) -> tuple[int, bytes]:
        """(bytes moved, IN data) of a finished synchronous op."""
        op, f = event.op, event.fields
        if not event.ok:
            return 0, b""
        if op == "control":
            if tr.endpoint & 0x80:
                got = event.bytes_of("in")
                return len(got), got
            return int(f.get("length", len(tr.out))), b""
        if op in ("read", "report_descriptor"):
            got = event.bytes_of("data")
            return len(got), got
        if op == "get_report":
            rid = f["report_id"]
            got = (bytes([rid]) if rid else b"") + event.bytes_of("data")
            return len(got), got
        if op == "get_configuration":
            return 1, bytes([int(f.get("value", 0)) & 0xFF])
        return len(tr.out), b""  # write, set_report, and the standard OUT requests move what they carry

    def _async_submit(self, d: _Device, event: Event, status: int, ts: int) -> list[UsbmonPacket]:
        f = event.fields
        ep = f["endpoint"]
        if ep & 0x7F == 0:
            self._skip("submit on endpoint 0 (no SETUP packet recorded)")
            return []
        xfer = XFER_INTERRUPT if d.scheme == "hid" else self._xfer(d, ep)
        out = event.bytes_of("out")
        tr = _Transfer(xfer, ep, None, f["length"], out, self._interval(d, ep))
        urb = self._urb()
        if status != 0:
            return [self._submit(d, tr, urb, ts, "E", status)]
        self._pending[int(f["id"])] = (urb, tr)
        return [self._submit(d, tr, urb, ts)]

    def _async_complete(self, d: _Device, event: Event, status: int, ts: int) -> list[UsbmonPacket]:
        f = event.fields
        found = self._pending.pop(int(f["id"]), None)
        if found is None:
            ep = f["endpoint"]
            if ep & 0x7F == 0:
                self._skip("submit on endpoint 0 (no SETUP packet recorded)")
                return []
            found = (self._urb(), _Transfer(self._xfer(d, ep), ep, None, int(f.get("actual_length", 0))))
        urb, tr = found
        got = event.bytes_of("data")
        return [self._complete(d, tr, urb, ts, status, int(f.get("actual_length", len(got))), got)]

    def _skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def _created_ns(header: Mapping[str, Any]) -> int:
    text = header.get("created")
    if isinstance(text, str):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return int(when.timestamp()) * 1_000_000_000
        except (ValueError, OverflowError, OSError):
            pass
    return 0


def session_packets(session: Session) -> tuple[list[UsbmonPacket], ExportSummary]:
    """Every usbmon record of a session, in time order, and the summary."""
    enc = UsbmonEncoder(_created_ns(session.header))
    for e in session.events:
        enc.learn(e)
    out: list[tuple[int, int, UsbmonPacket]] = []
    for e in session.events:
        for p in enc.packets(e):
            out.append((p.timestamp_ns, len(out), p))
    out.sort(key=lambda x: (x[0], x[1]))
    summary = ExportSummary(events=len(session.events), packets=len(out), skipped=dict(enc.skipped))
    return [p for _, _, p in out], summary


def _writer(target: str | os.PathLike[str] | IO[bytes], nanoseconds: bool) -> PcapngWriter:
    from dkproto import __version__

    return PcapngWriter(target, linktype=LINKTYPE_USB_LINUX_MMAPPED, nanoseconds=nanoseconds,
                        if_name="usbmon0", user_appl=f"dkproto {__version__}")


def export_pcapng(session: Session | str | os.PathLike[str], target: str | os.PathLike[str] | IO[bytes], *,
                  nanoseconds: bool = False) -> ExportSummary:
    """Write a session as a usbmon pcapng capture (link type 220) that Wireshark dissects.

    Args:
        session: a loaded :class:`~dkproto.session.Session` or the path of a session file.
        target: the ``.pcapng`` path (created or emptied) or a binary file object.
        nanoseconds: nanosecond timestamps (``if_tsresol`` 9) instead of microseconds.

    Returns:
        How many events and records, and why events had no record.

    Raises:
        SessionError: the session file breaks the format.
        DkError: the capture file cannot be written.
    """
    if not isinstance(session, Session):
        session = load_session(session)
    packets, summary = session_packets(session)
    with _writer(target, nanoseconds) as w:
        for p in packets:
            w.write_packet(p.pack(), p.timestamp_ns)
    return summary


class PcapngSessionSink:
    """A recording's sink that writes pcapng as events come (``dkproto record OUT.pcapng``).

    It has the interface of :class:`~dkproto.session.SessionWriter` that a recorder uses
    (:meth:`append`, :meth:`now`, :attr:`events`, :attr:`path`, :meth:`close`), so it can stand
    in for one. Each :meth:`append` writes the event's records at once (the file reads up to its
    last packet if the run is interrupted). Endpoint types come from configuration descriptors
    read earlier in the same recording (bulk until one is seen). Thread-safe.

    Args:
        target: the ``.pcapng`` path (created or emptied) or a binary file object.
        start_ns: wall-clock time of ``t = 0`` in nanoseconds since 1970 (default: now).
        nanoseconds: nanosecond timestamps.

    Raises:
        NotPermittedError, DkError: the file cannot be created.
    """

    def __init__(self, target: str | os.PathLike[str] | IO[bytes], *, start_ns: int | None = None,
                 nanoseconds: bool = False) -> None:
        import threading

        #: ``time.monotonic()`` when the recording started: ``t`` counts from here.
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self._encoder = UsbmonEncoder(time.time_ns() if start_ns is None else start_ns)
        self._writer = _writer(target, nanoseconds)
        self._events = 0

    def now(self) -> float:
        """Seconds since the recording started (what ``t`` holds)."""
        return time.monotonic() - self.start

    @property
    def events(self) -> int:
        """How many events were appended."""
        return self._events

    @property
    def path(self) -> str:
        """The file's name."""
        return self._writer.name

    @property
    def skipped(self) -> dict[str, int]:
        """Why -> how many events wrote no record."""
        return dict(self._encoder.skipped)

    def append(self, event: Event | Mapping[str, Any]) -> None:
        """Write the records of one event (an :class:`~dkproto.session.Event` or a recorder's dict).

        Raises:
            BadArgumentError: the event lacks a field its op needs.
            DkError: the file cannot be written.
        """
        e = as_event(event)
        with self._lock:
            try:
                self._encoder.learn(e)
                packets = self._encoder.packets(e)
            except (KeyError, TypeError, ValueError) as exc:
                raise BadArgumentError(f"event {e.op!r}: cannot be written as usbmon records ({exc!r})") from exc
            for p in packets:
                self._writer.write_packet(p.pack(), p.timestamp_ns)
            self._events += 1

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            self._writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
