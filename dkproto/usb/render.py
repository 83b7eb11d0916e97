"""Three views of a :class:`~dkproto.usb.model.DescriptorSet`: text, JSON and annotated hex.

* :func:`render_text`: a tree like ``lsusb -v``, but every descriptor decoded: each field
  with its value and meaning (class names, attributes, units, strings); undecoded
  descriptors as hex; complaints inline (``** ...``) where they happened.
* :func:`to_json` / :func:`render_json`: the documented JSON (``docs/json-format.md``);
  decoded fields keyed by their spec names, descriptors in document order under their
  owner, undecoded ones as type + hex. It carries ``descriptors_hex`` and friends, so
  ``dkproto dump file.json`` reloads it to identical bytes.
* :func:`render_hex`: one descriptor a line, indented by depth, annotated with offset and
  name, in sections (``[descriptors]``, ``[bos]``, one ``[extra]`` per standalone
  descriptor, one ``[string LANGID INDEX]`` per string, one ``[hid report INTERFACE]`` per HID
  report descriptor); it reloads through the hex-text loader to identical bytes, extras,
  strings and report descriptors.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from dkproto.schema._fields import bcd
from dkproto.schema.enums import descriptor_type_name, langid_name
from dkproto.usb.model import DescriptorSet, Node

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "iter_hex",
    "iter_json",
    "iter_render",
    "iter_text",
    "render_as",
    "render_hex",
    "render_json",
    "render_text",
    "to_json",
]

FORMAT_NAME = "dkproto-descriptors"
_HEX_BYTES = {"bEndpointAddress", "bSynchAddress", "bDebugInEndpoint", "bDebugOutEndpoint"}
FORMAT_VERSION = 1
#: 16- and 32-bit fields that are quantities (sizes, rates, dimensions, times): decimal, as
#: ``lsusb -v`` prints them; other ``w``/``dw`` fields (codes, bitmaps, wTotalLength,
#: wMaxPacketSize) stay hex.
_DECIMAL = {
    "wWidth", "wHeight", "wMaxMultiplier", "wObjectiveFocalLengthMin", "wObjectiveFocalLengthMax",
    "wOcularFocalLength", "wDescriptorLength", "wDetachTimeOut", "wDetachTimeout", "wTransferSize",
    "wMaxSegmentSize", "wMaxTransferSize", "wMaxBitRate", "wCompQuality",
    "dwMinBitRate", "dwMaxBitRate", "dwMaxVideoFrameBufferSize", "dwDefaultFrameInterval", "dwFrameInterval",
    "dwMinFrameInterval", "dwMaxFrameInterval", "dwFrameIntervalStep", "dwBytesPerLine", "dwClockFrequency",
    "dwBytesPerInterval", "wBytesPerInterval",
}
#: the narrowest field-name column of the text dump (wider when a descriptor has longer names)
_NAME_WIDTH = 22


# -- values and meanings ------------------------------------------------------------------


def format_value(name: str, value: Any) -> str:
    """A field's value as text, chosen by the spec name's prefix (as lsusb prints it)."""
    if isinstance(value, (bytes, bytearray)):
        return value.hex(" ") if value else "(empty)"
    if isinstance(value, list):
        return " ".join(format_value(name, v) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={format_value(k, v)}" for k, v in value.items() if not k.startswith("_")) + "}"
    if not isinstance(value, int):
        return str(value)
    if name.startswith("bcd"):
        return bcd(value)
    if name in _DECIMAL:
        return str(value)
    if name in _HEX_BYTES:
        return f"0x{value:02x}"
    if name.startswith(("id", "w")):
        return f"0x{value:04x}"
    if name.startswith(("dw", "bmSublink")):
        return f"0x{value:08x}"
    if name.startswith("bm"):
        width = 2 if value < 0x100 else 4 if value < 0x10000 else 8
        return f"0x{value:0{width}x}"
    return str(value)


def meaning(node: Node, name: str, value: Any, ds: DescriptorSet | None = None) -> str | None:
    """What a field's value means (class name, units, string text...), or None."""
    if node.schema is not None:
        fn = node.schema.meanings.get(name)
        if fn is not None:
            try:
                text = fn(value, node.fields)
            except Exception:  # noqa: BLE001 - a meaning must never break a dump
                text = None
            if text:
                return str(text)
    if ds is not None and name.startswith("i") and not name.startswith("id") and isinstance(value, int) and value:
        text = ds.string(value)
        if text is not None:
            return repr(text).strip("'") if '"' not in text else text
    if name == "bDescriptorType" and isinstance(value, int):
        return descriptor_type_name(value)
    if name == "bDevCapabilityType" and isinstance(value, int):
        return _CAPABILITY_NAMES.get(value) or _capability_enum_name(value)
    return None


