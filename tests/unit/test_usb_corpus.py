"""The whole USB corpus: decodes, renders three ways, rebuilds, reloads, agrees with lsusb -v."""

from __future__ import annotations

import json

import pytest
from usb_corpus import REPO, SLUGS, USB_DIR, corpus_bytes, corpus_item, oracle_text, set_path

from dkproto.usb import from_bytes, load, render_hex, render_json, render_text
from dkproto.usb.lsusb import compare_with_lsusb, parse_lsusb

#: The quirky sets and exactly what dkproto says about them (warnings; none are errors).
QUIRKS = {
    "apple-iphone-four-configurations": [],
    "espressif-tinyusb-msc-esp32s3": [
        ("offset 18, Configuration Descriptor: device class 0xEF/0x02/0x01 (Interface Association) but "
        "configuration 1 has no Interface Association Descriptor"),
    ],
    "logitech-streamcam-superspeed": [
        f"offset {o}, SuperSpeed USB Endpoint Companion Descriptor: SuperSpeed Endpoint Companion in a device "
        "with bcdUSB 2.10 (< 3.00): only SuperSpeed configurations carry companions"
        for o in (1782, 1813)
    ],
}


def test_corpus_is_there() -> None:
    assert len(list(USB_DIR.glob("*.json"))) == 34, USB_DIR


def test_quirky_items_are_the_known_ones() -> None:
    quirky = {s for s in SLUGS if corpus_item(s).get("quirky")}
    assert quirky == set(QUIRKS)


@pytest.mark.parametrize("slug", SLUGS)
def test_decodes_without_errors(slug: str) -> None:
    ds = load(set_path(slug))
    assert [str(e) for e in ds.errors] == []
    assert [str(w) for w in ds.warnings] == QUIRKS.get(slug, [])
    assert ds.device is not None and ds.device.decoded
    assert len(ds.configurations) == ds.device["bNumConfigurations"]
    # every standard descriptor decodes; only class/vendor ones may stay raw
    for node in ds.nodes():
        if node.bDescriptorType in (1, 2, 4, 5, 0x0B, 0x0F, 0x10, 0x30):
            assert node.decoded, (slug, node)


@pytest.mark.parametrize("slug", SLUGS)
def test_rebuilds_identical_bytes(slug: str) -> None:
    data, bos = corpus_bytes(slug)
    ds = load(set_path(slug))
    assert ds.to_bytes() == data
    assert ds.bos_bytes() == bos
    # and node by node
    for node in ds.nodes():
        assert node.own_bytes() == node.raw, (slug, node)


@pytest.mark.parametrize("slug", SLUGS)
def test_renders_and_reloads(slug: str) -> None:
    data, bos = corpus_bytes(slug)
    ds = load(set_path(slug))
    text = render_text(ds)
    assert "Device Descriptor:" in text and "Configuration Descriptor:" in text
    headers = [ln.strip() for ln in text.splitlines()]
    assert headers.count("Interface Descriptor:  [offset") == 0
    assert sum(h.startswith("Interface Descriptor:") for h in headers) == len([n for n in ds.nodes() if n.role == "interface"])
    as_json = render_json(ds)
    obj = json.loads(as_json)
    assert obj["descriptors"][0]["fields"]["idVendor"] == ds.device["idVendor"]
    again = from_bytes(as_json.encode())
    assert again.to_bytes() == data and again.bos_bytes() == bos
    assert again.meta["name"] == corpus_item(slug)["name"]
    hexed = render_hex(ds)
    again = from_bytes(hexed.encode())
    assert again.to_bytes() == data and again.bos_bytes() == bos
    # one line per descriptor in the hex view
    lines = [ln for ln in hexed.splitlines() if ln.strip() and not ln.startswith(("#", "["))]
    assert len(lines) == sum(1 for _ in ds.nodes())


@pytest.mark.parametrize("slug", SLUGS)
def test_agrees_with_lsusb_oracle(slug: str) -> None:
    ds = load(set_path(slug))
    text = oracle_text(slug)
    parsed = parse_lsusb(text)
    assert len(parsed) == 1
    assert len(parsed[0]["fields"]) == 14  # every device field was read
    assert parsed[0]["configurations"]
    assert all(iface["fields"] for cfg in parsed[0]["configurations"] for iface in cfg["interfaces"])
    assert compare_with_lsusb(ds, text) == []


@pytest.mark.parametrize("slug", SLUGS)
def test_library_copy_is_the_corpus(slug: str) -> None:
    lib = load(REPO / "descriptors" / slug)  # without the extension
    data, bos = corpus_bytes(slug)
    assert lib.to_bytes() == data and lib.bos_bytes() == bos
    assert lib.meta["source"] == corpus_item(slug)["source"]
