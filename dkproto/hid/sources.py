"""Where report descriptors (and recorded reports) come from: files of every usual format.

:func:`load` accepts:

* the corpus JSON format (``report_descriptor_hex``, optional ``input_reports_hex``);
* hid-recorder recordings (``R: <len> <hex...>`` descriptor lines, ``E: <sec.usec> <len> <hex...>``
  event lines; ``N:``/``I:``/``P:`` give name, bus/VID/PID and physical path; with several
  devices (``D: <n>`` lines) the first one is taken unless ``device=`` says otherwise);
* the kernel's debugfs ``rdesc`` (its first line of hex bytes);
* hex text in any common spelling (``05 01 09 02``, ``0x05, 0x01,``, ``050109``), with ``#``,
  ``//`` and ``/* */`` comments;
* raw binary, which is also what Linux's sysfs ``report_descriptor`` file holds.

A string that is not an existing path but is hex is taken as the descriptor itself.

Bounds: a file is read only when it is a regular file of at most :data:`MAX_SOURCE_BYTES`; text
must be UTF-8 (a BOM is skipped; UTF-16 with its BOM is read too); JSON goes through
:func:`dkproto._jsonload.loads` (nesting, number length). Every failure is one
:class:`~dkproto.errors.DkError` naming the file and the line, offset or key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

from dkproto._jsonload import loads as json_loads
from dkproto._paths import find_file, read_file
from dkproto.errors import DecodeError, NotFoundError

__all__ = ["MAX_SOURCE_BYTES", "Source", "load", "parse_hex", "parse_recording"]

#: Largest file :func:`load` reads: a descriptor is at most 65535 bytes (``wDescriptorLength``);
#: this leaves room for an hour-long hid-recorder recording of a 125 Hz mouse (~16 MB of text).
MAX_SOURCE_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class Source:
    """A report descriptor and what came with it.

    Attributes:
        descriptor: the report descriptor bytes.
        reports: recorded input reports (report ID byte included when used).
        timestamps: seconds of each report, when the source has them (hid-recorder).
        name: the device name, when known.
        origin: ``json``, ``hid-recorder``, ``rdesc``, ``hex``, ``binary`` or ``argument``.
        vid, pid, bus: when known.
    """

    descriptor: bytes
    reports: list[bytes] = dc_field(default_factory=list)
    timestamps: list[float] = dc_field(default_factory=list)
    name: str = ""
    origin: str = ""
    vid: int | None = None
    pid: int | None = None
    bus: int | None = None


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_HEX_SEPARATORS = frozenset(" \t\r\n,;:-{}[]")
_HEX_PREFIX = re.compile(r"0[xX]([0-9a-fA-F]{1,2})\b")


def _strip_comments(text: str, what: str) -> str:
    """``/* */``, ``//`` and ``#`` comments replaced by spaces (same length, so offsets hold).

    Linear: each comment is found with ``str.find`` (a ``/\\*.*?\\*/`` regex rescans the rest of
    the text for every unclosed ``/*``)."""
    out: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        i = pos
        while i < n and text[i] not in "/#":
            i += 1
        out.append(text[pos:i])
        if i >= n:
            break
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise DecodeError("/* comment never closed", offset=i, descriptor=what, rule="hex")
            end += 2
        elif text.startswith("//", i) or text[i] == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
        else:
            end = i + 1
            out.append("/")
            pos = end
            continue
        out.append(" " * (end - i))
        pos = end
    return "".join(out)


def parse_hex(text: str, what: str = "hex text") -> bytes:
    """Bytes from hex text in any common spelling.

    Raises:
        DecodeError: not a string, a character that is not hex, or an odd number of digits
            (offset = the character's position in the text).
    """
    if not isinstance(text, str):
        raise DecodeError(f"expected hex text, got {type(text).__name__}", descriptor=what, rule="hex")
    cleaned = _HEX_PREFIX.sub(lambda m: m.group(1).rjust(2, "0") + " " * (len(m.group(0)) - 2),
                              _strip_comments(text, what))
    digits = []
    for i, ch in enumerate(cleaned):
        if ch in _HEX_DIGITS:
            digits.append(ch)
        elif ch not in _HEX_SEPARATORS:
            raise DecodeError(f"{ch!r} is not a hex digit", offset=i, descriptor=what, rule="hex")
    if len(digits) % 2:
        raise DecodeError(f"odd number of hex digits ({len(digits)})", offset=len(text), descriptor=what,
                          rule="hex")
    return bytes.fromhex("".join(digits))


def _hex_bytes(tokens: list[str], lineno: int, tag: str) -> bytes:
    """Bytes of an ``R:``/``E:`` line: each token one or two hex digits."""
    out = bytearray()
    for k, tok in enumerate(tokens):
        if not 1 <= len(tok) <= 2 or any(ch not in _HEX_DIGITS for ch in tok):
            raise DecodeError(f"{tag}: line, byte {k + 1}: {tok[:20]!r} is not a hex byte", offset=lineno,
                              descriptor="hid-recorder", rule=f"{tag}: bytes")
        out.append(int(tok, 16))
    return bytes(out)


def _count(tok: str, lineno: int, tag: str) -> int:
    if not tok.isdigit() or len(tok) > 9:
        raise DecodeError(f"{tag}: line: byte count {tok[:20]!r} is not a number of bytes", offset=lineno,
                          descriptor="hid-recorder", rule=f"{tag}: length")
    return int(tok)


def parse_recording(text: str, device: int | None = None) -> Source:
    """Parse a hid-recorder recording.

    Args:
        text: the recording.
        device: which ``D:`` device to take (default: the first one seen).

    Raises:
        DecodeError: no ``R:`` line, or a malformed ``R:``/``E:``/``D:`` line (offset = line number).
    """
    src = Source(b"", origin="hid-recorder")
    cur = 0
    want = device
    desc: bytes | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tag, _, rest = line.partition(":")
        parts = rest.split()
        if tag == "D":
            if not parts or not parts[0].isdigit() or len(parts[0]) > 9:
                raise DecodeError(f"bad D: line {line[:40]!r}: expected a device number", offset=lineno,
                                  descriptor="hid-recorder", rule="D:")
            cur = int(parts[0])
            continue
        if want is None:
            want = cur
        if cur != want:
            continue
        if tag == "N":
            src.name = rest.strip()
        elif tag == "I":
            try:
                src.bus, src.vid, src.pid = (int(p, 16) for p in parts[:3])
            except ValueError:
                pass  # informational only
        elif tag == "R":
            if not parts:
                raise DecodeError("R: line without a byte count", offset=lineno, descriptor="hid-recorder",
                                  rule="R: length")
            n = _count(parts[0], lineno, "R")
            data = _hex_bytes(parts[1:], lineno, "R")
            if len(data) != n:
                raise DecodeError(f"R: line declares {n} bytes but has {len(data)}", offset=lineno,
                                  descriptor="hid-recorder", rule="R: length")
            desc = data
        elif tag == "E":
            if len(parts) < 2:
                raise DecodeError("E: line needs a timestamp and a byte count", offset=lineno,
                                  descriptor="hid-recorder", rule="E: length")
            try:
                ts = float(parts[0])
            except ValueError:
                raise DecodeError(f"E: line: timestamp {parts[0][:20]!r} is not a number", offset=lineno,
                                  descriptor="hid-recorder", rule="E: timestamp") from None
            n = _count(parts[1], lineno, "E")
            data = _hex_bytes(parts[2:], lineno, "E")
            if len(data) != n:
                raise DecodeError(f"E: line declares {n} bytes but has {len(data)}", offset=lineno,
                                  descriptor="hid-recorder", rule="E: length")
            src.reports.append(data)
            src.timestamps.append(ts)
    if desc is None:
        raise DecodeError("no R: (report descriptor) line in the recording", descriptor="hid-recorder")
    src.descriptor = desc
    return src


def _json_str(d: dict[str, Any], key: str, what: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise DecodeError(f"key {key!r} must be a string, not {type(v).__name__}", descriptor=what, rule=key)
    return v


def _json_id(d: dict[str, Any], key: str, what: str) -> int | None:
    v = _json_str(d, key, what)
    if not v:
        return None
    if not re.fullmatch(r"(0[xX])?[0-9a-fA-F]{1,4}", v):
        raise DecodeError(f"key {key!r} must be 1 to 4 hex digits, not {v[:20]!r}", descriptor=what, rule=key)
    return int(v, 16)


def _from_json(text: str, what: str) -> Source:
    d = json_loads(text, source=what)
    if not isinstance(d, dict):
        raise DecodeError(f"expected a JSON object, got {type(d).__name__}", descriptor=what, rule="JSON")
    desc = _json_str(d, "report_descriptor_hex", what)
    if desc is None:
        raise DecodeError("JSON has no report_descriptor_hex", descriptor=what, rule="report_descriptor_hex")
    reports = d.get("input_reports_hex") or []
    if not isinstance(reports, list):
        raise DecodeError(f"key 'input_reports_hex' must be a list of hex strings, not {type(reports).__name__}",
                          descriptor=what, rule="input_reports_hex")
    return Source(
        parse_hex(desc, f"{what}: report_descriptor_hex"),
        [parse_hex(r, f"{what}: input_reports_hex[{i}]") for i, r in enumerate(reports)],
        name=_json_str(d, "name", what) or "",
        origin="json",
        vid=_json_id(d, "vid", what),
        pid=_json_id(d, "pid", what),
    )


# [ \t]* rather than \s*: \s also matches newlines, so `^\s*R:` rescans every run of blank lines
# from each of its lines (quadratic on a file of newlines).
_RECORDING = re.compile(r"^[ \t]*R:[ \t]*\d", re.MULTILINE)
_RDESC_REPORT = re.compile(r"^[ \t]*(INPUT|OUTPUT|FEATURE)(\(\d+\))?\[", re.MULTILINE)
_RECORDING_TAG = re.compile(r"^[ \t]*[RENID]:", re.MULTILINE)


def _from_text(text: str, what: str) -> Source:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return _from_json(text, what)
        except DecodeError:
            if "0x" not in text and "0X" not in text:
                raise
            try:  # a C array of bytes: {0x05, 0x01, ...}
                return Source(parse_hex(text, what), origin="hex")
            except DecodeError:
                pass
            raise
    if _RECORDING.search(text):
        return parse_recording(text)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and _RDESC_REPORT.search(text):
        return Source(parse_hex(lines[0], what), origin="rdesc")
    return Source(parse_hex(text, what), origin="hex")


# Bytes no text file holds (C0 controls other than \t \n \v \f \r, and DEL). Every real report
# descriptor has some: its Usage Page item's prefix is 0x05, 0x06 or 0x07.
_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\x0b\x0c\r") + b"\x7f"


def _as_text(raw: bytes, what: str) -> str | None:
    """The file as text, or None when it is binary.

    Raises:
        DecodeError: text (a BOM, or no control bytes) that is not valid UTF-8 / UTF-16.
    """
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if raw.startswith(bom):
            body = raw[len(bom):]
            break
    else:
        if raw.translate(None, _CONTROL) != raw:
            return None
        body, bom, codec = raw, b"", "utf-8"
    try:
        return body.decode(codec)
    except UnicodeDecodeError as exc:
        if not bom and raw.isascii():  # pragma: no cover - ASCII always decodes
            raise
        where = exc.start + len(bom)
        raise DecodeError(f"text that is not {codec.upper()}: byte 0x{raw[where]:02x} cannot start a character "
                          "here", offset=where, descriptor=what, rule="encoding") from None


def load(source: str | Path | bytes, *, device: int | None = None) -> Source:
    """Load a report descriptor from a file path, a hex string or bytes (see the module doc).

    Args:
        source: a path, a hex string, or the descriptor bytes.
        device: for hid-recorder recordings of several devices, which one.

    Raises:
        NotFoundError: a path that does not exist (and is not hex either).
        BadArgumentError: not a regular file, or over :data:`MAX_SOURCE_BYTES`.
        DecodeError: the content is in none of the formats, with the offset of the problem.
    """
    if isinstance(source, (bytes, bytearray)):
        return Source(bytes(source), origin="binary")
    if not isinstance(source, (str, Path)):
        raise DecodeError(f"expected a path, hex text or bytes, got {type(source).__name__}",
                          descriptor="report descriptor source", rule="type")
    found = find_file(source)  # descriptors/hid/<name> works without .json, as for dkproto dump
    if found is None:
        s = str(source)
        if re.fullmatch(r"[\s0-9a-fA-Fx,]+", s) and re.search(r"[0-9a-fA-F]{2}", s):
            return Source(parse_hex(s, "argument"), origin="argument")
        shown = s if len(s) <= 80 and s.isprintable() else repr(s[:80]) + ("..." if len(s) > 80 else "")
        raise NotFoundError(f"{shown}: no such file (and not a hex descriptor)")
    p = found
    raw = read_file(p, max_bytes=MAX_SOURCE_BYTES)
    what = str(p)
    # A descriptor can be text by chance (rare); text formats must parse, else binary.
    if p.suffix == ".bin" or p.name == "report_descriptor":
        return Source(raw, origin="binary")
    text = _as_text(raw, what)
    if text is None:
        return Source(raw, origin="binary")
    if device is not None and _RECORDING_TAG.search(text):
        return parse_recording(text, device)
    try:
        return _from_text(text, what)
    except DecodeError:
        stripped = text.lstrip()
        if (raw.isascii() and not stripped.startswith(("{", "["))
                and any(ch not in "0123456789abcdefABCDEFxX \t\r\n,;:" for ch in text)
                and not _RECORDING_TAG.search(text)):
            # Not hex, JSON nor a recording: binary that happens to be ASCII.
            return Source(raw, origin="binary")
        raise
