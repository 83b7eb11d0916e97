"""Record and replay on the real Linux USB stack, and Wireshark's view of both (issue 11).

1. Each example's hardware suite (``devices/<example>/test_*.py``) runs against the example's
   own gadget with ``--dk-record``; the gadget is then removed and the same suite passes from
   the fresh recordings, with no device on the bus.
2. The kernel's own usbmon capture (tshark on ``usbmonN``) of a ``dkproto dump`` and dkproto's
   pcapng export of the session it recorded, both read by Debian's tshark, list the same
   transfers: setup packets, endpoints, lengths and data.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("vendor-bulk", "hid-keyboard-leds", "cdc-acm-serial")


def _pytest(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # the child is an ordinary pytest run: it must not report into this lab session's results.
    # Without hypothesis's plugin, as the lab session itself runs: the examples' suites do not
    # use it, and importing it costs seconds under TCG on every run.
    env = {k: v for k, v in os.environ.items() if k not in ("DKPROTO_LAB_RESULTS", "DKPROTO_LAB_REPORT")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                           "-q", "-rA", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("example", EXAMPLES)
def test_a_suite_recorded_on_the_device_passes_from_its_recording_with_the_device_gone(
        example: str, example_gadget: Any, tmp_path: Path) -> None:
    g = example_gadget(example)
    rec = tmp_path / "rec"
    live = _pytest(f"devices/{example}", "--dk-hw", "--dk-record", str(rec))
    assert live.returncode == 0, live.stdout[-3000:] + live.stderr[-2000:]
    made = sorted(rec.glob("*.jsonl"))
    assert made, live.stdout[-2000:]
    assert "recorded" in live.stdout
    g.remove()  # the device leaves the bus: what follows cannot reach it

    replayed = _pytest(f"devices/{example}", "--dk-hw", "--dk-replay", str(rec))
    assert replayed.returncode == 0, replayed.stdout[-3000:] + replayed.stderr[-2000:]
    assert f"{len(made)} passed" in replayed.stdout
    assert "replayed" in replayed.stdout


# -- Wireshark: the kernel's usbmon capture and dkproto's export list the same transfers ----------

def _tshark_rows(path: Path, bus: int, address: int, since: float = 0.0) -> list[tuple[str, ...]]:
    """Each usbmon record of the device from time ``since`` on (seconds since the epoch), as
    tshark reads it: URB type, transfer type, endpoint, URB status class, the setup packet (raw,
    for 'S' control records), the data length and the data bytes (raw: descriptors are
    dissected, so tshark has no ``usb.capdata`` for them)."""
    tshark = shutil.which("tshark")
    assert tshark, "tshark is not installed: apt-get install tshark (dkproto lab prepare --install does)"
    out = subprocess.run([tshark, "-r", str(path), "-Y", f"usb.bus_id == {bus} && usb.device_address == {address}",
                          "-T", "json", "-x"], capture_output=True, text=True, timeout=120, check=True).stdout
    rows = []
    for pkt in json.loads(out or "[]"):
        layers = pkt["_source"]["layers"]
        if float(layers["frame"]["frame.time_epoch"]) < since:
            continue
        usb = layers["usb"]
        raw = bytes.fromhex(layers["frame_raw"][0])
        n = int(usb["usb.data_len"])
        setup = raw[40:48].hex() if usb.get("usb.setup_flag") == "'\\0'" else ""
        status = int(usb["usb.urb_status"])
        rows.append((usb["usb.urb_type"], usb["usb.transfer_type"], usb["usb.endpoint_address"], setup,
                     usb["usb.urb_len"] if usb["usb.urb_type"] == "'S'" else "", str(n),
                     raw[len(raw) - n:].hex() if n else "", "ok" if status in (0, -115) else str(status)))
    return rows


#: Runs the command after it with SIGINT back to its default. A test run started in the background by
#: a shell (``cmd &``) has SIGINT ignored, children inherit that, and Python then never turns SIGINT
#: into KeyboardInterrupt: the Ctrl-C these tests send would be lost.
SIGINT_DEFAULT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                  "os.execvp(sys.argv[1], sys.argv[1:])"]


def _start_capture(bus: int, path: Path) -> subprocess.Popen[bytes]:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is not installed: apt-get install tshark (dkproto lab prepare --install does)"
    if not Path(f"/dev/usbmon{bus}").exists():
        subprocess.run(["modprobe", "usbmon"], check=False)
    assert Path(f"/dev/usbmon{bus}").exists(), "no usbmon device: the lab kernel has no usbmon module"
    log = path.with_suffix(".log")
    proc = subprocess.Popen([*SIGINT_DEFAULT, tshark, "-i", f"usbmon{bus}", "-w", str(path)], stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # tshark says "Capturing on" once the capture runs
        if b"Capturing on" in log.read_bytes():
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"tshark did not start capturing on usbmon{bus}: {log.read_text(errors='replace')[-500:]}")


def test_the_kernels_usbmon_capture_and_dkprotos_export_list_the_same_transfers(
        lab_gadget: Any, tmp_path: Path) -> None:
    g = lab_gadget("hid-keyboard")
    bus, address = g.host_address()
    kernel_cap = tmp_path / "kernel.pcapng"
    session = tmp_path / "session.jsonl"
    cap = _start_capture(bus, kernel_cap)
    try:
        # libpcap reads each device's device and configuration descriptors itself when a usbmon
        # capture starts (pcap-usb-linux.c, probe_devices: so that Wireshark can dissect them);
        # those records come before dkproto runs and are left out (the probe can come a little
        # after tshark says it is capturing: give it time on a loaded machine)
        time.sleep(3.0)
        since = time.time()
        env = dict(os.environ, DKPROTO_RECORD=str(session))
        env.pop("DKPROTO_RECORD_PID", None)
        dump = subprocess.run([sys.executable, "-m", "dkproto", "dump", f"usb://{bus}/{address}"],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
        assert dump.returncode == 0, dump.stderr
        time.sleep(1.0)  # let usbmon hand the last completions to tshark
    finally:
        cap.send_signal(signal.SIGINT)
        cap.wait(timeout=60)
    exported = tmp_path / "dkproto.pcapng"
    out = subprocess.run([sys.executable, "-m", "dkproto", "capture", "export", str(session), str(exported)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr

    kernel_rows = _tshark_rows(kernel_cap, bus, address, since)
    ours = _tshark_rows(exported, bus, address)
    assert ours, "dkproto's export lists no transfer of the device"
    assert len(ours) >= 20  # a whole descriptor set: device, configurations, strings, qualifier...
    assert kernel_rows == ours, f"dkproto ran from {since:.6f}\n" + _diff(kernel_rows, ours)


def _diff(a: list[tuple[str, ...]], b: list[tuple[str, ...]]) -> str:
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    show = "\n".join(f"{i:3d} {'==' if i < len(a) and i < len(b) and a[i] == b[i] else '!='} "
                      f"kernel {a[i] if i < len(a) else '-'}  dkproto {b[i] if i < len(b) else '-'}"
                      for i in range(max(len(a), len(b))))
    return f"first difference at record {first} (kernel {len(a)} records, dkproto {len(b)}):\n{show}"
