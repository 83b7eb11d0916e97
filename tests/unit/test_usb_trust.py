"""Hostile input to the USB descriptor loaders: bounded, one clear complaint each, never a traceback."""

from __future__ import annotations

import json
import os
import random
import re
import resource
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from usb_corpus import SLUGS, corpus_bytes, set_path

from dkproto.errors import BadArgumentError, DecodeError, NotFoundError, NotPermittedError
from dkproto.usb import from_bytes, load, parse, render_hex, render_json, render_text
from dkproto.usb.tree import (
    MAX_BOS,
    MAX_COMPLAINTS,
    MAX_CONFIGURATION,
    MAX_DESCRIPTORS,
    MAX_STRINGS,
    check_bounds,
)

#: the ``dkproto`` console script (``python -m dkproto`` drops the exit status: see the report)
DKPROTO = [sys.executable, "-c", "import sys; from dkproto.cli import main; sys.exit(main())"]

DEVICE = bytes([18, 1, 0, 2, 0, 0, 0, 64, 0x50, 0x1D, 0x89, 0x60, 0, 1, 1, 2, 3, 1])


def configuration(body: bytes, value: int = 1, interfaces: int = 1) -> bytes:
    return bytes([9, 2]) + struct.pack("<H", min(9 + len(body), 0xFFFF)) + bytes([interfaces, value, 0, 0x80, 50]) + body


def interface(number: int = 0, alt: int = 0, endpoints: int = 1) -> bytes:
    return bytes([9, 4, number, alt, endpoints, 0xFF, 0, 0, 0])


def endpoint(address: int) -> bytes:
    return bytes([7, 5, address, 2, 0, 2, 0])


