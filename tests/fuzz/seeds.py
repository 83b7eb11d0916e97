"""Seed corpora, generated at run time from the repository's own data (never committed).

* ``usb_walker``: every ``descriptors/*.json`` (descriptors and BOS).
* ``hid_descriptor``: every ``descriptors/hid/*.json`` report descriptor.
* ``hid_codec``: each HID descriptor with a zero-filled and a recorded report of its first reports.
* ``hid_codec_corpus``: for each corpus descriptor, a report of each of its first reports.
* ``loaders``: the corpus files as they are (USB and HID JSON), USB hex renderings, HID hex
  text, hid-recorder recordings made from the corpus, the kernel ``rdesc`` oracle files.
* ``plist_match``: ``devices/*/Info.plist`` as XML and binary, with and without their entitlements.
"""

from __future__ import annotations

import hashlib
import plistlib
from collections.abc import Iterator
from pathlib import Path

import targets

__all__ = ["DICTIONARIES", "seeds", "write_dictionary", "write_seeds"]


def _hid_reports(descriptor: bytes, recorded: list[bytes], limit: int = 3) -> Iterator[tuple[int, bytes]]:
    """``(report type index, report bytes)``: the recorded reports, then a zero-filled report of each
    of the descriptor's first ``limit`` reports."""
    for r in recorded[:2]:
        yield 0, r
    rd = targets.hid_parse(descriptor)
    for (rtype, rid), report in list(rd.reports.items())[:limit]:
        if report.size > 512:
            continue
        body = bytes(report.size - (1 if rid else 0))
        yield targets.REPORT_TYPES.index(rtype), (bytes([rid]) if rid else b"") + body


def _usb_seeds() -> Iterator[bytes]:
    for _, blob, bos in targets.usb_corpus():
        yield targets.usb_walker_input(blob, bos, flags=1)


def _hid_descriptor_seeds() -> Iterator[bytes]:
    for _, descriptor, _ in targets.hid_corpus():
        yield descriptor


def _hid_codec_seeds() -> Iterator[bytes]:
    for _, descriptor, recorded in targets.hid_corpus():
        for rtype, report in _hid_reports(descriptor, recorded):
            yield targets.hid_codec_input(descriptor, report, rtype)


def _hid_codec_corpus_seeds() -> Iterator[bytes]:
    for index, (_, descriptor, recorded) in enumerate(targets.hid_corpus()):
        for rtype, report in _hid_reports(descriptor, recorded, limit=6):
            yield targets.hid_codec_corpus_input(index, report, rtype)


def _recording(name: str, descriptor: bytes, reports: list[bytes]) -> bytes:
    lines = [f"# {name}", "D: 0", f"N: {name}", "I: 3 1209 0001",
             f"R: {len(descriptor)} " + " ".join(f"{b:02x}" for b in descriptor)]
    for i, r in enumerate(reports or [b"\0\0\0"]):
        lines.append(f"E: {i:06d}.{i * 8000:06d} {len(r)} " + " ".join(f"{b:02x}" for b in r))
    return ("\n".join(lines) + "\n").encode()


def _loaders_seeds() -> Iterator[bytes]:
    li = targets.loaders_input
    usb_files = sorted(targets.DESCRIPTORS.glob("*.json"))
    for path in usb_files[::4]:
        yield li("usb-bytes", path.read_bytes())
        yield li("usb-file", path.read_bytes(), variant=0)
    for _, blob, bos in targets.usb_corpus()[::6]:
        ds = targets.usb_parse(blob, bos or None)
        hex_text = targets.render_hex(ds).encode()
        yield li("usb-hex", hex_text)
        yield li("usb-file", hex_text, variant=1)
        yield li("usb-bytes", blob)
        yield li("usb-bytes", targets.render_json(ds).encode())
    yield li("usb-hex", b"12 01 00 02 00 00 00 40 09 12 01 00 00 01 01 02 03 01\n[bos]\n05 0f 05 00 00\n"
                        b"[string 0 0]\n04 03 09 04\n[string 0x0409 1]\n06 03 41 00 42 00\n[extra]\n0a 06 00 02\n")
    for path in sorted(targets.HID_DIR.glob("*.json"))[::5]:
        yield li("hid-file", path.read_bytes(), variant=0)
        yield li("json", path.read_bytes(), variant=63)
    for name, descriptor, recorded in targets.hid_corpus()[::7]:
        spaced = " ".join(f"{b:02x}" for b in descriptor).encode()
        yield li("hid-hex", spaced)
        yield li("hid-hex", b"/* c */ " + ", ".join(f"0x{b:02x}" for b in descriptor).encode() + b" // end")
        yield li("hid-argument", descriptor.hex().encode())
        yield li("hid-file", spaced, variant=2)
        yield li("hid-file", descriptor, variant=4)
        rec = _recording(name, descriptor, recorded)
        yield li("hid-recording", rec, variant=0x80)
        yield li("hid-file", rec, variant=1)
    for path in sorted((targets.DESCRIPTORS / "oracle" / "hid").glob("*.rdesc"))[::7]:
        yield li("rdesc", path.read_bytes())
        yield li("hid-file", path.read_bytes(), variant=1)
    yield li("json", b'{"a": [1, 2, {"b": null}], "c": "\\u00e9", "d": 1e400, "e": -0}', variant=3)
    yield li("read-file", b"0123456789" * 10, variant=4)


