"""Fuzz targets: one function per harness, each taking the fuzzer's bytes.

A target returns normally when dkproto handled the input: it parsed (possibly with complaints),
or it raised a :class:`~dkproto.errors.DkError`. Anything else escapes and is a crash: any other
exception, and :class:`RoundTripError` when bytes that decoded do not build back to themselves.
Hangs and memory blow-ups are caught by libFuzzer (``-timeout``, ``-rss_limit_mb``).

The targets are plain functions: ``harness.py`` runs them under atheris (coverage-guided), and
``tests/unit/test_fuzz_smoke.py`` replays ``tests/fuzz/regressions/<harness>/*`` through them
in-process. Import this module inside ``atheris.instrument_imports()`` for coverage: every
dkproto module a target reaches is imported here, at the top.
"""

from __future__ import annotations

import atexit
import json
import os
import plistlib
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris

import dkproto.schema  # noqa: F401  (every schema module, so that instrumentation sees them)
from dkproto import _jsonload, _paths
from dkproto.cli.match import format_report
from dkproto.errors import DkError
from dkproto.hid import DescriptorCodec
from dkproto.hid import parse as hid_parse
from dkproto.hid import sources as hid_sources
from dkproto.hid.lint import lint_descriptor
from dkproto.hid.rdesc import compare as rdesc_compare
from dkproto.hid.rdesc import parse_rdesc
from dkproto.hid.render import format_items, format_layouts, format_values
from dkproto.iokit import matching, personality
from dkproto.usb import sources as usb_sources
from dkproto.usb.render import render_hex, render_json, render_text
from dkproto.usb.tree import parse as usb_parse

__all__ = ["HARNESSES", "REPO", "Harness", "RoundTripError", "hid_corpus", "usb_corpus"]

REPO = Path(__file__).resolve().parents[2]
DESCRIPTORS = REPO / "descriptors"
HID_DIR = DESCRIPTORS / "hid"
DEVICES = REPO / "devices"

#: Reports longer than this are not also decoded through the (slow) Construct schema.
CONSTRUCT_CHECK_MAX = 128

#: The expensive secondary checks (renderings and their reloads, the Construct-vs-fast-path
#: comparison of fuzzed descriptors) run on a deterministic subset of the inputs: those whose
#: CRC-32 is 0 modulo the harness's ``*_EVERY``. A hash, not a flag byte, picks them, so the
#: fuzzer cannot steer every input into the slow path, and a saved input always takes the same
#: path when it is replayed. 1 in 8 of 1,000,000 inputs is 125,000 runs of the checks, each
#: still under coverage guidance (an input that reaches new rendering code is kept).
USB_RENDER_EVERY = 8
HID_RENDER_EVERY = 8
CONSTRUCT_EVERY = 8


#: Every input takes every check (replays: ``run.py --replay``, the smoke test's regression
#: inputs). Set by ``DKFUZZ_ALL_CHECKS=1``.
ALL_CHECKS = os.environ.get("DKFUZZ_ALL_CHECKS") == "1"


def sampled(data: bytes, every: int) -> bool:
    """True for the inputs (1 in ``every``, by CRC-32) that take a harness's expensive checks;
    True for every input when :data:`ALL_CHECKS`."""
    return ALL_CHECKS or every <= 1 or zlib.crc32(data) % every == 0
REPORT_TYPES = ("input", "output", "feature")


class RoundTripError(AssertionError):
    """Bytes that decoded without complaint did not build back to themselves."""


def _mismatch(what: str, want: bytes, got: bytes) -> RoundTripError:
    at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    return RoundTripError(f"{what}: {len(want)} bytes in, {len(got)} bytes rebuilt, first difference at "
                          f"offset {at}: in {want[at:at + 8].hex()} rebuilt {got[at:at + 8].hex()}")


# -- scratch files -------------------------------------------------------------------------

_SCRATCH: Path | None = None


def scratch() -> Path:
    """A private folder for the files the loaders read (``$DKFUZZ_TMP`` when the runner sets it)."""
    global _SCRATCH
    if _SCRATCH is None:
        base = os.environ.get("DKFUZZ_TMP")
        if base:
            Path(base).mkdir(parents=True, exist_ok=True)
        _SCRATCH = Path(tempfile.mkdtemp(prefix="dkfuzz-", dir=base or None))
        atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
    return _SCRATCH


def _write(name: str, data: bytes) -> Path:
    path = scratch() / name
    path.write_bytes(data)
    return path


