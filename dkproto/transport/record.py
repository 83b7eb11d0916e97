"""Recording: every call a program makes on its transports, and the answers, into a session file.

``with recording("session.jsonl"):`` (or ``DKPROTO_RECORD=session.jsonl`` in the environment, or
``dkproto record session.jsonl -- CMD...``) makes every :func:`~dkproto.transport.open_transport`
of this process return a :class:`RecordTransport` around the real transport; each call it
forwards becomes one line of the session (``docs/session-format.md``), written when the call
ends: control transfers with their SETUP fields, reads, writes, HID reports, the report
descriptor, asynchronous submits and their completions (written from the completion thread),
aborts, the USB management calls and the serial extras. A failed call is recorded with its
status and error, and raised as it was.

``record+URL?record=PATH`` wraps one transport by URL. Devices are numbered in the order they
are first opened.

The transfers a transport makes on its own inside a call (``usb://`` reading the string
descriptors of ``info`` while it is opened, or the serial number ``?serial=`` matches) reach the
recorder through :attr:`~dkproto.transport.base.Transport.internal_observer`, which a
:class:`RecordTransport` sets on the transport it wraps; each is a ``control`` event with a
``by`` field (``"info"``, ``"open"``). Those made inside ``open`` are written right after the
``open`` event (which is written when ``open`` returns), in the order they happened; their ``t``
lies within the open's ``t`` .. ``t + dt``.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, TypeVar

from dkproto.capture import PcapngSessionSink
from dkproto.errors import DkError
from dkproto.ioreturn import IOReturn
from dkproto.session import SessionWriter
from dkproto.session.format import check_fields, status_name
from dkproto.transport import registry
from dkproto.transport.base import DEFAULT_TIMEOUT_MS, Transfer, TransferCallback, Transport, TransportWrapper
from dkproto.transport.url import split_wrapper_url, url_error

__all__ = ["GRAMMAR", "RecordTransport", "Recorder", "SerialRecordTransport", "activate_from_environment",
           "record_transport", "recording"]

GRAMMAR = "record+ANY-TRANSPORT-URL?record=PATH (e.g. record+sim://loopback?record=session.jsonl)"

#: The environment variable that records every transport of a process (and the one naming that process).
ENV_RECORD, ENV_RECORD_PID = "DKPROTO_RECORD", "DKPROTO_RECORD_PID"

_R = TypeVar("_R")
_OPS = {"control_transfer": "control"}


class Recorder:
    """One session being written: its file, and the numbering of devices and transfers.

    Args:
        path: the session file (created, or emptied); a path ending in ``.pcapng`` records
            straight to a usbmon pcapng capture for Wireshark (``docs/capture.md``) instead.
        argv: the command line for the header (default ``sys.argv``).
    """

    def __init__(self, path: str | os.PathLike[str], argv: Sequence[str] | None = None) -> None:
        self.writer: SessionWriter | PcapngSessionSink
        if str(path).lower().endswith(".pcapng"):
            self.writer = PcapngSessionSink(path)
        else:
            self.writer = SessionWriter(path, argv)
        self.path = self.writer.path
        self._lock = threading.Lock()
        self._devices = 0
        self._ids = 0

    @property
    def devices(self) -> int:
        """Devices recorded so far."""
        return self._devices

    @property
    def events(self) -> int:
        """Events written so far."""
        return self.writer.events

    def new_device(self) -> int:
        """The next device index."""
        with self._lock:
            self._devices += 1
            return self._devices - 1

    def new_id(self) -> int:
        """The next transfer id."""
        with self._lock:
            self._ids += 1
            return self._ids - 1

    def hook(self, cls: type[Transport], url: str, build: Callable[[], Transport]) -> Transport:
        """The open hook (:data:`dkproto.transport.registry.OPEN_HOOKS`): wrap what ``build`` makes."""
        return record_transport(build(), self, url)

    def close(self) -> None:
        """Close the file."""
        self.writer.close()


def _jsonable(value: Any) -> Any:
    """``info`` as JSON can hold it: anything else becomes text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return str(value)


def _hexable(value: Any) -> bytes | None:
    try:
        return bytes(memoryview(value))
    except TypeError:
        return None


