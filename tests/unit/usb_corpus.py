"""Test helper: where the shared corpus is, and the USB sets in it."""

from __future__ import annotations

import json

from corpus_path import CORPUS, REPO  # noqa: F401 - REPO re-exported for the tests

USB_SETS = sorted((CORPUS / "usb").glob("*.json"))
SLUGS = [p.stem for p in USB_SETS]


def corpus_item(slug: str) -> dict:
    """The corpus JSON object of one USB set."""
    return json.loads((CORPUS / "usb" / f"{slug}.json").read_text())


def corpus_bytes(slug: str) -> tuple[bytes, bytes]:
    """(descriptors, bos) bytes of one USB set."""
    item = corpus_item(slug)
    return bytes.fromhex(item["descriptors_hex"]), bytes.fromhex(item.get("bos_descriptor_hex") or "")


def oracle_text(slug: str) -> str:
    """``lsusb -v`` of the set served to a Linux kernel."""
    return (CORPUS / "oracle" / "usb" / f"{slug}.lsusb").read_text()