# -- the repository's corpus ---------------------------------------------------------------

def usb_corpus() -> list[tuple[str, bytes, bytes]]:
    """``(name, descriptors, bos)`` of every ``descriptors/*.json``, sorted by name."""
    out = []
    for path in sorted(DESCRIPTORS.glob("*.json")):
        obj = json.loads(path.read_text())
        out.append((path.stem, bytes.fromhex(obj["descriptors_hex"]), bytes.fromhex(obj.get("bos_descriptor_hex") or "")))
    return out


def hid_corpus() -> list[tuple[str, bytes, list[bytes]]]:
    """``(name, report descriptor, recorded input reports)`` of every ``descriptors/hid/*.json``."""
    out = []
    for path in sorted(HID_DIR.glob("*.json")):
        obj = json.loads(path.read_text())
        reports = [bytes.fromhex(r) for r in obj.get("input_reports_hex") or []]
        out.append((path.stem, bytes.fromhex(obj["report_descriptor_hex"]), reports))
    return out


_HID_CODECS: list[DescriptorCodec] | None = None
_DEVICES: list[matching.USBDeviceInfo] | None = None


def _hid_codecs() -> list[DescriptorCodec]:
    global _HID_CODECS
    if _HID_CODECS is None:
        _HID_CODECS = [DescriptorCodec(hid_parse(desc)) for _, desc, _ in hid_corpus()]
    return _HID_CODECS


def _plist_ints(props: dict[str, Any], key: str, default: int) -> int:
    value = props.get(key, default)
    return value if type(value) is int else default


def match_devices() -> list[matching.USBDeviceInfo]:
    """Devices matched against fuzzed plists: every USB corpus device, then one device made for
    each personality of ``devices/*/Info.plist`` (so that fuzzed copies of those plists reach the
    scoring tables, not only the first mismatching key)."""
    global _DEVICES
    if _DEVICES is None:
        devs = [matching.device_from_descriptors(blob, name=name, source=name) for name, blob, _ in usb_corpus()]
        for plist in sorted(DEVICES.glob("*/Info.plist")):
            pers = plistlib.loads(plist.read_bytes()).get("IOKitPersonalities", {})
            for name, props in pers.items():
                devs.append(matching.device_from_dict({
                    "idVendor": _plist_ints(props, "idVendor", 0x1209),
                    "idProduct": _plist_ints(props, "idProduct", 1),
                    "bcdDevice": _plist_ints(props, "bcdDevice", 0x100),
                    "name": name,
                    "interfaces": [{
                        "bConfigurationValue": _plist_ints(props, "bConfigurationValue", 1),
                        "bInterfaceNumber": _plist_ints(props, "bInterfaceNumber", 0),
                        "bInterfaceClass": _plist_ints(props, "bInterfaceClass", 0xFF),
                        "bInterfaceSubClass": _plist_ints(props, "bInterfaceSubClass", 0),
                        "bInterfaceProtocol": _plist_ints(props, "bInterfaceProtocol", 0),
                        "hid_usages": [[1, 6]],
                    }],
                }))
        _DEVICES = devs
    return _DEVICES


# -- (a) USB descriptor walker -------------------------------------------------------------

def usb_walker_input(descriptors: bytes, bos: bytes = b"", flags: int = 0) -> bytes:
    """The fuzzer input that :func:`fuzz_usb_walker` splits back into ``descriptors`` and ``bos``."""
    return struct.pack("<BH", flags, len(bos)) + bos + descriptors


