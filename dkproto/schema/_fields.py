"""Building blocks for descriptor schemas: the wire type comes from the spec name's prefix.

``f("bcdUSB")`` is ``"bcdUSB" / Int16ul``; ``f("bmAttributes", 4)`` forces a width for the
few fields whose Hungarian prefix does not say it (``bmAttributes`` of a USB 2.0 Extension
capability is 32 bits). Everything here compiles with Construct's ``.compile()``; custom
Adapters are avoided on purpose so the hot path stays compiled (values stay plain ints and
the *meaning* functions turn them into text).

Anchor: python-usb-protocol ``types/descriptor.py`` (``DescriptorField.__rtruediv__``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from construct import Bytes, Construct, Int8ul, Int16ul, Int32ul, Struct

from dkproto.schema.registry import Meaning, Schema

__all__ = [
    "HEADER",
    "bcd",
    "compiled",
    "f",
    "fixed_size",
    "make_schema",
    "uuid_str",
]

_WIDTH = {1: Int8ul, 2: Int16ul, 4: Int32ul}


def f(name: str, width: int | None = None) -> Construct:
    """A little-endian integer field typed from its USB prefix.

    ``b``, ``i``, ``bm`` are 1 byte; ``w``, ``id``, ``bcd`` are 2; ``dw`` is 4. ``width``
    overrides (for ``bmAttributes`` of 4 bytes).
    """
    if width is None:
        if name.startswith("dw"):
            width = 4
        elif name.startswith(("w", "id", "bcd")):
            width = 2
        elif name.startswith(("b", "i")):
            width = 1
        else:
            raise ValueError(f"field {name!r}: no width from its prefix; give one")
    return name / _WIDTH[width]


#: ``bLength`` and ``bDescriptorType``, the first two fields of every descriptor.
HEADER: tuple[Construct, ...] = (f("bLength"), f("bDescriptorType"))


def bcd(value: int) -> str:
    """A binary-coded decimal release number as lsusb prints it (0x0210 -> "2.10")."""
    return f"{value >> 8:x}.{value & 0xFF:02x}"


def uuid_str(raw: bytes) -> str:
    """A 16-byte UUID in USB (little-endian first three groups) order, as text."""
    import uuid

    return "{" + str(uuid.UUID(bytes_le=bytes(raw))) + "}"


_COMPILED: dict[int, Any] = {}


def compiled(struct: Construct) -> Any:
    """``struct.compile()``, cached; the struct itself when it does not compile."""
    key = id(struct)
    found = _COMPILED.get(key)
    if found is None:
        try:
            found = struct.compile()
        except Exception:  # noqa: BLE001 - construct raises assorted errors for uncompilable parts
            found = struct
        _COMPILED[key] = (found, struct)  # keep struct alive so its id is not reused
        return found
    return found[0]


def fixed_size(struct: Construct) -> int | None:
    """The struct's size when it does not depend on the data, else None."""
    try:
        return int(struct.sizeof())
    except Exception:  # noqa: BLE001 - SizeofError and friends for variable layouts
        return None


def make_schema(
    key: str,
    name: str,
    fields: tuple[Construct, ...],
    meanings: Mapping[str, Meaning] | None = None,
    spec: str = "",
) -> Schema:
    """A :class:`~dkproto.schema.registry.Schema` whose struct is ``HEADER + fields``."""
    return Schema(key=key, name=name, struct=Struct(*HEADER, *fields), meanings=dict(meanings or {}), spec=spec)


def table(names: Mapping[int, str]) -> Callable[[Any, Any], str | None]:
    """A meaning that looks the value up in ``names``."""

    def meaning(value: Any, _container: Any) -> str | None:
        return names.get(value)

    return meaning


def bytes_field(name: str, size: Any) -> Construct:
    """A fixed or ``this``-sized run of raw bytes (UUIDs, bitmaps)."""
    return name / Bytes(size)
