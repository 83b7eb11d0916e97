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
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

from dkproto._paths import find_file
from dkproto.errors import DecodeError, NotFoundError

__all__ = ["Source", "load", "parse_hex", "parse_recording"]


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


_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*|#[^\n]*", re.DOTALL)


def parse_hex(text: str, what: str = "hex text") -> bytes:
    """Bytes from hex text in any common spelling.

    Raises:
        DecodeError: a character that is not hex, or an odd number of digits (offset = the
            character's position in the text).
    """
    cleaned = _COMMENTS.sub(" ", text)
    cleaned = re.sub(r"0[xX]([0-9a-fA-F]{1,2})\b", lambda m: m.group(1).rjust(2, "0"), cleaned)
    digits = []
    for i, ch in enumerate(cleaned):
        if ch in "0123456789abcdefABCDEF":
            digits.append(ch)
        elif ch in " \t\r\n,;:-{}[]":
            continue
        else:
            raise DecodeError(f"{ch!r} is not a hex digit", offset=i, descriptor=what, rule="hex")
    if len(digits) % 2:
        raise DecodeError(f"odd number of hex digits ({len(digits)})", offset=len(text), descriptor=what,
                          rule="hex")
    return bytes.fromhex("".join(digits))


def parse_recording(text: str, device: int | None = None) -> Source:
    """Parse a hid-recorder recording.

    Args:
        text: the recording.
        device: which ``D:`` device to take (default: the first one seen).

    Raises:
        DecodeError: no ``R:`` line, or a malformed ``R:``/``E:`` line (offset = line number).
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
        rest = rest.strip()
        if tag == "D":
            try:
                cur = int(rest.split()[0])
            except (ValueError, IndexError) as exc:
                raise DecodeError(f"bad D: line {line!r}", offset=lineno, descriptor="hid-recorder") from exc
            continue
        if want is None:
            want = cur
        if cur != want:
            continue
        if tag == "N":
            src.name = rest
        elif tag == "I":
            parts = rest.split()
            try:
                src.bus, src.vid, src.pid = (int(p, 16) for p in parts[:3])
            except ValueError:
                pass
        elif tag == "R":
            parts = rest.split()
            try:
                n = int(parts[0])
                data = bytes(int(p, 16) for p in parts[1:])
            except (ValueError, IndexError) as exc:
                raise DecodeError(f"bad R: line: {exc}", offset=lineno, descriptor="hid-recorder") from exc
            if len(data) != n:
                raise DecodeError(f"R: line declares {n} bytes but has {len(data)}", offset=lineno,
                                  descriptor="hid-recorder", rule="R: length")
            desc = data
        elif tag == "E":
            parts = rest.split()
            try:
                ts = float(parts[0])
                n = int(parts[1])
                data = bytes(int(p, 16) for p in parts[2:])
            except (ValueError, IndexError) as exc:
                raise DecodeError(f"bad E: line: {exc}", offset=lineno, descriptor="hid-recorder") from exc
            if len(data) != n:
                raise DecodeError(f"E: line declares {n} bytes but has {len(data)}", offset=lineno,
                                  descriptor="hid-recorder", rule="E: length")
            src.reports.append(data)
            src.timestamps.append(ts)
    if desc is None:
        raise DecodeError("no R: (report descriptor) line in the recording", descriptor="hid-recorder")
    src.descriptor = desc
    return src


def _from_text(text: str, what: str) -> Source:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DecodeError(f"not valid JSON: {exc.msg}", offset=exc.pos, descriptor=what) from exc
        if "report_descriptor_hex" not in d:
            raise DecodeError("JSON has no report_descriptor_hex", descriptor=what)
        return Source(
            parse_hex(d["report_descriptor_hex"], what),
            [parse_hex(r, what) for r in d.get("input_reports_hex") or []],
            name=d.get("name", ""),
            origin="json",
            vid=int(d["vid"], 16) if d.get("vid") else None,
            pid=int(d["pid"], 16) if d.get("pid") else None,
        )
    if re.search(r"^\s*R:\s*\d+", text, re.MULTILINE):
        return parse_recording(text)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and re.search(r"^\s*(INPUT|OUTPUT|FEATURE)(\(\d+\))?\[", text, re.MULTILINE):
        return Source(parse_hex(lines[0], what), origin="rdesc")
    return Source(parse_hex(text, what), origin="hex")


def load(source: str | Path | bytes, *, device: int | None = None) -> Source:
    """Load a report descriptor from a file path, a hex string or bytes (see the module doc).

    Args:
        source: a path, a hex string, or the descriptor bytes.
        device: for hid-recorder recordings of several devices, which one.

    Raises:
        NotFoundError: a path that does not exist (and is not hex either).
        DecodeError: the content is in none of the formats, with the offset of the problem.
    """
    if isinstance(source, (bytes, bytearray)):
        return Source(bytes(source), origin="binary")
    found = find_file(source)  # descriptors/hid/<name> works without .json, as for dkproto dump
    if found is None:
        s = str(source)
        if re.fullmatch(r"[\s0-9a-fA-Fx,]+", s) and re.search(r"[0-9a-fA-F]{2}", s):
            return Source(parse_hex(s, "argument"), origin="argument")
        raise NotFoundError(f"{s}: no such file (and not a hex descriptor)")
    p = found
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise NotFoundError(f"{p}: {exc.strerror}") from exc
    what = str(p)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return Source(raw, origin="binary")
    # A descriptor can be pure ASCII by chance (rare); text formats must parse, else binary.
    if p.suffix == ".bin" or p.name == "report_descriptor":
        return Source(raw, origin="binary")
    if device is not None and re.search(r"^\s*R:", text, re.MULTILINE):
        return parse_recording(text, device)
    try:
        return _from_text(text, what)
    except DecodeError:
        if any(ch not in "0123456789abcdefABCDEFxX \t\r\n,;:" for ch in text) and "{" not in text[:1]:
            # Not hex and not a recording: it is binary that happens to be ASCII.
            if not re.search(r"^\s*[RENID]:", text, re.MULTILINE):
                return Source(raw, origin="binary")
        raise
