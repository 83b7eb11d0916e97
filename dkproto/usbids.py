"""Names from the ``usb.ids`` database (vendors, products, classes, subclasses, protocols).

The file ships as package data (``dkproto/data/usb.ids``; provenance and licence in
``dkproto/data/usb.ids.NOTICE``). It is read once, lazily, and never parsed as a whole: a
lookup searches the bytes for the line it needs (``b"\\n046d  "``) and decodes that line only,
which costs well under a millisecond and keeps ``import dkproto`` and ``dkproto dump`` start-up
fast. Class look-ups search from the first class line on (found once), not from the top.
Set ``DKPROTO_USB_IDS`` to use another copy (for instance ``/usr/share/hwdata/usb.ids``).
"""

from __future__ import annotations

import os
from functools import lru_cache

__all__ = ["class_name", "product_name", "protocol_name", "subclass_name", "vendor_name", "version"]

# The database as bytes with a leading newline (so every line starts after a b"\n"). Searching
# bytes rather than decoded text skips decoding 700 KB of which a dump needs a few lines; a
# line is decoded (UTF-8, bad bytes replaced) when its name is returned. A newline byte is never
# part of a UTF-8 sequence, so this gives the names that decoding the whole file would.
_data: bytes | None = None
#: Offset of the first ``C xx`` (class) line, once searched (-1: none).
_classes_at: int | None = None


def _db() -> bytes:
    global _data
    if _data is None:
        path = os.environ.get("DKPROTO_USB_IDS")
        try:
            if path:
                with open(path, "rb") as fh:
                    raw = fh.read()
                if b"\r" in raw:  # what the text mode's universal newlines made of it
                    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            else:
                from dkproto._paths import package_data

                raw = package_data("usb.ids")
            _data = b"\n" + raw
        except OSError:
            _data = b"\n"
    return _data


def _find_top(prefix: str) -> int:
    """Offset just after the top-level line starting with ``prefix`` + two spaces, or -1."""
    global _classes_at
    db = _db()
    start = 0
    if prefix.startswith("C "):
        # Class lines come after the ~700 KB of vendors: the first "C xx  " line is found once,
        # and any class's own line cannot be before it.
        if _classes_at is None:
            _classes_at = db.find(b"\nC ")
        if _classes_at < 0:
            return -1
        start = _classes_at
    pos = db.find(b"\n" + prefix.encode("ascii") + b"  ", start)
    if pos < 0:
        return -1
    return pos + 1


def _name(raw: bytes) -> str:
    """The name part of a line's bytes, decoded as the whole file used to be."""
    return raw.decode("utf-8", errors="replace").strip()


def _line_name(db: bytes, start: int) -> tuple[str, int]:
    end = db.find(b"\n", start)
    if end < 0:
        end = len(db)
    line = db[start:end]
    return _name(line.split(b"  ", 1)[1]) if b"  " in line else "", end


def _child(start: int, key: str, depth: int) -> tuple[str | None, int]:
    """Find the ``depth``-tab child line ``key`` below the entry whose line starts at ``start``."""
    db = _db()
    _, pos = _line_name(db, start)
    tabs = b"\t" * depth
    want = key.encode("ascii") + b"  "
    while pos < len(db):
        nxt = db.find(b"\n", pos + 1)
        if nxt < 0:
            nxt = len(db)
        line = db[pos + 1 : nxt]
        pos = nxt
        if not line or line.startswith(b"#"):
            continue
        if not line.startswith(b"\t"):
            return None, -1
        if line.startswith(tabs) and not line[depth:].startswith(b"\t"):
            if line[depth:].lower().startswith(want):
                return _name(line[depth:].split(b"  ", 1)[1]), pos - len(line)
        elif depth > 1 and not line.startswith(tabs):
            return None, -1
    return None, -1


@lru_cache(maxsize=4096)
def vendor_name(vid: int) -> str | None:
    """The vendor's name for ``idVendor``, or None."""
    start = _find_top(f"{vid:04x}")
    if start < 0:
        return None
    return _line_name(_db(), start)[0]


@lru_cache(maxsize=4096)
def product_name(vid: int, pid: int) -> str | None:
    """The product's name for ``idVendor``/``idProduct``, or None."""
    start = _find_top(f"{vid:04x}")
    if start < 0:
        return None
    return _child(start, f"{pid:04x}", 1)[0]


@lru_cache(maxsize=512)
def class_name(cls: int) -> str | None:
    """The usb.ids name of a class code."""
    start = _find_top(f"C {cls:02x}")
    if start < 0:
        return None
    return _line_name(_db(), start)[0]


@lru_cache(maxsize=2048)
def subclass_name(cls: int, subclass: int) -> str | None:
    """The usb.ids name of a subclass within ``cls``."""
    start = _find_top(f"C {cls:02x}")
    if start < 0:
        return None
    return _child(start, f"{subclass:02x}", 1)[0]


@lru_cache(maxsize=2048)
def protocol_name(cls: int, subclass: int, protocol: int) -> str | None:
    """The usb.ids name of a protocol within ``cls``/``subclass``."""
    start = _find_top(f"C {cls:02x}")
    if start < 0:
        return None
    name, sub_start = _child(start, f"{subclass:02x}", 1)
    if name is None:
        return None
    return _child(sub_start, f"{protocol:02x}", 2)[0]


def version() -> str | None:
    """The ``# Version:`` line of the database in use."""
    db = _db()
    pos = db.find(b"# Version:")
    if pos < 0:
        return None
    return _line_name(db.replace(b"# Version:", b"# Version:  ", 1), pos)[0] or None
