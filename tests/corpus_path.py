"""Where the test corpus is: the repository's own ``descriptors/`` library, nothing outside it.

* ``descriptors/*.json``: the USB descriptor sets;
* ``descriptors/hid/*.json``: the HID report descriptors;
* ``descriptors/oracle/{usb,hid}/``: what a Linux kernel made of each (``lsusb -v`` as
  ``.lsusb``, the HID core's debugfs parse as ``.rdesc``); see ``descriptors/oracle/README.md``.

``$DKPROTO_CORPUS`` may name an *extra* corpus laid out the same way as the project's reference
corpus (``usb/*.json``, ``hid/*.json``, ``oracle/usb/*.lsusb``, ``oracle/hid/*.rdesc``): its items
join the parametrised corpus tests. Nothing else is looked for; a clone alone passes its tests.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DESCRIPTORS = REPO / "descriptors"
#: The repository's own folders.
USB_DIR = DESCRIPTORS
HID_DIR = DESCRIPTORS / "hid"
ORACLE_DIR = DESCRIPTORS / "oracle"


def extra_corpus() -> Path | None:
    """The folder ``$DKPROTO_CORPUS`` names, or None; a set variable that names no corpus is an error."""
    env = os.environ.get("DKPROTO_CORPUS")
    if not env:
        return None
    path = Path(env)
    if not (path / "usb").is_dir() and not (path / "hid").is_dir():
        raise RuntimeError(f"DKPROTO_CORPUS={env}: no usb/ or hid/ folder there")
    return path


EXTRA = extra_corpus()


def _items(repo_dir: Path, extra_sub: str) -> list[Path]:
    items = sorted(repo_dir.glob("*.json"))
    if EXTRA is not None:
        seen = {p.name for p in items}
        items += [p for p in sorted((EXTRA / extra_sub).glob("*.json")) if p.name not in seen]
    return items


#: Every USB descriptor set: the repository's, then any extra corpus's.
USB_SETS = _items(USB_DIR, "usb")
#: Every HID report descriptor item: the repository's, then any extra corpus's.
HID_SETS = _items(HID_DIR, "hid")


def oracle_path(item: Path, kind: str, ext: str) -> Path:
    """The kernel's view of ``item`` (``kind`` ``usb`` or ``hid``, ``ext`` ``lsusb`` or ``rdesc``)."""
    root = ORACLE_DIR
    if EXTRA is not None and item.resolve().is_relative_to(EXTRA.resolve()):
        root = EXTRA / "oracle"
    return root / kind / f"{item.stem}.{ext}"
