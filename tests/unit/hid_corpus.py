"""Test helper: the HID report descriptors of the test corpus (see ``corpus_path``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from corpus_path import HID_DIR, HID_SETS, oracle_path  # noqa: F401 - HID_DIR re-exported

HID_ITEMS = HID_SETS
HID_IDS = [p.stem for p in HID_ITEMS]


def load_item(path: Path) -> dict[str, Any]:
    """The corpus JSON of one item."""
    return json.loads(path.read_text())


def descriptor(path: Path) -> bytes:
    """The report descriptor bytes of one item."""
    return bytes.fromhex(load_item(path)["report_descriptor_hex"])


def oracle_rdesc(path: Path) -> Path:
    """The kernel's debugfs rdesc for one item."""
    return oracle_path(path, "hid", "rdesc")