class RecordTransport(TransportWrapper):
    """Forwards every call to ``inner`` and writes it, with its answer or error, to the session.

    Args:
        inner: the real transport.
        recorder: the session (a :class:`Recorder`).
        url: the URL the device was opened with (default ``inner.info.url``); replay matches on it.
    """

    scheme: ClassVar[str] = "record"
    grammar: ClassVar[str] = GRAMMAR

    def __init__(self, inner: Transport, recorder: Recorder, url: str | None = None) -> None:
        super().__init__(inner)
        self.recorder = recorder
        self.url = url
        self.dev: int | None = None
        #: While ``open`` runs: the transfers the inner transport made on its own, not yet written.
        self._opening: list[tuple[float, float, dict[str, Any], IOReturn | int, str | None]] | None = None
        previous = inner.internal_observer  # through any wrappers, to the transport that talks to the device

        def observe(op: str, fields: dict[str, Any], outcome: Any) -> None:
            self._internal_transfer(op, fields, outcome)
            if previous is not None:
                previous(op, fields, outcome)

        inner.internal_observer = observe

    @classmethod
    def from_url(cls, url: str) -> RecordTransport:
        """``record+INNER://...?record=PATH``: the inner transport from the rest of the URL."""
        inner_url, path = split_wrapper_url(url, "record", "record", GRAMMAR)
        if not path:
            raise url_error(url, "give the session file with ?record=PATH", GRAMMAR)
        inner = registry.open_transport(inner_url)
        return record_transport(inner, recorder_for(path), inner_url)

    # ------------------------------------------------------------------ writing
    def _write(self, op: str, t: float, fields: dict[str, Any], status: IOReturn | int = IOReturn.kIOReturnSuccess,
               error: str | None = None, dt: float | None = None) -> None:
        if self.dev is None:
            return
        ok = status == IOReturn.kIOReturnSuccess
        if check_fields(op, {k: (v.hex() if isinstance(v, bytes) else v) for k, v in fields.items()}, ok):
            return  # arguments no session can hold (an endpoint of 300...): the call fails as it would anyway
        took = self.recorder.writer.now() - t if dt is None else dt
        event: dict[str, Any] = {"t": t, "dt": took, "dev": self.dev, "op": op, **fields,
                                 "status": status_name(status)}
        if not ok:
            event["error"] = error or ""
        self.recorder.writer.append(event)

    def _internal_transfer(self, op: str, fields: dict[str, Any], outcome: Any) -> None:
        """The inner transport's observer: one transfer it made on its own (``fields["by"]`` says
        why), written as its op with ``by``; buffered while ``open`` runs (see the module)."""
        name = _OPS.get(op, op)
        if self.dev is None or name != "control":
            return
        request = _fields(name, fields)
        if request is None:
            return
        request["by"] = str(fields.get("by") or "info")
        writer = self.recorder.writer
        started = float(fields.get("started", writer.start + writer.now()))
        t = max(started - writer.start, 0.0)
        dt = max(float(fields.get("ended", started)) - started, 0.0)
        item: tuple[float, float, dict[str, Any], IOReturn | int, str | None]
        if isinstance(outcome, DkError):
            item = (t, dt, request, outcome.ioreturn, outcome.message)
        else:
            item = (t, dt, {**request, **_answer(name, fields, outcome)}, IOReturn.kIOReturnSuccess, None)
        if self._opening is not None:
            self._opening.append(item)
        elif self.is_open:
            self._write(name, item[0], item[2], item[3], item[4], dt=item[1])

    def _flush_opening(self) -> None:
        pending, self._opening = self._opening or [], None
        for t, dt, fields, status, error in pending:
            self._write("control", t, fields, status, error, dt=dt)

    def _record(self, op: str, fields: dict[str, Any] | None, fn: Callable[[], _R],
                answer: Callable[[_R], dict[str, Any]]) -> _R:
        """Run ``fn`` and write ``op`` with ``fields`` and ``answer(result)``; ``fields`` None: do not record."""
        if fields is None or not self.is_open or self.dev is None:
            return fn()
        t = self.recorder.writer.now()
        try:
            result = fn()
        except DkError as exc:
            self._write(op, t, fields, exc.ioreturn, exc.message)
            raise
        except Exception as exc:
            self._write(op, t, fields, IOReturn.kIOReturnError, f"{type(exc).__name__}: {exc}")
            raise
        self._write(op, t, {**fields, **answer(result)})
        return result

    def _call(self, op: str, args: dict[str, Any], fn: Callable[[], _R]) -> _R:
        if op == "open":
            return self._record_open(fn)
        if op == "close":
            if self.dev is None:
                return fn()
            t = self.recorder.writer.now()
            try:
                return fn()
            finally:
                self._write("close", t, {})
        name = _OPS.get(op, op)
        return self._record(name, _fields(name, args), fn, lambda result: _answer(name, args, result))

    def _record_open(self, fn: Callable[[], _R]) -> _R:
        if self.dev is None:
            self.dev = self.recorder.new_device()
        url = self.url if self.url is not None else self.inner.info.url
        fields: dict[str, Any] = {"url": url, "scheme": self.inner.scheme or type(self.inner).__name__}
        t = self.recorder.writer.now()
        self._opening = []  # the transfers open and info make on their own: written after the open event
        try:
            try:
                result = fn()
            except DkError as exc:
                self._write("open", t, fields, exc.ioreturn, exc.message)
                raise
            except Exception as exc:
                self._write("open", t, fields, IOReturn.kIOReturnError, f"{type(exc).__name__}: {exc}")
                raise
            try:
                info = _jsonable(self.inner.info.as_dict())
            except DkError:
                info = {"url": url, "scheme": fields["scheme"]}
            self._write("open", t, {**fields, "info": info})
        finally:
            self._flush_opening()
        return result

    # ------------------------------------------------------------------ asynchronous transfers
    def submit(self, endpoint: int, data_or_length: bytes | int, callback: TransferCallback | None = None,
               timeout: int = DEFAULT_TIMEOUT_MS, user_data: Any = None) -> Transfer:
        """Submit through the inner transport; the submit is written when it returns, the
        completion (same ``id``) from the completion thread, always after the submit."""
        payload = None if isinstance(data_or_length, int) else _hexable(data_or_length)
        if not self.is_open or self.dev is None or (payload is None and not isinstance(data_or_length, int)):
            return self.inner.submit(endpoint, data_or_length, callback, timeout, user_data)
        tid = self.recorder.new_id()
        written = threading.Event()

        def completed(transfer: Transfer) -> None:
            written.wait(5.0)
            fields: dict[str, Any] = {"id": tid, "endpoint": transfer.endpoint, "actual_length": transfer.actual_length}
            if transfer.is_in:
                data = bytes(transfer.data or b"")
                fields["data"] = data
                fields["actual_length"] = len(data)
            error = transfer.error.message if transfer.error is not None else None
            # when it completed (set before a waiter wakes), not when this thread got to write it
            done_at = transfer.timestamp_ns / 1e9 - self.recorder.writer.start if transfer.timestamp_ns else None
            now = self.recorder.writer.now()
            t = now if done_at is None else min(max(done_at, 0.0), now)
            with contextlib.suppress(DkError, OSError):
                self._write("complete", t, fields, transfer.status, error, dt=0.0)
            if callback is not None:
                callback(transfer)

        fields: dict[str, Any] = {"id": tid, "endpoint": endpoint}
        if payload is None:
            fields["length"] = data_or_length
        else:
            fields.update(length=len(payload), out=payload)
        fields["timeout"] = timeout
        try:
            return self._record("submit", fields, lambda: self.inner.submit(endpoint, data_or_length, completed,
                                                                            timeout, user_data), lambda _: {})
        finally:
            written.set()


