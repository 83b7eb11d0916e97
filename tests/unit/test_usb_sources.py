"""File sources: every format, the descriptors/ folder, the embedded example."""

from __future__ import annotations

from pathlib import Path

import pytest
from usb_corpus import REPO, SLUGS, corpus_bytes

from dkproto.errors import DecodeError, NotFoundError
from dkproto.usb import from_bytes, from_hex, load, load_embedded_example, load_folder, render_hex


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
