"""Names from the ``usb.ids`` database (vendors, products, classes, subclasses, protocols).

The file ships as package data (``dkproto/data/usb.ids``; provenance and licence in
``dkproto/data/usb.ids.NOTICE``). It is read once, lazily, and never parsed as a whole: a
lookup searches the text for the line it needs (``"\\n046d  "``), which costs well under a
millisecond and keeps ``import dkproto`` and ``dkproto dump`` start-up fast.
Set ``DKPROTO_USB_IDS`` to use another copy (for instance ``/usr/share/hwdata/usb.ids``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources

__all__ = ["class_name", "product_name", "protocol_name", "subclass_name", "vendor_name", "version"]

_text: str | None = None


def _db() -> str:
    global _text
    if _text is None:
        path = os.environ.get("DKPROTO_USB_IDS")
        try:
            if path:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    _text = "\n" + fh.read()
            else:
                raw = resources.files("dkproto.data").joinpath("usb.ids").read_bytes()
                _text = "\n" + raw.decode("utf-8", errors="replace")
        except OSError:
            _text = "\n"
    return _text


def _find_top(prefix: str) -> int:
    """Offset just after the top-level line starting with ``prefix`` + two spaces, or -1."""
    db = _db()
    pos = db.find("\n" + prefix + "  ")
    if pos < 0:
        return -1
    return pos + 1


def _line_name(db: str, start: int) -> tuple[str, int]:
    end = db.find("\n", start)
    if end < 0:
        end = len(db)
    line = db[start:end]
    return line.split("  ", 1)[1].strip() if "  " in line else "", end


def _child(start: int, key: str, depth: int) -> tuple[str | None, int]:
    """Find the ``depth``-tab child line ``key`` below the entry whose line starts at ``start``."""
    db = _db()
    _, pos = _line_name(db, start)
    tabs = "\t" * depth
    while pos < len(db):
        nxt = db.find("\n", pos + 1)
        if nxt < 0:
            nxt = len(db)
        line = db[pos + 1 : nxt]
        pos = nxt
        if not line or line.startswith("#"):
            if not line:
                continue
            continue
        if not line.startswith("\t"):
            return None, -1
        if line.startswith(tabs) and not line[depth:].startswith("\t"):
            if line[depth:].lower().startswith(key + "  "):
                return line[depth:].split("  ", 1)[1].strip(), pos - len(line)
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
    pos = db.find("# Version:")
    if pos < 0:
        return None
    return _line_name(db.replace("# Version:", "# Version:  ", 1), pos)[0] or None