def tiny_set(size: int) -> bytes:
    """A device whose configurations (each 65,535 bytes) hold nothing but 2-byte descriptors: the
    most descriptors a byte count can carry."""
    data = bytearray(DEVICE[:17] + bytes([255]))
    value = 1
    while len(data) < size:
        data += configuration(bytes([2, 0x42]) * ((MAX_CONFIGURATION - 9) // 2), value % 256, 0)
        value += 1
    return bytes(data[:size])


# -- 1. bounds, and memory that grows linearly ------------------------------------------------


def test_bounds_from_the_spec() -> None:
    assert MAX_DESCRIPTORS == 18 + 255 * 65535 == 16_711_443
    check_bounds(bytes(MAX_DESCRIPTORS), bytes(MAX_BOS))  # the largest legal blobs pass
    with pytest.raises(DecodeError, match=r"big\.bin: the descriptors blob is 16,711,444 bytes, more than "
                                          r"the 16,711,443 any device can present"):
        parse(bytes(MAX_DESCRIPTORS + 1), source="big.bin")
    with pytest.raises(DecodeError, match="BOS blob is 65,536 bytes.*BOS wTotalLength is 16 bits"):
        parse(DEVICE, bytes(MAX_BOS + 1))
    with pytest.raises(DecodeError, match=r"string descriptor 1 \(LANGID 0x0409\) is 256 bytes.*bLength is 8 bits"):
        parse(DEVICE, strings={(0x409, 1): bytes(256)})
    with pytest.raises(DecodeError, match="32,132 string descriptors, more than the 32,131"):
        parse(DEVICE, strings={(i // 256, i % 256): b"\x04\x03A\x00" for i in range(MAX_STRINGS + 1)})


def _dump_rss(path: Path, fmt: str) -> int:
    """Peak RSS (bytes) of ``dkproto dump PATH --format FMT`` in a child limited to 1 GiB of address space."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = subprocess.Popen([*DKPROTO, "dump", str(path), "--format", fmt],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=limit)  # noqa: PLW1509 - no threads here
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 1, f"dump exited {proc.returncode} (1: the set has errors, no crash)"
    return usage.ru_maxrss * 1024


@pytest.mark.parametrize("fmt", ["text", "json", "hex"])
def test_dump_memory_grows_linearly(tmp_path: Path, fmt: str) -> None:
    # Before the lazy walk and streamed output, 1 MB of these took 300 MB (text) to 700 MB (JSON):
    # one Node, one Container and the whole rendering in memory. Now one configuration at a time.
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(tiny_set(400_000))
    big.write_bytes(tiny_set(900_000))
    growth = _dump_rss(big, fmt) - _dump_rss(small, fmt)
    assert growth < 20 * (900_000 - 400_000), f"{fmt}: {growth:,} bytes more for 500,000 more input bytes"


def test_lazy_set_renders_like_the_eager_one() -> None:
    for slug in SLUGS[::6]:
        data, bos = corpus_bytes(slug)
        eager, lazy = parse(data, bos or None), parse(data, bos or None, lazy=True)
        assert lazy.roots == [] and lazy.lazy
        for render in (render_text, render_json, render_hex):
            assert render(lazy) == render(eager), (slug, render)
        assert lazy.to_bytes() == data
        assert [str(e) for e in lazy.errors] == [str(e) for e in eager.errors]


def test_render_json_streams_the_same_text_as_json_dumps() -> None:
    from dkproto.usb import to_json

    ds = load(set_path(SLUGS[0]))
    assert render_json(ds) == json.dumps(to_json(ds), indent=2) + "\n"


def test_complaints_are_capped_with_a_count() -> None:
    body = b"".join(interface(i % 256, i // 256, 2) for i in range(2 * MAX_COMPLAINTS))  # each: bNumEndpoints 2 but 0
    ds = parse(DEVICE + configuration(body[:MAX_CONFIGURATION - 9], interfaces=255))
    assert len(ds.errors) == MAX_COMPLAINTS + 1
    assert re.fullmatch(r"\d[\d,]* more errors not listed \(the first 1,000 are\)", str(ds.errors[-1]))


def test_a_configuration_holds_at_most_65535_bytes() -> None:
    body = b"".join(interface(i % 256, i // 256) + endpoint(0x81) for i in range(5000))  # 80,000 bytes
    ds = parse(DEVICE + configuration(body))
    msgs = [str(e) for e in ds.errors]
    assert any(re.fullmatch(r"offset (\d+), Configuration Descriptor: descriptors from offset \1 on lie 65535 or "
                            r"more bytes after the configuration at offset 18 \(wTotalLength is 16 bits, a "
                            r"configuration cannot be longer\); placed at top level", m) for m in msgs), msgs
    assert len(ds.configurations[0].to_bytes()) <= MAX_CONFIGURATION + 255
    assert ds.to_bytes() == DEVICE + configuration(body)


# -- 2. JSON files with wrong types ------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ('{"descriptors_hex":"","strings":5}', r"bad\.json: strings: is a number, not a list"),
    ('{"descriptors_hex":5}', r"bad\.json: descriptors_hex: is a number, not a hex string"),
    ('{"descriptors_hex":"","strings":[{"langid":1.5,"index":1,"hex":""}]}',
     r"strings\[0\]\.langid: a number 1\.5: needs an integer 0\.\.65535"),
    ('{"descriptors_hex":"","strings":[{"langid":1033,"index":256,"hex":""}]}', r"strings\[0\]\.index"),
    ('{"descriptors_hex":"","extra_descriptors_hex":{"a":1}}', r"extra_descriptors_hex: is an object, not a list"),
    ('{"descriptors_hex":"","meta":[]}', r"meta: is a list, not an object"),
    ('{"descriptors_hex":"","x":' + "9" * 5000 + "}",
     r"bad\.json: a number with more than 4300 digits \(line 1 column 27\)"),
    ('{"descriptors_hex":"","x":' + "[" * 200_000 + "]" * 200_000 + "}", r"bad\.json: JSON nests deeper than 64"),
    ('{"descriptors_hex":"","descriptors_hex":"1201"}', r"duplicate key 'descriptors_hex'"),
    ('{"descriptors_hex":"12', r"bad\.json: not valid JSON: Unterminated string .*\(line 1 column 20\)"),
])
def test_bad_json_is_one_decode_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DecodeError, match=message):
        load(path)


def test_bad_json_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"descriptors_hex":"","x":' + "[" * 200_000 + "]" * 200_000 + "}")
    proc = subprocess.run([*DKPROTO, "dump", str(path)], check=False, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("dkproto: ") and "[kIOReturnBadArgument (0xe00002c2)]" in proc.stderr


def test_a_reloaded_dump_keeps_its_bytes(tmp_path: Path) -> None:
    ds = load(set_path(SLUGS[0]))
    path = tmp_path / "dump.json"
    path.write_text(render_json(ds))
    again = load(path)
    assert again.to_bytes() == ds.to_bytes() and again.bos_bytes() == ds.bos_bytes()


# -- 3. what was accepted without a complaint ------------------------------------------------------


def test_strings_with_odd_length_or_a_lone_surrogate() -> None:
    ds = parse(DEVICE, strings={(0, 0): bytes([5, 3, 9, 4, 0]), (0x409, 1): bytes([5, 3, 65, 0, 66]),
                                (0x409, 2): bytes([6, 3, 65, 0, 0x00, 0xD8]), (0x409, 3): bytes([4, 2, 65, 0])})
    msgs = [str(e) for e in ds.errors]
    assert ("offset 0, String Descriptor 0 (LANGID 0x0000): bLength 5 is odd: the last byte (offset 4) is half "
            "a 2-byte LANGID") in msgs
    assert ("offset 0, String Descriptor 1 (LANGID 0x0409): bLength 5 is odd: the last byte (offset 4) is half a "
            "2-byte UTF-16LE code unit") in msgs
    assert any(m.startswith("offset 0, String Descriptor 2 (LANGID 0x0409): not UTF-16LE: a lone surrogate at "
                            "offset 4 (bytes 00 d8") for m in msgs), msgs
    assert "offset 0, String Descriptor 3 (LANGID 0x0409): bDescriptorType 2, not 3 (String); kept undecoded" in msgs


def test_a_string_descriptor_inside_a_configuration() -> None:
    ds = parse(DEVICE + configuration(interface(endpoints=0) + bytes([4, 3, 65, 0])))
    assert [str(e) for e in ds.errors] == [
        ("offset 36, String descriptor: a string descriptor inside a configuration: strings are only read with "
        "GET_DESCRIPTOR(STRING) (USB 2.0 §9.6.7)")]


def _uvc_frame_swallowing(count: int) -> tuple[bytes, int, int]:
    """A corpus UVC set whose first frame descriptor's bLength takes in the ``count`` descriptors after it."""
    for slug in SLUGS:
        data, _ = corpus_bytes(slug)
        nodes = list(parse(data).nodes())
        for i, node in enumerate(nodes):
            follow = nodes[i + 1:i + 1 + count]
            if node.key.startswith("uvc_vs_frame") and len(follow) == count and not any(n.children for n in follow):
                total = len(node.raw) + sum(len(n.raw) for n in follow)
                if total <= 255 and all(n.blob == "descriptors" for n in follow):
                    patched = bytearray(data)
                    patched[node.offset] = total
                    return bytes(patched), node.offset, len(node.raw)
    raise AssertionError("no UVC frame descriptor in the corpus")


def test_uvc_frame_with_trailing_bytes_that_look_like_descriptors() -> None:
    data, offset, layout = _uvc_frame_swallowing(3)
    ds = parse(data)
    warn = [str(w) for w in ds.warnings if w.offset == offset]
    trailing = data[offset] - layout
    assert warn == [(f"offset {offset}, {ds_name(ds, offset)}: bLength {data[offset]} but its fields end at byte "
                    f"{layout}: {trailing} trailing bytes at offset {offset + layout} kept; they frame as 3 "
                    "well-formed descriptors: bLength may have swallowed the descriptors that follow")]
    assert ds.to_bytes() == data  # kept, byte-exact


def ds_name(ds, offset: int) -> str:  # type: ignore[no-untyped-def]
    return next(n.name for n in ds.nodes() if n.offset == offset and n.blob == "descriptors")


# -- 4. files that are not descriptor files ------------------------------------------------------


def test_not_regular_files(tmp_path: Path) -> None:
    with pytest.raises(BadArgumentError, match=r": is a directory"):
        load(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(BadArgumentError, match=r"fifo: is a FIFO, not a regular file"):
        load(fifo)  # refused before open: never blocks
    with pytest.raises(BadArgumentError, match=r"/dev/null: is a character device, not a regular file"):
        load("/dev/null")
    with pytest.raises(NotFoundError, match="nothing-here: no such file"):
        load(tmp_path / "nothing-here")


def test_permission_denied_is_not_permitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.bin"
    path.write_bytes(DEVICE)

    def denied(*_args: object, **_kw: object) -> int:  # what open(2) says to a non-root user after chmod 000
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(NotPermittedError, match=r"secret\.bin: permission denied \(Permission denied\)") as info:
        load(path)
    assert info.value.one_line().endswith("[kIOReturnNotPermitted (0xe00002e2)]")


def test_hex_with_a_bom_or_a_non_ascii_comment_is_hex(tmp_path: Path) -> None:
    for text in ("\ufeff" + DEVICE.hex(" ") + "\n", "# Gerät – capture ünicode\n" + DEVICE.hex(" ") + "  # é\n"):
        path = tmp_path / "dev.hex"
        path.write_bytes(text.encode("utf-8"))
        ds = load(path)
        assert ds.meta["format"] == "hex" and ds.to_bytes() == DEVICE


def test_no_doubled_words_in_complaints() -> None:
    rnd = random.Random(7)
    for slug in SLUGS[::3]:
        data, bos = corpus_bytes(slug)
        for _ in range(40):
            d, b = bytearray(data), bytearray(bos)
            target = b if b and rnd.random() < 0.4 else d
            target[rnd.randrange(len(target))] = rnd.choice([0, 1, 3, 255, rnd.randrange(256)])
            if rnd.random() < 0.3:
                del target[rnd.randrange(len(target)):]
            ds = parse(bytes(d), bytes(b) or None, strings={(0x409, 1): bytes([5, 3, 65, 0, 66])})
            for err in ds.errors + ds.warnings:
                assert not re.search(r"\b(\w+) \1\b", str(err), re.IGNORECASE), str(err)


# -- 5. chapter 9 rules ------------------------------------------------------------------------------


def test_duplicate_endpoint_addresses_and_endpoint_zero() -> None:
    body = interface(0, 0, 3) + endpoint(0x81) + endpoint(0x81) + endpoint(0x80)
    ds = parse(DEVICE + configuration(body))
    assert [str(e) for e in ds.errors] == [
        "offset 43, Endpoint Descriptor: a second endpoint 0x81 in one alternate setting (interface 0 alt 0)",
        ("offset 50, Endpoint Descriptor: bEndpointAddress 0x80 is endpoint 0, which has no endpoint descriptor "
        "(USB 2.0 §9.6.6) (interface 0 alt 0)"),
    ]
    # the same address in another alternate setting is fine
    ok = parse(DEVICE + configuration(interface(0, 0) + endpoint(0x81) + interface(0, 1) + endpoint(0x81)))
    assert ok.errors == []


def test_duplicate_alternate_settings_and_configuration_values() -> None:
    one = configuration(interface(0, 0, 0) + interface(0, 0, 0), value=1)
    device = DEVICE[:17] + bytes([2])
    ds = parse(device + one + configuration(interface(0, 0, 0), value=1))
    assert [str(e) for e in ds.errors] == [
        "offset 36, Interface Descriptor: interface 0 alternate setting 0 appears twice in this configuration",
        ("offset 45, Configuration Descriptor: bConfigurationValue 1 is used by an earlier configuration: "
        "SET_CONFIGURATION could not tell them apart"),
    ]


def test_binary_that_is_not_text_stays_binary() -> None:
    ds = from_bytes(DEVICE)
    assert ds.meta["format"] == "binary" and ds.ok is False  # bNumConfigurations 1 but none follow
