"""A usbmon capture as a dkproto session, so a capture made anywhere can be replayed (layer 2, pure).

:func:`import_pcapng` reads a pcapng file of usbmon records (link types 189 and 220: what
``tshark -i usbmonN`` writes on Linux, and what ``dkproto capture export`` writes), pairs each
Submit with its Complete by URB id, and rebuilds per device (bus, address) the calls a program
made: ``control``, ``read``, ``write``, or ``submit``/``complete`` for transfers that overlapped
another on the same device (asynchronous I/O, or a driver's always-pending interrupt URB). The
standard requests the kernel sends for libusb's ``set_configuration``, ``set_interface`` and
``clear_halt`` come back as those ops. Each device is opened as ``usbmon://BUS.DEV`` (or a URL
of ``urls``), with its ``idVendor``/``idProduct`` in ``info`` when the capture holds its device
descriptor.

What a capture cannot say: the timeouts (recorded as 0), which calls were made through
hidapi or pyserial (everything is USB transfers here), transfers that were pending when the
capture started (a Complete without its Submit is left out, with a complaint). Windows'
USBPcap (link type 249) and other link types are not read: their packets are counted and named
in the complaints. A URB status maps back to an IOReturn with
:func:`dkproto.capture.usbmon.ioreturn_for_status`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

from dkproto.capture.pcapng import PcapngReader
from dkproto.capture.usbmon import (
    LINKTYPE_USB_LINUX,
    LINKTYPE_USB_LINUX_MMAPPED,
    XFER_CONTROL,
    XFER_NAMES,
    UsbmonPacket,
    errno_name,
    ioreturn_for_status,
)
from dkproto.errors import DecodeError
from dkproto.ioreturn import IOReturn
from dkproto.session import MAX_EVENTS, Event, Session, dumps_session, loads_session, status_name
from dkproto.session.format import MAX_SECONDS

__all__ = ["MAX_COMPLAINTS", "MAX_TRANSFER_BYTES", "CaptureInfo", "DeviceSummary", "capture_info", "import_pcapng", "usbmon_packets"]

#: At most this many complaints are kept (the rest are counted in one last line).
MAX_COMPLAINTS = 50
#: A transfer with more data than this (8 MiB) is left out: a session line holds 32 MiB of text.
MAX_TRANSFER_BYTES = 8 << 20

_USBMON = (LINKTYPE_USB_LINUX, LINKTYPE_USB_LINUX_MMAPPED)


class _Complaints(list[str]):
    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def add(self, text: str) -> None:
        if len(self) < MAX_COMPLAINTS:
            self.append(text)
        else:
            self.dropped += 1

    def close(self) -> list[str]:
        out = list(self)
        if self.dropped:
            out.append(f"... and {self.dropped:,} more complaints")
        return out


def usbmon_packets(source: str | os.PathLike[str] | bytes | IO[bytes], complaints: list[str] | None = None,
                   *, strict: bool = False) -> list[tuple[int, UsbmonPacket]]:
    """(timestamp in ns, record) of every usbmon packet of a pcapng file, in file order.

    Packets of other link types, and usbmon packets too short for their header, are left out
    with a line in ``complaints``.

    Raises:
        DecodeError: the file is not pcapng, or a block breaks the format.
    """
    sink = _Complaints()
    out: list[tuple[int, UsbmonPacket]] = []
    other: dict[int, int] = {}
    with PcapngReader(source, strict=strict) as reader:
        for pkt in reader:
            lt = pkt.interface.linktype
            if lt not in _USBMON:
                other[lt] = other.get(lt, 0) + 1
                continue
            if len(out) >= 4 * MAX_EVENTS:
                raise DecodeError(f"more than {4 * MAX_EVENTS:,} usbmon packets", offset=pkt.offset,
                                  descriptor="pcapng", rule="size")
            try:
                rec = UsbmonPacket.parse(pkt.data, lt, pkt.interface.big_endian, pkt.offset)
            except DecodeError as exc:
                sink.add(f"{reader.name}: {exc}")
                continue
            ts = pkt.timestamp_ns
            out.append((rec.timestamp_ns if ts is None else ts, rec))
        for text in reader.complaints:
            sink.add(text)
    for lt, n in sorted(other.items()):
        what = " (Windows USBPcap, not read: only Linux usbmon captures are)" if lt == 249 else ""
        sink.add(f"{n:,} packets of link type {lt}{what} left out: not usbmon (189, 220)")
    if complaints is not None:
        complaints.extend(sink.close())
    return out


# ------------------------------------------------------------------------------------ pairing
@dataclass
class _Urb:
    dev: tuple[int, int]
    s: UsbmonPacket
    s_ns: int
    order: int
    c: UsbmonPacket | None = None
    c_ns: int = 0
    error: bool = False  # an 'E' record: the submission failed

    @property
    def end_ns(self) -> int:
        return max(self.c_ns, self.s_ns) if self.c is not None else self.s_ns  # a C before its S: bad clocks


def _pair(records: list[tuple[int, UsbmonPacket]], complaints: _Complaints) -> list[_Urb]:
    pending: dict[tuple[int, int, int], _Urb] = {}
    urbs: list[_Urb] = []
    orphans = 0
    for ts, p in records:
        key = (p.busnum, p.devnum, p.id)
        if p.type in ("S", "E"):
            if p.type == "E" and key in pending and pending[key].c is None and pending[key].s.type == "S":
                u = pending.pop(key)  # an error for a pending submit
                u.error, u.c, u.c_ns = True, p, ts
                continue
            u = _Urb((p.busnum, p.devnum), p, ts, len(urbs), error=p.type == "E")
            urbs.append(u)
            if p.type == "S":
                pending[key] = u
        elif p.type == "C":
            found = pending.pop(key, None)
            if found is None:
                orphans += 1
                continue
            found.c, found.c_ns = p, ts
        else:
            complaints.add(f"URB 0x{p.id:x}: record type {p.type!r} is not S, C or E: left out")
    if orphans:
        complaints.add(f"{orphans:,} Complete records without their Submit (pending when the capture "
                       "started?) left out")
    return urbs


def _overlapping(urbs: list[_Urb]) -> set[int]:
    """Orders of non-control URBs that overlap another URB of their device (so: asynchronous)."""
    out: set[int] = set()
    by_dev: dict[tuple[int, int], list[_Urb]] = {}
    for u in urbs:
        if not u.error:
            by_dev.setdefault(u.dev, []).append(u)
    for items in by_dev.values():
        items.sort(key=lambda u: (u.s_ns, u.order))
        open_end = -1
        open_item: _Urb | None = None
        for u in items:
            if open_item is not None and u.s_ns < open_end:
                out.add(u.order)
                out.add(open_item.order)
            end = u.c_ns if u.c is not None else 1 << 62
            if end > open_end:
                open_end, open_item = end, u
    return {o for o in out if urbs[o].s.xfer_type != XFER_CONTROL}


# ------------------------------------------------------------------------------------ events
@dataclass
class _Out:
    end_ns: int
    order: int
    dev: tuple[int, int]
    t_ns: int
    dt_ns: int
    op: str
    fields: dict[str, Any]
    status: IOReturn
    error: str | None = None


def _status(p: UsbmonPacket, what: str) -> tuple[IOReturn, str | None]:
    if p.status == 0 and p.type == "E":
        return IOReturn.kIOReturnError, f"{what}: a submission error record with status 0 in the capture"
    if p.status == 0:
        return IOReturn.kIOReturnSuccess, None
    return ioreturn_for_status(p.status), f"{what}: URB status {errno_name(p.status)} in the capture"


def _fit(data: bytes, n: int, what: str, complaints: _Complaints) -> bytes:
    if len(data) == n:
        return data
    complaints.add(f"{what}: {len(data)} bytes captured of {n} (snap length?): "
                   + ("zero-filled" if len(data) < n else "cut"))
    return data[:n] if len(data) > n else data + bytes(n - len(data))


def _events_of(u: _Urb, asynchronous: bool, ids: list[int], complaints: _Complaints) -> list[_Out]:
    s, c = u.s, u.c
    ep = s.epnum
    where = f"URB 0x{s.id:x} bus {s.busnum} device {s.devnum} endpoint 0x{ep:02x}"
    is_in = bool(ep & 0x80)
    size = max(len(s.data), len(c.data) if c is not None else 0, 0 if is_in else s.length)
    if size > MAX_TRANSFER_BYTES:
        complaints.add(f"{where}: {size:,} bytes, more than a session holds in one event "
                       f"({MAX_TRANSFER_BYTES:,}): left out")
        return []
    if s.xfer_type == XFER_CONTROL:
        if not s.has_setup or len(s.setup) != 8:
            complaints.add(f"{where}: a control Submit without a SETUP packet: left out")
            return []
        if c is None and not u.error:
            complaints.add(f"{where}: control transfer still pending at the end of the capture: left out")
            return []
        f: dict[str, Any] = dict(s.setup_fields())
        rt, req = f["bmRequestType"], f["bRequest"]
        status, error = _status(c if c is not None else s, f"control {rt:02x} {req:02x}")
        ok = status == IOReturn.kIOReturnSuccess
        if rt & 0x80:
            if ok and c is not None:
                got = c.data
                if len(got) > f["wLength"]:
                    got = _fit(got, f["wLength"], where, complaints)
                elif c.len_cap < c.length:
                    complaints.add(f"{where}: {c.len_cap} bytes captured of {c.length} (snap length?)")
                f["in"] = got.hex()
                f["length"] = len(got)
            op = "control"
        else:
            f["out"] = _fit(s.data, f["wLength"], where, complaints).hex()
            if ok:
                f["length"] = c.length if c is not None else f["wLength"]
            op = "control"
            if f["wLength"] == 0:
                if rt == 0x00 and req == 0x09:
                    op, f = "set_configuration", {"bConfigurationValue": f["wValue"] & 0xFF}
                elif rt == 0x01 and req == 0x0B:
                    op, f = "set_alternate_setting", {"bInterfaceNumber": f["wIndex"] & 0xFF,
                                                      "bAlternateSetting": f["wValue"] & 0xFF}
                elif rt == 0x02 and req == 0x01 and f["wValue"] == 0:
                    op, f = "clear_halt", {"endpoint": f["wIndex"] & 0xFF}
        return [_Out(u.end_ns, u.order, u.dev, u.s_ns, u.end_ns - u.s_ns, op, f, status, error)]
    kind = XFER_NAMES.get(s.xfer_type, str(s.xfer_type))
    if asynchronous or c is None and not u.error:
        tid = len(ids)
        ids.append(tid)
        sub: dict[str, Any] = {"id": tid, "endpoint": ep, "length": s.length if is_in else len(s.data),
                               "timeout": 0}
        if not is_in:
            sub["out"] = _fit(s.data, s.length, where, complaints).hex()
            sub["length"] = s.length
        if u.error:
            st, err = _status(c if c is not None else s, f"submit {kind} 0x{ep:02x}")
            return [_Out(u.end_ns, u.order, u.dev, u.s_ns, 0, "submit", sub, st, err)]
        out = [_Out(u.s_ns, u.order, u.dev, u.s_ns, 0, "submit", sub, IOReturn.kIOReturnSuccess)]
        if c is not None:
            st, err = _status(c, f"{kind} transfer 0x{ep:02x}")
            comp: dict[str, Any] = {"id": tid, "endpoint": ep}
            if is_in:
                comp["actual_length"] = len(c.data)
                comp["data"] = c.data.hex()
                if c.len_cap < c.length:
                    complaints.add(f"{where}: {c.len_cap} bytes captured of {c.length} (snap length?)")
            else:
                comp["actual_length"] = c.length
            out.append(_Out(u.end_ns, u.order, u.dev, u.end_ns, 0, "complete", comp, st, err))
        return out
    end = c if c is not None else s
    st, err = _status(end, f"{kind} {'read' if is_in else 'write'} 0x{ep:02x}")
    ok = st == IOReturn.kIOReturnSuccess
    if is_in:
        f = {"endpoint": ep, "length": s.length, "timeout": 0}
        if ok and c is not None:
            got = c.data if len(c.data) <= s.length else _fit(c.data, s.length, where, complaints)
            if c.len_cap < c.length:
                complaints.add(f"{where}: {c.len_cap} bytes captured of {c.length} (snap length?)")
            f["data"] = got.hex()
        return [_Out(u.end_ns, u.order, u.dev, u.s_ns, u.end_ns - u.s_ns, "read", f, st, err)]
    f = {"endpoint": ep, "data": _fit(s.data, s.length, where, complaints).hex(), "timeout": 0}
    if ok and c is not None:
        f["length"] = c.length
    return [_Out(u.end_ns, u.order, u.dev, u.s_ns, u.end_ns - u.s_ns, "write", f, st, err)]


def _device_ids(urbs: list[_Urb]) -> dict[tuple[int, int], tuple[int, int]]:
    """(bus, address) -> (idVendor, idProduct) from the device descriptors the capture holds."""
    out: dict[tuple[int, int], tuple[int, int]] = {}
    for u in urbs:
        s, c = u.s, u.c
        if (c is None or c.status != 0 or s.xfer_type != XFER_CONTROL or not s.has_setup
                or len(c.data) < 12 or u.dev[1] == 0):
            continue
        f = s.setup_fields()
        if f["bmRequestType"] == 0x80 and f["bRequest"] == 6 and f["wValue"] >> 8 == 0x01 and c.data[1] == 0x01:
            out[u.dev] = (c.data[8] | c.data[9] << 8, c.data[10] | c.data[11] << 8)
    return out


def _iso(ns: int) -> str:
    try:
        return datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return "1970-01-01T00:00:00Z"


def _parse_device(text: str) -> tuple[int, int]:
    bus, sep, dev = text.strip().partition(".")
    if not sep or not bus.isdigit() or not dev.isdigit():
        raise DecodeError(f"device {text!r}: expected BUS.DEVICE in decimal, e.g. 1.4", descriptor="usbmon",
                          rule="device")
    return int(bus), int(dev)


def import_pcapng(source: str | os.PathLike[str] | bytes | IO[bytes], *, devices: Collection[str] | None = None,
                  urls: Mapping[str, str] | None = None, argv: list[str] | None = None) -> Session:
    """A session of the transfers in a usbmon pcapng capture, one device per (bus, address).

    Args:
        source: the capture (path, bytes or binary file).
        devices: only these devices, as ``"BUS.DEVICE"`` strings (``"1.4"``); default all.
        urls: ``"BUS.DEVICE"`` -> the URL its ``open`` records (default ``usbmon://BUS.DEVICE``),
            so a replay matches the URL the program opens (``{"1.4": "usb://1d6b:0104"}``).
        argv: the header's ``argv``.

    Returns:
        A checked :class:`~dkproto.session.Session`; what had to be left out is in its
        ``complaints``.

    Raises:
        DecodeError: the file is not pcapng or breaks the format (offset and block named), or a
            bad ``devices`` entry.
        NotFoundError, NotPermittedError: the file cannot be opened.
    """
    from dkproto import __version__

    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<capture>"
    wanted = {_parse_device(d) for d in devices} if devices is not None else None
    url_of = {_parse_device(k): v for k, v in (urls or {}).items()}
    complaints = _Complaints()
    raw: list[str] = []
    records = usbmon_packets(source, raw)
    for text in raw:
        complaints.add(text)
    if wanted is not None:
        records = [(ts, p) for ts, p in records if (p.busnum, p.devnum) in wanted]
    urbs = _pair(records, complaints)
    asynchronous = _overlapping(urbs)
    ids: list[int] = []
    outs: list[_Out] = []
    for u in urbs:
        outs.extend(_events_of(u, u.order in asynchronous, ids, complaints))
    outs.sort(key=lambda o: (o.end_ns, o.order, o.op == "complete"))
    if len(outs) > MAX_EVENTS:
        raise DecodeError(f"{len(outs):,} events, more than a session holds ({MAX_EVENTS:,})", descriptor="usbmon",
                          rule="size")
    first = min((o.t_ns for o in outs), default=records[0][0] if records else 0)
    t0 = first - first % 1_000_000_000  # the header's "created" is whole seconds: t counts from there
    vid_pid = _device_ids(urbs)
    index: dict[tuple[int, int], int] = {}
    events: list[Event] = []

    clamped = [0]

    def seconds(ns: int) -> float:
        value = max(0, ns) / 1e9
        if value > MAX_SECONDS:
            clamped[0] += 1
            return float(MAX_SECONDS)
        return value

    def add(t_ns: int, dt_ns: int, dev: int, op: str, fields: dict[str, Any], status: IOReturn,
            error: str | None) -> None:
        events.append(Event(len(events), seconds(t_ns - t0), seconds(dt_ns), dev, op, fields, status_name(status),
                            error))

    for o in outs:
        dev = index.get(o.dev)
        if dev is None:
            dev = index[o.dev] = len(index)
            bus, address = o.dev
            url = url_of.get(o.dev, f"usbmon://{bus}.{address}")
            info: dict[str, Any] = {"url": url, "scheme": "usbmon"}
            ids_ = vid_pid.get(o.dev)
            if ids_ is not None:
                info["idVendor"], info["idProduct"] = ids_
            info["bus"], info["address"] = bus, address
            add(o.t_ns, 0, dev, "open", {"url": url, "scheme": "usbmon", "info": info},
                IOReturn.kIOReturnSuccess, None)
        add(o.t_ns, o.dt_ns, dev, o.op, o.fields, o.status, o.error)
    if clamped[0]:
        complaints.add(f"{clamped[0]:,} times past {MAX_SECONDS:g} s from the start (bad timestamps?) set to "
                       f"{MAX_SECONDS:g} s")
    header = {"format": "dkproto-session", "version": 1, "created": _iso(t0), "dkproto": __version__,
              "argv": list(argv) if argv is not None else ["dkproto", "capture", "import", name],
              "clock": "usbmon"}
    session = loads_session(dumps_session(Session(header=header, events=events)), source=name)
    session.complaints.extend(complaints.close())
    return session


# ------------------------------------------------------------------------------------ summary
@dataclass
class DeviceSummary:
    """One device of a capture: its records by transfer type and direction."""

    bus: int
    address: int
    idVendor: int | None = None
    idProduct: int | None = None
    records: int = 0
    transfers: dict[str, int] = field(default_factory=dict)  # "bulk IN" -> completed transfers
    errors: dict[str, int] = field(default_factory=dict)  # "-EPIPE" -> count
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass
class CaptureInfo:
    """What :func:`capture_info` found in a capture file."""

    sections: int = 0
    linktypes: dict[int, int] = field(default_factory=dict)  # link type -> packets
    packets: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    skipped_blocks: dict[str, int] = field(default_factory=dict)
    devices: list[DeviceSummary] = field(default_factory=list)
    complaints: list[str] = field(default_factory=list)


def capture_info(source: str | os.PathLike[str] | bytes | IO[bytes]) -> CaptureInfo:
    """A summary of a pcapng capture: sections, link types, time span, and per usbmon device its
    transfers by type and direction, bytes moved and URB errors.

    Raises:
        DecodeError: not pcapng, or a block that breaks the format.
    """
    info = CaptureInfo()
    complaints = _Complaints()
    records: list[tuple[int, UsbmonPacket]] = []
    with PcapngReader(source, strict=False) as reader:
        for pkt in reader:
            lt = pkt.interface.linktype
            info.packets += 1
            info.linktypes[lt] = info.linktypes.get(lt, 0) + 1
            ts = pkt.timestamp_ns
            if ts is not None:
                info.first_ns = ts if info.first_ns is None else min(info.first_ns, ts)
                info.last_ns = ts if info.last_ns is None else max(info.last_ns, ts)
            if lt in _USBMON:
                try:
                    records.append((ts or 0, UsbmonPacket.parse(pkt.data, lt, pkt.interface.big_endian, pkt.offset)))
                except DecodeError as exc:
                    complaints.add(str(exc))
        info.sections = reader.sections
        info.skipped_blocks = dict(reader.skipped)
        for text in reader.complaints:
            complaints.add(text)
    urbs = _pair(records, complaints)
    ids = _device_ids(urbs)
    devs: dict[tuple[int, int], DeviceSummary] = {}
    for _ts, p in records:
        d = devs.setdefault((p.busnum, p.devnum), DeviceSummary(p.busnum, p.devnum))
        d.records += 1
    for u in urbs:
        d = devs[u.dev]
        end = u.c if u.c is not None else u.s
        key = f"{XFER_NAMES.get(u.s.xfer_type, str(u.s.xfer_type))} {'IN' if u.s.epnum & 0x80 else 'OUT'}"
        if u.c is not None or u.error:
            d.transfers[key] = d.transfers.get(key, 0) + 1
        if end.status not in (0, -115) and (u.c is not None or u.error):
            name = errno_name(end.status)
            d.errors[name] = d.errors.get(name, 0) + 1
        if u.c is not None and u.c.status == 0:
            if u.s.epnum & 0x80:
                d.bytes_in += u.c.length
            else:
                d.bytes_out += u.c.length
    for slot, (vid, pid) in ids.items():
        if slot in devs:
            devs[slot].idVendor, devs[slot].idProduct = vid, pid
    info.devices = [devs[k] for k in sorted(devs)]
    info.complaints = complaints.close()
    return info
