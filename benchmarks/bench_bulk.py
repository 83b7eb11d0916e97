"""Bulk loopback through dkproto against raw pyusb on the same gadget, in the same run.

Runs inside the lab (it creates a Loopback gadget on dummy_hcd)::

    dkproto lab run -- python benchmarks/bench_bulk.py [--rounds 5] [--n 300] [--size 4096] [--depth 4]

Each round measures, interleaved (and in reversed order every other round) so that machine
noise hits all alike: raw pyusb (``dev.write`` + ``dev.read``), dkproto synchronous
(``Transport.write`` + ``read``), dkproto asynchronous (``Transport.submit`` with ``--depth``
OUT and IN transfers in flight, resubmitted from the completion callbacks), and, as a reference
for what libusb's asynchronous API allows from Python, python-libusb1 doing the same. Reported: round trips per second (median over rounds) and the
ratios dkproto-sync / raw and async / dkproto-sync. Targets: sync overhead within 10%, async >= 1.5x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time

VID, PID = 0x1D6B, 0x0111  # devices/lab/loopback.json (qlen 8, bulk_buflen 4096)


def make_gadget() -> object:
    from dkproto.lab.devices import load_definitions
    from dkproto.lab.gadget import Gadget

    gadget = Gadget(load_definitions()["loopback"], instance="bench-loopback")
    gadget.create()
    gadget.bind()
    gadget.wait_configured()
    return gadget


def raw_pyusb(n: int, size: int) -> float:
    import libusb_package
    import usb.core
    import usb.util

    dev = usb.core.find(idVendor=VID, idProduct=PID, backend=libusb_package.get_libusb1_backend())
    buf = b"\x5a" * size
    dev.write(0x02, buf, 1000)
    dev.read(0x81, size, 1000)  # warm up (interface claim, endpoint cache)
    t0 = time.perf_counter()
    for _ in range(n):
        dev.write(0x02, buf, 1000)
        dev.read(0x81, size, 1000)
    rate = n / (time.perf_counter() - t0)
    usb.util.dispose_resources(dev)
    return rate


def dk_sync(n: int, size: int) -> float:
    from dkproto.transport import open_transport

    buf = b"\x5a" * size
    with open_transport(f"usb://{VID:04x}:{PID:04x}?interface=0") as t:
        t.write(0x02, buf, 1000)
        t.read(0x81, size, 1000)
        t0 = time.perf_counter()
        for _ in range(n):
            t.write(0x02, buf, 1000)
            t.read(0x81, size, 1000)
        return n / (time.perf_counter() - t0)


def dk_async(n: int, size: int, depth: int) -> float:
    from dkproto.transport import open_transport

    buf = b"\x5a" * size
    state = {"in_done": 0, "in_sub": 0, "out_sub": 0, "errors": 0}
    finished = threading.Event()
    lock = threading.Lock()
    with open_transport(f"usb://{VID:04x}:{PID:04x}?interface=0") as t:
        t.write(0x02, buf, 1000)
        t.read(0x81, size, 1000)

        def out_done(x: object) -> None:
            with lock:
                again = state["out_sub"] < n
                if again:
                    state["out_sub"] += 1
            if again:
                t.submit(0x02, buf, out_done, 2000)

        def in_done(x: object) -> None:
            with lock:
                state["in_done"] += 1
                state["errors"] += getattr(x, "error") is not None
                again = state["in_sub"] < n
                if again:
                    state["in_sub"] += 1
                if state["in_done"] >= n:
                    finished.set()
            if again:
                t.submit(0x81, size, in_done, 2000)

        t0 = time.perf_counter()
        for _ in range(depth):
            state["in_sub"] += 1
            t.submit(0x81, size, in_done, 2000)
            state["out_sub"] += 1
            t.submit(0x02, buf, out_done, 2000)
        if not finished.wait(120):
            raise RuntimeError(f"async run stalled: {state}")
        rate = n / (time.perf_counter() - t0)
    if state["errors"]:
        raise RuntimeError(f"async run had {state['errors']} failed transfers")
    return rate


def usb1_async(n: int, size: int, depth: int) -> float:
    """Reference only: python-libusb1's asynchronous API on the same libusb (no dkproto)."""
    import usb1

    usb1.loadLibrary(_ctypes_lib())  # the same libusb binary as pyusb (first call loads it)
    buf = b"\x5a" * size
    state = {"in_done": 0, "in_sub": 0, "out_sub": 0}
    with usb1.USBContext() as ctx:
        handle = ctx.openByVendorIDAndProductID(VID, PID)
        handle.claimInterface(0)

        def callback(tr: object) -> None:
            if tr.getEndpoint() & 0x80:  # type: ignore[attr-defined]
                state["in_done"] += 1
                if state["in_sub"] < n:
                    state["in_sub"] += 1
                    tr.submit()  # type: ignore[attr-defined]
            elif state["out_sub"] < n:
                state["out_sub"] += 1
                tr.submit()  # type: ignore[attr-defined]

        transfers = []
        for _ in range(depth):
            for ep, arg in ((0x81, size), (0x02, buf)):
                tr = handle.getTransfer()
                tr.setBulk(ep, arg, callback, timeout=2000)
                transfers.append(tr)
        t0 = time.perf_counter()
        for tr in transfers:
            key = "in_sub" if tr.getEndpoint() & 0x80 else "out_sub"
            state[key] += 1
            tr.submit()
        while state["in_done"] < n:
            ctx.handleEventsTimeout(1)
        rate = n / (time.perf_counter() - t0)
        while any(tr.isSubmitted() for tr in transfers):
            ctx.handleEventsTimeout(1)
        handle.releaseInterface(0)
        handle.close()
    return rate


