"""Replaying: a recorded session serves a program's calls, with the device gone.

``with replaying("session.jsonl"):`` (or ``DKPROTO_REPLAY=session.jsonl``, or ``dkproto replay
session.jsonl -- CMD...``) makes :func:`~dkproto.transport.open_transport` return, for the k-th
open of a URL in this process, a :class:`ReplayTransport` serving the k-th recorded device of that
URL. ``replay:///path/session.jsonl?device=N`` (or ``?url=URL``) opens one recorded device
directly, so ``dkproto dump replay://...`` works.

Each call is compared with what the recording has next (:data:`STRICT_MODES`):

* ``exact``: the same calls in the same order per device, the same arguments including
  timeouts, paced as recorded (each call ends when it ended in the recording);
* ``order`` (default): the same calls in the same order per device; timeouts and timing ignored;
* ``endpoints``: order kept per endpoint only (endpoint 0 for control requests and the calls
  without an endpoint).

The answer is the recorded one; a recorded failure is raised as the same DkError class
(:func:`~dkproto.errors.error_for_ioreturn`). The first divergence raises
:class:`~dkproto.errors.ReplayMismatchError` naming the session file, the line, what was
recorded and what came. ``close`` never diverges: events the program did not ask for before
closing are left (:meth:`Replayer.unconsumed`).

Events with ``by`` (transfers the recorded transport made on its own, such as the string
descriptors ``usb://`` reads for ``info`` while it opens) are not calls of the program: they are
never matched, and count as consumed with the call they follow (the ``open`` whose ``info``
they produced). Sessions without them replay as before.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from dkproto.errors import AbortedError, BadArgumentError, DkTimeoutError, NotFoundError, ReplayMismatchError
from dkproto.ioreturn import IOReturn
from dkproto.session import DeviceRecord, Event, Session, load_session
from dkproto.session.format import OPS
from dkproto.transport import registry
from dkproto.transport.base import DEFAULT_TIMEOUT_MS, Transfer, TransferCallback, Transport, TransportInfo
from dkproto.transport.url import QueryOptions, parse_url, url_error

__all__ = ["GRAMMAR", "STRICT_MODES", "ReplayTransport", "Replayer", "SerialReplayTransport",
           "activate_from_environment", "describe", "replaying"]

GRAMMAR = ("replay:///PATH/TO/SESSION.jsonl[?device=N|url=URL&strict=exact|order|endpoints] "
           "(a recorded device; default device 0)")

#: Strictness modes, strictest first.
STRICT_MODES = ("exact", "order", "endpoints")
#: The environment variables that replay every transport of a process.
ENV_REPLAY, ENV_REPLAY_STRICT = "DKPROTO_REPLAY", "DKPROTO_REPLAY_STRICT"
#: The longest wait ``exact`` pacing makes before one call or completion (seconds).
MAX_PACE_S = 60.0
_HEX_FIELDS = {"bmRequestType": 2, "bRequest": 2, "wValue": 4, "wIndex": 4, "endpoint": 2}
_SHOWN_BYTES = 32


# ------------------------------------------------------------------------------------------ text
def _show(name: str, value: Any) -> str:
    if value is None:
        return f"{name}=none"
    if name in _HEX_FIELDS and isinstance(value, int):
        return f"{name}=0x{value:0{_HEX_FIELDS[name]}x}"
    if name in ("data", "out") and isinstance(value, str):
        n = len(value) // 2
        shown = value[:2 * _SHOWN_BYTES] + ("..." if n > _SHOWN_BYTES else "")
        return f"{name}={shown or '(empty)'} ({n} byte{'s' if n != 1 else ''})"
    if isinstance(value, bool):
        return f"{name}={'true' if value else 'false'}"
    return f"{name}={value}"


def describe(op: str, fields: dict[str, Any], *, timeouts: bool = False) -> str:
    """One request as text: ``control bmRequestType=0x80 bRequest=0x06 wValue=0x0100 wIndex=0x0000 wLength=18``.

    Only request fields are shown, in the op's order; not a submit's ``id``; ``timeout`` only with ``timeouts``.
    """
    spec = OPS.get(op, ((), ()))[0]
    parts = [op] + [_show(f.name, fields[f.name]) for f in spec if f.name in fields
                    and f.name != "id" and (timeouts or f.name != "timeout")]
    return " ".join(parts)


def _first_difference(recorded: str, sent: str) -> str:
    a, b = bytes.fromhex(recorded), bytes.fromhex(sent)
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    if i < min(len(a), len(b)):
        return f"first difference at byte {i} (0x{a[i]:02x} recorded, 0x{b[i]:02x} sent)"
    return f"first difference at byte {i} ({len(a)} bytes recorded, {len(b)} sent)"


def _lane(op: str, fields: dict[str, Any]) -> int | str:
    if op in ("open", "close"):
        return "lifecycle"
    endpoint = fields.get("endpoint")
    return endpoint if isinstance(endpoint, int) else 0


# ------------------------------------------------------------------------------------------ replayer
class _Cursor:
    """Where the replay of one recorded device is."""

    def __init__(self, device: DeviceRecord) -> None:
        self.device = device
        self.calls: list[Event] = []
        #: call index -> seq of the ``by`` events after it (the transport's own transfers, not calls)
        self.internal: dict[int, list[int]] = {}
        for e in device.events:
            if e.op == "complete":
                continue
            if "by" in e.fields:
                self.internal.setdefault(max(len(self.calls) - 1, 0), []).append(e.seq)
            else:
                self.calls.append(e)
        self.completes = {e.fields["id"]: e for e in device.events if e.op == "complete"}
        self.done = [False] * len(self.calls)
        self.pos = 0
        self.lanes: dict[int | str, list[int]] = {}
        for i, e in enumerate(self.calls):
            self.lanes.setdefault(_lane(e.op, e.fields), []).append(i)
        self.lane_pos: dict[int | str, int] = {}

    def _advance(self) -> None:
        while self.pos < len(self.calls) and self.done[self.pos]:
            self.pos += 1

    def next_index(self, lane: int | str | None) -> int | None:
        """The next call expected (in ``lane``, or in device order for None)."""
        if lane is None:
            self._advance()
            return self.pos if self.pos < len(self.calls) else None
        order = self.lanes.get(lane, [])
        k = self.lane_pos.get(lane, 0)
        while k < len(order) and self.done[order[k]]:
            k += 1
        self.lane_pos[lane] = k
        return order[k] if k < len(order) else None

    def horizon(self) -> float:
        """``t`` of the next call not yet made (infinity when none is left)."""
        self._advance()
        return self.calls[self.pos].t if self.pos < len(self.calls) else math.inf


class Replayer:
    """A session being replayed: which device each opened URL gets, and what each has consumed.

    Args:
        session: the loaded session.
        strict: one of :data:`STRICT_MODES`.
    """

    def __init__(self, session: Session, strict: str = "order") -> None:
        if strict not in STRICT_MODES:
            raise BadArgumentError(f"replay strictness {strict!r} is not one of {', '.join(STRICT_MODES)}")
        self.session = session
        self.strict = strict
        self.lock = threading.RLock()
        self._opened: dict[str, int] = {}
        self._cursors: dict[int, _Cursor] = {}
        self.consumed: set[int] = set()
        self._offset: float | None = None
        #: The first divergence, kept even when the code under test caught the error (a driver
        #: turns it into an IOReturn for its app): the pytest plugin fails the test with it.
        self.mismatch: ReplayMismatchError | None = None

    @property
    def source(self) -> str:
        """The session file's name."""
        return self.session.source

    def urls(self) -> list[str]:
        """The recorded URLs, each once, in order of first opening."""
        return list(dict.fromkeys(d.url for d in self.session.devices))

    def cursor(self, device: DeviceRecord) -> _Cursor:
        with self.lock:
            cur = self._cursors.get(device.index)
            if cur is None:
                cur = self._cursors[device.index] = _Cursor(device)
            return cur

    def check_url(self, url: str) -> DeviceRecord:
        """The first recorded device of ``url``; NotFoundError naming the recorded ones if none."""
        for d in self.session.devices:
            if d.url == url:
                return d
        recorded = ", ".join(self.urls()) or "none"
        raise NotFoundError(f"{self.source}: {url} was not recorded (recorded: {recorded})")

    def bind(self, url: str) -> DeviceRecord:
        """The device for the next open of ``url``: the k-th recorded device of that URL."""
        with self.lock:
            k = self._opened.get(url, 0)
            matching = [d for d in self.session.devices if d.url == url]
            if k >= len(matching):
                raise NotFoundError(f"{self.source}: {url} is opened {k + 1} times, the recording has "
                                    f"{len(matching)} device{'s' if len(matching) != 1 else ''} of that URL")
            self._opened[url] = k + 1
            return matching[k]

    def transport_for(self, url: str) -> ReplayTransport:
        """A (closed) transport replaying the next recorded device of ``url``."""
        device = self.check_url(url)
        cls = SerialReplayTransport if _is_serial(device) else ReplayTransport
        return cls(self, url)

    def hook(self, cls: type[Transport], url: str, build: Callable[[], Transport]) -> Transport:
        """The open hook (:data:`dkproto.transport.registry.OPEN_HOOKS`): replace the back end."""
        if issubclass(cls, ReplayTransport):
            return build()
        return self.transport_for(url)

    def pace(self, t: float) -> None:
        """In ``exact`` mode, wait until recorded time ``t`` (relative to the first event served)."""
        if self.strict != "exact":
            return
        with self.lock:
            if self._offset is None:
                self._offset = time.monotonic() - t
            target = self._offset + t
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, MAX_PACE_S))

    def unconsumed(self) -> list[Event]:
        """The events no replayed call consumed (nor completion delivered), in file order."""
        with self.lock:
            return [e for e in self.session.events if e.seq not in self.consumed]


