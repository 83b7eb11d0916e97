"""Test helper: the USB descriptor sets of the test corpus (see ``corpus_path``)."""

from __future__ import annotations

import json
from pathlib import Path

from corpus_path import REPO, USB_DIR, USB_SETS, oracle_path  # noqa: F401 - REPO, USB_DIR re-exported

SLUGS = [p.stem for p in USB_SETS]
_BY_SLUG = {p.stem: p for p in USB_SETS}


def set_path(slug: str) -> Path:
    """The JSON file of one USB set."""
    return _BY_SLUG[slug]


def corpus_item(slug: str) -> dict:
    """The corpus JSON object of one USB set."""
    return json.loads(set_path(slug).read_text())


def corpus_bytes(slug: str) -> tuple[bytes, bytes]:
    """(descriptors, bos) bytes of one USB set."""
    item = corpus_item(slug)
    return bytes.fromhex(item["descriptors_hex"]), bytes.fromhex(item.get("bos_descriptor_hex") or "")


def oracle_text(slug: str) -> str:
    """``lsusb -v`` of the set served to a Linux kernel."""
    return oracle_path(set_path(slug), "usb", "lsusb").read_text()
