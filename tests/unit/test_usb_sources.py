"""File sources: every format, the descriptors/ folder, the embedded example."""

from __future__ import annotations

from pathlib import Path

import pytest
from usb_corpus import REPO, SLUGS, corpus_bytes

from dkproto.errors import DecodeError, NotFoundError
from dkproto.usb import (
    from_bytes,
    from_hex,
    load,
    load_embedded_example,
    load_folder,
    parse,
    render_hex,
    render_text,
    to_json,
)
from dkproto.usb.tree import DescriptorSet, Node


def test_raw_sysfs_binary(tmp_path: Path) -> None:
    data, _ = corpus_bytes("lenovo-usb-hub-17ef-1005-multi-tt")
    path = tmp_path / "descriptors"
    path.write_bytes(data)
    ds = load(path)
    assert ds.meta["format"] == "binary" and ds.errors == [] and ds.to_bytes() == data
    assert ds.vid_pid == (0x17EF, 0x1005)


def test_hex_text_with_comments_and_sections() -> None:
    text = """
    # a device descriptor, C style
    0x12, 0x01, 0x10, 0x02, 0x00, 0x00, 0x00, 0x40,  // bLength .. bMaxPacketSize0
    0x50, 0x1d, 0x89, 0x60, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00
    [bos]
    05 0f 0c 00 01
    07:10:02:06:00:00:00
    [string 0 0]
    04 03 09 04
    """
    ds = from_hex(text)
    assert ds.errors == []
    assert ds.device["bcdUSB"] == 0x0210
    assert ds.bos.children[0].key == "usb20_extension"
    assert ds.langids() == [0x0409]
    again = from_bytes(render_hex(ds).encode())
    assert again.to_bytes() == ds.to_bytes() and again.bos_bytes() == ds.bos_bytes()
    assert again.langids() == [0x0409]


#: what ``sources.read_device`` puts in ``extras`` for a high-speed hub: the hub class
#: descriptor (0x29), then the device qualifier; plus an other-speed configuration with
#: its interface and endpoint (a standalone blob with children)
_HUB = bytes.fromhex("092904e000326400ff")
_QUALIFIER = bytes.fromhex("0a060002090001400100")
_OTHER_SPEED = bytes.fromhex("09071900010100e001" "090400000109000000" "0705810301" "00ff")


def _shape(nodes: list[Node]) -> list[tuple[str, str, str, int, bytes, list]]:
    return [(n.key, n.role, n.blob, n.offset, n.own_bytes(), _shape(n.children)) for n in nodes]


def _live_hub() -> DescriptorSet:
    data, _ = corpus_bytes("lenovo-usb-hub-17ef-1005-multi-tt")
    return parse(data, strings={(0, 0): bytes.fromhex("04030904")},
                 extras=[_HUB, _QUALIFIER, _OTHER_SPEED], source="usb:001:002")


def test_hex_dump_carries_extras() -> None:
    ds = _live_hub()
    assert ds.errors == [] and [n.key for n in ds.extras] == ["hub", "device_qualifier", "other_speed_configuration"]
    hexed = render_hex(ds)
    assert hexed.count("[extra]\n") == 3
    assert "[extra]\n09 29 04 e0 00 32 64 00 ff" in hexed and "# @0000 Hub Descriptor" in hexed
    again = from_hex(hexed, source="usb:001:002")
    assert again.errors == [] and again.warnings == []
    assert again.to_bytes() == ds.to_bytes() and again.bos_bytes() == ds.bos_bytes() == b""
    assert [n.to_bytes() for n in again.extras] == [_HUB, _QUALIFIER, _OTHER_SPEED]
    # same roles, blob, offsets and children as the live source gives them
    assert _shape(again.extras) == _shape(ds.extras)
    assert again.extras[2].children[0].role == "interface"
    assert again.extras[2].children[0].children[0].role == "endpoint"
    assert again.device_qualifier is not None and again.device_qualifier["bDeviceClass"] == 9
    assert again.langids() == [0x0409]
    assert render_text(again) == render_text(ds)
    assert to_json(again) == to_json(ds)
    assert render_hex(again) == hexed
    # format detection (dkproto dump FILE) takes the same path
    assert _shape(from_bytes(hexed.encode()).extras) == _shape(ds.extras)


def test_hex_extra_sections_by_hand() -> None:
    text = f"""
    [descriptors]
    {_live_hub().to_bytes().hex(" ")}
    [extra]
    # the qualifier, C style
    0x0a, 0x06, 0x00, 0x02, 0x09, 0x00, 0x01, 0x40, 0x01, 0x00
    [EXTRA]
    [extra]
    09 29 04 e0 00 32 64 00 ff
    """
    ds = from_hex(text)
    assert ds.errors == []
    assert [n.key for n in ds.extras] == ["device_qualifier", "hub"]  # the empty section holds nothing
    # sections are counted as written, the empty one too
    with pytest.raises(DecodeError, match="extra 4: odd number of hex digits"):
        from_hex(text + "[extra]\n0a 0\n")


def test_hex_text_errors_name_the_line() -> None:
    with pytest.raises(DecodeError, match="line 2: 'g' is not a hex digit"):
        from_hex("12 01\n0g\n")
    with pytest.raises(DecodeError, match="odd number of hex digits"):
        from_hex("12 0")


def test_json_without_descriptors_hex() -> None:
    with pytest.raises(DecodeError, match="no 'descriptors_hex'"):
        from_bytes(b'{"name": "x"}')
    with pytest.raises(DecodeError, match="descriptors_hex"):
        from_bytes(b'{"descriptors_hex": "zz"}')


def test_missing_file() -> None:
    with pytest.raises(NotFoundError):
        load("/nonexistent/thing")


def test_folder_is_the_whole_library() -> None:
    sets = load_folder(REPO / "descriptors")
    assert sorted(sets) == SLUGS
    assert all(not ds.errors for ds in sets.values())


def test_embedded_example_is_a_real_capture() -> None:
    ds = load_embedded_example()
    assert ds.meta["embedded_example"] is True
    assert ds.meta["source"]["repo"] == "greatscottgadgets/packetry"
    assert ds.to_bytes() == corpus_bytes("ksoloti-core-uac2-midi")[0]
    assert ds.errors == []