_LIB: object = None


def _ctypes_lib() -> object:
    global _LIB
    if _LIB is None:
        import ctypes

        import libusb_package

        _LIB = ctypes.CDLL(str(libusb_package.get_library_path()))
    return _LIB


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=300, help="round trips per measurement")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    gadget = make_gadget()
    results: dict[str, list[float]] = {"raw_pyusb": [], "dk_sync": [], "dk_async": [], "usb1_async": []}
    runs = {
        "raw_pyusb": lambda: raw_pyusb(args.n, args.size),
        "dk_sync": lambda: dk_sync(args.n, args.size),
        "dk_async": lambda: dk_async(args.n, args.size, args.depth),
        "usb1_async": lambda: usb1_async(args.n, args.size, args.depth),
    }
    try:
        for i in range(args.rounds):
            order = list(runs) if i % 2 == 0 else list(reversed(runs))  # cancel drift between rounds
            for name in order:
                results[name].append(runs[name]())
    finally:
        gadget.remove()  # type: ignore[attr-defined]
    med = {k: statistics.median(v) for k, v in results.items()}
    # per-round ratios (same round = same machine load), then the median of those
    sync_ratio = statistics.median(d / r for d, r in zip(results["dk_sync"], results["raw_pyusb"]))
    async_ratio = statistics.median(a / d for a, d in zip(results["dk_async"], results["dk_sync"]))
    summary = {"size": args.size, "n": args.n, "rounds": args.rounds, "depth": args.depth,
               "round_trips_per_s": results, "median": med,
               "dk_sync_over_raw": sync_ratio, "async_over_sync": async_ratio,
               "sync_overhead_ok": sync_ratio >= 0.90, "async_ok": async_ratio >= 1.5}
    if args.json:
        print(json.dumps(summary))
    else:
        mb = args.size / 1e6
        print(f"bulk loopback, {args.size} B per transfer, {args.n} round trips x {args.rounds} rounds")
        for k, v in med.items():
            print(f"  {k:10s} median {v:8.1f} round trips/s ({v * mb:5.2f} MB/s each way)  "
                  f"rounds: {', '.join(f'{x:.0f}' for x in results[k])}")
        print(f"  dkproto sync / raw pyusb  = {sync_ratio:.3f}  (target >= 0.90)")
        print(f"  dkproto async(depth {args.depth}) / sync = {async_ratio:.2f}  (target >= 1.5)")
        print(f"  (reference: python-libusb1 async depth {args.depth} / dkproto async = "
              f"{statistics.median(u / a for u, a in zip(results['usb1_async'], results['dk_async'])):.2f})")
    return 0 if summary["sync_overhead_ok"] and summary["async_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