def fuzz_usb_walker(data: bytes) -> None:
    """Walk a descriptors blob (and a BOS) and rebuild it byte-exactly; (flag bit 0) walk it
    lazily to the same bytes. On 1 input in :data:`USB_RENDER_EVERY` (see :func:`sampled`) also
    render text/JSON/hex, reload the JSON and hex renderings to the same bytes, and (flag bit 0)
    check that the lazy walk renders the same text.

    Input: flags (1 byte), BOS length (2 bytes, little-endian), the BOS, the descriptors.
    """
    fdp = atheris.FuzzedDataProvider(data)
    flags = fdp.ConsumeUInt(1)
    bos = fdp.ConsumeBytes(fdp.ConsumeUInt(2))
    descriptors = fdp.ConsumeBytes(fdp.remaining_bytes())
    render = sampled(data, USB_RENDER_EVERY)
    try:
        ds = usb_parse(descriptors, bos or None)
        if render:
            text = render_text(ds)
            as_hex = render_hex(ds)
            as_json = render_json(ds)
        rebuilt = ds.to_bytes()
        rebuilt_bos = ds.bos_bytes()
    except DkError:
        return
    # The walker keeps every byte in place, complaints or not (docs/descriptors.md); a set
    # without complaints must above all rebuild exactly.
    clean = "no complaint" if not ds.errors else f"{len(ds.errors)} complaints"
    if rebuilt != descriptors:
        raise _mismatch(f"descriptors rebuild ({clean})", descriptors, rebuilt)
    if rebuilt_bos != bos:
        raise _mismatch(f"BOS rebuild ({clean})", bos, rebuilt_bos)
    if flags & 1:
        lazy = usb_parse(descriptors, bos or None, lazy=True)
        if lazy.to_bytes() != descriptors:
            raise _mismatch("lazy walk rebuild", descriptors, lazy.to_bytes())
        if render and render_text(lazy) != text:
            raise RoundTripError("render_text of the lazy walk differs from the full walk's")
    if not render:
        return
    try:
        again = usb_sources.from_bytes(as_json.encode(), source="render_json")
    except DkError as exc:
        raise RoundTripError(f"render_json output does not load back: {exc}") from exc
    if again.to_bytes() != descriptors:
        raise _mismatch("render_json reload", descriptors, again.to_bytes())
    if again.bos_bytes() != bos:
        raise _mismatch("render_json reload (BOS)", bos, again.bos_bytes())
    try:
        from_hex = usb_sources.from_hex(as_hex, source="render_hex")
    except DkError as exc:
        raise RoundTripError(f"render_hex output does not load back: {exc}") from exc
    if from_hex.to_bytes() != descriptors or from_hex.bos_bytes() != bos:
        raise _mismatch("render_hex reload", descriptors + bos, from_hex.to_bytes() + from_hex.bos_bytes())


# -- (b) HID report descriptor: parser, lint, render ---------------------------------------

def fuzz_hid_descriptor(data: bytes) -> None:
    """Parse a report descriptor, lint it, build a codec per report (what ``dkproto hid parse``
    and ``dkproto hid lint`` do); on 1 input in :data:`HID_RENDER_EVERY` (see :func:`sampled`)
    also render its items, layouts and JSON."""
    try:
        rd = hid_parse(data)
        lint_descriptor(rd)
        if sampled(data, HID_RENDER_EVERY):
            format_items(rd)
            format_layouts(rd)
            json.dumps(rd.to_json())
        dc = DescriptorCodec(rd)
        names = [dc.codec(rtype, rid).keys for rtype, rid in rd.reports]
        if any(len(set(k)) != len(k) for k in names):
            raise RoundTripError("a report has two values with the same name")
    except DkError:
        return
    if rd.data != bytes(data):
        raise _mismatch("ReportDescriptor.data", bytes(data), rd.data)
    rebuilt = b"".join(it.raw for it in rd.items)
    if not rd.findings and rebuilt != rd.data:
        raise _mismatch("items rebuild (no finding)", rd.data, rebuilt)


# -- (c) HID report codec ------------------------------------------------------------------

def hid_codec_input(descriptor: bytes, report: bytes, report_type: int = 0) -> bytes:
    """The fuzzer input that :func:`fuzz_hid_codec` splits into ``descriptor`` and ``report``."""
    return struct.pack("<BH", report_type, len(descriptor)) + descriptor + report


def _check_report(dc: DescriptorCodec, report: bytes, report_type: str, construct: bool = True) -> None:
    """Decode ``report`` strictly and leniently; each decode that succeeded must build back
    (and, with ``construct``, decode the same through the Construct schema)."""
    try:
        values = dc.decode(report, report_type)
    except DkError:
        values = None
    if values is not None:
        try:
            rebuilt = dc.build(values)
        except DkError as exc:
            raise RoundTripError(f"{report_type} report {report.hex()[:64]} decoded without complaint but does "
                                 f"not build back: {type(exc).__name__}: {exc}") from exc
        if rebuilt != report:
            raise _mismatch(f"{report_type} report {values.report_id} build(decode(r)) ({len(values)} values)",
                            report, rebuilt)
        codec = dc.codec(report_type, values.report_id)
        format_values(values, values, codec.physical(values))
        if len(report) <= CONSTRUCT_CHECK_MAX and construct:
            other = codec.decode_construct(report)
            if dict(other) != dict(values):
                raise RoundTripError(f"{report_type} report {report.hex()[:64]}: the Construct schema decodes "
                                     f"{dict(other)!r:.200} but the fast path {dict(values)!r:.200}")
    try:
        lenient = dc.decode(report, report_type, strict=False)
    except DkError:
        return
    try:
        rebuilt = dc.build(lenient)
    except DkError as exc:
        raise RoundTripError(f"{report_type} report {report.hex()[:64]} decoded (strict=False) but does not "
                             f"build back: {type(exc).__name__}: {exc}") from exc
    if rebuilt != report:
        raise _mismatch(f"{report_type} report {lenient.report_id} build(decode(r, strict=False)) "
                        f"({len(lenient)} values)", report, rebuilt)


