"""Text and JSON dumps leave out what a descriptor does not carry, and read like lsusb -v."""

from __future__ import annotations

import json

from test_usb_walker import DEVICE, config
from usb_corpus import corpus_bytes

from dkproto.usb import from_bytes, parse, render_json, render_text, to_json

CDC_IF = bytes.fromhex("09 04 00 00 00 02 02 01 00")


def _children_json(ds):
    return to_json(ds)["descriptors"][1]["children"][0]["children"]


def test_absent_optionals_and_empty_extra_are_not_shown() -> None:
    data, bos = corpus_bytes("logitech-c270-webcam")
    ds = parse(data, bos or None)
    text = render_text(ds)
    assert "(empty)" not in text and " None" not in text and "\n        extra " not in text
    obj = to_json(ds)
    stack = list(obj["descriptors"])
    seen = 0
    while stack:
        item = stack.pop()
        stack.extend(item.get("children", ()))
        fields = item.get("fields", {})
        assert "extra" not in fields and None not in fields.values()
        seen += item["descriptor"].startswith("uvc_vs_frame")
    assert seen > 10
    # a discrete frame carries dwFrameInterval but not dwMinFrameInterval: the node still has both keys
    frame = next(n for n in ds.nodes() if n.key == "uvc_vs_frame_uncompressed")
    assert frame.fields["dwMinFrameInterval"] is None
    assert "dwMinFrameInterval" not in dict(frame.field_items()) and "dwFrameInterval" in dict(frame.field_items())


def test_bytes_past_a_fixed_class_layout_shown_warned_and_kept() -> None:
    header = bytes.fromhex("06 24 00 10 01 99")  # CDC header is 5 bytes: one byte too many
    data = DEVICE[:17] + b"\x01" + config(CDC_IF, header, interfaces=1)
    ds = parse(data)
    assert ds.errors == []
    [warning] = [w for w in ds.warnings if w.rule == "bLength"]
    assert warning.offset == 36 and "bLength 6 > 5 fixed by the spec; 1 extra bytes kept" in str(warning)
    node = next(n for n in ds.nodes() if n.key == "cdc_header")
    assert node.trailing == b"\x99"
    text = render_text(ds)
    assert "(extra bytes)          99" in text
    [item] = _children_json(ds)
    assert item["extra_hex"] == "99" and "extra" not in item["fields"]
    assert ds.to_bytes() == data
    assert from_bytes(render_json(ds).encode()).to_bytes() == data


def test_variable_class_layout_with_extra_bytes_is_not_warned() -> None:
    union = bytes.fromhex("05 24 06 00 01")  # union: its length varies with the subordinate list
    data = DEVICE[:17] + b"\x01" + config(CDC_IF, union, interfaces=1)
    ds = parse(data)
    assert [w for w in ds.warnings if w.rule == "bLength"] == []


def test_quantities_in_decimal_codes_in_hex_columns_aligned() -> None:
    data, bos = corpus_bytes("logitech-c270-webcam")
    text = render_text(parse(data, bos or None))
    lines = text.splitlines()
    assert any(line.split() == ["wWidth", "640", "pixels"] for line in lines)
    assert any(line.split()[:2] == ["dwMaxVideoFrameBufferSize", "614400"] for line in lines)
    assert any(line.split()[:2] == ["wTotalLength", "0x09a2"] for line in lines)  # lsusb: hex
    assert any(line.split()[:2] == ["wMaxPacketSize", "0x0044"] for line in lines)
    # within one descriptor, every value ends in the same column
    start = next(i for i, line in enumerate(lines) if "Uncompressed Video Frame Descriptor" in line)
    block = []
    for line in lines[start + 1:]:
        if line.endswith(":") or "Descriptor:" in line:
            break
        block.append(line)
    value_ends = set()
    for line in block:
        name = line.split()[0]
        value = line.split()[1]
        if name == "dwFrameInterval":
            continue
        value_ends.add(line.index(value, line.index(name) + len(name)) + len(value))
    assert len(value_ends) == 1, block


def test_json_still_reloads_identically() -> None:
    data, bos = corpus_bytes("logitech-c270-webcam")
    ds = parse(data, bos or None)
    again = from_bytes(json.dumps(to_json(ds)).encode())
    assert again.to_bytes() == data


def test_bos_capability_types_are_named() -> None:
    data, bos = corpus_bytes("logitech-streamcam-superspeed")
    ds = parse(data, bos or None)
    lines = [line.split() for line in render_text(ds).splitlines()]
    assert ["bDevCapabilityType", "2", "USB", "2.0", "Extension"] in lines
    assert ["bDevCapabilityType", "3", "SuperSpeed", "USB"] in lines
    caps = to_json(ds)["bos"][0]["children"]
    assert caps[0]["meanings"]["bDevCapabilityType"] == "USB 2.0 Extension"
