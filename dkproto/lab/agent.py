"""The guest agent: ``python -m dkproto.lab.agent JOB.json``, run by the VM's ``/init``.

Inside the chroot (the host's root, writable through an overlay) it sets up the job's gadget
and capture devices, waits until every expected device is on the bus, runs the command on
the console between ``@@dklab:begin`` and ``@@dklab:end`` markers, writes the exit status to
``/run/dklab/exit`` and tears the devices down.

Each gadget gets its peer (:mod:`dkproto.lab.peer`: an echo on its serial functions by default,
or the input reports its definition names) once it is on the bus; peers are stopped before
the gadgets are removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dkproto.lab.devices import DeviceDefinition, parse_definition
from dkproto.lab.guest_init import MARK

if TYPE_CHECKING:
    from dkproto.lab.gadget import Gadget
    from dkproto.lab.peer import Peer

__all__ = ["main", "present_ids", "provide", "wait_for_ids"]


def present_ids() -> list[str]:
    """``vvvv:pppp`` of every USB device on every bus (from sysfs)."""
    ids = []
    for dev in Path("/sys/bus/usb/devices").iterdir():
        try:
            ids.append(f"{(dev / 'idVendor').read_text().strip()}:{(dev / 'idProduct').read_text().strip()}")
        except OSError:
            continue
    return ids


def wait_for_ids(expected: list[str], timeout: float) -> list[str]:
    """Wait until every id in ``expected`` (with multiplicity) is present; the missing ones."""
    deadline = time.monotonic() + timeout
    while True:
        have = present_ids()
        missing = []
        for e in expected:
            if e in have:
                have.remove(e)
            else:
                missing.append(e)
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.1)


def _definitions(job: dict[str, Any]) -> list[DeviceDefinition]:
    out = []
    for d in job["devices"]:
        path = Path(d["path"]) if d.get("path") else None
        out.append(parse_definition(d["spec"], d.get("path") or d["name"], path))
    return out


def _quietly(fn: Any) -> None:
    """Run a teardown step; a failure is reported on the console, not raised."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        _say("warn", f"teardown: {type(exc).__name__}: {exc}")


def _say(word: str, rest: str = "") -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, f"{MARK}{word} {rest}\n".encode())


def _stop_peers(peers: list[Peer]) -> None:
    from dkproto.lab.peer import stop_peers

    for error in stop_peers(peers):
        _say("warn", f"peer stopped early: {error}")


@contextmanager
def provide(definitions: Iterable[DeviceDefinition], *, settle: float = 15.0) -> Iterator[list[str]]:
    """Bring the lab devices up as ``dkproto lab run`` does, and down again on exit.

    Gadgets are created and bound, captures served over USB/IP and attached; once every
    expected device is on the bus (or ``settle`` seconds have passed) each gadget's peer starts
    (:mod:`dkproto.lab.peer`). On exit the peers stop first, then the devices go, in reverse
    order. QEMU devices are attached at boot and are only waited for.

    Yields:
        the ``vvvv:pppp`` ids still missing after ``settle`` seconds (empty when all came).
    """
    from dkproto.lab.peer import start_peers

    with ExitStack() as stack:
        expected: list[str] = []
        gadgets: list[Gadget] = []
        for d in definitions:
            if d.kind == "gadget":
                from dkproto.lab.gadget import Gadget

                g = Gadget(d)
                stack.callback(_quietly, g.remove)
                g.create()
                g.bind(wait=0)
                gadgets.append(g)  # its peer starts once it is on the bus (below)
            elif d.kind == "capture":
                from dkproto.lab.usbip import serve_capture

                stack.enter_context(serve_capture(d))
            expected += list(d.expect)
        missing = wait_for_ids(expected, settle)
        # Let the class drivers bind (hidraw, ttyACM nodes appear right after enumeration).
        time.sleep(0.3)
        for g in gadgets:
            peers = start_peers(g)
            # registered after the gadget's removal, so run before it (ExitStack is LIFO)
            stack.callback(_quietly, partial(_stop_peers, peers))
        yield missing


def main(argv: list[str] | None = None) -> int:
    """Run one job file; returns (and records) the command's exit status."""
    args = sys.argv[1:] if argv is None else argv
    job_path = Path(args[0])
    results = job_path.parent
    job = json.loads(job_path.read_text())
    rc = 125
    with ExitStack() as stack:
        try:
            settle = float(job.get("settle", 15))
            missing = stack.enter_context(provide(_definitions(job), settle=settle))
            if missing:
                _say("warn", f"devices not on the bus after {settle:g} s: {' '.join(missing)}")
        except Exception as exc:  # noqa: BLE001 - reported to the host, which fails the run
            _say("fail", f"setting up the lab devices: {type(exc).__name__}: {exc}")
            (results / "exit").write_text("125\n")
            return 125
        _say("begin")
        try:
            env = dict(os.environ)
            rc = subprocess.call(job["argv"], env=env)
        except OSError as exc:
            print(f"dkproto lab: cannot run {job['argv'][0]!r}: {exc.strerror}", file=sys.stderr)
            rc = 127
        _say("end", str(rc))
        (results / "exit").write_text(f"{rc}\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