def fuzz_hid_codec(data: bytes) -> None:
    """Parse a fuzzed descriptor, decode a fuzzed report with it, build it back.

    Input: report type (1 byte, mod 3), descriptor length (2 bytes LE), descriptor, report.
    """
    fdp = atheris.FuzzedDataProvider(data)
    report_type = REPORT_TYPES[fdp.ConsumeUInt(1) % 3]
    descriptor = fdp.ConsumeBytes(fdp.ConsumeUInt(2))
    report = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        dc = DescriptorCodec(hid_parse(descriptor))
    except DkError:
        return
    _check_report(dc, report, report_type, construct=sampled(data, CONSTRUCT_EVERY))


def hid_codec_corpus_input(index: int, report: bytes, report_type: int = 0) -> bytes:
    """The fuzzer input of :func:`fuzz_hid_codec_corpus` for corpus descriptor ``index``."""
    return bytes([index, report_type]) + report


def fuzz_hid_codec_corpus(data: bytes) -> None:
    """Decode fuzzed report bytes with a real descriptor of ``descriptors/hid/`` and build them back.

    Input: descriptor index (1 byte, mod the corpus size), report type (1 byte, mod 3), report.
    """
    if len(data) < 2:
        return
    codecs = _hid_codecs()
    dc = codecs[data[0] % len(codecs)]
    _check_report(dc, bytes(data[2:]), REPORT_TYPES[data[1] % 3])


# -- (d) loaders ---------------------------------------------------------------------------

_USB_NAMES = ("set.json", "set.hex", "set.bin", "set.txt", "set")
_HID_NAMES = ("rd.json", "rd.txt", "rd.hex", "rd.bin", "report_descriptor", "rd")
LOADER_MODES = ("usb-bytes", "usb-hex", "usb-file", "hid-hex", "hid-recording", "hid-file", "hid-argument",
                "json", "rdesc", "read-file")


def loaders_input(mode: str, payload: bytes, variant: int = 0) -> bytes:
    """The fuzzer input of :func:`fuzz_loaders` for loader ``mode`` (one of :data:`LOADER_MODES`)."""
    return bytes([LOADER_MODES.index(mode), variant]) + payload


def _text(payload: bytes) -> str:
    return payload.decode("utf-8", "replace")


def _not_a_path(s: str) -> bool:
    """True when ``s`` names nothing on this machine (a fuzzed string must not read real files)."""
    try:
        return not os.path.lexists(s) and not any(os.path.lexists(s + x) for x in _paths.SUFFIXES)
    except (ValueError, OSError):
        return True


def fuzz_loaders(data: bytes) -> None:
    """Every file loader on fuzzed content: bytes, text, and temporary files.

    Input: mode (1 byte, mod len(LOADER_MODES)), variant (1 byte: file name, device number,
    size bound), payload.
    """
    if len(data) < 2:
        return
    mode = LOADER_MODES[data[0] % len(LOADER_MODES)]
    variant = data[1]
    payload = bytes(data[2:])
    try:
        if mode == "usb-bytes":
            ds = usb_sources.from_bytes(payload, source="fuzz")
            ds.to_bytes()
            if sampled(data, USB_RENDER_EVERY):  # usb_walker renders every kind of set
                render_text(ds)
        elif mode == "usb-hex":
            usb_sources.from_hex(_text(payload), source="fuzz").to_bytes()
        elif mode == "usb-file":
            path = _write(_USB_NAMES[variant % len(_USB_NAMES)], payload)
            target = path.with_suffix("") if variant & 0x80 else path  # descriptors/<name> without .json
            usb_sources.load(target, lazy=bool(variant & 0x40)).to_bytes()
        elif mode == "hid-hex":
            hid_sources.parse_hex(_text(payload))
        elif mode == "hid-recording":
            hid_sources.parse_recording(_text(payload), None if variant & 0x80 else variant & 0x7F)
        elif mode == "hid-file":
            path = _write(_HID_NAMES[variant % len(_HID_NAMES)], payload)
            target = path.with_suffix("") if variant & 0x80 and path.suffix else path
            # (the descriptor is not parsed here: hid_descriptor covers the parser, and its
            # coverage would crowd the loaders' own out of this corpus)
            hid_sources.load(target, device=(variant >> 3) & 3 if variant & 0x40 else None)
        elif mode == "hid-argument":
            text = _text(payload)
            if _not_a_path(text):
                hid_sources.load(text)
        elif mode == "json":
            _jsonload.loads(payload, source="fuzz", max_depth=1 + variant % 80)
        elif mode == "rdesc":
            dump = parse_rdesc(_text(payload))
            rdesc_compare(hid_parse(dump.raw), dump)
        else:  # read-file
            path = _write("blob", payload)
            _paths.read_file(path, max_bytes=variant * 16)
            _paths.find_file(scratch() / "blob")
    except DkError:
        return


