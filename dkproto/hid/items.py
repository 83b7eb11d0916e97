"""HID report descriptor items: short and long items with their byte offsets.

[HID 1.11: 6.2.2.2 Short Items, 6.2.2.3 Long Items, 6.2.2.4-6.2.2.8 Main, Global and Local items]

Items are split the way the Linux HID core splits them (``fetch_item`` in
``drivers/hid/hid-core.c``): any prefix byte whose tag nibble is 0xF starts a long item
(the spec only defines 0xFE), a short item's size code 3 means 4 data bytes, and an item
cut short by the end of the descriptor is an error at the offset where that item starts.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from dkproto.errors import DecodeError

__all__ = [
    "COLLECTION_TYPES",
    "MAIN_FLAGS",
    "UNIT_SYSTEMS",
    "Item",
    "ItemType",
    "flag_names",
    "iter_items",
    "parse_items",
    "unit_exponents",
    "unit_text",
]


class ItemType(enum.IntEnum):
    """The bType field of a short item prefix, plus LONG for long items."""

    MAIN = 0
    GLOBAL = 1
    LOCAL = 2
    RESERVED = 3
    LONG = 4


# [HID 1.11: 6.2.2.4] Main item tags.
MAIN_TAGS = {8: "Input", 9: "Output", 0xB: "Feature", 0xA: "Collection", 0xC: "End Collection"}
# [HID 1.11: 6.2.2.7] Global item tags.
GLOBAL_TAGS = {
    0: "Usage Page",
    1: "Logical Minimum",
    2: "Logical Maximum",
    3: "Physical Minimum",
    4: "Physical Maximum",
    5: "Unit Exponent",
    6: "Unit",
    7: "Report Size",
    8: "Report ID",
    9: "Report Count",
    0xA: "Push",
    0xB: "Pop",
}
# [HID 1.11: 6.2.2.8] Local item tags.
LOCAL_TAGS = {
    0: "Usage",
    1: "Usage Minimum",
    2: "Usage Maximum",
    3: "Designator Index",
    4: "Designator Minimum",
    5: "Designator Maximum",
    7: "String Index",
    8: "String Minimum",
    9: "String Maximum",
    0xA: "Delimiter",
}
_TAGS = {ItemType.MAIN: MAIN_TAGS, ItemType.GLOBAL: GLOBAL_TAGS, ItemType.LOCAL: LOCAL_TAGS}

# [HID 1.11: 6.2.2.5] Input/Output/Feature data bits: (bit, name when 0, name when 1).
MAIN_FLAGS: tuple[tuple[int, str, str], ...] = (
    (0, "Data", "Constant"),
    (1, "Array", "Variable"),
    (2, "Absolute", "Relative"),
    (3, "No Wrap", "Wrap"),
    (4, "Linear", "Non Linear"),
    (5, "Preferred State", "No Preferred State"),
    (6, "No Null Position", "Null State"),
    (7, "Non Volatile", "Volatile"),
    (8, "Bit Field", "Buffered Bytes"),
)

# [HID 1.11: 6.2.2.6] Collection types.
COLLECTION_TYPES = {
    0: "Physical",
    1: "Application",
    2: "Logical",
    3: "Report",
    4: "Named Array",
    5: "Usage Switch",
    6: "Usage Modifier",
}

# [HID 1.11: 6.2.2.7 Unit] system nibble -> (name, units of nibbles 1..6).
UNIT_SYSTEMS: dict[int, tuple[str, tuple[str, ...]]] = {
    0: ("None", ("", "", "", "", "", "")),
    1: ("SI Linear", ("Centimeter", "Gram", "Seconds", "Kelvin", "Ampere", "Candela")),
    2: ("SI Rotation", ("Radians", "Gram", "Seconds", "Kelvin", "Ampere", "Candela")),
    3: ("English Linear", ("Inch", "Slug", "Seconds", "Fahrenheit", "Ampere", "Candela")),
    4: ("English Rotation", ("Degrees", "Slug", "Seconds", "Fahrenheit", "Ampere", "Candela")),
}
_UNIT_ABBR = {
    "Centimeter": "cm",
    "Radians": "rad",
    "Inch": "in",
    "Degrees": "deg",
    "Gram": "g",
    "Slug": "slug",
    "Seconds": "s",
    "Kelvin": "K",
    "Fahrenheit": "F",
    "Ampere": "A",
    "Candela": "cd",
}


def _snibble(n: int) -> int:
    return n - 16 if n & 8 else n


def unit_exponents(unit: int) -> tuple[str, dict[str, int]]:
    """Decode a Unit item value into its system and base units with exponents.

    Args:
        unit: the 32-bit Unit value.

    Returns:
        ``(system, {unit name: exponent})``; system is "None", "SI Linear", ..., "Vendor" or
        "Reserved". Nibble 7 is reserved and ignored, as the kernel does.
    """
    sys_code = unit & 0xF
    if sys_code == 0xF:
        return "Vendor", {}
    if sys_code not in UNIT_SYSTEMS:
        return "Reserved", {}
    system, names = UNIT_SYSTEMS[sys_code]
    units: dict[str, int] = {}
    for i, name in enumerate(names):
        nib = (unit >> (4 * (i + 1))) & 0xF
        if nib and name:
            units[name] = _snibble(nib)
    return system, units


def unit_text(unit: int, exponent: int = 0) -> str:
    """A short human text for a unit: ``"cm"``, ``"1e-2 cm"``, ``"g*cm^2*s^-3"``; ``""`` for none."""
    system, units = unit_exponents(unit)
    if system in ("Vendor", "Reserved"):
        return f"{system.lower()} unit 0x{unit:x}"
    if not units:
        return ""
    parts = [(_UNIT_ABBR[n] if e == 1 else f"{_UNIT_ABBR[n]}^{e}") for n, e in units.items()]
    text = "*".join(parts)
    return f"1e{exponent} {text}" if exponent else text


def flag_names(flags: int) -> list[str]:
    """The Input/Output/Feature flag names of a main item value, one per defined bit."""
    return [(one if flags >> bit & 1 else zero) for bit, zero, one in MAIN_FLAGS]


@dataclass(frozen=True, slots=True)
class Item:
    """One report descriptor item.

    Attributes:
        offset: byte offset of the item's prefix in the descriptor.
        raw: every byte of the item, prefix included.
        type: MAIN, GLOBAL, LOCAL, RESERVED or LONG.
        tag: the bTag (for a long item, bLongItemTag).
        data: the data bytes (for a long item, the long data).
    """

    offset: int
    raw: bytes
    type: ItemType
    tag: int
    data: bytes

    @property
    def size(self) -> int:
        """Number of data bytes (0, 1, 2 or 4 for short items)."""
        return len(self.data)

    @property
    def udata(self) -> int:
        """Data as an unsigned little-endian integer (0 for size 0)."""
        return int.from_bytes(self.data, "little") if self.type != ItemType.LONG else 0

    @property
    def sdata(self) -> int:
        """Data as a signed (two's complement) little-endian integer."""
        if self.type == ItemType.LONG or not self.data:
            return 0
        return int.from_bytes(self.data, "little", signed=True)

    @property
    def name(self) -> str:
        """The item's name from the spec, or a description of a reserved tag."""
        if self.type == ItemType.LONG:
            return f"Long Item (tag 0x{self.tag:02x})"
        names = _TAGS.get(self.type)
        if names is None:
            return f"Reserved Item (type 3, tag 0x{self.tag:x})"
        if self.tag in names:
            return names[self.tag]
        return f"Reserved {self.type.name.capitalize()} Item (tag 0x{self.tag:x})"

    @property
    def is_reserved(self) -> bool:
        """True for a reserved type, a reserved tag, or a long item (none is defined)."""
        if self.type in (ItemType.LONG, ItemType.RESERVED):
            return True
        return self.tag not in _TAGS[self.type]

    def __str__(self) -> str:
        return f"{self.offset:5d}: {self.raw.hex(' '):<15s} {self.name}({self.value_text()})"

    def value_text(self) -> str:
        """The item's value as hid-decode prints it (signed for ranges, hex for pages)."""
        if self.type == ItemType.LONG:
            return self.data.hex()
        if self.type == ItemType.MAIN and self.tag in (8, 9, 0xB):
            return ",".join(n for n in flag_names(self.udata))
        if self.type == ItemType.MAIN and self.tag == 0xA:
            v = self.udata
            return COLLECTION_TYPES.get(v, "Vendor Defined" if v >= 0x80 else f"Reserved 0x{v:x}")
        if self.type == ItemType.GLOBAL and self.tag in (1, 3):
            return str(self.sdata)
        if self.type == ItemType.GLOBAL and self.tag == 6:
            return unit_text(self.udata) or "None"
        if self.type == ItemType.GLOBAL and self.tag == 5:
            v = self.sdata
            return str(_snibble(v) if 0 <= v <= 15 else v)
        if self.type in (ItemType.GLOBAL, ItemType.LOCAL) and self.tag in (0, 1, 2) and self.size:
            return f"0x{self.udata:0{2 * self.size}x}"
        return str(self.udata) if self.size else ""


_ITEM_TYPES = tuple(ItemType(t) for t in range(4))


def _item_at(data: bytes, pos: int) -> Item:
    end = len(data)
    b = data[pos]
    btype = (b >> 2) & 3
    tag = b >> 4
    if tag == 0xF:
        # Long item: bDataSize, bLongItemTag, data. The kernel treats every 0xF? prefix as long.
        if end - pos < 3:
            raise DecodeError(
                f"long item header needs 3 bytes, {end - pos} left",
                offset=pos,
                descriptor="report descriptor",
                rule="long item",
            )
        size = data[pos + 1]
        if end - pos - 3 < size:
            raise DecodeError(
                f"long item declares {size} data bytes, {end - pos - 3} left",
                offset=pos,
                descriptor="report descriptor",
                rule="bDataSize",
            )
        return Item(pos, bytes(data[pos : pos + 3 + size]), ItemType.LONG, data[pos + 2],
                    bytes(data[pos + 3 : pos + 3 + size]))
    size = (0, 1, 2, 4)[b & 3]
    if end - pos - 1 < size:
        raise DecodeError(
            f"item 0x{b:02x} needs {size} data bytes, {end - pos - 1} left",
            offset=pos,
            descriptor="report descriptor",
            rule="bSize",
        )
    return Item(pos, bytes(data[pos : pos + 1 + size]), _ITEM_TYPES[btype], tag,
                bytes(data[pos + 1 : pos + 1 + size]))


def iter_items(data: bytes, limit: int | None = None) -> Iterator[Item]:
    """Yield each item of a report descriptor in order.

    Args:
        data: the report descriptor bytes.
        limit: stop before an item that starts at or after this offset (None: the whole data).

    Raises:
        DecodeError: at the offset of an item cut short by the end of the data.
    """
    pos = 0
    end = len(data) if limit is None else min(len(data), limit)
    while pos < end:
        item = _item_at(data, pos)
        yield item
        pos += len(item.raw)


def parse_items(data: bytes, limit: int | None = None) -> tuple[list[Item], DecodeError | None]:
    """Split a descriptor into items, keeping what parsed before a truncated item.

    Args:
        data: the report descriptor bytes.
        limit: stop before an item that starts at or after this offset (None: the whole data).

    Returns:
        ``(items, error)`` where error is the DecodeError for a truncated last item, or None.
    """
    items: list[Item] = []
    try:
        items.extend(iter_items(data, limit))  # what came before a truncated item stays in
    except DecodeError as exc:
        return items, exc
    return items, None
