"""Descriptor sets a device side serves: built from parts, read from files, checked for framing.

Every device side serves a :class:`dkproto.usb.DescriptorSet`. A set made from a device
descriptor, configuration blobs and US-English strings (:func:`set_from_parts`) or read from a
descriptor file (:func:`load_set`: the four formats of :func:`dkproto.usb.load`, plus the lab
capture format's ``"strings": {"1": "text"}`` object) is checked first
(:func:`split_descriptors`): a device descriptor, then configurations that each hold exactly
``wTotalLength`` bytes, as a device must present them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dkproto.errors import BadArgumentError, DecodeError

if TYPE_CHECKING:
    from dkproto.usb import DescriptorSet

__all__ = [
    "US_ENGLISH",
    "langid_list",
    "load_set",
    "set_from_json",
    "set_from_parts",
    "split_descriptors",
    "string_descriptor",
]

#: LANGID 0x0409, English (United States): the language of strings given as plain text.
US_ENGLISH = 0x0409


def split_descriptors(blob: bytes) -> tuple[bytes, list[bytes]]:
    """The device descriptor and each configuration (``wTotalLength`` bytes) of a sysfs-layout blob.

    Raises:
        DecodeError: no 18-byte device descriptor first, or a configuration that is not one or
            runs past the end (offset, descriptor and rule named).
    """
    blob = bytes(blob)
    if len(blob) < 18 or blob[0] != 18 or blob[1] != 1:
        raise DecodeError(f"a descriptor set starts with an 18-byte device descriptor (got {len(blob)} bytes"
                          f"{', type ' + hex(blob[1]) if len(blob) > 1 else ''})", offset=0, descriptor="device",
                          rule="bLength")
    configs: list[bytes] = []
    off = 18
    while off < len(blob):
        if off + 4 > len(blob) or blob[off + 1] != 2:
            raise DecodeError("expected a configuration descriptor (type 2)", offset=off,
                              descriptor="configuration", rule="bDescriptorType")
        total = int.from_bytes(blob[off + 2:off + 4], "little")
        if total < 9 or off + total > len(blob):
            raise DecodeError(f"wTotalLength {total} runs past the end of the data ({len(blob) - off} bytes left)",
                              offset=off + 2, descriptor="configuration", rule="wTotalLength")
        configs.append(blob[off:off + total])
        off += total
    return blob[:18], configs


def string_descriptor(text: str) -> bytes:
    """A string descriptor (UTF-16LE, USB 2.0 §9.6.7).

    Raises:
        BadArgumentError: longer than a descriptor can be (126 UTF-16 code units).
    """
    body = text.encode("utf-16-le")
    if len(body) > 253:
        raise BadArgumentError(f"string {text[:20]!r}...: {len(body) // 2} UTF-16 code units, at most 126 fit "
                               "a string descriptor")
    return bytes([2 + len(body), 3]) + body


def langid_list(langids: Iterable[int]) -> bytes:
    """String descriptor 0: the LANGIDs, in order."""
    ids = list(dict.fromkeys(langids))
    return bytes([2 + 2 * len(ids), 3]) + b"".join(i.to_bytes(2, "little") for i in ids)


def _check(ds: DescriptorSet) -> DescriptorSet:
    split_descriptors(ds.to_bytes())
    return ds


def set_from_parts(device: bytes, configurations: Iterable[bytes] = (), *, bos: bytes = b"",
                   strings: Mapping[int, str] | None = None, source: str = "") -> DescriptorSet:
    """A set from a device descriptor, configuration blobs, a BOS and US-English strings by index.

    String 0 (the LANGID list, 0x0409) is made when there are strings.

    Raises:
        DecodeError: the device descriptor or a configuration is not framed as a device presents it.
    """
    from dkproto.usb import parse

    blob = bytes(device) + b"".join(bytes(c) for c in configurations)
    split_descriptors(blob)
    table: dict[tuple[int, int], bytes] = {}
    if strings:
        table[(0, 0)] = langid_list([US_ENGLISH])
        for index, text in strings.items():
            if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= 255:
                raise BadArgumentError(f"string index {index!r} is not in 1..255")
            table[(US_ENGLISH, index)] = string_descriptor(str(text))
    return parse(blob, bytes(bos) or None, strings=table, source=source)


def _capture_strings(obj: dict[str, Any], where: str) -> dict[str, Any]:
    """The capture format's ``"strings": {"1": "text"}`` (US English) as dkproto JSON's list."""
    strings = obj.get("strings")
    if not isinstance(strings, dict):
        return obj
    items: list[dict[str, Any]] = [{"langid": 0, "index": 0, "hex": langid_list([US_ENGLISH]).hex()}] if strings else []
    for key, text in strings.items():
        try:
            index = int(key)
        except ValueError:
            raise DecodeError(f"strings: key {key!r} is not a string index", descriptor=where,
                              rule="strings") from None
        if not isinstance(text, str):
            raise DecodeError(f"strings.{key}: not text", descriptor=where, rule="strings")
        items.append({"langid": US_ENGLISH, "index": index, "hex": string_descriptor(text).hex()})
    return {**obj, "strings": items}


def set_from_json(obj: Any, source: str = "") -> DescriptorSet:
    """A checked set from a corpus, capture or dkproto JSON object (already loaded)."""
    from dkproto.usb import from_json

    if isinstance(obj, dict):
        obj = _capture_strings(obj, source or "JSON")
    return _check(from_json(obj, source=source))


def load_set(path: str | os.PathLike[str], *, max_bytes: int) -> DescriptorSet:
    """A checked set from a descriptor file of any format :func:`dkproto.usb.load` reads.

    Raises:
        NotFoundError, NotPermittedError, BadArgumentError: the file cannot be read, or is
            longer than ``max_bytes``.
        DecodeError: not a descriptor file, or not framed as a device presents it.
    """
    from dkproto import _jsonload
    from dkproto._paths import read_file
    from dkproto.usb import from_bytes

    raw = read_file(path, max_bytes=max_bytes)
    if raw.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"{":
        return set_from_json(_jsonload.loads(raw, source=str(path)), str(path))
    return _check(from_bytes(raw, source=str(path)))