# -- (e) Info.plist personalities and matching ---------------------------------------------

_PERSONALITY_KEYS = (
    "IOProviderClass", "IOClass", "IOUserClass", "IOProbeScore", "IOMatchCategory", "IOResourceMatch",
    "IOPropertyMatch", "IOUserServerName", "UserClientProperties", "CFBundleIdentifier", "idVendor", "idProduct",
    "idProductArray", "idProductMask", "bcdDevice", "bcdDeviceLow", "bcdDeviceHigh", "bConfigurationValue",
    "bInterfaceNumber", "bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol", "bDeviceClass",
    "bDeviceSubClass", "bDeviceProtocol", "bAlternateSetting", "locationID", "DeviceUsagePage", "DeviceUsage",
    "DeviceUsagePairs", "PrimaryUsagePage", "PrimaryUsage", "VendorID", "ProductID", "Transport", "LocationID",
)
_ENTITLEMENT_KEYS = (
    "com.apple.developer.driverkit", "com.apple.developer.driverkit.transport.usb",
    "com.apple.developer.driverkit.transport.hid", "com.apple.developer.driverkit.family.hid.device",
    "com.apple.developer.driverkit.family.hid.eventservice", "com.apple.developer.driverkit.family.serial",
)
_CLASSES = ("IOUSBHostInterface", "IOUSBHostDevice", "IOUserResources", "IOHIDInterface", "IOUserService",
            "AppleUserHIDDevice", "AppleUserHIDEventService", "IOUserSerial", "IOUSBHostHIDDevice")


def _value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> Any:
    """A plist value of any type plistlib writes, favouring the ones matching reads."""
    kind = fdp.ConsumeIntInRange(0, 11)
    if kind <= 2:
        return fdp.ConsumeIntInRange(-2, 0x10000) if kind else fdp.ConsumeInt(8)
    if kind == 3:
        return _CLASSES[fdp.ConsumeIntInRange(0, len(_CLASSES) - 1)]
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 12))
    if kind == 5:
        return fdp.ConsumeBool()
    if kind == 6:
        return fdp.ConsumeRegularFloat()
    if kind == 7:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4))
    if kind in (8, 9) and depth < 3:
        return [_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    if kind == 10 and depth < 3:
        return {_key(fdp, _PERSONALITY_KEYS): _value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))}
    return fdp.ConsumeIntInRange(0, 255)


def _key(fdp: atheris.FuzzedDataProvider, known: tuple[str, ...]) -> str:
    if fdp.ConsumeIntInRange(0, 15) == 0:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 8))
    return known[fdp.ConsumeIntInRange(0, len(known) - 1)]


def _structured_plists(fdp: atheris.FuzzedDataProvider) -> tuple[bytes, bytes | None]:
    """An Info.plist (and entitlements) whose keys are the ones dkproto reads and whose values are
    of every plist type: the byte-level mutations rarely get past plistlib's parser."""
    personalities: dict[str, Any] = {}
    for i in range(fdp.ConsumeIntInRange(0, 3)):
        props: dict[str, Any] = {"IOProviderClass": _CLASSES[fdp.ConsumeIntInRange(0, 2)], "IOUserClass": "D"}
        for _ in range(fdp.ConsumeIntInRange(0, 10)):
            props[_key(fdp, _PERSONALITY_KEYS)] = _value(fdp)
        personalities[f"P{i}"] = props if fdp.ConsumeIntInRange(0, 31) else _value(fdp)
    info: dict[str, Any] = {"CFBundleIdentifier": "org.dkproto.fuzz", "IOKitPersonalities": personalities}
    fmt = plistlib.FMT_BINARY if fdp.ConsumeBool() else plistlib.FMT_XML
    ents = {_key(fdp, _ENTITLEMENT_KEYS): _value(fdp) for _ in range(fdp.ConsumeIntInRange(0, 6))} \
        if fdp.ConsumeBool() else None
    return _dumps(info, fmt), None if ents is None else _dumps(ents, fmt)