def _is_serial(device: DeviceRecord) -> bool:
    info_scheme = (device.info or {}).get("scheme")
    return device.scheme == "serial" or info_scheme == "serial"


def _info(device: DeviceRecord) -> TransportInfo:
    d = device.info or {}
    kw: dict[str, Any] = {}
    for name in ("serial_number", "manufacturer", "product", "path", "speed"):
        if isinstance(d.get(name), str):
            kw[name] = d[name]
    for name in ("idVendor", "idProduct", "bus", "address", "interface"):
        v = d.get(name)
        if isinstance(v, int) and not isinstance(v, bool):
            kw[name] = v
    if isinstance(d.get("extra"), dict):
        kw["extra"] = dict(d["extra"])
    url = d["url"] if isinstance(d.get("url"), str) else device.url
    scheme = d["scheme"] if isinstance(d.get("scheme"), str) else device.scheme
    return TransportInfo(url=url, scheme=scheme, **kw)


# ------------------------------------------------------------------------------------------ transport
class ReplayTransport(Transport):
    """Serves one recorded device of a session (see the module's documentation).

    Args:
        replayer: the session being replayed.
        url: the URL opened; the device is the next recorded one of that URL, bound at the first
            :meth:`open` (or ``info``), unless ``device`` is given.
        device: a recorded device to serve.
    """

    scheme: ClassVar[str] = "replay"
    grammar: ClassVar[str] = GRAMMAR

    def __init__(self, replayer: Replayer, url: str, device: DeviceRecord | None = None) -> None:
        super().__init__()
        self.replayer = replayer
        self.url = url
        self._device = device
        self._cond = threading.Condition()
        self._pending: dict[int, Transfer] = {}
        self._ready: list[tuple[Event, Transfer]] = []
        self._delivering = 0
        self._worker: threading.Thread | None = None
        self._stop = False

    @classmethod
    def from_url(cls, url: str) -> ReplayTransport:
        """``replay:///path/session.jsonl[?device=N|url=URL&strict=MODE]`` (see :data:`GRAMMAR`)."""
        parsed = parse_url(url, GRAMMAR)
        if parsed.scheme != "replay":
            raise url_error(url, f"scheme {parsed.scheme!r} is not replay", GRAMMAR)
        path = parsed.authority + parsed.path
        if not path:
            raise url_error(url, "no session file named", GRAMMAR)
        opts = QueryOptions(parsed, GRAMMAR)
        index = opts.int("device", None, lo=0, hi=1 << 20, base=10)
        want_url = opts.str("url")
        strict = opts.choice("strict", {m: m for m in STRICT_MODES}, "order")
        opts.finish()
        if index is not None and want_url is not None:
            raise url_error(url, "give device=N or url=URL, not both", GRAMMAR)
        replayer = Replayer(load_session(path), str(strict))
        devices = replayer.session.devices
        if want_url is not None:
            device = replayer.check_url(want_url)
        else:
            index = index or 0
            if index >= len(devices):
                raise NotFoundError(f"{path}: no device {index} (the session has {len(devices)} device"
                                    f"{'s' if len(devices) != 1 else ''})")
            device = devices[index]
        replayer.bind(device.url)
        kind = SerialReplayTransport if _is_serial(device) else ReplayTransport
        return kind(replayer, device.url, device)

    # ------------------------------------------------------------------ binding, matching
    @property
    def device(self) -> DeviceRecord:
        """The recorded device served (bound on first use)."""
        if self._device is None:
            self._device = self.replayer.bind(self.url)
        return self._device

    @property
    def info(self) -> TransportInfo:
        return _info(self.device)

    @property
    def device_scheme(self) -> str:
        """The recorded device's own scheme (``hid`` for a replayed ``hid://``)."""
        return _info(self.device).scheme

    @property
    def local_nodes(self) -> bool:
        return False  # info.path is the recording machine's

    def _mismatch(self, expected: Event | None, op: str, request: dict[str, Any], lane: int | str | None,
                  note: str = "") -> ReplayMismatchError:
        err = self._mismatch_error(expected, op, request, lane, note)
        with self.replayer.lock:
            if self.replayer.mismatch is None:
                self.replayer.mismatch = err
        return err

    def _mismatch_error(self, expected: Event | None, op: str, request: dict[str, Any], lane: int | str | None,
                        note: str = "") -> ReplayMismatchError:
        r = self.replayer
        dev = self.device
        exact = r.strict == "exact"
        got = describe(op, request, timeouts=exact)
        if expected is not None:
            return ReplayMismatchError(
                f"{r.source} line {expected.line} (event {expected.seq}, device {dev.index} {dev.url}): expected "
                f"{describe(expected.op, expected.fields, timeouts=exact)}, got {got}{note}")
        last = dev.events[-1] if dev.events else None
        where = f" after line {last.line} (event {last.seq}," if last is not None else " ("
        scope = f"on endpoint 0x{lane:02x} " if isinstance(lane, int) and r.strict == "endpoints" and lane else ""
        return ReplayMismatchError(f"{r.source}{where} device {dev.index} {dev.url}): the recording has no more "
                                   f"events {scope}for this device, got {got}")

    def _peek(self, op: str, request: dict[str, Any]) -> Event | None:
        cur = self.replayer.cursor(self.device)
        with self.replayer.lock:
            i = cur.next_index(_lane(op, request) if self.replayer.strict == "endpoints" else None)
            return None if i is None else cur.calls[i]

    def _serve(self, op: str, request: dict[str, Any]) -> Event:
        """Match the call ``op(request)`` with the next recorded one; its event (raised if it failed)."""
        request = {k: (bytes(v).hex() if isinstance(v, (bytes, bytearray, memoryview)) else v)
                   for k, v in request.items()}
        r = self.replayer
        cur = r.cursor(self.device)
        lane = _lane(op, request) if r.strict == "endpoints" else None
        with r.lock:
            i = cur.next_index(lane)
            if i is None:
                raise self._mismatch(None, op, request, lane if lane is not None else _lane(op, request))
            e = cur.calls[i]
            note = self._compare(e, op, request)
            if note is not None:
                raise self._mismatch(e, op, request, lane, note)
            cur.done[i] = True
            r.consumed.add(e.seq)
            r.consumed.update(cur.internal.get(i, ()))
        r.pace(e.t + e.dt)
        self._release()
        if not e.ok:
            raise e.exception()
        return e

    def _compare(self, e: Event, op: str, request: dict[str, Any]) -> str | None:
        """None when ``e`` is this call; else a note for the message ('' or where OUT data differ)."""
        if e.op != op:
            return ""
        exact = self.replayer.strict == "exact"
        for f in OPS[op][0]:
            if f.name in ("id", "by") or (f.name == "timeout" and not exact) or op == "open":
                continue
            if e.fields.get(f.name) != request.get(f.name):
                a, b = e.fields.get(f.name), request.get(f.name)
                if f.kind == "hex" and isinstance(a, str) and isinstance(b, str):
                    return f" ({f.name} bytes differ: {_first_difference(a, b)})"
                return ""
        return None

    # ------------------------------------------------------------------ lifecycle
    def _open(self) -> None:
        _ = self.device
        self._serve("open", {})

    def _close(self) -> None:
        r = self.replayer
        cur = r.cursor(self.device)
        close_event: Event | None = None
        with r.lock:
            lane = "lifecycle" if r.strict == "endpoints" else None
            i = cur.next_index(lane)
            while i is not None and cur.calls[i].op != "close":
                if cur.calls[i].op == "open":
                    i = None
                    break
                cur.done[i] = True  # skipped: the program closed before asking (left unconsumed)
                i = cur.next_index(lane)
            if i is not None:
                close_event = cur.calls[i]
                cur.done[i] = True
                r.consumed.add(close_event.seq)
                r.consumed.update(cur.internal.get(i, ()))
                for j in range(i):  # whatever came before the close on other endpoints is over too
                    cur.done[j] = True
        if close_event is not None:
            r.pace(close_event.t + close_event.dt)
        self._release()
        self._wait_delivered(None)
        self._abort_pending(None)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        worker, self._worker = self._worker, None
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=5)

    # ------------------------------------------------------------------ transfers
    def control_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                         data_or_wLength: bytes | int | None = None,
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        self._require_open("control_transfer")
        request: dict[str, Any] = {"bmRequestType": bmRequestType, "bRequest": bRequest, "wValue": wValue,
                                   "wIndex": wIndex}
        if bmRequestType & 0x80:
            request["wLength"] = int(data_or_wLength or 0)
        else:
            out = b"" if data_or_wLength is None or isinstance(data_or_wLength, int) else bytes(data_or_wLength)
            request.update(wLength=len(out), out=out)
        e = self._serve("control", request)
        if bmRequestType & 0x80:
            return e.bytes_of("in")
        return int(e.fields.get("length", 0))

    def read(self, endpoint: int, length: int, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        self._require_open("read")
        return self._serve("read", {"endpoint": endpoint, "length": length, "timeout": timeout}).bytes_of("data")

    def write(self, endpoint: int, data: bytes, timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        self._require_open("write")
        e = self._serve("write", {"endpoint": endpoint, "data": bytes(data), "timeout": timeout})
        return int(e.fields.get("length", 0))

    def _via_control(self, op: str, request: dict[str, Any]) -> bool:
        """True when the recording has control transfers where this call is (a capture, not a recorder)."""
        nxt = self._peek(op, request)
        return nxt is not None and nxt.op == "control"

    def get_report(self, report_type: int, report_id: int, length: int,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        self._require_open("get_report")
        request = {"report_type": report_type, "report_id": report_id, "length": length}
        if self._via_control("get_report", request):
            return super().get_report(report_type, report_id, length, timeout)
        return self._serve("get_report", request).bytes_of("data")

    def set_report(self, report_type: int, report_id: int, data: bytes,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        self._require_open("set_report")
        request = {"report_type": report_type, "report_id": report_id, "data": bytes(data)}
        if self._via_control("set_report", request):
            return super().set_report(report_type, report_id, data, timeout)
        return int(self._serve("set_report", request).fields.get("length", 0))

    def report_descriptor(self, interface: int | None = None, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        self._require_open("report_descriptor")
        if self._via_control("report_descriptor", {"interface": interface}):
            return super().report_descriptor(interface, timeout)
        return self._serve("report_descriptor", {"interface": interface}).bytes_of("data")

    # ------------------------------------------------------------------ asynchronous transfers
    def submit(self, endpoint: int, data_or_length: bytes | int, callback: TransferCallback | None = None,
               timeout: int = DEFAULT_TIMEOUT_MS, user_data: Any = None) -> Transfer:
        """Match the submit; the transfer completes from this transport's completion thread with the
        recorded status and data, once the replay has reached the recorded completion."""
        self._require_open("submit")
        if endpoint & 0x80:
            if isinstance(data_or_length, bool) or not isinstance(data_or_length, int) or data_or_length < 0:
                raise BadArgumentError(f"IN endpoint 0x{endpoint:02x}: give a length (int >= 0), not data")
            transfer = Transfer(endpoint, data_or_length, b"", timeout, callback, user_data)
            request: dict[str, Any] = {"endpoint": endpoint, "length": data_or_length, "timeout": timeout}
        else:
            if isinstance(data_or_length, int):
                raise BadArgumentError(f"OUT endpoint 0x{endpoint:02x}: give the bytes to write, not a length")
            payload = bytes(data_or_length)
            transfer = Transfer(endpoint, len(payload), payload, timeout, callback, user_data)
            request = {"endpoint": endpoint, "length": len(payload), "out": payload, "timeout": timeout}
        with self._cond:
            e = self._serve_submit(request)
            self._pending[int(e.fields["id"])] = transfer
        self._release()
        return transfer

    def _serve_submit(self, request: dict[str, Any]) -> Event:
        # _serve releases completions; a submit's own completion must find it pending, hence the
        # condition held around both (the completion thread takes it too).
        return self._serve("submit", request)

    def _release(self) -> None:
        """Queue the completions the replay has reached (recorded before the next expected call)."""
        r = self.replayer
        cur = r.cursor(self.device)
        with self._cond:
            if not self._pending:
                return
            with r.lock:
                horizon = cur.horizon()
            due = [(cur.completes[tid], tid) for tid in self._pending
                   if tid in cur.completes and cur.completes[tid].t <= horizon]
            for e, tid in sorted(due, key=lambda x: x[0].seq):  # in recorded order (Events do not compare)
                self._ready.append((e, self._pending.pop(tid)))
            if self._ready:
                if self._worker is None:
                    self._stop = False
                    self._worker = threading.Thread(target=self._deliver, name="dkproto-replay-complete",
                                                    daemon=True)
                    self._worker.start()
                self._cond.notify_all()

    def _deliver(self) -> None:
        while True:
            with self._cond:
                while not self._ready and not self._stop:
                    self._cond.wait()
                if not self._ready:
                    return
                e, transfer = self._ready.pop(0)
                self._delivering += 1
            try:
                self.replayer.pace(e.t + e.dt)
                with self.replayer.lock:
                    self.replayer.consumed.add(e.seq)
                data = e.bytes_of("data")
                error = None if e.ok else e.exception()
                transfer.complete(IOReturn.coerce(e.code), data, int(e.fields.get("actual_length", len(data))), error)
            finally:
                with self._cond:
                    self._delivering -= 1
                    self._cond.notify_all()

    def _wait_delivered(self, endpoint: int | None, wait_s: float = 5.0) -> None:
        deadline = time.monotonic() + wait_s
        with self._cond:
            while (self._delivering or any(endpoint is None or t.endpoint == endpoint for _, t in self._ready)) \
                    and self._worker is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def _abort_pending(self, endpoint: int | None) -> None:
        with self._cond:
            gone = [tid for tid, t in self._pending.items() if endpoint is None or t.endpoint == endpoint]
            transfers = [self._pending.pop(tid) for tid in gone]
        for t in transfers:
            t.complete(IOReturn.kIOReturnAborted, error=AbortedError(f"transfer on endpoint 0x{t.endpoint:02x} aborted"))

    def abort(self, endpoint: int | None = None) -> None:
        """Match the abort; the aborted transfers complete as recorded, before it returns."""
        self._require_open("abort")
        self._serve("abort", {"endpoint": endpoint})
        self._wait_delivered(endpoint)
        cur = self.replayer.cursor(self.device)
        with self._cond:
            unrecorded = [tid for tid, t in self._pending.items()
                          if (endpoint is None or t.endpoint == endpoint) and tid not in cur.completes]
            transfers = [self._pending.pop(tid) for tid in unrecorded]
        for t in transfers:
            t.complete(IOReturn.kIOReturnAborted, error=AbortedError(f"transfer on endpoint 0x{t.endpoint:02x} aborted"))

    # ------------------------------------------------------------------ USB management
    def _recorded_op(self, op: str) -> bool:
        return any(e.op == op for e in self.device.events)

    def set_configuration(self, bConfigurationValue: int) -> None:
        self._require_open("set_configuration")
        request = {"bConfigurationValue": bConfigurationValue}
        if self._via_control("set_configuration", request):
            self.control_transfer(0x00, 0x09, bConfigurationValue, 0, None)
            return
        self._serve("set_configuration", request)

    def get_configuration(self) -> int:
        self._require_open("get_configuration")
        if self._via_control("get_configuration", {}):
            return super().get_configuration()
        return int(self._serve("get_configuration", {}).fields.get("value", 0))

    def claim_interface(self, bInterfaceNumber: int) -> None:
        self._require_open("claim_interface")
        if self._recorded_op("claim_interface"):
            self._serve("claim_interface", {"bInterfaceNumber": bInterfaceNumber})

    def release_interface(self, bInterfaceNumber: int) -> None:
        self._require_open("release_interface")
        if self._recorded_op("release_interface"):
            self._serve("release_interface", {"bInterfaceNumber": bInterfaceNumber})

    def set_alternate_setting(self, bInterfaceNumber: int, bAlternateSetting: int) -> None:
        self._require_open("set_alternate_setting")
        request = {"bInterfaceNumber": bInterfaceNumber, "bAlternateSetting": bAlternateSetting}
        if self._via_control("set_alternate_setting", request):
            self.control_transfer(0x01, 0x0B, bAlternateSetting, bInterfaceNumber, None)
            return
        self._serve("set_alternate_setting", request)

    def clear_halt(self, endpoint: int) -> None:
        self._require_open("clear_halt")
        if self._via_control("clear_halt", {"endpoint": endpoint}):
            self.control_transfer(0x02, 0x01, 0, endpoint, None)
            return
        self._serve("clear_halt", {"endpoint": endpoint})

    def reset(self) -> None:
        self._require_open("reset")
        self._serve("reset", {})


class SerialReplayTransport(ReplayTransport):
    """A replayed serial port: the serial extras are served from the recording too."""

    def configure(self, *, baudrate: int | None = None, bytesize: int | None = None, parity: str | None = None,
                  stopbits: float | None = None, xonxoff: bool | None = None, rtscts: bool | None = None,
                  dsrdtr: bool | None = None) -> None:
        """Line settings, as recorded."""
        self._require_open("configure")
        self._serve("configure", {k: v for k, v in (("baudrate", baudrate), ("bytesize", bytesize),
                                                    ("parity", parity), ("stopbits", stopbits),
                                                    ("xonxoff", xonxoff), ("rtscts", rtscts),
                                                    ("dsrdtr", dsrdtr)) if v is not None})

    def set_dtr(self, level: bool) -> None:
        """DTR, as recorded."""
        self._require_open("set_dtr")
        self._serve("set_dtr", {"level": level})

    def set_rts(self, level: bool) -> None:
        """RTS, as recorded."""
        self._require_open("set_rts")
        self._serve("set_rts", {"level": level})

    def send_break(self, duration: float = 0.25) -> None:
        """A break, as recorded."""
        self._require_open("send_break")
        self._serve("send_break", {"duration": duration})

    def modem_lines(self) -> dict[str, bool]:
        """The recorded input lines."""
        self._require_open("modem_lines")
        value = self._serve("modem_lines", {}).fields.get("value", {})
        return {str(k): bool(v) for k, v in value.items()}

    def reset_input(self) -> None:
        """As recorded."""
        self._require_open("reset_input")
        self._serve("reset_input", {})

    def expect(self, pattern: bytes | str | re.Pattern[bytes], timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """:func:`dkproto.transport.serial.expect` served by the recorded reads it made.

        Not clock-driven: the recorded reads of endpoint 0x81 that come next are replayed (with
        their recorded length and timeout) until the pattern is seen; when they run out first, the
        recorded expect timed out, and so does this one, with the same message.
        """
        self._require_open("expect")
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(
            re.escape(pattern.encode() if isinstance(pattern, str) else bytes(pattern)))
        buf = b""
        while not regex.search(buf):
            nxt = self._peek("read", {"endpoint": 0x81})
            if nxt is None or nxt.op != "read" or nxt.fields.get("endpoint") != 0x81:
                raise DkTimeoutError(f"{self.info.url}: {regex.pattern!r} not seen within {timeout} ms; "
                                     f"last bytes: {buf[-64:]!r}")
            with contextlib.suppress(DkTimeoutError):
                buf += self.read(0x81, int(nxt.fields["length"]), int(nxt.fields["timeout"]))
        return buf


# ------------------------------------------------------------------------------------------ activation
def _strict_from(value: str | None, what: str) -> str:
    strict = (value or "order").strip().lower()
    if strict not in STRICT_MODES:
        raise BadArgumentError(f"{what}={value!r}: expected one of {', '.join(STRICT_MODES)}")
    return strict


@contextlib.contextmanager
def replaying(path: str | os.PathLike[str], strict: str = "order") -> Iterator[Replayer]:
    """While active, :func:`~dkproto.transport.open_transport` serves recorded devices from ``path``.

    Raises:
        SessionError: the file breaks a rule of the format.
        BadArgumentError: ``strict`` is not one of :data:`STRICT_MODES`.
    """
    replayer = Replayer(load_session(path), _strict_from(strict, "strict"))
    registry.OPEN_HOOKS.insert(0, replayer.hook)
    try:
        yield replayer
    finally:
        with contextlib.suppress(ValueError):
            registry.OPEN_HOOKS.remove(replayer.hook)


_env: dict[tuple[str, str], Replayer] = {}
_env_lock = threading.Lock()


def activate_from_environment() -> Replayer | None:
    """Replay ``$DKPROTO_REPLAY`` (strictness ``$DKPROTO_REPLAY_STRICT``) for the rest of this process
    (idempotent).

    Raises:
        SessionError, NotFoundError: the file does not load.
        BadArgumentError: a strictness that is not one of :data:`STRICT_MODES`.
    """
    path = os.environ.get(ENV_REPLAY, "")
    if not path:
        return None
    strict = _strict_from(os.environ.get(ENV_REPLAY_STRICT), ENV_REPLAY_STRICT)
    with _env_lock:
        key = (path, strict)
        if key in _env:
            return _env[key]
        replayer = Replayer(load_session(path), strict)
        _env[key] = replayer
        registry.OPEN_HOOKS.insert(0, replayer.hook)
    return replayer