class SerialRecordTransport(RecordTransport):
    """A :class:`RecordTransport` around a serial port: the serial extras are recorded too, and
    :meth:`expect` is made of recorded reads (so a replay serves it)."""

    def configure(self, *, baudrate: int | None = None, bytesize: int | None = None, parity: str | None = None,
                  stopbits: float | None = None, xonxoff: bool | None = None, rtscts: bool | None = None,
                  dsrdtr: bool | None = None) -> None:
        """Change line settings (``SerialTransport.configure``)."""
        kw = {k: v for k, v in (("baudrate", baudrate), ("bytesize", bytesize), ("parity", parity),
                                ("stopbits", stopbits), ("xonxoff", xonxoff), ("rtscts", rtscts),
                                ("dsrdtr", dsrdtr)) if v is not None}
        self._call("configure", kw, lambda: self.inner.configure(**kw))  # type: ignore[attr-defined]

    def set_dtr(self, level: bool) -> None:
        """Drive DTR."""
        self._call("set_dtr", {"level": level}, lambda: self.inner.set_dtr(level))  # type: ignore[attr-defined]

    def set_rts(self, level: bool) -> None:
        """Drive RTS."""
        self._call("set_rts", {"level": level}, lambda: self.inner.set_rts(level))  # type: ignore[attr-defined]

    def send_break(self, duration: float = 0.25) -> None:
        """Send a break for ``duration`` seconds."""
        self._call("send_break", {"duration": duration},
                   lambda: self.inner.send_break(duration))  # type: ignore[attr-defined]

    def modem_lines(self) -> dict[str, bool]:
        """Input lines: CTS, DSR, RI, CD."""
        return self._call("modem_lines", {}, lambda: dict(self.inner.modem_lines()))  # type: ignore[attr-defined]

    def reset_input(self) -> None:
        """Drop what waits in the receive buffer."""
        self._call("reset_input", {}, lambda: self.inner.reset_input())  # type: ignore[attr-defined]

    def expect(self, pattern: bytes | str | re.Pattern[bytes], timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """Read until ``pattern`` appears (:func:`dkproto.transport.serial.expect` over this transport's
        own :meth:`read`, so every read is recorded)."""
        from dkproto.transport.serial import expect

        self._require_open("expect")
        return expect(self, pattern, timeout)


def _fields(op: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """The request fields of a call (None when its arguments cannot be written: the call is not recorded)."""
    if op == "control":
        rt, data = args["bmRequestType"], args["data_or_wLength"]
        fields = {k: args[k] for k in ("bmRequestType", "bRequest", "wValue", "wIndex")}
        if rt & 0x80:
            fields["wLength"] = int(data or 0)
        else:
            payload = b"" if data is None else _hexable(data)
            if payload is None:
                return None
            fields.update(wLength=len(payload), out=payload)
        return fields
    out = {}
    for key, value in args.items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value)
        out[key] = value
    return out


def _answer(op: str, args: dict[str, Any], result: Any) -> dict[str, Any]:
    """The response fields of a call that returned ``result``."""
    if op == "control":
        if args["bmRequestType"] & 0x80:
            data = bytes(result)
            return {"in": data, "length": len(data)}
        return {"length": int(result)}
    if op in ("read", "get_report", "report_descriptor"):
        return {"data": bytes(result)}
    if op in ("write", "set_report"):
        return {"length": int(result)}
    if op in ("get_configuration", "modem_lines"):
        return {"value": result}
    return {}


def record_transport(inner: Transport, recorder: Recorder, url: str | None = None) -> RecordTransport:
    """A :class:`RecordTransport` around ``inner`` (a :class:`SerialRecordTransport` for a serial port)."""
    if hasattr(inner, "configure") and hasattr(inner, "expect"):
        return SerialRecordTransport(inner, recorder, url)
    return RecordTransport(inner, recorder, url)


# ---------------------------------------------------------------------------------- activation
_by_path: dict[str, Recorder] = {}
_lock = threading.Lock()


def recorder_for(path: str | os.PathLike[str]) -> Recorder:
    """The recorder of ``path`` in this process (started, and the file emptied, on first use)."""
    key = os.path.abspath(os.fspath(path))
    with _lock:
        rec = _by_path.get(key)
        if rec is None:
            rec = _by_path[key] = Recorder(path)
        return rec


@contextlib.contextmanager
def recording(path: str | os.PathLike[str], argv: Sequence[str] | None = None) -> Iterator[Recorder]:
    """While active, every :func:`~dkproto.transport.open_transport` in this process returns a
    :class:`RecordTransport` writing to ``path`` (created, or emptied). Yields the :class:`Recorder`."""
    rec = Recorder(path, argv)
    registry.OPEN_HOOKS.append(rec.hook)
    try:
        yield rec
    finally:
        with contextlib.suppress(ValueError):
            registry.OPEN_HOOKS.remove(rec.hook)
        rec.close()


_env: dict[str, Recorder | None] = {}


def activate_from_environment() -> Recorder | None:
    """Start recording to ``$DKPROTO_RECORD`` for the rest of this process (idempotent).

    One process records a session: the first to open a transport marks the environment of its
    children with ``DKPROTO_RECORD_PID``; a child then records nothing and says so once on stderr.
    """
    path = os.environ.get(ENV_RECORD, "")
    if not path:
        return None
    with _lock:
        if path in _env:
            return _env[path]
        owner = os.environ.get(ENV_RECORD_PID)
        if owner and owner != str(os.getpid()):
            _env[path] = None
            print(f"dkproto: {ENV_RECORD}={path} is recorded by process {owner}; the transports of process "
                  f"{os.getpid()} are not recorded", file=sys.stderr)
            return None
        rec = Recorder(path)
        _env[path] = rec
        os.environ[ENV_RECORD_PID] = str(os.getpid())
    registry.OPEN_HOOKS.append(rec.hook)
    atexit.register(rec.close)
    return rec
