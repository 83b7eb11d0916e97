"""HID usage names from the official HID Usage Tables (HUT 1.5 JSON, shipped in ``dkproto/data``).

A usage is a 32-bit value: usage page in the high 16 bits, usage ID in the low 16 bits.
Names come from the USB-IF JSON, loaded lazily on first use. Generated usages are named from
the page's ``UsageIdGenerator`` (``Button 3``, ``Instance 2``, ``Enum 7``); pages 0xFF00-0xFFFF
are named ``Vendor-defined 0xFFxx``; anything else unknown is shown in hex.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from dkproto.errors import NotFoundError

__all__ = [
    "UsagePage",
    "find_page",
    "lookup_usage",
    "page_name",
    "pages",
    "usage_full_name",
    "usage_name",
]

DATA_FILE = "HidUsageTables-1.5.json"


@dataclass(frozen=True, slots=True)
class UsagePage:
    """One usage page: its ID, name, defined usages and (optional) name generator."""

    id: int
    name: str
    usages: dict[int, tuple[str, tuple[str, ...]]]
    generator: dict[str, Any] | None

    def name_of(self, usage_id: int) -> str | None:
        """The name of a usage ID on this page, generated names included; None if unknown."""
        entry = self.usages.get(usage_id)
        if entry is not None:
            return entry[0]
        gen = self.generator
        if gen and gen["StartUsageId"] <= usage_id <= gen["EndUsageId"]:
            return f"{gen['NamePrefix']} {usage_id}"
        return None


@lru_cache(maxsize=1)
def _tables() -> dict[int, UsagePage]:
    text = resources.files("dkproto.data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    out: dict[int, UsagePage] = {}
    for p in raw["UsagePages"]:
        usages = {u["Id"]: (u["Name"], tuple(u.get("Kinds") or ())) for u in p.get("UsageIds") or ()}
        out[p["Id"]] = UsagePage(p["Id"], p["Name"], usages, p.get("UsageIdGenerator"))
    return out


def pages() -> list[UsagePage]:
    """Every usage page of the tables, by ID."""
    return [v for _, v in sorted(_tables().items())]


def page_name(page: int) -> str:
    """The name of a usage page (``Generic Desktop``; ``Vendor-defined 0xFF00``; ``Page 0x0042``)."""
    p = _tables().get(page)
    if p is not None:
        return p.name
    if 0xFF00 <= page <= 0xFFFF:
        return f"Vendor-defined 0x{page:04X}"
    if page == 0:
        return "Undefined"
    return f"Reserved 0x{page:04X}"


def usage_name(usage: int, page: int | None = None) -> str:
    """The short name of a usage (``X``, ``Button 1``; ``0xff000001`` style hex when unknown).

    Args:
        usage: a 32-bit usage, or a 16-bit usage ID with ``page`` given.
        page: the usage page, when ``usage`` holds only the ID.
    """
    if page is None:
        return _usage_name(usage >> 16, usage & 0xFFFF)
    return _usage_name(page, usage & 0xFFFF)


#: Names are asked for again and again (every element of an array field, every rendering); the
#: tables are fixed, so the answers are cached. The bound keeps a hostile descriptor from growing
#: the caches without limit: 2**16 entries is one whole usage page.
_NAME_CACHE = 1 << 16


@lru_cache(maxsize=_NAME_CACHE)
def _usage_name(page: int, uid: int) -> str:
    p = _tables().get(page)
    if p is not None:
        name = p.name_of(uid)
        if name is not None:
            return name
        return f"{p.name} 0x{uid:04x}"
    if 0xFF00 <= page <= 0xFFFF:
        return f"Vendor 0x{page:04x}:0x{uid:04x}"
    return f"0x{page:04x}:0x{uid:04x}"


@lru_cache(maxsize=_NAME_CACHE)
def usage_full_name(usage: int) -> str:
    """``Page / Usage`` for a 32-bit usage (``Generic Desktop / X``)."""
    return f"{page_name(usage >> 16)} / {usage_name(usage)}"


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def find_page(spec: str | int) -> int:
    """Resolve a page given as a number (``1``, ``0x0d``) or a name (``Digitizers``, ``digitizer``).

    Raises:
        NotFoundError: no page has that number format or name.
    """
    if isinstance(spec, int):
        return spec
    s = spec.strip()
    try:
        return int(s, 0)
    except ValueError:
        pass
    want = _norm(s)
    for p in _tables().values():
        if _norm(p.name) == want or _norm(p.name).rstrip("s") == want.rstrip("s"):
            return p.id
    raise NotFoundError(f"no HID usage page named {spec!r} (try a number such as 0x01)")


def lookup_usage(name: str, page: int | None = None) -> int:
    """Find the 32-bit usage for a name (``X``, ``Button 3``, ``Generic Desktop / X``, ``0x10030``).

    Args:
        name: the usage name, optionally prefixed by ``Page /``; or a number.
        page: restrict the search to this page.

    Raises:
        NotFoundError: the name is not on the page (or on any page).
    """
    s = name.strip()
    try:
        return int(s, 0)
    except ValueError:
        pass
    if "/" in s:
        pname, _, s = s.partition("/")
        page = find_page(pname)
        s = s.strip()
    want = _norm(s)
    candidates = [page] if page is not None else sorted(_tables())
    for pid in candidates:
        p = _tables().get(pid)
        if p is None:
            continue
        for uid, (uname, _kinds) in p.usages.items():
            if _norm(uname) == want:
                return (pid << 16) | uid
        gen = p.generator
        if gen:
            m = re.fullmatch(re.escape(_norm(gen["NamePrefix"])) + r"(\d+)", want)
            if m and gen["StartUsageId"] <= int(m.group(1)) <= gen["EndUsageId"]:
                return (pid << 16) | int(m.group(1))
    where = f" on page {page_name(page)}" if page is not None else ""
    raise NotFoundError(f"no HID usage named {name!r}{where}")
