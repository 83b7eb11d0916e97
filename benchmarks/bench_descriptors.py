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
ratios and the ratio to the struct walk (see docs/performance.md, "USB descriptors").
``--breakdown`` prints instead where dkproto's time goes (see :func:`breakdown`).

Targets (:data:`TARGETS`), checked on the interleaved measure (the strict one) and each printed
with its figure: dkproto >= 5x faster than usb-protocol (round one, met); issue 16: >= 8x
faster than usb-protocol and <= 1.4x the struct walk's time (not met: docs/performance.md
shows the profile that explains why, with the best figures reached). Exit status 1 when a
target marked met misses (a regression), naming it; a target not yet met is reported, not
failed.
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


#: (label, which ratio, bound, met): "usb-protocol" is usb-protocol's time / dkproto's (at least
#: ``bound``), "struct" is dkproto's time / the struct walk's (at most ``bound``). ``met`` says the
#: target is met (docs/performance.md): missing it then is a regression (exit status 1).
TARGETS: tuple[tuple[str, str, float, bool], ...] = (
    ("dkproto >= 5x faster than usb-protocol, whole corpus (round one)", "usb-protocol", 5.0, True),
    ("dkproto >= 8x faster than usb-protocol, whole corpus (issue 16)", "usb-protocol", 8.0, False),
    ("dkproto <= 1.4x the time of the plain struct walk (issue 16)", "struct", 1.4, False),
)


def check(ratios: dict[str, float], out: Any = None) -> bool:
    """Print every target with its figure; False when a met target is missed (a regression)."""
    ok = True
    for label, which, bound, met in TARGETS:
        got = ratios[which]
        reached = got >= bound if which == "usb-protocol" else got <= bound
        if reached:
            state = "met" if met else "met in this run (not recorded as met: see docs/performance.md)"
        else:
            state = "NOT MET (regression)" if met else "not met (see docs/performance.md for why)"
            ok = ok and not met
        print(f"{label}: {got:.2f}x - {state}", file=out or sys.stdout)
    return ok


def breakdown(sets: list[tuple[str, bytes, bytes]], rounds: int, repeat: int) -> None:
    """Where dkproto's time goes, against the struct walk, timed like the contenders (interleaved).

    Parts: cutting every frame by ``bLength``; for every descriptor, its slice, the cached
    schema choice at the place the real walk decoded it and its node builder (the generated
    parser: unpack, ``Container``, ``Node``), with no placement: the per-descriptor work no walk
    can skip; the generated parsers alone (unpack and ``Container``); the whole ``parse()``.
    What ``parse()`` adds to the builders is framing, placement, the checks and the per-set work
    (``DescriptorSet``, walkers, configuration state, schema lookups of the uncached types).
    """
    from dataclasses import astuple

    from dkproto.usb.choice import UNKNOWN, choice_for, place

    # per blob: (start, stop, place, choice) of every descriptor, as the real walk decoded it
    plans: dict[bytes, list[tuple[int, int, Any, Any]]] = {}
    for _, data, bos in sets:
        for blob, roots in ((data, parse(data).roots), (bos, parse(data, bos).bos_roots)):
            if blob:
                plans[blob] = [(n.offset, n.offset + len(n.raw), place(*astuple(n.context)),
                                choice_for(n.schema) if n.schema is not None else UNKNOWN)
                               for root in roots for n in root.walk()]

    def cut(blob: bytes) -> list[bytes]:
        out, pos, end = [], 0, len(blob)
        while pos < end:
            stop = pos + blob[pos]
            if stop < pos + 2 or stop > end:
                break
            out.append(blob[pos:stop])
            pos = stop
        return out

    def built(blob: bytes) -> list[Any]:
        out = []
        for start, stop, at, known in plans[blob]:
            raw = blob[start:stop]
            # the cached choice (types looked up every time: the one the walk found)
            out.append(at.choices.get(raw[:6], known).build(raw, start, at.ctx, "descriptors", "descriptor"))
        return out

    slices = {blob: [(blob[a:b], known.parse) for a, b, _, known in plan if known.parse is not None]
              for blob, plan in plans.items()}

    def parsed(blob: bytes) -> None:
        for raw, fn in slices[blob]:
            fn(raw)

    def both(fn: Callable[[bytes], Any]) -> Callable[[bytes, bytes], None]:
        def run(data: bytes, bos: bytes) -> None:
            fn(data)
            if bos:
                fn(bos)
        return run

    parts = [
        ("struct walk (whole contender)", lambda d, b: (build_tree(d, struct_decode), b and build_tree(b, struct_decode))),
        ("dkproto parse() (whole)", lambda d, b: parse(d, b or None)),
        ("framing (cut every frame)", both(cut)),
        ("slices + cached choice + node builder", both(built)),
        ("generated parsers alone (unpack + Container)", both(parsed)),
    ]
    samples = [timed_per_set([fn for _, fn in parts], sets, rounds) for _ in range(repeat)]
    best = [min(s[i] for s in samples) for i in range(len(parts))]
    struct_ms = best[0]
    print(f"\nbreakdown (interleaved, {rounds} rounds per set, best of {repeat}): ms per corpus pass, "
          "and in units of the struct walk's whole pass")
    for (label, _), t in zip(parts, best):
        print(f"  {label:<48}{t * 1e3:>8.2f} ms {t / struct_ms:>6.2f}")
    rest = best[1] - best[3]
    print(f"  {'the rest: framing, placement, checks, per set':<48}{rest * 1e3:>8.2f} ms {rest / struct_ms:>6.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds per set (best run kept)")
    parser.add_argument("--burst", type=int, default=3, help="runs per contender and round in the burst measure")
    parser.add_argument("--repeat", type=int, default=3, help="whole measurements (the best sum kept per contender)")
    parser.add_argument("--breakdown", action="store_true",
                        help="only print where dkproto's time goes (see breakdown()); no targets checked")
    args = parser.parse_args()
    sets = load_sets()
    if args.breakdown:
        for _, data, bos in sets:  # warm up: schemas compiled, choices cached
            parse(data, bos or None)
        breakdown(sets, args.rounds, args.repeat)
        return 0
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
    strict: dict[str, float] = {}
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
        print(f"dkproto vs usb-protocol, whole corpus: {t_up / t_dk:.2f}x faster (targets >= 5x, >= 8x; "
              f"repeats: {', '.join(f'{r:.2f}' for r in ratios)})")
        print(f"  per descriptor each decodes: {(t_up / up_decoded) / (t_dk / decoded):.1f}x")
        print(f"dkproto takes {t_dk / t_st:.2f}x the time of the plain struct walk (target <= 1.4x)")
        if burst == 1:
            strict = {"usb-protocol": t_up / t_dk, "struct": t_dk / t_st}
    print("\ntargets (interleaved measure):")
    return 0 if check(strict) else 1


if __name__ == "__main__":
    sys.exit(main())
