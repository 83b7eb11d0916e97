"""The session format v1: events, their fields, one line of text each, and the hostile-input-safe loader.

A session file (``*.jsonl``, ``docs/session-format.md``) is UTF-8 JSON Lines: a header line, then
one event per line, in the order the calls ended. This module is pure (no I/O but reading the
file): :func:`load_session` / :func:`loads_session` parse and check every line against the rules
of :data:`OPS`; :func:`event_line` / :func:`header_line` write them back byte for byte.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from dkproto._paths import os_errors
from dkproto.errors import BadArgumentError, DkError, error_for_ioreturn
from dkproto.ioreturn import IOReturn

__all__ = [
    "FORMAT",
    "MAX_DEVICES",
    "MAX_EVENTS",
    "MAX_LINE_BYTES",
    "MAX_SECONDS",
    "OPS",
    "VERSION",
    "DeviceRecord",
    "Event",
    "FieldSpec",
    "Session",
    "SessionError",
    "check_fields",
    "dumps_session",
    "event_line",
    "header_line",
    "load_session",
    "loads_session",
    "status_code",
    "status_name",
]

#: The header's ``format``.
FORMAT = "dkproto-session"
#: The format version this module reads and writes.
VERSION = 1
#: A line longer than this (32 MiB: a 16 MiB transfer in hex) is refused.
MAX_LINE_BYTES = 32 << 20
#: A session with more events than this (two million) is refused.
MAX_EVENTS = 2_000_000
#: A session with more devices than this is refused.
MAX_DEVICES = 4096
#: ``t`` and ``dt`` are at most this many seconds (about 31 years).
MAX_SECONDS = 1e9
#: Lengths, timeouts and transfer ids are integers 0..MAX_UINT.
MAX_UINT = 0xFFFFFFFF
#: Deepest nesting of arrays and objects in a line (``info.extra`` is the deepest part dkproto writes).
MAX_DEPTH = 16

_HEX = re.compile(r"(?:[0-9a-f]{2})*")
_STATUS_HEX = re.compile(r"0x[0-9a-f]{8}")


class SessionError(BadArgumentError):
    """A session file (or text) that breaks a rule of the format: names the source, the line and the rule.

    Attributes:
        source: the file name (``<string>`` for text).
        line: the 1-based line number (None for the whole file).
        rule: the rule broken (``JSON``, ``seq``, ``read.endpoint``, ...).
    """

    def __init__(self, message: str, *, source: str, line: int | None = None, rule: str = "",
                 **kw: Any) -> None:
        self.source = source
        self.line = line
        self.rule = rule
        where = f"{source} line {line}" if line is not None else source
        super().__init__(f"{where}: {message}" + (f" (rule: {rule})" if rule else ""), **kw)


# ------------------------------------------------------------------------------------------ ops
@dataclass(frozen=True)
class FieldSpec:
    """One field of an op: its name, its kind and whether a request must carry it.

    Kinds: ``u8`` (0..255), ``u16`` (0..65535), ``uint`` (0..:data:`MAX_UINT`), ``u8?`` (u8 or
    null), ``hex`` (lowercase hex bytes), ``str``, ``bool``, ``num`` (a finite number >= 0),
    ``obj`` (an object), ``lines`` (an object of booleans).
    """

    name: str
    kind: str
    required: bool = True


def _f(name: str, kind: str, required: bool = True) -> FieldSpec:
    return FieldSpec(name, kind, required)


#: op -> (request fields, response fields), in the order they are written.
OPS: dict[str, tuple[tuple[FieldSpec, ...], tuple[FieldSpec, ...]]] = {
    "open": ((_f("url", "str"), _f("scheme", "str")), (_f("info", "obj"),)),
    "close": ((), ()),
    "control": ((_f("bmRequestType", "u8"), _f("bRequest", "u8"), _f("wValue", "u16"), _f("wIndex", "u16"),
                 _f("wLength", "u16"), _f("out", "hex", False), _f("by", "str", False)),
                (_f("in", "hex", False), _f("length", "uint"))),
    "read": ((_f("endpoint", "u8"), _f("length", "uint"), _f("timeout", "uint")), (_f("data", "hex"),)),
    "write": ((_f("endpoint", "u8"), _f("data", "hex"), _f("timeout", "uint")), (_f("length", "uint"),)),
    "get_report": ((_f("report_type", "u8"), _f("report_id", "u8"), _f("length", "uint")), (_f("data", "hex"),)),
    "set_report": ((_f("report_type", "u8"), _f("report_id", "u8"), _f("data", "hex")), (_f("length", "uint"),)),
    "report_descriptor": ((_f("interface", "u8?"),), (_f("data", "hex"),)),
    "submit": ((_f("id", "uint"), _f("endpoint", "u8"), _f("length", "uint"), _f("out", "hex", False),
                _f("timeout", "uint")), ()),
    "complete": ((_f("id", "uint"), _f("endpoint", "u8")), (_f("actual_length", "uint"), _f("data", "hex", False))),
    "abort": ((_f("endpoint", "u8?"),), ()),
    "set_configuration": ((_f("bConfigurationValue", "u8"),), ()),
    "get_configuration": ((), (_f("value", "u8"),)),
    "claim_interface": ((_f("bInterfaceNumber", "u8"),), ()),
    "release_interface": ((_f("bInterfaceNumber", "u8"),), ()),
    "set_alternate_setting": ((_f("bInterfaceNumber", "u8"), _f("bAlternateSetting", "u8")), ()),
    "clear_halt": ((_f("endpoint", "u8"),), ()),
    "reset": ((), ()),
    "configure": ((_f("baudrate", "uint", False), _f("bytesize", "u8", False), _f("parity", "str", False),
                   _f("stopbits", "num", False), _f("xonxoff", "bool", False), _f("rtscts", "bool", False),
                   _f("dsrdtr", "bool", False)), ()),
    "set_dtr": ((_f("level", "bool"),), ()),
    "set_rts": ((_f("level", "bool"),), ()),
    "send_break": ((_f("duration", "num"),), ()),
    "modem_lines": ((), (_f("value", "lines"),)),
    "reset_input": ((), ()),
}

_KIND_TEXT = {"u8": "an integer 0..255", "u16": "an integer 0..65535", "uint": f"an integer 0..{MAX_UINT}",
              "u8?": "an integer 0..255 or null", "hex": "lowercase hex bytes (a string)", "str": "a string",
              "bool": "true or false", "num": "a finite number >= 0", "obj": "an object",
              "lines": "an object of true/false values"}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _kind_ok(kind: str, v: Any) -> bool:
    if kind in ("u8", "u16", "uint", "u8?"):
        if v is None:
            return kind == "u8?"
        hi = {"u8": 0xFF, "u8?": 0xFF, "u16": 0xFFFF, "uint": MAX_UINT}[kind]
        return _is_int(v) and 0 <= v <= hi
    if kind == "hex":
        return isinstance(v, str) and _HEX.fullmatch(v) is not None
    if kind == "str":
        return isinstance(v, str)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "num":
        return (_is_int(v) or isinstance(v, float)) and math.isfinite(v) and v >= 0
    if kind == "obj":
        return isinstance(v, dict)
    if kind == "lines":
        return isinstance(v, dict) and all(isinstance(x, bool) for x in v.values())
    return False  # pragma: no cover - every kind of OPS is handled above


def status_name(status: IOReturn | int) -> str:
    """The ``status`` text of an IOReturn: its name (``kIOReturnTimeout``), or ``0x%08x`` when unnamed."""
    code = IOReturn.coerce(int(status))
    return code.name if isinstance(code, IOReturn) else f"0x{code:08x}"


def status_code(name: str) -> int | None:
    """The IOReturn of a ``status`` text, or None when it is neither a name nor ``0x%08x``."""
    if _STATUS_HEX.fullmatch(name):
        return int(name, 16)
    member = IOReturn.__members__.get(name)
    return int(member) if member is not None else None


def check_fields(op: str, fields: Mapping[str, Any], ok: bool = True) -> str | None:
    """What is wrong with an event's ``fields`` for ``op`` (None when nothing is): ``"rule: text"``.

    ``ok`` is whether the call succeeded: response fields are required then, and the fields must
    agree with each other (a control IN's ``in`` fits ``wLength``, a read's ``data`` its ``length``...).
    """
    spec = OPS.get(op)
    if spec is None:
        return f"op: unknown op {op!r} (known: {', '.join(OPS)})"
    request, response = spec
    known = {f.name: f for f in request + response}
    for name, value in fields.items():
        f = known.get(name)
        if f is None:
            return f"{op}.{name}: unknown field {name!r} for op {op}"
        if not _kind_ok(f.kind, value):
            shown = json.dumps(value)[:40] if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
            return f"{op}.{name}: must be {_KIND_TEXT[f.kind]}, got {shown}"
    for f in request:
        if f.required and f.name not in fields:
            return f"{op}.{f.name}: field {f.name!r} missing"
    if ok:
        optional = {"control": {"in"}, "complete": {"data"}}.get(op, set())
        for f in response:
            if f.name not in fields and f.name not in optional:
                return f"{op}.{f.name}: a successful {op} has {f.name!r}"
    elif op == "complete" and "actual_length" not in fields:
        return "complete.actual_length: field 'actual_length' missing"
    return _check_consistency(op, fields, ok)


def _nbytes(fields: Mapping[str, Any], name: str) -> int:
    return len(fields[name]) // 2


def _check_consistency(op: str, f: Mapping[str, Any], ok: bool) -> str | None:
    if op == "control":
        if f["bmRequestType"] & 0x80:
            if "out" in f:
                return "control.out: an IN request (bmRequestType bit 7 set) has no 'out'"
            if ok and "in" not in f:
                return "control.in: a successful IN request has 'in'"
            if "in" in f and _nbytes(f, "in") > f["wLength"]:
                return f"control.in: {_nbytes(f, 'in')} bytes, more than wLength {f['wLength']}"
            if ok and f["length"] != _nbytes(f, "in"):
                return f"control.length: {f['length']} is not the {_nbytes(f, 'in')} bytes of 'in'"
        else:
            if "out" not in f:
                return "control.out: an OUT request (bmRequestType bit 7 clear) has 'out' (\"\" for no data)"
            if "in" in f:
                return "control.in: an OUT request has no 'in'"
            if f["wLength"] != _nbytes(f, "out"):
                return f"control.wLength: {f['wLength']} is not the {_nbytes(f, 'out')} bytes of 'out'"
    elif op in ("read", "get_report") and ok and _nbytes(f, "data") > f["length"]:
        return f"{op}.data: {_nbytes(f, 'data')} bytes, more than the {f['length']} asked for"
    elif op == "submit" and ok:
        if f["endpoint"] & 0x80:
            if "out" in f:
                return "submit.out: an IN transfer has no 'out'"
        elif "out" not in f:
            return "submit.out: an OUT transfer has 'out'"
        elif f["length"] != _nbytes(f, "out"):
            return f"submit.length: {f['length']} is not the {_nbytes(f, 'out')} bytes of 'out'"
    elif op == "complete":
        if f["endpoint"] & 0x80:
            if "data" not in f:
                return "complete.data: an IN completion has 'data'"
            if f["actual_length"] != _nbytes(f, "data"):
                return f"complete.actual_length: {f['actual_length']} is not the {_nbytes(f, 'data')} bytes of 'data'"
        elif "data" in f:
            return "complete.data: an OUT completion has no 'data'"
    return None


# ------------------------------------------------------------------------------------------ model
@dataclass
class Event:
    """One call on one device, as one line of the session.

    Attributes:
        seq: 0, 1, 2... in file order.
        t: seconds since the session started when the call began.
        dt: how long the call took, in seconds.
        dev: the device index (assigned at its first ``open``).
        op: the operation (a key of :data:`OPS`).
        fields: the op's request and response fields, as in the file (bytes as hex text).
        status: the IOReturn name (``kIOReturnSuccess``) or ``0x%08x``.
        error: the error's one-line message on failure.
        line: the line of the file (not compared; None for events made in memory).
    """

    seq: int
    t: float
    dt: float
    dev: int
    op: str
    fields: dict[str, Any] = field(default_factory=dict)
    status: str = "kIOReturnSuccess"
    error: str | None = None
    line: int | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.status == "kIOReturnSuccess"

    @property
    def code(self) -> int:
        """The status as an IOReturn code."""
        code = status_code(self.status)
        return int(IOReturn.kIOReturnError) if code is None else code

    def exception(self) -> DkError:
        """The DkError the call raised (:func:`~dkproto.errors.error_for_ioreturn` of the status)."""
        return error_for_ioreturn(self.code, self.error or "")

    def bytes_of(self, name: str) -> bytes:
        """A hex field as bytes (``b""`` when absent)."""
        value = self.fields.get(name)
        return bytes.fromhex(value) if isinstance(value, str) else b""

    def request(self) -> dict[str, Any]:
        """The request fields only (what the caller asked), in the op's order."""
        spec = OPS.get(self.op, ((), ()))[0]
        return {f.name: self.fields[f.name] for f in spec if f.name in self.fields}