def _dumps(obj: dict[str, Any], fmt: plistlib.PlistFormat) -> bytes:
    """``obj`` as a plist; binary when XML cannot hold it (control characters in strings)."""
    try:
        return plistlib.dumps(obj, fmt=fmt)
    except ValueError:
        return plistlib.dumps(obj, fmt=plistlib.FMT_BINARY)


def plist_input(info: bytes, entitlements: bytes | None = None, device: int = 0) -> bytes:
    """The fuzzer input of :func:`fuzz_plist_match`."""
    flags = 1 if entitlements is not None else 0
    return struct.pack("<BBH", device, flags, len(info)) + info + (entitlements or b"")


def fuzz_plist_match(data: bytes) -> None:
    """Load a fuzzed Info.plist (XML or binary) and, when flagged, fuzzed entitlements; match it
    against one device and print the report as ``dkproto match`` does (text and JSON).

    Input: device index (1 byte), flags (1 byte; bit 0: entitlements follow; bit 1: verbose
    report; bit 2: *structured*: the rest drives the making of a plist of the keys dkproto
    reads, see :func:`_structured_plists`), Info.plist length (2 bytes LE), Info.plist,
    entitlements.
    """
    fdp = atheris.FuzzedDataProvider(data)
    device_index = fdp.ConsumeUInt(1)
    flags = fdp.ConsumeUInt(1)
    ents: bytes | None
    if flags & 4:
        info, ents = _structured_plists(fdp)
    else:
        info = fdp.ConsumeBytes(fdp.ConsumeUInt(2))
        rest = fdp.ConsumeBytes(fdp.remaining_bytes())
        ents = rest if flags & 1 else None
    devices = match_devices()
    device = devices[device_index % len(devices)]
    info_path = _write("Info.plist", info)
    ents_path = _write("driver.entitlements", ents) if ents is not None else None
    try:
        bundle = personality.load_bundle(info_path, ents_path) if ents_path else \
            personality.load_info_plist(info_path)
        report = matching.match(bundle, [device])
        format_report(report, flags >> 1 & 1)
        json.dumps(report.as_dict(), indent=2)
    except DkError:
        return
    finally:
        if ents_path is not None:
            ents_path.unlink()


# -- registry ------------------------------------------------------------------------------

class Harness:
    """One harness: its target, the longest input worth trying, and what it covers."""

    def __init__(self, name: str, target: Callable[[bytes], None], max_len: int, summary: str) -> None:
        self.name = name
        self.target = target
        self.max_len = max_len
        self.summary = summary


HARNESSES: dict[str, Harness] = {h.name: h for h in (
    Harness("usb_walker", fuzz_usb_walker, 4096,
            "USB descriptors + BOS: walk, rebuild byte-exact, lazy walk; 1 in 8: render text/JSON/hex, "
            "JSON and hex reloads byte-exact"),
    Harness("hid_descriptor", fuzz_hid_descriptor, 4608,
            "HID report descriptor: parse, lint, a codec per report; 1 in 8: render items/layouts/JSON"),
    Harness("hid_codec", fuzz_hid_codec, 4096,
            "fuzzed descriptor + report: decode (strict, lenient), build(decode(r)) == r; 1 in 8: Construct "
            "path agrees"),
    Harness("hid_codec_corpus", fuzz_hid_codec_corpus, 1024,
            "descriptors/hid/*.json descriptor + fuzzed report: same checks as hid_codec"),
    Harness("loaders", fuzz_loaders, 16384,
            "USB hex/JSON/binary files, HID hex/JSON/hid-recorder/rdesc, _jsonload, _paths.read_file"),
    Harness("plist_match", fuzz_plist_match, 8192,
            "Info.plist (XML/binary, or structured) + entitlements: load_bundle, match, text/JSON report"),
)}
