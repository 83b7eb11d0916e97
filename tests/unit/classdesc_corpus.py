"""Test helper: frame the corpus descriptor sets by bLength and give each class-specific slice
its :class:`~dkproto.schema.registry.Context`, independently of the walker in
``dkproto.usb.tree`` (so the class schemas are tested on their own).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from corpus_path import USB_SETS, oracle_path

_SETS = {p.stem: p for p in USB_SETS}

from dkproto.schema.registry import Context, Schema, lookup

#: Descriptor types handled by the class modules (HID/DFU 0x21, CS_INTERFACE 0x24, CS_ENDPOINT 0x25).
CLASS_TYPES = (0x21, 0x24, 0x25)


@dataclass
class Slice:
    """One class-specific descriptor of a corpus set."""

    name: str
    offset: int
    raw: bytes
    ctx: Context


def corpus_sets() -> list[tuple[str, bytes]]:
    """(slug, descriptors bytes) of every USB set of the corpus."""
    out = []
    for f in USB_SETS:
        out.append((f.stem, bytes.fromhex(json.loads(f.read_text())["descriptors_hex"])))
    return out


def class_slices(name: str, blob: bytes) -> Iterator[Slice]:
    """Every descriptor of type 0x20..0x3F in ``blob`` with the context a walker would give it."""
    pos = 0
    iface: tuple[int, int, int] | None = None
    iface_number = -1
    func: tuple[int, int, int] | None = None
    func_range = range(0)
    parent = "device"
    ep: int | None = None
    versions: dict[int, int] = {}
    while pos + 2 <= len(blob):
        length, dtype = blob[pos], blob[pos + 1]
        if length < 2:
            raise ValueError(f"{name}: bLength {length} at offset {pos}")
        raw = blob[pos : pos + length]
        if dtype == 2:
            parent, iface, func, func_range, versions = "configuration", None, None, range(0), {}
        elif dtype == 11:
            func, func_range = (raw[4], raw[5], raw[6]), range(raw[2], raw[2] + raw[3])
        elif dtype == 4:
            parent, ep = "interface", None
            iface, iface_number = (raw[5], raw[6], raw[7]), raw[2]
            if iface_number not in func_range:
                func = None
        elif dtype == 5:
            parent, ep = "endpoint", raw[2]
        elif 0x20 <= dtype <= 0x3F:
            cls = iface[0] if iface else None
            ctx = Context(
                parent=parent,
                interface_class=cls,
                interface_subclass=iface[1] if iface else None,
                interface_protocol=iface[2] if iface else None,
                function_class=func[0] if func else None,
                function_subclass=func[1] if func else None,
                function_protocol=func[2] if func else None,
                endpoint_address=ep,
                device_class=blob[4],
                bcd_usb=int.from_bytes(blob[2:4], "little"),
                class_version=versions.get(cls) if cls is not None else None,
            )
            if (
                dtype == 0x24
                and len(raw) >= 5
                and raw[2] == 1
                and cls in (0x01, 0x0E)
                and iface
                and iface[1] == 1
            ):
                versions[cls] = int.from_bytes(raw[3:5], "little")  # bcdADC / bcdUVC
            yield Slice(name, pos, raw, ctx)
        pos += length


def all_class_slices() -> list[Slice]:
    """Every class-specific slice of the whole corpus."""
    return [s for name, blob in corpus_sets() for s in class_slices(name, blob)]


# --- the lsusb oracle -----------------------------------------------------------------------------

#: Headers lsusb -v prints for the class-specific descriptors dkproto's class modules decode.
ORACLE_HEADERS = (
    "VideoControl Interface Descriptor:",
    "VideoStreaming Interface Descriptor:",
    "AudioControl Interface Descriptor:",
    "AudioStreaming Interface Descriptor:",
    "AudioStreaming Endpoint Descriptor:",
    "MIDIStreaming Interface Descriptor:",
    "MIDIStreaming Endpoint Descriptor:",
    "HID Device Descriptor:",
    "CDC Header:",
    "CDC ACM:",
    "CDC Union:",
    "CDC Call Management:",
    "CDC Ethernet:",
    "Device Firmware Upgrade Interface Descriptor:",
)
_STANDARD_HEADERS = (
    "Device Descriptor:",
    "Configuration Descriptor:",
    "Interface Descriptor:",
    "Endpoint Descriptor:",
    "Interface Association:",
    "Device Status:",
    "Report Descriptor:",
)


@dataclass
class OracleBlock:
    """One class-specific descriptor as lsusb -v printed it."""

    header: str
    lines: list[str]
    unrecognized: bytes | None = None

    def values(self) -> dict[str, list[tuple[int | None, str]]]:
        """field name -> [(index or None, first value token)] in print order."""
        import re

        out: dict[str, list[tuple[int | None, str]]] = {}
        for line in self.lines:
            m = re.match(r"^\s+(\w+)(?:\(\s*(\d+)\)|\[\s*(\d+)\])?\s+(\S+)", line)
            if not m:
                continue
            idx = m.group(2) or m.group(3)
            out.setdefault(m.group(1), []).append((int(idx) if idx is not None else None, m.group(4)))
        return out


def oracle_blocks(name: str) -> list[OracleBlock]:
    """The class-specific descriptor blocks of ``oracle/usb/<name>.lsusb``, in print order."""
    path = oracle_path(_SETS[name], "usb", "lsusb")
    blocks: list[OracleBlock] = []
    cur: OracleBlock | None = None
    for line in path.read_text(errors="replace").splitlines():
        text = line.strip()
        if text.startswith("** UNRECOGNIZED:"):
            cur = None
            blocks.append(OracleBlock(text, [], bytes.fromhex(text.split(":", 1)[1].replace(" ", ""))))
        elif text in ORACLE_HEADERS:
            cur = OracleBlock(text, [])
            blocks.append(cur)
        elif text in _STANDARD_HEADERS or (
            text.endswith(":")
            and not line.startswith("          ")
            and text[:1].isupper()
            and " " in text
            and "Descriptor" in text
        ):
            cur = None
        elif cur is not None:
            cur.lines.append(line)
    return blocks


def lsusb_prints(s: Slice) -> bool:
    """Whether lsusb -v prints this class-specific descriptor (it skips the UVC VC interrupt endpoint)."""
    return not (s.raw[1] == 0x25 and s.ctx.interface_class == 0x0E)


#: lsusb's spelling -> the spec's (CDC 1.2, ECM 1.2, DFU 1.1, MIDI 1.0, UVC 1.5, MJPEG payload).
LSUSB_ALIASES = {
    "bMasterInterface": "bControlInterface",
    "bSlaveInterface": "bSubordinateInterface",
    "iMacAddress": "iMACAddress",
    "wDetachTimeout": "wDetachTimeOut",
    "bcdADC": "bcdMSC",  # lsusb prints the MIDI header's bcdMSC as bcdADC
    "bNumCompressionPatterns": "bNumCompressionPattern",
    "bFlags": "bmFlags",
}


def _token_matches(name: str, value: object, token: str) -> bool:
    from dkproto.schema.classcommon import bcd, guid_text

    if isinstance(value, (bytes, bytearray)):
        if token.startswith("{"):
            return guid_text(bytes(value)).lower() == token.lower()
        return True  # lsusb prints opaque byte fields in ways not worth mimicking
    if not isinstance(value, int):
        return True
    if token.startswith("0x"):
        return int(token, 16) == value
    if name.startswith("bcd"):
        return bcd(value) == token
    if token.endswith("MHz"):
        return round(float(token[:-3]) * 1e6) == value
    if token.lstrip("-").isdigit():
        return int(token) == value
    return False


def compare_with_oracle(fields: object, block: OracleBlock) -> tuple[int, list[str]]:
    """Compare decoded ``fields`` with every same-named field lsusb printed.

    Returns (number of values compared, list of disagreements). Fields dkproto leaves absent
    (``None``) are not compared (lsusb reads past the descriptor there, see the UVC 1.0
    processing unit). Byte-per-line bitmaps (``bmControls( 0)``) compare with the int's bytes.
    """
    seen = block.values()
    items = dict(fields.items())  # type: ignore[attr-defined]
    for old, new in LSUSB_ALIASES.items():
        if old in seen and old not in items and new not in seen:
            seen[new] = seen.pop(old)
    checked = 0
    bad: list[str] = []

    def check(label: str, value: object, token: str) -> None:
        nonlocal checked
        checked += 1
        if not _token_matches(label, value, token):
            bad.append(f"{block.header} {label}: dkproto {value!r}, lsusb {token}")

    for name, value in items.items():
        if value is None or name.startswith("_"):
            continue
        if isinstance(value, list):
            if value and hasattr(value[0], "items"):  # list of small structs
                for i, sub in enumerate(value):
                    for sname, svalue in sub.items():
                        if sname.startswith("_"):
                            continue
                        hits = seen.get(sname, [])
                        indexed = [t for ix, t in hits if ix == i]
                        if indexed:
                            check(f"{sname}({i})", svalue, indexed[0])
                            continue
                        plain = [t for ix, t in hits if ix is None]
                        if sname in items:  # the top-level field of that name is printed first
                            plain = plain[1:]
                        if i < len(plain):
                            check(f"{sname}[{i}]", svalue, plain[i])
            else:
                for ix, token in seen.get(name, []):
                    if ix is not None and ix < len(value):
                        check(f"{name}({ix})", value[ix], token)
            continue
        for ix, token in seen.get(name, [])[:1]:
            if ix is None:
                check(name, value, token)
            elif isinstance(value, int):  # a bitmap lsusb prints byte by byte
                for jx, tok in seen[name]:
                    check(f"{name}({jx})", (value >> (8 * jx)) & 0xFF, tok)
    return checked, bad


def parse_slice(hexstr: str, ctx: Context, dtype: int = 0x24) -> tuple[Schema, Any]:
    """Decode one class-specific descriptor given as hex; check it rebuilds, compiled and not."""
    raw = bytes.fromhex(hexstr.replace(" ", ""))
    schema = lookup(dtype, raw, ctx)
    assert schema is not None, hexstr
    fields = schema.struct.parse(raw)
    assert fields.extra == b""
    assert schema.struct.build(fields) == raw
    assert schema.struct.compile().parse(raw) == fields
    return schema, fields


def meaning(schema: Schema, fields: Any, name: str) -> str | None:
    """The text meaning the schema gives field ``name``."""
    return schema.meanings[name](fields[name], fields)
