"""Descriptor benchmark: full parse and tree of every corpus USB set, three ways, same bytes, same run.

* **dkproto**: ``dkproto.usb.parse(descriptors, bos)``: framing, schema lookup with Context,
  compiled Construct parse of every descriptor it knows (chapter 9, BOS, HID, CDC, audio,
  MIDI, UVC, DFU), placement in the tree, all checks.
* **usb-protocol** (python-usb-protocol, the reference): the same framing and tree, each
  descriptor parsed with usb_protocol's Construct struct where it has one (standard, BOS
  capabilities, SuperSpeed companion, CDC header/call management/ACM/union, UAC2 interface and
  endpoint descriptors, MIDI 1.0 header and jacks); descriptors it has no struct for (UVC,
  HID, UAC1, DFU, vendor) stay raw, so this side does *less* work than dkproto.
* **struct**: a plain ``struct.unpack_from`` walk: standard descriptors unpacked into dicts,
  class-specific ones into their 3-byte header, same tree.

Run: ``python benchmarks/bench_descriptors.py [--rounds N] [--burst K] [--repeat R]``. Each set
is timed on its own (best of N rounds, the contenders' order rotating every round) and the
bests are summed into a time per full corpus pass, twice: interleaved (one run per contender
and round) and in bursts (K runs per contender and round); each measure is repeated R times
and the best sums kept. It prints the times, the whole-corpus and per-decoded-descriptor
ratios and the ratio to the struct walk; no assertion on times (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dkproto.usb import parse


def corpus_folder() -> Path:
    """The repository's USB descriptor sets (descriptors/*.json)."""
    return REPO / "descriptors"


def load_sets() -> list[tuple[str, bytes, bytes]]:
    out = []
    for path in sorted(corpus_folder().glob("*.json")):
        obj = json.loads(path.read_text())
        out.append((path.stem, bytes.fromhex(obj["descriptors_hex"]),
                    bytes.fromhex(obj.get("bos_descriptor_hex") or "")))
    return out


# -- a generic tree builder shared by the two reference walks -----------------------------


def frames(data: bytes) -> list[tuple[int, bytes]]:
    out, pos, end = [], 0, len(data)
    while pos + 1 < end:
        length = data[pos]
        if length < 2 or pos + length > end:
            out.append((pos, data[pos:]))
            break
        out.append((pos, data[pos:pos + length]))
        pos += length
    return out


