"""Test helper: frame the corpus descriptor sets by bLength and give each class-specific slice
its :class:`~dkproto.schema.registry.Context`, independently of the walker in
``dkproto.usb.tree`` (so the class schemas are tested on their own).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dkproto.schema.registry import Context

CORPUS = Path("/work/shared/corpus")
if not CORPUS.exists():  # a clone next to ../shared
    CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"

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
    for f in sorted((CORPUS / "usb").glob("*.json")):
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
        raw = blob[pos:pos + length]
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
            if dtype == 0x24 and len(raw) >= 5 and raw[2] == 1 and cls in (0x01, 0x0E) and iface \
                    and iface[1] == 1:
                versions[cls] = int.from_bytes(raw[3:5], "little")  # bcdADC / bcdUVC
            yield Slice(name, pos, raw, ctx)
        pos += length


def all_class_slices() -> list[Slice]:
    """Every class-specific slice of the whole corpus."""
    return [s for name, blob in corpus_sets() for s in class_slices(name, blob)]