#: BOS device capability types as USB 3.2 table 9-14 names them
_CAPABILITY_NAMES = {
    0x01: "Wireless USB", 0x02: "USB 2.0 Extension", 0x03: "SuperSpeed USB", 0x04: "Container ID",
    0x05: "Platform", 0x06: "Power Delivery", 0x07: "Battery Info", 0x08: "PD Consumer Port",
    0x09: "PD Provider Port", 0x0A: "SuperSpeedPlus", 0x0B: "Precision Time Measurement",
    0x0C: "Wireless USB Ext", 0x0D: "Billboard", 0x0E: "Authentication", 0x0F: "Billboard Ex",
    0x10: "Configuration Summary", 0x11: "FW Status",
}


def _capability_enum_name(value: int) -> str | None:
    from dkproto.schema.enums import DeviceCapabilityType

    try:
        return DeviceCapabilityType(value).name.replace("_", " ").title()
    except ValueError:
        return "Reserved"


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
        return value
    return str(value)


# -- text ---------------------------------------------------------------------------------


def _text_node(node: Node, ds: DescriptorSet, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    out.append(f"{pad}{node.name}:" + (f"  [offset {node.offset}]" if node.blob == "descriptors" else ""))
    inner = pad + "  "
    if node.fields is not None:
        items = node.field_items()
        shown_all = [format_value(name, value) for name, value in items]
        # one name column and one value column per descriptor (long lists and hex runs aside)
        width = max([_NAME_WIDTH - 1, *(len(name) for name, _ in items)]) + 1
        vwidth = max([6, *(len(s) for s in shown_all if len(s) <= 12)])
        for (name, value), shown in zip(items, shown_all):
            text = meaning(node, name, value, ds)
            line = f"{inner}{name:<{width}} {shown:>{vwidth}}"
            if text and text != shown:
                if text.startswith(shown + " "):  # "160 pixels" for 160: the value once, then its unit
                    line += text[len(shown):]
                else:
                    line += f"  {text}"
            out.append(line.rstrip())
        trailing = node.trailing
        if trailing:
            out.append(f"{inner}{'(extra bytes)':<{width}} {trailing.hex(' ')}")
    else:
        width = _NAME_WIDTH
        out.append(f"{inner}{'bLength':<{width}} {node.bLength:>6}")
        if node.bDescriptorType >= 0:
            out.append(f"{inner}{'bDescriptorType':<{width}} {node.bDescriptorType:>6}  "
                       f"{descriptor_type_name(node.bDescriptorType)}")
        body = node.raw[2:]
        for i in range(0, len(body), 16):
            label = "data" if i == 0 else ""
            out.append(f"{inner}{label:<{width}} {body[i:i + 16].hex(' ')}")
    if node.error:
        out.append(f"{inner}** {node.error}")
    for child in node.children:
        _text_node(child, ds, depth + 1, out)


def render_text(ds: DescriptorSet) -> str:
    """The set as an ``lsusb -v``-like text tree with every field's value and meaning."""
    return "".join(iter_text(ds))


def _lines(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def iter_text(ds: DescriptorSet) -> Iterator[str]:
    """:func:`render_text` in pieces, one top-level descriptor at a time (for a lazy set, memory
    holds one configuration's text)."""
    out: list[str] = []
    if ds.meta.get("embedded_example"):
        out.append(f"# embedded example (no device attached): {ds.meta.get('name', '')}")
        src = ds.meta.get("source")
        if isinstance(src, dict):
            out.append(f"# provenance: {src.get('repo', '')} {src.get('path', '')} @ {src.get('commit', '')[:12]}")
    elif ds.source:
        title = f"# {ds.source}"
        if ds.meta.get("name"):
            title += f": {ds.meta['name']}"
        out.append(title)
    if ds.meta.get("read_from") and ds.meta.get("read_from") != "libusb":
        out.append(f"# read from {ds.meta['read_from']}")
    vp = ds.vid_pid
    if vp is not None:
        from dkproto import usbids

        names = " ".join(x for x in (usbids.vendor_name(vp[0]), usbids.product_name(*vp)) if x)
        prefix = ""
        if "bus" in ds.meta:
            prefix = f"Bus {ds.meta['bus']:03d} Device {ds.meta['address']:03d}: "
        out.append(f"{prefix}ID {vp[0]:04x}:{vp[1]:04x} {names}".rstrip())
    yield _lines(out)
    for root in itertools.chain(ds.iter_roots(), ds.bos_roots, ds.extras):
        out = []
        _text_node(root, ds, 0, out)
        yield _lines(out)
    out = []
    if ds.strings:
        out.append("String Descriptors:")
        for (langid, index), node in sorted(ds.strings.items()):
            if index == 0:
                langs = ", ".join(f"0x{x:04x} {langid_name(x)}" for x in ds.langids())
                out.append(f"  LANGID list            {langs or node.raw.hex(' ')}")
            elif node.key == "string":
                text = bytes(node.fields.bString).decode("utf-16-le", errors="replace")
                out.append(f"  [0x{langid:04x}] {index:>3}        {text!r}")
            else:
                out.append(f"  [0x{langid:04x}] {index:>3}        (undecoded) {node.raw.hex(' ')}")
            if node.error:
                out.append(f"    ** {node.error}")
    if ds.hid_report_descriptors:
        out.append("HID Report Descriptors:")
        for number, data in sorted(ds.hid_report_descriptors.items()):
            out.append(f"  interface {number}: {len(data)} bytes")
            out.extend(f"    {data[i:i + 16].hex(' ')}" for i in range(0, len(data), 16))
    if ds.warnings:
        out.append(f"Warnings ({len(ds.warnings)}):")
        for warn in ds.warnings:
            out.append(f"  {warn}")
    if ds.errors:
        out.append(f"Errors ({len(ds.errors)}):")
        for err in ds.errors:
            out.append(f"  {err}")
    yield _lines(out)


# -- JSON ---------------------------------------------------------------------------------


def _json_node(node: Node, ds: DescriptorSet) -> dict[str, Any]:
    item: dict[str, Any] = {"descriptor": node.key, "name": node.name, "offset": node.offset}
    if node.fields is not None:
        item["fields"] = {name: _plain(value) for name, value in node.field_items()}
        meanings = {}
        for name, value in node.field_items():
            text = meaning(node, name, value, ds)
            if text:
                meanings[name] = text
        if meanings:
            item["meanings"] = meanings
        trailing = node.trailing
        if trailing:
            item["extra_hex"] = trailing.hex()
    else:
        item["bDescriptorType"] = node.bDescriptorType
        item["bLength"] = node.bLength
        item["hex"] = node.raw.hex()
    if node.error:
        item["error"] = node.error
    if node.children:
        item["children"] = [_json_node(c, ds) for c in node.children]
    return item


class _Stream:
    """A JSON value written piece by piece: ``kind`` ``"hex"`` (one string from hex pieces) or
    ``"list"`` (a list from its items)."""

    __slots__ = ("items", "kind")

    def __init__(self, kind: str, items: Iterator[Any]) -> None:
        self.kind = kind
        self.items = items


def _json_parts(ds: DescriptorSet) -> list[tuple[str, Any]]:
    """The top-level ``(key, value)`` pairs of :func:`to_json`, in order; the ``descriptors``
    blob's hex and nodes as :class:`_Stream`s (walked when written)."""
    meta = {k: _plain(v) for k, v in ds.meta.items() if k not in ("format",)}
    parts: list[tuple[str, Any]] = [("format", FORMAT_NAME), ("version", FORMAT_VERSION), ("source", ds.source)]
    for key in ("name", "vid", "pid", "kind", "notes", "quirky"):
        if key in meta:
            parts.append((key, meta.pop(key)))
    if "source" in meta:
        parts.append(("provenance", meta.pop("source")))
    if meta:
        parts.append(("meta", meta))
    parts.append(("descriptors_hex", _Stream("hex", (n.to_bytes().hex() for n in ds.iter_roots()))))
    if ds.bos_roots:
        parts.append(("bos_descriptor_hex", ds.bos_bytes().hex()))
    if ds.extras:
        parts.append(("extra_descriptors_hex", [n.to_bytes().hex() for n in ds.extras]))
    parts.append(("descriptors", _Stream("list", (_json_node(n, ds) for n in ds.iter_roots()))))
    parts.append(("bos", [_json_node(n, ds) for n in ds.bos_roots]))
    if ds.extras:
        parts.append(("extra_descriptors", [_json_node(n, ds) for n in ds.extras]))
    strings = []
    for (langid, index), node in sorted(ds.strings.items()):
        entry: dict[str, Any] = {"langid": langid, "index": index, "hex": node.raw.hex()}
        if node.key == "string":
            entry["text"] = bytes(node.fields.bString).decode("utf-16-le", errors="replace")
        elif node.key == "langid_list":
            entry["wLANGID"] = list(node.fields.wLANGID)
        strings.append(entry)
    parts.append(("strings", strings))
    if ds.hid_report_descriptors:
        parts.append(("hid_report_descriptors", [{"interface": number, "hex": data.hex()}
                                                 for number, data in sorted(ds.hid_report_descriptors.items())]))
    parts.append(("errors", [
        {"offset": e.offset, "descriptor": e.descriptor, "rule": e.rule, "message": str(e)} for e in ds.errors
    ]))
    parts.append(("warnings", [
        {"offset": e.offset, "descriptor": e.descriptor, "rule": e.rule, "message": str(e)} for e in ds.warnings
    ]))
    return parts


def to_json(ds: DescriptorSet) -> dict[str, Any]:
    """The set as a JSON-ready dict (schema in ``docs/json-format.md``)."""
    obj: dict[str, Any] = {}
    for key, value in _json_parts(ds):
        if isinstance(value, _Stream):
            value = "".join(value.items) if value.kind == "hex" else list(value.items)
        obj[key] = value
    return obj


def render_json(ds: DescriptorSet, indent: int | None = 2) -> str:
    """:func:`to_json` as text."""
    if indent == 2:
        return "".join(iter_json(ds))
    return json.dumps(to_json(ds), indent=indent) + "\n"


def iter_json(ds: DescriptorSet) -> Iterator[str]:
    """:func:`render_json` (indent 2) in pieces, one top-level descriptor at a time; the same text
    as ``json.dumps(to_json(ds), indent=2)``."""
    yield "{"
    for i, (key, value) in enumerate(_json_parts(ds)):
        yield ("," if i else "") + f"\n  {json.dumps(key)}: "
        if not isinstance(value, _Stream):
            yield json.dumps(value, indent=2).replace("\n", "\n  ")
        elif value.kind == "hex":
            yield '"'
            yield from value.items
            yield '"'
        else:
            count = 0
            for item in value.items:
                yield ("," if count else "[") + "\n    " + json.dumps(item, indent=2).replace("\n", "\n    ")
                count += 1
            yield "\n  ]" if count else "[]"
    yield "\n}\n"


# -- hex ----------------------------------------------------------------------------------


def _hex_node(node: Node, depth: int, out: list[str], width: int) -> None:
    pad = "  " * depth
    body = f"{pad}{node.own_bytes().hex(' ')}"
    label = node.name
    if node.fields is not None and node.role == "interface":
        label += f" {node.fields.bInterfaceNumber}.{node.fields.bAlternateSetting}"
    elif node.fields is not None and node.role == "endpoint":
        label += f" 0x{node.fields.bEndpointAddress:02x}"
    note = f"  !! {node.error}" if node.error else ""
    out.append(f"{body:<{width}}  # @{node.offset:04x} {label}{note}")
    for child in node.children:
        _hex_node(child, depth + 1, out, width)


def render_hex(ds: DescriptorSet) -> str:
    """Annotated hex, one descriptor a line; reloads with the hex-text loader."""
    return "".join(iter_hex(ds))


def iter_hex(ds: DescriptorSet) -> Iterator[str]:
    """:func:`render_hex` in pieces, one top-level descriptor at a time."""
    out = [f"# dkproto descriptors: {ds.source}".rstrip()]
    if ds.meta.get("embedded_example"):
        out.append(f"# embedded example (no device attached): {ds.meta.get('name', '')}")
    width = 0
    for n in ds.nodes():
        width = max(width, min(3 * len(n.raw), 60))
    out.append("[descriptors]")
    yield _lines(out)
    for root in ds.iter_roots():
        out = []
        _hex_node(root, 0, out, width)
        yield _lines(out)
    out = []
    if ds.bos_roots:
        out.append("[bos]")
        for root in ds.bos_roots:
            _hex_node(root, 0, out, width)
    for root in ds.extras:  # one section each, as JSON's extra_descriptors_hex has one entry each
        out.append("[extra]")
        _hex_node(root, 0, out, width)
    for (langid, index), node in sorted(ds.strings.items()):
        out.append(f"[string 0x{langid:04x} {index}]")
        text = ""
        if node.key == "string":
            text = " " + repr(bytes(node.fields.bString).decode("utf-16-le", errors="replace"))
        out.append(f"{node.raw.hex(' ')}  # string {index}{text}")
    for number, data in sorted(ds.hid_report_descriptors.items()):
        out.append(f"[hid report {number}]")
        out.extend(data[i:i + 16].hex(" ") for i in range(0, len(data), 16))
    for warn in ds.warnings:
        out.append(f"# warning: {warn}")
    for err in ds.errors:
        out.append(f"# error: {err}")
    yield _lines(out)


def render_as(ds: DescriptorSet, fmt: str = "text") -> str:
    """Render in ``text``, ``json`` or ``hex``."""
    return "".join(iter_render(ds, fmt))


def iter_render(ds: DescriptorSet, fmt: str = "text") -> Iterator[str]:
    """:func:`render_as` in pieces (what ``dkproto dump`` writes as it goes)."""
    if fmt == "json":
        return iter_json(ds)
    if fmt == "hex":
        return iter_hex(ds)
    return iter_text(ds)
