"""The examples' hardware suites run from their committed recordings, made in the lab against each
example's own gadget (devices/record_examples.py), with no VM and no USB; one changed recorded
byte makes the replay fail at that transfer with a message that names it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("vendor-bulk", "hid-keyboard-leds", "cdc-acm-serial")
SYNC = "devices_vendor-bulk_test_vendor_bulk.py__test_write_then_read_back.jsonl"
SYNC_TEST = "devices/vendor-bulk/test_vendor_bulk.py::test_write_then_read_back"


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_example_suite_passes_from_its_committed_recordings(example: str) -> None:
    recordings = sorted((ROOT / "devices" / example / "recordings").glob("*.jsonl"))
    assert len(recordings) >= 4
    done = _pytest(f"devices/{example}", "--dk-hw", "--dk-replay", f"devices/{example}/recordings")
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"{len(recordings)} passed" in done.stdout
    assert f"{len(recordings)} test(s) replayed" in done.stdout


def _mutated(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "rec"
    shutil.copytree(ROOT / "devices" / "vendor-bulk" / "recordings", folder)
    path = folder / SYNC
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    return folder


def test_a_changed_request_byte_fails_the_replay_at_that_transfer(tmp_path: Path) -> None:
    # "hello, dext": the last byte of the recorded bulk OUT (the driver's AsyncIO) becomes 'x'
    folder = _mutated(tmp_path, '"endpoint":2,"length":11,"out":"68656c6c6f2c2064657874"',
                      '"endpoint":2,"length":11,"out":"68656c6c6f2c2064657878"')
    done = _pytest(SYNC_TEST, "--dk-hw", "--dk-replay", str(folder))
    assert done.returncode == 1
    line = next(i for i, t in enumerate((folder / SYNC).read_text().splitlines(), 1) if '"out":"68656c' in t)
    assert f"{SYNC} line {line} (event {line - 2}, device 0 usb://1209:0001): expected submit endpoint=0x02" \
        in done.stdout
    assert "first difference at byte 10 (0x78 recorded, 0x74 sent)" in done.stdout
    assert "replay mismatch" in done.stdout
    assert "Traceback" not in done.stdout


def test_a_changed_response_byte_reaches_the_test(tmp_path: Path) -> None:
    # the device "answers" hello, dexx: the driver and app pass it on, the test's assertion sees it
    folder = _mutated(tmp_path, '"data":"68656c6c6f2c2064657874","status"', '"data":"68656c6c6f2c2064657878","status"')
    done = _pytest(SYNC_TEST, "--dk-hw", "--dk-replay", str(folder))
    assert done.returncode == 1
    assert "b'hello, dexx'" in done.stdout