@dataclass
class DeviceRecord:
    """One device of a session: numbered in the order devices were first opened.

    Attributes:
        index: the ``dev`` of its events.
        url: the URL it was opened with.
        scheme: the scheme of the transport that served it.
        info: ``TransportInfo.as_dict()`` of the first successful open (None when it never opened).
        events: its events, in file order.
    """

    index: int
    url: str
    scheme: str
    info: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)


@dataclass
class Session:
    """A loaded session: header, events, devices and what the loader had to say.

    Attributes:
        header: the header line's object.
        events: every event, in file order.
        devices: one per ``dev`` index.
        complaints: problems that did not stop loading (a cut last line).
        source: the file name (``<string>`` for text).
    """

    header: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    devices: list[DeviceRecord] = field(default_factory=list)
    complaints: list[str] = field(default_factory=list)
    source: str = "<string>"


# ------------------------------------------------------------------------------------------ writing
def _canonical(op: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields in the op's order (unknown ones last, as given)."""
    request, response = OPS.get(op, ((), ()))
    out = {f.name: fields[f.name] for f in request + response if f.name in fields}
    out.update((k, v) for k, v in fields.items() if k not in out)
    return out


def header_line(header: Mapping[str, Any]) -> str:
    """The header as its line of text (no newline)."""
    return json.dumps(dict(header), separators=(",", ":"))


def event_line(event: Event) -> str:
    """An event as its line of text (no newline): keys in the format's order, ``t`` and ``dt`` with 6 decimals."""
    head = (f'{{"seq":{event.seq},"t":{event.t:.6f},"dt":{event.dt:.6f},"dev":{event.dev},'
            f'"op":{json.dumps(event.op)}')
    rest: dict[str, Any] = _canonical(event.op, event.fields)
    rest["status"] = event.status
    if event.error is not None:
        rest["error"] = event.error
    return head + "," + json.dumps(rest, separators=(",", ":"))[1:]


def dumps_session(session: Session) -> str:
    """The session as text: header, then every event, one line each (a loaded file gives its text back)."""
    return "".join(line + "\n" for line in [header_line(session.header), *map(event_line, session.events)])


# ------------------------------------------------------------------------------------------ loading
class _Duplicate(Exception):
    pass


def _pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _depth(v: Any, level: int = 1) -> int:
    if isinstance(v, dict):
        return max((_depth(x, level + 1) for x in v.values()), default=level)
    if isinstance(v, list):
        return max((_depth(x, level + 1) for x in v), default=level)
    return level - 1


class _Loader:
    """Checks lines one by one and builds the session."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.session = Session(header={}, source=source)
        self.submits: dict[int, Event] = {}
        self.completed: set[int] = set()

    def error(self, line: int, rule: str, message: str) -> SessionError:
        return SessionError(message, source=self.source, line=line, rule=rule)

    def parse_json(self, raw: bytes, line: int) -> Any:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(line, "UTF-8", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                                            f"{exc.start + 1})") from None
        if line == 1 and text.startswith("\ufeff"):
            text = text[1:]
        try:
            obj = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
        except _Duplicate as exc:
            raise self.error(line, "JSON", f"key {exc.args[0]!r} given twice") from None
        except json.JSONDecodeError as exc:
            raise self.error(line, "JSON", f"not valid JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise self.error(line, "JSON", "JSON nested too deep") from None
        except ValueError as exc:  # NaN/Infinity, a number past the int-string limit
            raise self.error(line, "JSON", f"not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise self.error(line, "JSON", f"a line is one JSON object, not {type(obj).__name__}")
        if _depth(obj) > MAX_DEPTH:
            raise self.error(line, "JSON", f"objects nested deeper than {MAX_DEPTH}")
        return obj

    def header(self, obj: dict[str, Any], line: int) -> None:
        if obj.get("format") != FORMAT:
            raise self.error(line, "header.format", f"not a dkproto session: the first line's \"format\" is "
                                                    f"{json.dumps(obj.get('format'))[:60]}, not \"{FORMAT}\"")
        version = obj.get("version")
        if not _is_int(version):
            raise self.error(line, "header.version", "\"version\" must be an integer")
        if version != VERSION:
            raise self.error(line, "header.version", f"version {version} is not supported (this dkproto reads "
                                                     f"version {VERSION})")
        for key, ok, what in (("created", isinstance(obj.get("created"), str), "a string"),
                              ("dkproto", isinstance(obj.get("dkproto"), str), "a string"),
                              ("argv", isinstance(obj.get("argv"), list)
                               and all(isinstance(a, str) for a in obj.get("argv", [])), "a list of strings"),
                              ("clock", isinstance(obj.get("clock"), str), "a string")):
            if not ok:
                raise self.error(line, f"header.{key}", f"\"{key}\" must be {what}")
        self.session.header = obj

    def event(self, obj: dict[str, Any], line: int) -> None:
        s = self.session
        if len(s.events) >= MAX_EVENTS:
            raise self.error(line, "size", f"more than {MAX_EVENTS:,} events")
        for key in ("seq", "t", "dt", "dev", "op", "status"):
            if key not in obj:
                raise self.error(line, key, f"an event has {key!r}")
        seq, t, dt, dev, op, status = (obj[k] for k in ("seq", "t", "dt", "dev", "op", "status"))
        if not _is_int(seq) or seq != len(s.events):
            raise self.error(line, "seq", f"seq {json.dumps(seq)[:30]} out of order, expected {len(s.events)}")
        for key, value in (("t", t), ("dt", dt)):
            if not (_is_int(value) or isinstance(value, float)) or not 0 <= value <= MAX_SECONDS:
                raise self.error(line, key, f"{key!r} must be seconds 0..{MAX_SECONDS:g}, got {json.dumps(value)[:30]}")
        if not _is_int(dev) or not 0 <= dev < MAX_DEVICES:
            raise self.error(line, "dev", f"'dev' must be an integer 0..{MAX_DEVICES - 1}, got {json.dumps(dev)[:30]}")
        if not isinstance(op, str) or op not in OPS:
            raise self.error(line, "op", f"unknown op {json.dumps(op)[:40]} (known: {', '.join(OPS)})")
        if not isinstance(status, str) or status_code(status) is None:
            raise self.error(line, "status", f"'status' must be an IOReturn name or 0x%08x, got "
                                             f"{json.dumps(status)[:60]}")
        error = obj.get("error")
        ok = status == "kIOReturnSuccess"
        if "error" in obj and (ok or not isinstance(error, str)):
            raise self.error(line, "error", "'error' is a string, and only on a failed call")
        fields = {k: v for k, v in obj.items() if k not in ("seq", "t", "dt", "dev", "op", "status", "error")}
        problem = check_fields(op, fields, ok)
        if problem is not None:
            rule, _, text = problem.partition(": ")
            raise self.error(line, rule, text)
        event = Event(seq, float(t), float(dt), dev, op, fields, status, error, line)
        self.place(event, line)
        s.events.append(event)

    def place(self, e: Event, line: int) -> None:
        s = self.session
        if e.op == "open":
            if e.dev == len(s.devices):
                s.devices.append(DeviceRecord(e.dev, e.fields["url"], e.fields["scheme"]))
            elif e.dev > len(s.devices):
                raise self.error(line, "dev", f"device {e.dev} opened before device {len(s.devices)}")
            elif s.devices[e.dev].url != e.fields["url"]:
                raise self.error(line, "open.url", f"device {e.dev} was opened as {s.devices[e.dev].url!r}, "
                                                   f"not {e.fields['url']!r}")
            device = s.devices[e.dev]
            if device.info is None and e.ok and "info" in e.fields:
                device.info = e.fields["info"]
        elif e.dev >= len(s.devices):
            raise self.error(line, "dev", f"device {e.dev} is used before it is opened")
        if e.op == "submit":
            tid = e.fields["id"]
            if tid in self.submits:
                raise self.error(line, "submit.id", f"transfer id {tid} used twice (line {self.submits[tid].line})")
            self.submits[tid] = e
        elif e.op == "complete":
            tid = e.fields["id"]
            sub = self.submits.get(tid)
            if sub is None or not sub.ok:
                raise self.error(line, "complete.id", f"transfer id {tid} completes but was not submitted before")
            if sub.dev != e.dev or sub.fields["endpoint"] != e.fields["endpoint"]:
                raise self.error(line, "complete.id", f"transfer id {tid} was submitted on device {sub.dev} "
                                                      f"endpoint 0x{sub.fields['endpoint']:02x}")
            if tid in self.completed:
                raise self.error(line, "complete.id", f"transfer id {tid} completes twice")
            self.completed.add(tid)
        s.devices[e.dev].events.append(e)


def _lines(f: IO[bytes], source: str) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes without the newline, whether a newline ended it), bounded."""
    number = 0
    while True:
        raw = f.readline(MAX_LINE_BYTES + 2)
        if not raw:
            return
        number += 1
        ended = raw.endswith(b"\n")
        body = raw[:-1] if ended else raw
        if len(body) > MAX_LINE_BYTES:
            raise SessionError(f"longer than {MAX_LINE_BYTES:,} bytes", source=source, line=number, rule="size")
        yield number, body, ended


def _load(lines: Iterator[tuple[int, bytes, bool]], source: str) -> Session:
    loader = _Loader(source)
    pending: tuple[int, bytes, bool] | None = None
    for item in lines:
        if pending is not None:
            _take(loader, *pending, last=False)
        pending = item
    if pending is None:
        raise SessionError("empty: no header line", source=source, line=None, rule="header")
    _take(loader, *pending, last=True)
    if not loader.session.header:
        raise SessionError("no header line", source=source, line=1, rule="header")
    return loader.session


def _take(loader: _Loader, number: int, raw: bytes, ended: bool, *, last: bool) -> None:
    if not raw.strip():
        raise loader.error(number, "JSON", "empty line")
    try:
        obj = loader.parse_json(raw, number)
    except SessionError:
        if last and not ended and number > 1:  # an interrupted writer's last line
            loader.session.complaints.append(
                f"{loader.source} line {number}: cut short ({len(raw):,} bytes, no newline; an interrupted "
                "recording?): ignored")
            return
        raise
    if number == 1:
        loader.header(obj, number)
    else:
        loader.event(obj, number)


def load_session(path: str | os.PathLike[str]) -> Session:
    """Load and check a session file.

    Raises:
        SessionError: a line breaks a rule of the format (the message names the file, line and rule).
        NotFoundError, NotPermittedError, BadArgumentError: no such file, no access, not a regular file.
    """
    name = os.fspath(path)
    with os_errors(name, what="session file", is_directory="is a directory; a session is a .jsonl file"):
        st = os.stat(name)
        if not stat.S_ISREG(st.st_mode):
            raise BadArgumentError(f"{name}: is {'a directory' if stat.S_ISDIR(st.st_mode) else 'not a regular file'}"
                                   "; a session is a .jsonl file")
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            session = _load(_lines(f, name), name)
    return session


def loads_session(text: str | bytes, source: str = "<string>") -> Session:
    """Load and check a session from its text (the rules of :func:`load_session`)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)

    def lines() -> Iterator[tuple[int, bytes, bool]]:
        start, number = 0, 0
        while start < len(data):
            end = data.find(b"\n", start)
            number += 1
            body = data[start:] if end < 0 else data[start:end]
            if len(body) > MAX_LINE_BYTES:
                raise SessionError(f"longer than {MAX_LINE_BYTES:,} bytes", source=source, line=number, rule="size")
            yield number, body, end >= 0
            if end < 0:
                return
            start = end + 1

    return _load(lines(), source)
