"""Bulk loopback through dkproto against raw pyusb and python-libusb1 on the same gadget, in the same run.

Runs inside the lab (it binds the lab's Loopback gadget, ``devices/lab/loopback.json``)::

    dkproto lab run -- python benchmarks/bench_bulk.py [--blocks 20] [--n 20] [--size 4096] [--depth 4]

The shared 2-core machine's load changes by 2-3x within seconds, so the methods are measured
in interleaved blocks (order reversed every other round), each block ``--n`` round trips of
``--size`` bytes (write OUT 0x02, read IN 0x81):

* raw pyusb: ``dev.write`` + ``dev.read`` on the pyusb Device inside the transport (same libusb
  handle, same claimed interface): the reference for the synchronous path;
* dkproto synchronous: ``Transport.write`` + ``Transport.read``;
* dkproto asynchronous: ``Transport.submit`` with ``--depth`` OUT and ``--depth`` IN transfers in
  flight, resubmitted from the completion callbacks; the block ends when all are back;
* python-libusb1 asynchronous: the same loop on python-libusb1's own API (its own context and
  handle on the same libusb binary and the same gadget; ``--depth`` OUT and IN ``USBTransfer``
  objects resubmitted from their callbacks; its event loop runs in the calling thread, as
  python-libusb1 is used): the reference for the asynchronous path. Linux lets one usbfs handle
  claim the interface at a time, so the transport releases it for these blocks (outside the
  timed part). The callbacks of both asynchronous loops do the same work: count, check the
  status, take the IN data as ``bytes`` (dkproto hands its callbacks ``bytes``; python-libusb1 a
  view of its buffer, copied here) and resubmit while round trips remain.

Reported: round trips per second, and the median over rounds of the ratio of neighbouring
blocks (same round): dkproto-sync / raw (target >= 0.90: overhead within 10%), dkproto-async /
dkproto-sync (target >= 1.5), dkproto-async / python-libusb1-async (target >= 0.8, reported,
not enforced yet). Exit status 1 if an enforced target is missed (each one named on stderr).
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

# (summary key, label, threshold, enforced): an enforced target missed makes the exit status 1.
# async_over_usb1 (issue 16) is reported but not enforced: it was met in some runs only
# (0.67-0.94 over six runs, docs/performance.md, Transports); set it to True once it holds.
TARGETS = [
    ("dk_sync_over_raw", "dkproto sync / raw pyusb", 0.90, True),
    ("async_over_sync", "dkproto async / dkproto sync", 1.5, True),
    ("async_over_usb1", "dkproto async / python-libusb1 async", 0.8, False),
]


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
    """``n`` round trips with ``depth`` OUT and ``depth`` IN transfers in flight; ends when all are back.

    The callbacks run on the transport's one completion thread, so they need no lock; the
    counters of the first submissions are set before anything is submitted.
    """
    size = len(buf)
    first = min(depth, n)
    in_sub = out_sub = first
    in_done = out_done = errors = got = 0
    finished = threading.Event()

    def out_done_cb(x: Any) -> None:
        nonlocal out_sub, out_done, errors
        out_done += 1
        if x.error is not None:
            errors += 1
        if out_sub < n:
            out_sub += 1
            t.submit(0x02, buf, out_done_cb, 2000)
        elif out_done >= n and in_done >= n:
            finished.set()

    def in_done_cb(x: Any) -> None:
        nonlocal in_sub, in_done, errors, got
        in_done += 1
        if x.error is not None:
            errors += 1
        got += len(x.data)
        if in_sub < n:
            in_sub += 1
            t.submit(0x81, size, in_done_cb, 2000)
        elif in_done >= n and out_done >= n:
            finished.set()

    t0 = time.perf_counter()
    for _ in range(first):
        t.submit(0x81, size, in_done_cb, 2000)
        t.submit(0x02, buf, out_done_cb, 2000)
    if not finished.wait(120):
        raise RuntimeError(f"async block stalled: {in_done} IN and {out_done} OUT of {n} back")
    elapsed = time.perf_counter() - t0
    if errors or got != n * size:
        raise RuntimeError(f"async block: {errors} failed transfers, {got} of {n * size} bytes read")
    return elapsed


class Usb1Loop:
    """python-libusb1's asynchronous API on the same libusb binary: its own context and handle.

    ``block`` runs the loop of :func:`_async_block` (same depth, size, round trips, callback
    work) with python-libusb1's ``USBTransfer`` objects, resubmitted from their callbacks, and
    its event loop (``handleEventsTimeout``) in the calling thread.
    """

    def __init__(self, depth: int) -> None:
        import usb1

        usb1.loadLibrary(_ctypes_lib())  # the same libusb binary as pyusb (first call loads it)
        self.usb1 = usb1
        self.ctx = usb1.USBContext()
        self.ctx.open()
        self.handle = self.ctx.openByVendorIDAndProductID(VID, PID)
        if self.handle is None:
            raise RuntimeError(f"python-libusb1 cannot open {VID:04x}:{PID:04x}")
        self.ins = [self.handle.getTransfer() for _ in range(depth)]
        self.outs = [self.handle.getTransfer() for _ in range(depth)]

    def block(self, buf: bytes, n: int) -> float:
        completed = self.usb1.TRANSFER_COMPLETED
        size = len(buf)
        first = min(len(self.ins), n)
        in_sub = out_sub = first
        in_done = out_done = errors = got = 0

        def out_done_cb(tr: Any) -> None:
            nonlocal out_sub, out_done, errors
            out_done += 1
            if tr.getStatus() != completed:
                errors += 1
            if out_sub < n:
                out_sub += 1
                tr.submit()

        def in_done_cb(tr: Any) -> None:
            nonlocal in_sub, in_done, errors, got
            in_done += 1
            if tr.getStatus() != completed:
                errors += 1
            got += len(bytes(tr.getBuffer()[:tr.getActualLength()]))  # the data, as dkproto hands it
            if in_sub < n:
                in_sub += 1
                tr.submit()

        for tr in self.ins:
            tr.setBulk(0x81, size, in_done_cb, timeout=2000)
        for tr in self.outs:
            tr.setBulk(0x02, buf, out_done_cb, timeout=2000)
        handle_events = self.ctx.handleEventsTimeout
        t0 = time.perf_counter()
        for i in range(first):
            self.ins[i].submit()
            self.outs[i].submit()
        deadline = t0 + 120
        while in_done < n or out_done < n:
            handle_events(1)
            if time.perf_counter() > deadline:
                raise RuntimeError(f"python-libusb1 block stalled: {in_done} IN and {out_done} OUT of {n} back")
        elapsed = time.perf_counter() - t0
        if errors or got != n * size:
            raise RuntimeError(f"python-libusb1 block: {errors} failed transfers, {got} of {n * size} bytes read")
        return elapsed

    def close(self) -> None:
        for tr in self.ins + self.outs:
            tr.close()
        self.handle.close()
        self.ctx.close()


def measure(blocks: int, n: int, size: int, depth: int) -> dict[str, list[float]]:
    """Interleaved blocks on ONE open transport, so load bursts on the shared machine hit all alike.

    raw pyusb uses the very pyusb Device (same libusb handle, same claimed interface) that the
    transport wraps: the ratio is exactly dkproto's own overhead. python-libusb1 claims the
    interface on its own handle for its blocks, the transport releasing it meanwhile.
    """
    from dkproto.transport import open_transport

    buf = b"\x5a" * size
    times: dict[str, list[float]] = {"raw_pyusb": [], "dk_sync": [], "dk_async": [], "usb1_async": []}
    usb1_loop = Usb1Loop(depth)
    try:
        with open_transport(f"usb://{VID:04x}:{PID:04x}?interface=0") as t:
            dev = t.device  # type: ignore[attr-defined]

            def usb1_block() -> float:
                t.release_interface(0)
                usb1_loop.handle.claimInterface(0)
                try:
                    return usb1_loop.block(buf, n)
                finally:
                    usb1_loop.handle.releaseInterface(0)
                    t.claim_interface(0)

            _sync_block(t.write, t.read, buf, 20)  # warm up: endpoint caches, gadget queues
            _async_block(t, buf, 20, depth)
            runs = {
                "raw_pyusb": lambda: _sync_block(dev.write, dev.read, buf, n),
                "dk_sync": lambda: _sync_block(t.write, t.read, buf, n),
                "dk_async": lambda: _async_block(t, buf, n, depth),
                "usb1_async": usb1_block,
            }
            usb1_block()  # warm up
            for i in range(blocks):
                order = list(runs) if i % 2 == 0 else list(reversed(runs))
                for name in order:
                    times[name].append(runs[name]())
    finally:
        usb1_loop.close()
    return times


_LIB: object = None


def _ctypes_lib() -> object:
    global _LIB
    if _LIB is None:
        import ctypes

        import libusb_package

        _LIB = ctypes.CDLL(str(libusb_package.get_library_path()))
    return _LIB


def summarize(times: dict[str, list[float]], n: int) -> dict[str, Any]:
    """Rates over all blocks, and the median of the per-round ratios (neighbouring blocks)."""
    rate = {k: n * len(v) / sum(v) for k, v in times.items()}  # round trips/s over all blocks

    def median_ratio(fast: str, ref: str) -> float:  # fast's rate / ref's rate, round by round
        return statistics.median(r / f for f, r in zip(times[fast], times[ref]))

    summary: dict[str, Any] = {
        "round_trips_per_s": rate,
        "dk_sync_over_raw": median_ratio("dk_sync", "raw_pyusb"),
        "async_over_sync": median_ratio("dk_async", "dk_sync"),
        "async_over_usb1": median_ratio("dk_async", "usb1_async"),
        "dk_sync_over_raw_total": rate["dk_sync"] / rate["raw_pyusb"],
        "async_over_sync_total": rate["dk_async"] / rate["dk_sync"],
        "async_over_usb1_total": rate["dk_async"] / rate["usb1_async"],
    }
    summary["missed"] = [key for key, _label, floor, enforced in TARGETS if enforced and summary[key] < floor]
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=20, help="interleaved rounds (one block per method each)")
    ap.add_argument("--n", type=int, default=20, help="round trips per block")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    gadget = make_gadget()
    try:
        times = measure(args.blocks, args.n, args.size, args.depth)
    finally:
        gadget.remove()  # type: ignore[attr-defined]
    summary = {"size": args.size, "n": args.n, "blocks": args.blocks, "depth": args.depth, **summarize(times, args.n)}
    if args.json:
        print(json.dumps(summary))
    else:
        mb = args.size / 1e6
        print(f"bulk loopback, {args.size} B per transfer, {args.blocks} interleaved rounds of {args.n} round trips, "
              f"depth {args.depth}")
        for k, v in summary["round_trips_per_s"].items():
            print(f"  {k:10s} {v:8.1f} round trips/s ({v * mb:5.2f} MB/s each way)")
        for key, label, floor, enforced in TARGETS:
            print(f"  {label:38s} median of round ratios {summary[key]:.3f}, overall {summary[key + '_total']:.3f}"
                  f"  (target >= {floor}{'' if enforced else ', not enforced yet'})")
    for key in summary["missed"]:
        label, floor = next((lbl, f) for k, lbl, f, _e in TARGETS if k == key)
        print(f"bench_bulk: target missed: {label} {summary[key]:.3f} < {floor}", file=sys.stderr)
    return 1 if summary["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
