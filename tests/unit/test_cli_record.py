"""``dkproto record`` and ``dkproto replay`` as processes: environment activation end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_in_process import cli

DKPROTO = [sys.executable, "-m", "dkproto"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DKPROTO_RECORD", "DKPROTO_REPLAY"))}
    return subprocess.run([*DKPROTO, *args], capture_output=True, text=True, timeout=120,
                          env={**clean, **(env or {})}, check=False)


def test_record_then_replay_gives_the_same_stdout(tmp_path: Path) -> None:
    out = tmp_path / "dump.jsonl"
    live = run("dump", "sim://hid-keyboard")
    recorded = run("record", str(out), "--", *DKPROTO, "dump", "sim://hid-keyboard")
    assert recorded.returncode == 0 and recorded.stdout == live.stdout
    assert recorded.stderr.strip().splitlines()[-1] == f"dkproto: recorded 11 events from 1 device to {out}"
    header = json.loads(out.read_text().splitlines()[0])
    assert header["argv"][1:] == ["dump", "sim://hid-keyboard"]
    replayed = run("replay", str(out), "--", *DKPROTO, "dump", "sim://hid-keyboard")
    assert replayed.returncode == 0 and replayed.stdout == live.stdout
    direct = run("dump", f"replay://{out}")
    assert direct.returncode == 0 and direct.stdout == live.stdout
    # a device that was not recorded: one line, kIOReturnNotFound
    other = run("replay", str(out), "--", *DKPROTO, "dump", "sim://loopback")
    assert other.returncode == 1
    assert other.stderr == (f"dkproto: {out}: sim://loopback was not recorded (recorded: sim://hid-keyboard) "
                            "[kIOReturnNotFound (0xe00002f0)]\n")


def test_replay_mismatch_exits_1_naming_the_line(tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    assert run("record", str(out), "--", *DKPROTO, "ctrl", "sim://loopback", "0x40", "1", "0", "0",
               "01 02 03").returncode == 0
    text = out.read_text()
    assert '"out":"010203"' in text
    ok = run("replay", str(out), "--", *DKPROTO, "ctrl", "sim://loopback", "0x40", "1", "0", "0", "01 02 03")
    assert ok.returncode == 0 and ok.stdout == "sent 3 byte(s)\n"
    bad = run("replay", str(out), "--", *DKPROTO, "ctrl", "sim://loopback", "0x40", "1", "0", "0", "01 02 04")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr == (f"dkproto: {out} line 3 (event 1, device 0 sim://loopback): expected control "
                          "bmRequestType=0x40 bRequest=0x01 wValue=0x0000 wIndex=0x0000 wLength=3 out=010203 "
                          "(3 bytes), got control bmRequestType=0x40 bRequest=0x01 wValue=0x0000 wIndex=0x0000 "
                          "wLength=3 out=010204 (3 bytes) (out bytes differ: first difference at byte 2 (0x03 "
                          "recorded, 0x04 sent)) [kIOReturnBadMessageID (0xe00002c6)]\n")


def test_record_exits_with_the_command_status(tmp_path: Path) -> None:
    out = tmp_path / "none.jsonl"
    out.write_text("stale")
    done = run("record", str(out), "--", sys.executable, "-c", "import sys; sys.exit(3)")
    assert done.returncode == 3
    assert done.stderr == f"dkproto: recorded 0 events from 0 devices to {out}\n"
    assert json.loads(out.read_text())["format"] == "dkproto-session"  # an empty session, not the stale file


def test_replay_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "i.jsonl"
    assert run("record", str(out), "--", *DKPROTO, "read", "sim://loopback", "0x81", "8", "-t", "20").returncode == 1
    with out.open("a") as f:
        f.write('{"seq":3,"t":0.')  # an interrupted last line
    status, text, err = cli(["replay", str(out), "--info"], capsys)
    assert status == 0 and err == ""
    lines = text.splitlines()
    assert lines[0].startswith(f"{out}: dkproto session v1, created ")
    assert lines[2].startswith("3 events, 1 device, ")
    assert lines[3] == "device 0: sim://loopback (sim)  1209:0001 'sim loopback': 3 events, 1 failed"
    assert lines[4] == "  ops: close 1, open 1, read 1"
    assert lines[5] == "  endpoints: 0x81 1"
    assert lines[6].startswith(f"complaint: {out} line 5: cut short")
    status, text, _ = cli(["replay", str(out), "--info", "--format", "json"], capsys)
    summary = json.loads(text)
    assert summary["events"] == 3 and summary["devices"][0]["ops"] == {"close": 1, "open": 1, "read": 1}
    assert summary["devices"][0]["ids"] == "1209:0001" and len(summary["complaints"]) == 1


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(["replay", str(tmp_path / "no.jsonl"), "--info"], capsys)
    assert status == 1 and err == f"dkproto: {tmp_path / 'no.jsonl'}: no such session file [kIOReturnNotFound (0xe00002f0)]\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format":"dkproto-session","version":9}\n')
    status, _, err = cli(["replay", str(bad), "--", "true"], capsys)
    assert status == 1 and err == (f"dkproto: {bad} line 1: version 9 is not supported (this dkproto reads version 1) "
                                   "(rule: header.version) [kIOReturnBadArgument (0xe00002c2)]\n")
    status, _, err = cli(["record", str(tmp_path / "x.jsonl")], capsys)
    assert status == 1 and "no command to run" in err
    status, _, err = cli(["replay", str(bad), "--strict", "loose", "--", "true"], capsys)
    assert status == 2 and "loose" in err