def _plist_seeds() -> Iterator[bytes]:
    n_corpus = len(targets.usb_corpus())
    for i, plist in enumerate(sorted(targets.DEVICES.glob("*/Info.plist"))):
        xml = plist.read_bytes()
        binary = plistlib.dumps(plistlib.loads(xml), fmt=plistlib.FMT_BINARY)
        ents = sorted(p for p in plist.parent.glob("*.entitlements") if p.name != "app.entitlements")
        ent = ents[0].read_bytes() if ents else None
        device = n_corpus + i  # the device made for this plist's first personality
        yield targets.plist_input(xml, None, device)
        yield targets.plist_input(binary, None, device)
        if ent is not None:
            yield targets.plist_input(xml, ent, device)
            yield targets.plist_input(binary, plistlib.dumps(plistlib.loads(ent), fmt=plistlib.FMT_BINARY), 0)
    for i in range(16):  # structured mode (flags bit 2): the bytes after the flags drive the plist
        yield bytes([i, 4 | (i & 3)]) + hashlib.sha256(bytes([i])).digest() * 4


_SEEDS = {
    "usb_walker": _usb_seeds,
    "hid_descriptor": _hid_descriptor_seeds,
    "hid_codec": _hid_codec_seeds,
    "hid_codec_corpus": _hid_codec_corpus_seeds,
    "loaders": _loaders_seeds,
    "plist_match": _plist_seeds,
}


def seeds(harness: str) -> list[bytes]:
    """Every seed of ``harness`` (distinct; libFuzzer drops those over its -max_len)."""
    return list(dict.fromkeys(_SEEDS[harness]()))


def write_seeds(harness: str, folder: Path, max_len: int | None = None) -> int:
    """Write the seeds of ``harness`` (those of at most ``max_len`` bytes) into ``folder``, named by
    content hash; returns their count."""
    folder.mkdir(parents=True, exist_ok=True)
    found = [s for s in seeds(harness) if max_len is None or len(s) <= max_len]
    for data in found:
        (folder / f"seed-{hashlib.sha1(data).hexdigest()[:16]}").write_bytes(data)
    return len(found)


#: libFuzzer dictionaries: the tokens of the text formats, which byte mutations rarely spell.
DICTIONARIES: dict[str, tuple[str, ...]] = {
    "loaders": (
        "[bos]", "[descriptors]", "[extra]", "[string 0x0409 1]", "[string 0 0]", "0x", "//", "#", "/*", "*/",
        '"descriptors_hex"', '"bos_descriptor_hex"', '"strings"', '"langid"', '"index"', '"hex"',
        '"extra_descriptors_hex"', '"format"', '"dkproto-descriptors"', '"meta"', '"provenance"',
        '"report_descriptor_hex"', '"input_reports_hex"', '"vid"', '"pid"', '"name"', "null", "true", "1e999",
        "R: ", "E: ", "D: ", "N: ", "I: ", "P: ", "INPUT(1)[INPUT]", "OUTPUT[OUTPUT]", "FEATURE(2)[FEATURE]",
        "Field(", "Usage(", "Logical Minimum(", "Report Size(", "Report Count(", "Report Offset(", "Flags(",
        "Unit(", "Unit Exponent(", "Application(", "GenericDesktop.X", " ---> ",
    ),
    "plist_match": (
        "<key>", "</key>", "<dict>", "</dict>", "<array>", "</array>", "<string>", "</string>", "<integer>",
        "</integer>", "<real>", "<true/>", "<false/>", "<data>", "<date>", "bplist00", "IOKitPersonalities",
        "IOProviderClass", "IOUSBHostInterface", "IOUSBHostDevice", "IOUserResources", "IOUserClass", "IOClass",
        "IOProbeScore", "IOMatchCategory", "idVendor", "idProduct", "idProductArray", "idProductMask",
        "bcdDevice", "bInterfaceNumber", "bConfigurationValue", "bInterfaceClass", "IOPropertyMatch",
        "com.apple.developer.driverkit.transport.usb", "CFBundleIdentifier", "$(PRODUCT_BUNDLE_IDENTIFIER)",
    ),
}


def write_dictionary(harness: str, path: Path) -> bool:
    """Write the libFuzzer dictionary of ``harness`` to ``path``; False when it has none."""
    tokens = DICTIONARIES.get(harness)
    if not tokens:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join('"' + t.encode("unicode_escape").decode().replace('"', '\\"') + '"\n'
                            for t in tokens))
    return True
