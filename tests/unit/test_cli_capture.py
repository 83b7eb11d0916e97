"""``dkproto capture export | import | info``: in process, through the real top-level error handler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from capture_helpers import fixture_events, tshark_rows, write_session
from cli_in_process import cli

from dkproto.session import load_session


def test_export_import_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = write_session(tmp_path / "s.jsonl", fixture_events())
    cap = tmp_path / "s.pcapng"
    status, out, err = cli(["capture", "export", str(session), str(cap)], capsys)
    assert status == 0, err
    assert out.splitlines() == [f"{cap}: 24 usbmon records from 17 events",
                                "  1 event without records: failed before the bus (kIOReturnBadArgument)",
                                "  2 events without records: no URB (open, close, claim, abort, reset, serial line calls)"]
    assert len(tshark_rows(cap)) == 24

    back = tmp_path / "back.jsonl"
    status, out, err = cli(["capture", "import", str(cap), str(back), "--url", "3.7=usb://1d8d:0101"], capsys)
    assert status == 0, err
    assert out.splitlines() == [f"{back}: 15 events on 1 device", "  dev 0: usb://1d8d:0101 1d8d:0101, 15 events"]
    assert err == ""
    loaded = load_session(back)
    assert loaded.devices[0].url == "usb://1d8d:0101" and loaded.header["argv"][:3] == ["dkproto", "capture", "import"]

    status, out, err = cli(["capture", "info", str(cap)], capsys)
    assert status == 0, err
    assert out.splitlines()[0] == f"{cap}: 24 packets (24 of link type 220) in 1 section"
    assert "  bus 3 device 7 1d8d:0101: 24 records, 79 bytes in, 4 bytes out" in out.splitlines()
    assert "    URB errors: -ENOENT x1, -EPIPE x1, -ETIMEDOUT x1" in out.splitlines()
    status, out, err = cli(["capture", "info", "--json", str(cap)], capsys)
    assert status == 0 and json.loads(out)["devices"][0]["idVendor"] == 0x1D8D


@pytest.mark.parametrize(("args", "message"), [
    (["capture", "info", "{tmp}/missing.pcapng"], "missing.pcapng: no such capture file [kIOReturnNotFound"),
    (["capture", "info", "{tmp}/garbage"], "offset 0, pcapng: does not start with a Section Header Block"),
    (["capture", "info", "{tmp}"], "is a directory, not a pcapng file [kIOReturnBadArgument"),
    (["capture", "import", "{tmp}/garbage", "{tmp}/o.jsonl"], "does not start with a Section Header Block"),
    (["capture", "import", "{tmp}/empty.pcapng", "{tmp}/o.jsonl", "-d", "x"], "expected BUS.DEVICE"),
    (["capture", "import", "{tmp}/empty.pcapng", "{tmp}/o.jsonl", "--url", "1.2"], "expected BUS.DEVICE=URL"),
    (["capture", "import", "{tmp}/empty.pcapng", "{tmp}/nodir/o.jsonl"], "cannot write the session"),
    (["capture", "export", "{tmp}/garbage", "{tmp}/o.pcapng"], "garbage line 1"),
    (["capture", "export", "{tmp}/missing.jsonl", "{tmp}/o.pcapng"], "no such session file [kIOReturnNotFound"),
])
def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                             message: str) -> None:
    (tmp_path / "garbage").write_bytes(b"not a capture, not a session\n")
    from dkproto.capture import PcapngWriter

    PcapngWriter(tmp_path / "empty.pcapng", linktype=220).close()
    status, _out, err = cli([a.format(tmp=tmp_path) for a in args], capsys)
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dkproto: ") and message in lines[0], err
    assert "[kIOReturn" in lines[0]