def build_tree(data: bytes, decode: Callable[[bytes, dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """Frame ``data`` and place each decoded descriptor like lsusb -v (same rules as dkproto)."""
    roots: list[dict[str, Any]] = []
    config = iface = ep = iad = None
    state: dict[str, Any] = {"class": None, "subclass": None, "protocol": None}
    for offset, raw in frames(data):
        dtype = raw[1]
        node = {"offset": offset, "raw": raw, "fields": decode(raw, state), "children": []}
        if dtype in (1, 0x0F):
            roots.append(node)
            config = iface = ep = iad = None
        elif dtype in (2, 7):
            roots.append(node)
            config, iface, ep, iad = node, None, None, None
        elif dtype == 0x0B and config is not None:
            config["children"].append(node)
            iad, iface, ep = node, None, None
        elif dtype == 4 and config is not None:
            num = raw[2]
            if iad is not None and iad["raw"][2] <= num < iad["raw"][2] + iad["raw"][3]:
                iad["children"].append(node)
            else:
                iad = None
                config["children"].append(node)
            iface, ep = node, None
            state.update({"class": raw[5], "subclass": raw[6], "protocol": raw[7]})
        elif dtype == 5 and iface is not None:
            iface["children"].append(node)
            ep = node
        elif ep is not None and dtype not in (0x21, 0x24):
            ep["children"].append(node)
        elif iface is not None:
            iface["children"].append(node)
        elif config is not None:
            config["children"].append(node)
        else:
            roots.append(node)
    return roots


# -- usb-protocol -------------------------------------------------------------------------


def usb_protocol_decoder() -> Callable[[bytes, dict[str, Any]], Any]:
    from usb_protocol.types.descriptors import cdc, midi1, standard, uac2

    std = {
        1: standard.DeviceDescriptor,
        2: standard.ConfigurationDescriptor,
        3: standard.StringDescriptor,
        4: standard.InterfaceDescriptor,
        5: standard.EndpointDescriptor,
        6: standard.DeviceQualifierDescriptor,
        0x0B: standard.InterfaceAssociationDescriptor,
        0x0F: standard.BinaryObjectStoreDescriptor,
        0x30: standard.SuperSpeedEndpointCompanionDescriptor,
    }
    caps = {2: standard.USB2ExtensionDescriptor, 3: standard.SuperSpeedUSBDeviceCapabilityDescriptor}
    cdc_cs = {0: cdc.HeaderDescriptor, 1: cdc.CallManagementFunctionalDescriptor,
              2: cdc.ACMFunctionalDescriptor, 6: cdc.UnionFunctionalDescriptor}
    uac2_ac = {1: uac2.ClassSpecificAudioControlInterfaceDescriptor, 2: uac2.InputTerminalDescriptor,
               3: uac2.OutputTerminalDescriptor, 6: uac2.FeatureUnitDescriptor, 0x0A: uac2.ClockSourceDescriptor}
    uac2_as = {1: uac2.ClassSpecificAudioStreamingInterfaceDescriptor, 2: uac2.TypeIFormatTypeDescriptor}
    midi = {1: midi1.ClassSpecificMidiStreamingInterfaceHeaderDescriptor, 2: midi1.MidiInJackDescriptor,
            3: midi1.MidiOutJackDescriptorHead}

    def decode(raw: bytes, state: dict[str, Any]) -> Any:
        dtype = raw[1]
        fmt = None
        if dtype == 0x10 and len(raw) > 2:
            fmt = caps.get(raw[2])
        elif dtype == 0x24 and len(raw) > 2:
            cls, sub = state["class"], state["subclass"]
            if cls == 2:
                fmt = cdc_cs.get(raw[2])
            elif cls == 1 and sub == 3:
                fmt = midi.get(raw[2])
            elif cls == 1 and state["protocol"] == 0x20:
                fmt = (uac2_ac if sub == 1 else uac2_as).get(raw[2])
        elif dtype == 0x25 and state["class"] == 1 and state["protocol"] == 0x20:
            fmt = uac2.ClassSpecificAudioStreamingIsochronousAudioDataEndpointDescriptor
        else:
            fmt = std.get(dtype)
        if fmt is None:
            return None
        try:
            return fmt.parse(raw)
        except Exception:  # noqa: BLE001 - a layout it gets wrong: keep raw, like dkproto
            return None

    return decode


# -- plain struct -------------------------------------------------------------------------

_STRUCTS = {
    1: ("<BBHBBBBHHHBBBB", ("bLength", "bDescriptorType", "bcdUSB", "bDeviceClass", "bDeviceSubClass",
                            "bDeviceProtocol", "bMaxPacketSize0", "idVendor", "idProduct", "bcdDevice",
                            "iManufacturer", "iProduct", "iSerialNumber", "bNumConfigurations")),
    2: ("<BBHBBBBB", ("bLength", "bDescriptorType", "wTotalLength", "bNumInterfaces", "bConfigurationValue",
                      "iConfiguration", "bmAttributes", "bMaxPower")),
    4: ("<BBBBBBBBB", ("bLength", "bDescriptorType", "bInterfaceNumber", "bAlternateSetting", "bNumEndpoints",
                       "bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol", "iInterface")),
    5: ("<BBBBHB", ("bLength", "bDescriptorType", "bEndpointAddress", "bmAttributes", "wMaxPacketSize",
                    "bInterval")),
    0x0B: ("<BBBBBBBB", ("bLength", "bDescriptorType", "bFirstInterface", "bInterfaceCount", "bFunctionClass",
                         "bFunctionSubClass", "bFunctionProtocol", "iFunction")),
    0x0F: ("<BBHB", ("bLength", "bDescriptorType", "wTotalLength", "bNumDeviceCaps")),
    0x30: ("<BBBBH", ("bLength", "bDescriptorType", "bMaxBurst", "bmAttributes", "wBytesPerInterval")),
}
_COMPILED = {k: (struct.Struct(fmt), names) for k, (fmt, names) in _STRUCTS.items()}
_HEAD = struct.Struct("<BBB")


def struct_decode(raw: bytes, state: dict[str, Any]) -> Any:
    found = _COMPILED.get(raw[1])
    if found is not None and len(raw) >= found[0].size:
        return dict(zip(found[1], found[0].unpack_from(raw)))
    if len(raw) >= 3:
        return dict(zip(("bLength", "bDescriptorType", "bDescriptorSubtype"), _HEAD.unpack_from(raw)))
    return None


# -- timing -------------------------------------------------------------------------------


def timed_per_set(contenders: list[Callable[[bytes, bytes], Any]], sets: list[tuple[str, bytes, bytes]],
                  rounds: int, burst: int = 1) -> list[float]:
    """Sum over the sets of each contender's best time on that set.

    Each set is timed on its own: ``rounds`` rounds, in each round every contender runs
    ``burst`` times back to back (each run timed alone), and the order of the contenders
    rotates from round to round so that none always follows the same one. Every timed run is
    short (well under a scheduler time slice): on a loaded machine a preempted run is simply
    not the best one, for every contender alike.

    ``burst=1`` is the strict measure: every timed run follows another contender's run (cold
    CPU caches for the code and data of the one timed). ``burst>1`` also lets each contender
    be timed right after itself (warm caches, what parsing many devices in a row sees).
    """
    count = len(contenders)
    totals = [0.0] * count
    clock = time.perf_counter
    for _, data, bos in sets:
        best = [float("inf")] * count
        for r in range(rounds):
            for k in range(count):
                i = (r + k) % count
                fn = contenders[i]
                for _ in range(burst):
                    start = clock()
                    fn(data, bos)
                    took = clock() - start
                    best[i] = min(best[i], took)
        for i, b in enumerate(best):
            totals[i] += b
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds per set (best run kept)")
    parser.add_argument("--burst", type=int, default=3, help="runs per contender and round in the burst measure")
    parser.add_argument("--repeat", type=int, default=3, help="whole measurements (the best sum kept per contender)")
    args = parser.parse_args()
    sets = load_sets()
    total = sum(len(d) + len(b) for _, d, b in sets)
    up = usb_protocol_decoder()

    def one_dkproto(data: bytes, bos: bytes) -> None:
        parse(data, bos or None)

    def one_usb_protocol(data: bytes, bos: bytes) -> None:
        build_tree(data, up)
        if bos:
            build_tree(bos, up)

    def one_struct(data: bytes, bos: bytes) -> None:
        build_tree(data, struct_decode)
        if bos:
            build_tree(bos, struct_decode)

    def run_usb_protocol() -> None:
        for _, data, bos in sets:
            one_usb_protocol(data, bos)

    def run_struct() -> None:
        for _, data, bos in sets:
            one_struct(data, bos)

    # warm up (compiles Construct parsers, imports schemas, fills caches) and check dkproto is clean
    for _, data, bos in sets:
        ds = parse(data, bos or None)
        assert not ds.errors and ds.to_bytes() == data
    run_usb_protocol()
    run_struct()
    decoded = sum(1 for _, d, b in sets for n in parse(d, b or None).nodes() if n.decoded)
    nodes = sum(1 for _, d, b in sets for _ in parse(d, b or None).nodes())
    up_decoded = 0
    for _, data, bos in sets:
        stack = build_tree(data, up) + (build_tree(bos, up) if bos else [])
        while stack:
            n = stack.pop()
            up_decoded += n["fields"] is not None
            stack.extend(n["children"])

    print(f"corpus: {len(sets)} USB sets, {total} bytes, {nodes} descriptors "
          f"(dkproto decodes {decoded}, usb-protocol {up_decoded}); per set best of the runs, summed")
    for label, burst in (("interleaved (every timed run follows another contender's)", 1),
                         (f"bursts of {args.burst} (a contender also timed right after itself)", args.burst)):
        samples = [timed_per_set([one_dkproto, one_usb_protocol, one_struct], sets, args.rounds, burst)
                   for _ in range(args.repeat)]
        t_dk, t_up, t_st = (min(s[i] for s in samples) for i in range(3))
        ratios = sorted(s[1] / s[0] for s in samples)
        print(f"\n{label}: {args.rounds} rounds x {burst} per set, best of {args.repeat} repeats")
        print(f"{'contender':<14}{'ms / pass':>10}{'us / descriptor':>17}")
        for name, t in (("dkproto", t_dk), ("usb-protocol", t_up), ("struct", t_st)):
            print(f"{name:<14}{t * 1e3:>10.2f}{t / nodes * 1e6:>17.2f}")
        print(f"dkproto vs usb-protocol, whole corpus: {t_up / t_dk:.1f}x faster (target >= 5x; repeats: "
              f"{', '.join(f'{r:.1f}' for r in ratios)})")
        print(f"  per descriptor each decodes: {(t_up / up_decoded) / (t_dk / decoded):.1f}x")
        print(f"dkproto takes {t_dk / t_st:.1f}x the time of the plain struct walk")


if __name__ == "__main__":
    main()
