"""Where descriptor sets come from: files (four formats), the ``descriptors/`` library, live devices.

File formats, detected from the content (not the extension):

* **corpus JSON** (``descriptors/*.json``): an object with
  ``descriptors_hex`` (device descriptor + every configuration, the sysfs ``descriptors``
  layout) and optionally ``bos_descriptor_hex``; the other keys (``name``, ``source``,
  ``notes``...) are kept in ``DescriptorSet.meta``.
* **dkproto JSON** (``dkproto dump --format json``): the same keys at top level (plus
  ``strings``), so it reloads to identical bytes; see ``docs/json-format.md``.
* **raw binary** in the sysfs ``descriptors`` layout (``/sys/bus/usb/devices/*/descriptors``).
* **hex text**: hex digits with any spacing, ``0x`` prefixes, commas and ``#``/``//``
  comments; a line ``[bos]`` switches to the BOS blob, ``[descriptors]`` back,
  ``[extra]`` starts one standalone descriptor read outside the sysfs layout (device
  qualifier, hub class descriptor, other-speed configuration: ``DescriptorSet.extras``, as
  ``extra_descriptors_hex`` in JSON), ``[string LANGID INDEX]`` starts one string
  descriptor, ``[hid report INTERFACE]`` one HID report descriptor. ``dkproto dump --format hex``
  output is in this format.

Live devices are found by the USB transport (:func:`dkproto.transport.usb.find_devices`, which
opens nothing) and read through their ``usb://BUS/ADDRESS`` transport by :mod:`dkproto.usb.read`
(``read_device``, ``iter_live``; on Linux, a device that cannot be opened is read from sysfs
instead). This module reads files and bytes only, and imports no transport.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dkproto import _jsonload as jsonload
from dkproto._paths import find_file, read_file
from dkproto.errors import (
    BadArgumentError,
    DecodeError,
    NotFoundError,
    NotPermittedError,
)
from dkproto.usb.bounds import MAX_EXTRAS
from dkproto.usb.model import DescriptorSet
from dkproto.usb.parser import parse

__all__ = [
    "EMBEDDED_EXAMPLE",
    "MAX_FILE_BYTES",
    "from_bytes",
    "from_hex",
    "from_json",
    "load",
    "load_embedded_example",
    "load_folder",
    "resolve",
]

#: Package-data file of the example dumped when no device is attached.
EMBEDDED_EXAMPLE = "example-usb.json"

_HEX_COMMENT = re.compile(r"(#|//).*$")


# -- files -------------------------------------------------------------------------------

#: The longest descriptor file read: the largest descriptors blob a device can present
#: (:data:`~dkproto.usb.bounds.MAX_DESCRIPTORS`, 16,711,443 bytes) as spaced hex text (3
#: characters a byte) fits, with room for comments, a BOS and strings.
MAX_FILE_BYTES = 128 * 1024 * 1024

#: JSON keys whose values are recomputed on reload (the decoded tree, the complaints).
_RECOMPUTED = ("descriptors", "bos", "extra_descriptors", "errors", "warnings")


def resolve(target: str | os.PathLike[str]) -> Path:
    """The file ``target`` names: as given, or with ``.json`` added (``descriptors/<name>``).

    A path that exists but is not a regular file (a directory, a FIFO, a device) is returned as
    is: :func:`load` says what it is.

    Raises:
        NotFoundError: no such file.
        NotPermittedError: a folder on the path may not be searched.
    """
    found = find_file(target)
    if found is not None:
        return found
    path = Path(target)
    try:
        os.stat(path)
    except PermissionError as exc:
        raise NotPermittedError(f"{target}: permission denied ({exc.strerror})") from exc
    except (OSError, ValueError):
        raise NotFoundError(f"{target}: no such file (also tried {path.name}.json)") from None
    return path


def load(target: str | os.PathLike[str], *, lazy: bool = False) -> DescriptorSet:
    """Read a descriptor set from a file (any of the four formats; see the module docstring).

    Args:
        target: a file path; ``descriptors/<name>`` works with or without ``.json``.
        lazy: keep no tree of the descriptors (see :func:`dkproto.usb.parser.parse`); what
            ``dkproto dump`` uses, so that memory holds one configuration at a time.

    Raises:
        NotFoundError: the file does not exist.
        NotPermittedError: it may not be read.
        BadArgumentError: a directory, FIFO or device, or a file longer than :data:`MAX_FILE_BYTES`.
        DecodeError: the file is not in a known format (bad JSON, odd hex...), or holds more
            descriptor bytes than a device can present (docs/descriptors.md, "Bounds").
            Problems in the descriptor bytes themselves are not raised: they are in
            ``DescriptorSet.errors``.
    """
    path = resolve(target)
    if path.is_dir():
        raise BadArgumentError(f"{target}: is a directory, not a descriptor file; name one file in it "
                               "(or use load_folder())")
    data = read_file(path, max_bytes=MAX_FILE_BYTES)
    return from_bytes(data, source=str(path), lazy=lazy)


def load_folder(folder: str | os.PathLike[str]) -> dict[str, DescriptorSet]:
    """Every descriptor file of a folder (``descriptors/``), by name without extension.

    README and hidden files are skipped.
    """
    out: dict[str, DescriptorSet] = {}
    root = Path(folder)
    if not root.is_dir():
        raise NotFoundError(f"{folder}: no such folder")
    for path in sorted(root.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix.lower() in (".md", ".toml", ".py"):
            continue
        out[path.stem] = load(path)
    return out


def load_embedded_example() -> DescriptorSet:
    """The small real capture shipped as package data (shown when no device is attached)."""
    from importlib import resources  # here: importlib.resources is slow to import (start-up)

    data = resources.files("dkproto.data").joinpath(EMBEDDED_EXAMPLE).read_bytes()
    ds = from_bytes(data, source=f"embedded:{EMBEDDED_EXAMPLE}")
    ds.meta["embedded_example"] = True
    return ds


def _drop_nodes(pairs: list[tuple[str, Any]]) -> Any:
    """JSON object hook: a decoded node of a dkproto dump is recomputed on reload, so it is
    dropped as soon as it is read (reloading a large dump holds no decoded tree)."""
    keys = {k for k, _ in pairs}
    if {"descriptor", "name", "offset"} <= keys and "descriptors_hex" not in keys:
        return None
    return dict(pairs)


def from_bytes(data: bytes, *, source: str = "", lazy: bool = False) -> DescriptorSet:
    """Parse a file's content in whichever format it is (JSON, hex text or raw binary).

    A UTF-8 byte order mark before JSON or hex text is skipped.
    """
    text = _as_text(data)
    if text is not None and text.lstrip()[:1] == "{":
        obj = jsonload.loads(text, source=source or "JSON", object_pairs_hook=_drop_nodes)
        return from_json(obj, source=source, lazy=lazy)
    if text is not None:
        return from_hex(text, source=source, lazy=lazy)
    return parse(data, source=source, meta={"format": "binary"}, lazy=lazy)


def _as_text(data: bytes) -> str | None:
    """``data`` as text when it is UTF-8 (BOM allowed) with no control character but tab and
    newlines (JSON or hex text), else None (raw binary)."""
    if not data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return text if text.translate(_WHITESPACE).isprintable() else None


_WHITESPACE = {ord("\t"): None, ord("\n"): None, ord("\r"): None}


def _text_lines(text: str) -> Iterator[str]:
    """The lines of ``text`` one by one (no list of them all)."""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        if stop < 0:
            stop = end
        yield text[start:stop]
        start = stop + 1


def from_hex(text: str, *, source: str = "", lazy: bool = False) -> DescriptorSet:
    """Parse hex text (see the module docstring for the accepted layout)."""
    where = source or "hex text"
    blobs: dict[str, list[str]] = {"descriptors": [], "bos": []}
    strings: dict[tuple[int, int], list[str]] = {}
    extras: list[list[str]] = []
    reports: dict[int, list[str]] = {}
    current: list[str] = blobs["descriptors"]
    text = text.removeprefix("\ufeff")
    for lineno, line in enumerate(_text_lines(text), 1):
        stripped = line.strip()
        section = _SECTION.fullmatch(stripped)
        if section:
            word = section.group(1).lower()
            if word == "descriptors":
                current = blobs["descriptors"]
            elif word == "bos":
                current = blobs["bos"]
            elif word == "extra":
                if len(extras) >= MAX_EXTRAS:
                    raise DecodeError(f"line {lineno}: more than {MAX_EXTRAS} [extra] sections (a device "
                                      "qualifier, a hub descriptor and one other-speed configuration per "
                                      "configuration)", descriptor=where, rule="[extra]")
                current = []
                extras.append(current)
            elif section.group(4) is not None:
                number = _int_or_none(section.group(4))
                if number is None or not 0 <= number <= 255:
                    raise DecodeError(f"line {lineno}: HID report section {stripped[:40]!r}: the interface "
                                      "number is 0..255", descriptor=where, rule="[hid report INTERFACE]")
                if number in reports:
                    raise DecodeError(f"line {lineno}: a second [hid report {number}] section", descriptor=where,
                                      rule="[hid report INTERFACE]")
                current = reports.setdefault(number, [])
            else:
                try:
                    key = (int(section.group(2), 0), int(section.group(3), 0))
                except ValueError as exc:
                    raise DecodeError(f"line {lineno}: bad string section {stripped[:40]!r}",
                                      descriptor=where, rule="[string LANGID INDEX]") from exc
                if not (0 <= key[0] <= 0xFFFF and 0 <= key[1] <= 255):
                    raise DecodeError(f"line {lineno}: string section {stripped[:40]!r}: the LANGID is 16 bits "
                                      "and the index 8 bits", descriptor=where, rule="[string LANGID INDEX]")
                if key in strings:
                    raise DecodeError(f"line {lineno}: a second [string 0x{key[0]:04x} {key[1]}] section",
                                      descriptor=where, rule="[string LANGID INDEX]")
                current = strings.setdefault(key, [])
            continue
        body = _HEX_COMMENT.sub("", line)
        body = _HEX_NOISE.sub("", body)
        if not body:
            continue
        bad = _NOT_HEX.search(body)
        if bad:
            raise DecodeError(f"line {lineno}: {bad.group(0)!r} is not a hex digit", descriptor=where,
                              rule="hex text")
        current.append(body)
    out: dict[str, bytes] = {}
    for name, parts in (*blobs.items(), *((f"string {k}", v) for k, v in strings.items()),
                        *((f"extra {i + 1}", v) for i, v in enumerate(extras)),
                        *((f"hid report {k}", v) for k, v in reports.items())):
        joined = "".join(parts)
        if len(joined) % 2:
            raise DecodeError(f"{name}: odd number of hex digits ({len(joined)})", descriptor=where,
                              rule="hex text")
        out[name] = bytes.fromhex(joined)
    str_bytes = {k: out[f"string {k}"] for k in strings}
    # an empty [extra] section holds no descriptor: nothing to walk
    extra_bytes = [out[f"extra {i + 1}"] for i in range(len(extras)) if out[f"extra {i + 1}"]]
    return parse(out["descriptors"], out["bos"] or None, strings=str_bytes, extras=extra_bytes, source=source,
                 meta={"format": "hex"}, lazy=lazy,
                 hid_report_descriptors={k: out[f"hid report {k}"] for k in reports})


def _int_or_none(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


_SECTION = re.compile(r"\[\s*(descriptors|bos|extra|string\s+(\S+)\s+(\S+)|hid\s+report\s+(\S+))\s*\]",
                      re.IGNORECASE)
_HEX_NOISE = re.compile(r"0[xX]|[\s,;:]")
_NOT_HEX = re.compile(r"[^0-9a-fA-F]")


def from_json(obj: Any, *, source: str = "", lazy: bool = False) -> DescriptorSet:
    """Parse a corpus JSON or dkproto JSON object (already loaded).

    Raises:
        DecodeError: a key of the wrong type or range (the message names the key).
    """
    where = source or "JSON"
    if not isinstance(obj, dict) or "descriptors_hex" not in obj:
        raise DecodeError("JSON has no 'descriptors_hex' key: not a corpus or dkproto descriptor file",
                          descriptor=where, rule="descriptors_hex")

    def bad(key: str, what: str) -> DecodeError:
        return DecodeError(f"{key}: {what}", descriptor=where, rule=key)

    def hexfield(key: str, value: Any) -> bytes:
        if value is None or value == "":
            return b""
        if not isinstance(value, str):
            raise bad(key, f"is {_json_type(value)}, not a hex string")
        try:
            return bytes.fromhex(value)
        except ValueError as exc:
            raise bad(key, f"not hex: {exc}") from exc

    def listfield(key: str) -> list[Any]:
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise bad(key, f"is {_json_type(value)}, not a list")
        return value

    descriptors = hexfield("descriptors_hex", obj.get("descriptors_hex"))
    bos = hexfield("bos_descriptor_hex", obj.get("bos_descriptor_hex"))
    strings: dict[tuple[int, int], bytes] = {}
    for i, item in enumerate(listfield("strings")):
        key = f"strings[{i}]"
        if not isinstance(item, dict):
            raise bad(key, f"is {_json_type(item)}, not an object with langid, index and hex")
        numbers = []
        for name, limit in (("langid", 0xFFFF), ("index", 255)):
            value = item.get(name)
            if type(value) is not int or not 0 <= value <= limit:
                raise bad(f"{key}.{name}", f"{_json_type(value)} {str(value)[:20]}: needs an integer "
                                          f"0..{limit}")
            numbers.append(value)
        string_id = (numbers[0], numbers[1])
        if string_id in strings:
            raise bad(key, f"a second string with langid {numbers[0]} and index {numbers[1]}")
        strings[string_id] = hexfield(f"{key}.hex", item.get("hex"))
    extras = [hexfield(f"extra_descriptors_hex[{i}]", h) for i, h in enumerate(listfield("extra_descriptors_hex"))]
    reports: dict[int, bytes] = {}
    for i, item in enumerate(listfield("hid_report_descriptors")):
        key = f"hid_report_descriptors[{i}]"
        number = item.get("interface") if isinstance(item, dict) else None
        if type(number) is not int or not 0 <= number <= 255:
            raise bad(key, "needs an object with interface (an integer 0..255) and hex")
        if number in reports:
            raise bad(key, f"a second report descriptor for interface {number}")
        reports[number] = hexfield(f"{key}.hex", item.get("hex"))
    if "meta" in obj and not isinstance(obj["meta"], dict):
        raise bad("meta", f"is {_json_type(obj['meta'])}, not an object")
    ours = obj.get("format") == "dkproto-descriptors"
    skip = {"descriptors_hex", "bos_descriptor_hex", "strings", "extra_descriptors_hex", "hid_report_descriptors",
            *_RECOMPUTED, "format", "version", "meta", "provenance"}
    if ours:
        skip.add("source")  # the path it was dumped from, not provenance
    meta = {k: v for k, v in obj.items() if k not in skip}
    if isinstance(obj.get("meta"), dict):
        meta.update(obj["meta"])
    if "provenance" in obj:
        meta["source"] = obj["provenance"]
    meta["format"] = "dkproto-json" if ours else "corpus-json"
    return parse(descriptors, bos or None, strings=strings, extras=extras, source=source, meta=meta, lazy=lazy,
                 hid_report_descriptors=reports)


def _json_type(value: Any) -> str:
    """A JSON value's type, as JSON names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


# -- live devices ------------------------------------------------------------------------
