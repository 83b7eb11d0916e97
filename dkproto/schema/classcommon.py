"""Building blocks shared by the class-specific schema modules (hid, cdc, audio, midi, uvc, dfu).

Construct pieces: the three-byte class-specific header (:func:`cs_header`) and the ``extra``
tail that keeps any bytes a descriptor carries past the spec's layout (the walker hands each
schema exactly its ``bLength`` slice, so a trailing ``GreedyBytes`` cannot swallow a
neighbour; it only makes longer-than-spec descriptors round-trip).

Meanings: small factories that turn a field value into text (:func:`enum`, :func:`flags`,
:func:`unit`, :func:`bcd`, :func:`guid`), kept apart from the structs so the structs stay
compilable (no custom Adapters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from construct import GreedyBytes, Int8ul, Struct, Subconstruct

from dkproto.schema.registry import Meaning, Schema

__all__ = [
    "CS_ENDPOINT",
    "CS_INTERFACE",
    "EXTRA",
    "bcd",
    "bitlist",
    "cs_header",
    "cs_schema",
    "enum",
    "flags",
    "guid",
    "guid_text",
    "hexbytes",
    "name_subtypes",
    "spec_struct",
    "subtype_of",
    "unit",
]

CS_INTERFACE = 0x24
CS_ENDPOINT = 0x25

#: Bytes a descriptor carries after the spec's fields (normally empty).
EXTRA: Subconstruct = "extra" / GreedyBytes


def cs_header() -> list[Subconstruct]:
    """``bLength``, ``bDescriptorType``, ``bDescriptorSubtype``: every class-specific descriptor's start."""
    return [
        "bLength" / Int8ul,
        "bDescriptorType" / Int8ul,
        "bDescriptorSubtype" / Int8ul,
    ]


def spec_struct(*fields: Any, extra: bool = True) -> Struct:
    """A class-specific descriptor: the CS header, ``fields``, then the ``extra`` tail."""
    parts = [*cs_header(), *fields]
    if extra:
        parts.append(EXTRA)
    return Struct(*parts)


def cs_schema(
    key: str, name: str, spec: str, fields: list[Any], meanings: Mapping[str, Meaning] | None = None
) -> Schema:
    """A class-specific :class:`Schema`: :func:`spec_struct` of ``fields``, with the meanings of the
    fields it has (shared meaning tables may name fields other layouts carry)."""
    struct = spec_struct(*fields)
    names = {sc.name for sc in struct.subcons}
    kept = {k: v for k, v in (meanings or {}).items() if k in names}
    return Schema(key=key, name=name, struct=struct, meanings=kept, spec=spec)


def subtype_of(raw: bytes) -> int | None:
    """The ``bDescriptorSubtype`` byte of a class-specific descriptor, or None if too short."""
    return raw[2] if len(raw) >= 3 else None


# --- meanings ---------------------------------------------------------------------------------


def enum(table: Mapping[int, str], default: str | None = None) -> Meaning:
    """Meaning from a value-to-name table; unknown values give ``default`` (None: no meaning)."""

    def meaning(value: Any, _c: Any = None) -> str | None:
        if isinstance(value, int):
            return table.get(value, default)
        return None

    return meaning


def bitlist(value: int, bits: Mapping[int, str]) -> list[str]:
    """Names of the set bits of ``value``; a set bit without a name shows as ``bit N``."""
    out = []
    n = 0
    while value >> n:
        if value >> n & 1:
            out.append(bits.get(n, f"bit {n}"))
        n += 1
    return out


def flags(bits: Mapping[int, str], none: str | None = "(none)") -> Meaning:
    """Meaning of a bitmap: the names of its set bits, comma separated."""

    def meaning(value: Any, _c: Any = None) -> str | None:
        if isinstance(value, (bytes, bytearray)):
            value = int.from_bytes(value, "little")
        if not isinstance(value, int):
            return None
        names = bitlist(value, bits)
        return ", ".join(names) if names else none

    return meaning


def unit(suffix: str, scale: float | None = None, fmt: str = "{}") -> Meaning:
    """Meaning with a unit: ``unit("ms")`` gives ``"500 ms"``; ``scale`` multiplies first."""

    def meaning(value: Any, _c: Any = None) -> str | None:
        if not isinstance(value, int):
            return None
        v: Any = value * scale if scale is not None else value
        return f"{fmt.format(v)} {suffix}"

    return meaning


def bcd(value: Any, _c: Any = None) -> str | None:
    """A binary-coded decimal release number: 0x0110 -> ``"1.10"``."""
    if not isinstance(value, int):
        return None
    return f"{value >> 8:x}.{value & 0xFF:02x}"


def guid_text(raw: bytes) -> str:
    """A GUID stored little-endian (as USB class specs store them) in its usual text form."""
    if len(raw) != 16:
        return raw.hex()
    d1 = int.from_bytes(raw[0:4], "little")
    d2 = int.from_bytes(raw[4:6], "little")
    d3 = int.from_bytes(raw[6:8], "little")
    return f"{{{d1:08X}-{d2:04X}-{d3:04X}-{raw[8:10].hex().upper()}-{raw[10:16].hex().upper()}}}"


def guid(names: Mapping[str, str] | None = None) -> Meaning:
    """Meaning of a 16-byte GUID field: its text form, with a name when ``names`` knows it."""

    def meaning(value: Any, _c: Any = None) -> str | None:
        if not isinstance(value, (bytes, bytearray)):
            return None
        text = guid_text(bytes(value))
        name = (names or {}).get(text)
        return f"{text} {name}" if name else text

    return meaning


def name_subtypes(schemas: Mapping[int, Any], names: Mapping[int, str]) -> None:
    """Give each schema of ``schemas`` (subtype -> Schema) a ``bDescriptorSubtype`` meaning from ``names``.

    Each class module calls this once per subtype table, right after building it, so the text
    dump shows ``bDescriptorSubtype 10  CLOCK_SOURCE`` as the class spec names it.
    """
    meaning = enum(names)
    for schema in schemas.values():
        schema.meanings["bDescriptorSubtype"] = meaning  # each schema owns its meanings dict


def hexbytes(value: Any, _c: Any = None) -> str | None:
    """Bytes as spaced hex (for opaque bitmaps wider than 4 bytes)."""
    if isinstance(value, (bytes, bytearray)):
        return " ".join(f"{b:02x}" for b in value) or "(empty)"
    return None


def join_nonempty(parts: Iterable[str | None], sep: str = "; ") -> str | None:
    """Join the non-empty parts, or None when nothing is left."""
    kept = [p for p in parts if p]
    return sep.join(kept) if kept else None


def per_item(inner: Callable[[Any, Any], str | None], label: str = "{}", start: int = 0) -> Meaning:
    """Meaning of a list: each item's meaning prefixed by ``label.format(start + index)``."""

    def meaning(value: Any, c: Any = None) -> str | None:
        if not isinstance(value, (list, tuple)):
            return None
        return join_nonempty(
            (f"{label.format(i)}: {m}" if (m := inner(v, c)) else None) for i, v in enumerate(value, start)
        )

    return meaning
