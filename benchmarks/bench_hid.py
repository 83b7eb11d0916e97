"""HID benchmark: dkproto against hid-tools on the same bytes, in the same process.

Run::

    python benchmarks/bench_hid.py            # whole corpus, table + ratios
    python benchmarks/bench_hid.py --json     # machine-readable

What is timed (best of ``--repeat`` rounds, each round over the whole set):

* parse: every corpus report descriptor. hid-tools ``ReportDescriptor.from_bytes`` against
  dkproto :func:`dkproto.hid.parse`; and dkproto parse + building every report's codec.
* decode: the corpus's recorded input reports (``input_reports_hex``), plus one patterned report
  per input report layout of every descriptor (the same bytes for both tools), so that every
  layout is exercised. Both start from the report's bytes. hid-tools: ``list(bytes)``, the report
  by its ID (``ReportDescriptor.get``) and ``HidField.get_values`` over its fields (bare values,
  no names: its cheapest decode); also ``ReportDescriptor.format_report`` (what hid-decode and
  hid-recorder print), and, informational, get_values with the report found and listed ahead. dkproto: ``DescriptorCodec.decode`` (names, signs,
  array usages) on the generated fast path, and the same through the Construct schema.

* cold path (issue 16): per descriptor, hid-tools ``ReportDescriptor.from_bytes`` against what
  a one-shot call (``dkproto hid decode``) pays to decode one report: :func:`dkproto.hid.parse`,
  a new :class:`DescriptorCodec` and one ``decode`` of one patterned report. Every input report
  layout of the descriptor is timed on its own (fresh objects each time) and the descriptor's
  figure is the mean over its layouts (also shown: its worst layout). Before every timed call
  dkproto's process-wide name caches (:func:`cold_caches_clear`) are emptied, so no call profits
  from an earlier run of the same descriptor; the HID Usage Tables stay loaded (a one-time,
  descriptor-independent cost of the first call in a process). The figure with the name caches
  kept warm is printed as well.

Ratios are hid-tools time / dkproto time (higher = dkproto faster). Numbers, command and
machine go into docs/performance.md (## HID).

Exit status 1 when a met target regresses (each is printed with its figure):

* decode, whole set and recorded reports only, >= 10x hid-tools get_values (issue 4);
* cold path, caches cleared, >= 3x hid-tools parse: the median descriptor and the whole
  corpus (sum over descriptors) (issue 16).

The issue-16 target "decode, recorded reports only, >= 20x" is printed but not met yet, so it
does not set the exit status.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dkproto.errors import DecodeError
from dkproto.hid import parse
from dkproto.hid.codec import COMPILE_AFTER, DescriptorCodec

#: The repository's HID report descriptors (descriptors/hid/*.json).
HID_DIR = Path(__file__).resolve().parents[1] / "descriptors" / "hid"


def _best(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _quantiles(xs: list[float]) -> dict[str, float]:
    return {"min": xs[0], "p10": xs[len(xs) // 10], "median": xs[len(xs) // 2], "max": xs[-1]}


def load_corpus() -> tuple[list[bytes], list[tuple[int, bytes]]]:
    """(descriptors, [(descriptor index, report bytes)])."""
    descs: list[bytes] = []
    reports: list[tuple[int, bytes]] = []
    for p in sorted(HID_DIR.glob("*.json")):
        d = json.loads(p.read_text())
        data = bytes.fromhex(d["report_descriptor_hex"])
        i = len(descs)
        descs.append(data)
        for r in d.get("input_reports_hex") or []:
            reports.append((i, bytes.fromhex(r)))
    return descs, reports


def patterned_reports(descs: list[bytes]) -> list[tuple[int, bytes]]:
    """One deterministic report per input report layout (report ID byte included when used)."""
    out = []
    for i, data in enumerate(descs):
        rd = parse(data)
        for r in rd.reports_of("input"):
            if r.id == 0 and rd.uses_report_ids:
                continue
            body = bytes((k * 29 + r.id + 7) & 0xFF for k in range(r.data_size))
            out.append((i, (bytes([r.id]) if r.id else b"") + body))
    return out


def cold_caches_clear() -> None:
    """Empty dkproto's process-wide HID caches that a descriptor's earlier run could have warmed:
    usage names (:mod:`dkproto.hid.usages`) and normalised names (:mod:`dkproto.hid.codec`). The
    loaded HID Usage Tables are kept: a one-time cost per process, the same for every descriptor."""
    from dkproto.hid import codec, usages

    usages._usage_name.cache_clear()
    usages.usage_full_name.cache_clear()
    codec._norm.cache_clear()


def cold_layouts(descs: list[bytes]) -> list[list[tuple[str, bytes]]]:
    """Per descriptor, one patterned report per report layout a one-shot decode can be asked for:
    its input reports (reached by their ID byte), or, when it has none, its other reports."""
    out: list[list[tuple[str, bytes]]] = []
    for data in descs:
        rd = parse(data)
        c = DescriptorCodec(rd)
        mine: list[tuple[str, bytes]] = []
        for rtype in ("input", "feature", "output"):
            for r in rd.reports_of(rtype):
                if r.id == 0 and rd.uses_report_ids:
                    continue
                body = bytes((k * 29 + r.id + 7) & 0xFF for k in range(r.data_size))
                rep = (bytes([r.id]) if r.id else b"") + body
                try:
                    c.decode(rep, rtype, strict=False)
                except DecodeError:
                    continue  # a layout dkproto refuses (kernel bounds): nothing to time
                mine.append((rtype, rep))
            if mine:
                break
        out.append(mine)
    return out


def cold_path(descs: list[bytes], repeat: int, clear: bool = True) -> dict[str, Any]:
    """The cold path (see the module doc): per descriptor, hid-tools parse against parse + codec +
    one decode, interleaved descriptor by descriptor, best of ``repeat`` rounds per call."""
    import hidtools.hid as ht

    layouts = cold_layouts(descs)
    ht_best = [float("inf")] * len(descs)
    dk_best = [[float("inf")] * len(ls) for ls in layouts]
    clock = time.perf_counter
    for _ in range(repeat):
        for i, data in enumerate(descs):
            t = clock()
            ht.ReportDescriptor.from_bytes(list(data))
            ht_best[i] = min(ht_best[i], clock() - t)
            for k, (rtype, rep) in enumerate(layouts[i]):
                if clear:
                    cold_caches_clear()
                t = clock()
                DescriptorCodec(parse(data)).decode(rep, rtype, strict=False)
                dk_best[i][k] = min(dk_best[i][k], clock() - t)
    timed = [i for i, ls in enumerate(layouts) if ls]
    dk_mean = {i: sum(dk_best[i]) / len(dk_best[i]) for i in timed}
    dk_worst = {i: max(dk_best[i]) for i in timed}
    per = sorted(ht_best[i] / dk_mean[i] for i in timed)
    ht_sum = sum(ht_best[i] for i in timed)
    return {
        "descriptors": len(timed),
        "layouts": sum(len(layouts[i]) for i in timed),
        "caches_cleared": clear,
        "us_per_descriptor": {
            "hidtools_parse": ht_sum / len(timed) * 1e6,
            "dkproto_cold_decode_mean_layout": sum(dk_mean.values()) / len(timed) * 1e6,
            "dkproto_cold_decode_worst_layout": sum(dk_worst.values()) / len(timed) * 1e6,
        },
        "ratio": ht_sum / sum(dk_mean.values()),
        "ratio_worst_layout": ht_sum / sum(dk_worst.values()),
        "per_descriptor_ratio": _quantiles(per),
    }


def run(repeat: int) -> dict[str, Any]:
    """Run every measurement; returns the numbers."""
    import hidtools.hid as ht

    descs, recorded = load_corpus()
    reports = recorded + patterned_reports(descs)

    ht_rdescs = [ht.ReportDescriptor.from_bytes(list(d)) for d in descs]
    dk_codecs = [DescriptorCodec(parse(d)) for d in descs]

    # The sets both tools can decode: hid-tools must find the report (by ID byte) to be fair.
    ht_items = []
    dk_items = []
    for i, r in reports:
        rep = ht_rdescs[i].get(r[0], len(r))
        if rep is None:
            continue
        lst = list(r)
        ht_items.append((ht_rdescs[i], rep, lst, r))
        c = dk_codecs[i]
        rc = c.codec("input", c.report_id_of(r))
        dk_items.append((c, rc, r))
    # warm up the generated decoders and schemas (a live watch compiles once per report, on the
    # COMPILE_AFTER-th report of that layout; the decodes before it are interpreted)
    for c, rc, r in dk_items:
        for _ in range(COMPILE_AFTER):
            c.decode(r, strict=False)
        rc.decode_construct(r)

    def ht_parse() -> None:
        for d in descs:
            ht.ReportDescriptor.from_bytes(list(d))

    def dk_parse() -> None:
        for d in descs:
            parse(d)

    def dk_parse_codecs() -> None:
        for d in descs:
            rd = parse(d)
            c = DescriptorCodec(rd)
            for (t, rid) in rd.reports:
                c.codec(t, rid)

    def ht_values() -> None:
        # From the report bytes, as dkproto starts: list of ints, report by ID, every field's values.
        for rd, _rep, _lst, r in ht_items:
            lst = list(r)
            for f in rd.get(lst[0], len(lst)).fields:
                f.get_values(lst)

    def ht_values_bare() -> None:
        # Informational: report already found, bytes already a list (not what a live tool does).
        for _rd, rep, lst, _r in ht_items:
            for f in rep.fields:
                f.get_values(lst)

    def ht_format() -> None:
        for rd, _rep, lst, _r in ht_items:
            rd.format_report(lst)

    def dk_decode() -> None:
        for c, _rc, r in dk_items:
            c.decode(r, strict=False)

    def dk_construct() -> None:
        for _c, rc, r in dk_items:
            rc.decode_construct(r)

    n_rec = sum(1 for i, r in recorded if ht_rdescs[i].get(r[0], len(r)) is not None)

    def ht_values_recorded() -> None:
        for rd, _rep, _lst, r in ht_items[:n_rec]:
            lst = list(r)
            for f in rd.get(lst[0], len(lst)).fields:
                f.get_values(lst)

    def dk_decode_recorded() -> None:
        for c, _rc, r in dk_items[:n_rec]:
            c.decode(r, strict=False)

    # Per report: the same report decoded by both, best of 3 rounds of 20.
    per_values: list[float] = []
    per_format: list[float] = []
    for (rd, rep, lst, _r), (c, _rc, r) in zip(ht_items, dk_items):
        def one_values(rd=rd, r=r) -> None:
            for _ in range(20):
                lst = list(r)
                for f in rd.get(lst[0], len(lst)).fields:
                    f.get_values(lst)

        def one_format(rd=rd, lst=lst) -> None:
            for _ in range(20):
                rd.format_report(lst)

        def one_dk(c=c, r=r) -> None:
            for _ in range(20):
                c.decode(r, strict=False)

        dk = _best(one_dk, 3)
        per_values.append(_best(one_values, 3) / dk)
        per_format.append(_best(one_format, 3) / dk)
    per_values.sort()
    per_format.sort()

    n_desc, n_rep = len(descs), len(dk_items)
    t = {
        "hidtools_parse": _best(ht_parse, repeat),
        "dkproto_parse": _best(dk_parse, repeat),
        "dkproto_parse_and_codecs": _best(dk_parse_codecs, max(1, repeat // 2)),
        "hidtools_get_values": _best(ht_values, repeat),
        "hidtools_get_values_bare": _best(ht_values_bare, repeat),
        "hidtools_format_report": _best(ht_format, repeat),
        "dkproto_decode": _best(dk_decode, repeat),
        "dkproto_decode_construct": _best(dk_construct, max(1, repeat // 2)),
        "hidtools_get_values_recorded": _best(ht_values_recorded, repeat),
        "dkproto_decode_recorded": _best(dk_decode_recorded, repeat),
    }
    per_rep = {k: v / (n_rec if k.endswith("_recorded") else n_rep) * 1e6
               for k, v in t.items() if "parse" not in k}
    per_desc = {k: v / n_desc * 1e6 for k, v in t.items() if "parse" in k}
    return {
        "descriptors": n_desc,
        "reports": n_rep,
        "recorded_reports": len(recorded),
        "us_per_descriptor": per_desc,
        "us_per_report": per_rep,
        "ratios": {
            "parse: hid-tools / dkproto": t["hidtools_parse"] / t["dkproto_parse"],
            "decode: hid-tools get_values / dkproto decode": t["hidtools_get_values"] / t["dkproto_decode"],
            "decode: hid-tools format_report / dkproto decode": t["hidtools_format_report"] / t["dkproto_decode"],
            "decode: hid-tools bare get_values (report pre-found) / dkproto decode": (
                t["hidtools_get_values_bare"] / t["dkproto_decode"]),
            "decode: dkproto Construct / dkproto fast path": t["dkproto_decode_construct"] / t["dkproto_decode"],
            "decode recorded reports only: hid-tools get_values / dkproto": (
                t["hidtools_get_values_recorded"] / t["dkproto_decode_recorded"]),
        },
        "cold": cold_path(descs, repeat),
        "cold_warm_caches": cold_path(descs, max(1, repeat // 2), clear=False),
        "per_report_ratio_get_values": _quantiles(per_values),
        "per_report_ratio_format_report": _quantiles(per_format),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="rounds per measurement (best is kept)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = run(args.repeat)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0 if check(res, sys.stderr) else 1
    print(f"{res['descriptors']} descriptors, {res['reports']} input reports "
          f"({res['recorded_reports']} recorded + one patterned per input layout); "
          f"Python {res['python']} {res['machine']}")
    for k, v in res["us_per_descriptor"].items():
        print(f"  {k:28s} {v:10.1f} us/descriptor")
    for k, v in res["us_per_report"].items():
        print(f"  {k:28s} {v:10.2f} us/report")
    for k, v in res["ratios"].items():
        print(f"  {k:50s} {v:8.1f}x")
    for key in ("get_values", "format_report"):
        pr = res[f"per_report_ratio_{key}"]
        print(f"  per report, hid-tools {key} / dkproto decode: min {pr['min']:.1f}x, "
              f"p10 {pr['p10']:.1f}x, median {pr['median']:.1f}x, max {pr['max']:.1f}x")
    for key, label in (("cold", "caches cleared"), ("cold_warm_caches", "name caches warm")):
        cold = res[key]
        us = cold["us_per_descriptor"]
        q = cold["per_descriptor_ratio"]
        print(f"  cold path ({label}), {cold['descriptors']} descriptors / {cold['layouts']} layouts: "
              f"hid-tools parse {us['hidtools_parse']:.1f} us, dkproto parse+codec+one decode "
              f"{us['dkproto_cold_decode_mean_layout']:.1f} us (worst layout "
              f"{us['dkproto_cold_decode_worst_layout']:.1f} us) per descriptor: {cold['ratio']:.2f}x "
              f"(worst layouts {cold['ratio_worst_layout']:.2f}x); per descriptor min {q['min']:.2f}x, "
              f"p10 {q['p10']:.2f}x, median {q['median']:.2f}x")
    return 0 if check(res) else 1


def check(res: dict[str, Any], out: Any = None) -> bool:
    """Print every target with its figure; False when a met target regresses (the script exits 1).

    The cold-path target is judged on the median descriptor: the sum over the corpus is
    dominated by a few descriptors that hid-tools parses very slowly (it is far above 3x). The
    recorded-reports target of 20x is not met (docs/performance.md, ## HID, says why); it is
    printed, and does not fail the run, until it is."""
    ratios = res["ratios"]
    targets = [
        # (label, figure, threshold, gates the exit status)
        # issue 4: decoding the set >= 10x faster per report on average (whole set and recorded).
        ("decode, whole set, >= 10x hid-tools get_values (issue 4)",
         ratios["decode: hid-tools get_values / dkproto decode"], 10.0, True),
        ("decode, recorded reports, >= 10x hid-tools get_values (issue 4)",
         ratios["decode recorded reports only: hid-tools get_values / dkproto"], 10.0, True),
        # issue 16: the one-shot cold path, and the recorded reports (per-call overhead).
        ("cold path, median descriptor, caches cleared, >= 3x hid-tools parse (issue 16)",
         res["cold"]["per_descriptor_ratio"]["median"], 3.0, True),
        ("cold path, whole corpus, caches cleared, >= 3x hid-tools parse (issue 16)",
         res["cold"]["ratio"], 3.0, True),
        ("decode, recorded reports, >= 20x hid-tools get_values (issue 16; not met yet)",
         ratios["decode recorded reports only: hid-tools get_values / dkproto"], 20.0, False),
    ]
    ok = True
    for label, got, need, gate in targets:
        met = got >= need
        if gate and not met:
            ok = False
        verdict = "met" if met else ("NOT MET (regression)" if gate else "not met")
        print(f"{label}: {got:.2f}x - {verdict}", file=out or sys.stdout)
    return ok

if __name__ == "__main__":
    sys.exit(main())
