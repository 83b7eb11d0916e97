"""Where the HID corpus lives, for the HID tests (DKPROTO_CORPUS overrides)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from corpus_path import CORPUS

HID_ITEMS = sorted((CORPUS / "hid").glob("*.json"))
HID_IDS = [p.stem for p in HID_ITEMS]


def load_item(path: Path) -> dict[str, Any]:
    """The corpus JSON of one item."""
    return json.loads(path.read_text())


def descriptor(path: Path) -> bytes:
    """The report descriptor bytes of one item."""
    return bytes.fromhex(load_item(path)["report_descriptor_hex"])


def oracle_rdesc(path: Path) -> Path:
    """The kernel's debugfs rdesc for one item."""
    return CORPUS / "oracle" / "hid" / f"{path.stem}.rdesc"
