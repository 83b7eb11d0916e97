"""Bulk loopback through dkproto against raw pyusb on the same gadget, in the same run.

Runs inside the lab (it binds the lab's Loopback gadget, ``devices/lab/loopback.json``)::

    dkproto lab run -- python benchmarks/bench_bulk.py [--blocks 20] [--n 50] [--size 4096] [--depth 4]

The shared 2-core machine's load changes by 2-3x within seconds, so the methods are measured
in interleaved blocks (order reversed every other block) on ONE open transport:

* raw pyusb: ``dev.write`` + ``dev.read`` on the pyusb Device inside the transport (same libusb
  handle, same claimed interface): the reference;
* dkproto synchronous: ``Transport.write`` + ``Transport.read``;
* dkproto asynchronous: ``Transport.submit`` with ``--depth`` OUT and ``--depth`` IN transfers in
  flight, resubmitted from the completion callbacks (drained at the end of each block).

Reported: round trips per second, and the median over blocks of the ratio of neighbouring
blocks: dkproto-sync / raw (target >= 0.90: overhead within 10%) and async / sync (target
>= 1.5). For reference, python-libusb1's own async API on the same libusb binary is timed
after the blocks. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from typing import Any

VID, PID = 0x1D6B, 0x0111  # devices/lab/loopback.json (qlen 8, bulk_buflen 4096)


def make_gadget() -> object:
    from dkproto.lab.devices import load_definitions
    from dkproto.lab.gadget import Gadget

    gadget = Gadget(load_definitions()["loopback"], instance="bench-loopback")
    gadget.create()
    gadget.bind()
    gadget.wait_configured()
    return gadget


def _sync_block(write: Any, read: Any, buf: bytes, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        write(0x02, buf, 1000)
        read(0x81, len(buf), 1000)
    return time.perf_counter() - t0


def _async_block(t: Any, buf: bytes, n: int, depth: int) -> float:
    """``n`` round trips with ``depth`` OUT and ``depth`` IN transfers in flight; drained at the end."""
    size = len(buf)
    state = {"in_done": 0, "in_sub": 0, "out_sub": 0, "errors": 0}
    finished = threading.Event()
    lock = threading.Lock()

    def out_done(x: Any) -> None:
        with lock:
            state["errors"] += x.error is not None
            again = state["out_sub"] < n
            if again:
                state["out_sub"] += 1
        if again:
            t.submit(0x02, buf, out_done, 2000)

    def in_done(x: Any) -> None:
        with lock:
            state["in_done"] += 1
            state["errors"] += x.error is not None
            again = state["in_sub"] < n
            if again:
                state["in_sub"] += 1
            if state["in_done"] >= n:
                finished.set()
        if again:
            t.submit(0x81, size, in_done, 2000)

    t0 = time.perf_counter()
    for _ in range(min(depth, n)):
        state["in_sub"] += 1
        t.submit(0x81, size, in_done, 2000)
        state["out_sub"] += 1
        t.submit(0x02, buf, out_done, 2000)
    if not finished.wait(120):
        raise RuntimeError(f"async block stalled: {state}")
    elapsed = time.perf_counter() - t0
    if state["errors"]:
        raise RuntimeError(f"async block had {state['errors']} failed transfers")
    return elapsed


def measure(blocks: int, n: int, size: int, depth: int) -> dict[str, list[float]]:
    """Interleaved blocks on ONE open transport, so load bursts on the shared machine hit all alike.

    raw pyusb uses the very pyusb Device (same libusb handle, same claimed interface) that the
    transport wraps: the ratio is exactly dkproto's own overhead.
    """
    from dkproto.transport import open_transport

    buf = b"\x5a" * size
    times: dict[str, list[float]] = {"raw_pyusb": [], "dk_sync": [], "dk_async": []}
    with open_transport(f"usb://{VID:04x}:{PID:04x}?interface=0") as t:
        dev = t.device  # type: ignore[attr-defined]
        _sync_block(t.write, t.read, buf, 20)  # warm up: endpoint caches, gadget queues
        _async_block(t, buf, 20, depth)
        runs = {
            "raw_pyusb": lambda: _sync_block(dev.write, dev.read, buf, n),
            "dk_sync": lambda: _sync_block(t.write, t.read, buf, n),
            "dk_async": lambda: _async_block(t, buf, n, depth),
        }
        for i in range(blocks):
            order = list(runs) if i % 2 == 0 else list(reversed(runs))
            for name in order:
                times[name].append(runs[name]())
    return times


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
    ap.add_argument("--blocks", type=int, default=20, help="interleaved blocks per method")
    ap.add_argument("--n", type=int, default=50, help="round trips per block")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    gadget = make_gadget()
    try:
        times = measure(args.blocks, args.n, args.size, args.depth)
        usb1_rates = [usb1_async(args.n * 4, args.size, args.depth) for _ in range(3)]
    finally:
        gadget.remove()  # type: ignore[attr-defined]
    rate = {k: args.n * len(v) / sum(v) for k, v in times.items()}  # round trips/s over all blocks
    # same-block ratios (neighbouring blocks share the machine's load), then their median
    sync_ratio = statistics.median(r / d for r, d in zip(times["raw_pyusb"], times["dk_sync"]))
    async_ratio = statistics.median(d / a for d, a in zip(times["dk_sync"], times["dk_async"]))
    summary = {"size": args.size, "n": args.n, "blocks": args.blocks, "depth": args.depth,
               "round_trips_per_s": rate, "usb1_async_round_trips_per_s": usb1_rates,
               "dk_sync_over_raw": sync_ratio, "async_over_sync": async_ratio,
               "dk_sync_over_raw_total": rate["dk_sync"] / rate["raw_pyusb"],
               "async_over_sync_total": rate["dk_async"] / rate["dk_sync"],
               "sync_overhead_ok": sync_ratio >= 0.90, "async_ok": async_ratio >= 1.5}
    if args.json:
        print(json.dumps(summary))
    else:
        mb = args.size / 1e6
        print(f"bulk loopback, {args.size} B per transfer, {args.blocks} interleaved blocks of {args.n} round trips")
        for k, v in rate.items():
            print(f"  {k:10s} {v:8.1f} round trips/s ({v * mb:5.2f} MB/s each way)")
        print(f"  dkproto sync / raw pyusb (same handle)  median of block ratios {sync_ratio:.3f}, "
              f"overall {summary['dk_sync_over_raw_total']:.3f}  (target >= 0.90)")
        print(f"  dkproto async depth {args.depth} / dkproto sync  median of block ratios {async_ratio:.2f}, "
              f"overall {summary['async_over_sync_total']:.2f}  (target >= 1.5)")
        print(f"  reference, python-libusb1 async depth {args.depth} (own handle, after the blocks): "
              f"{', '.join(f'{r:.0f}' for r in usb1_rates)} round trips/s")
    return 0 if summary["sync_overhead_ok"] and summary["async_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
