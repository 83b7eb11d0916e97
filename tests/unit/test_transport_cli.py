"""dkproto ctrl | read | write | serial through CliRunner, on sim:// and pyserial's loop://."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from click.testing import CliRunner

from dkproto.cli import cli, main
from dkproto.cli.poke import parse_data, parse_int
from dkproto.errors import BadArgumentError
from dkproto.transport.registry import open_transport


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, obj={})
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        # the group turns DkError into one line only in main(); mimic it
        return 1, result.stdout, f"dkproto: {getattr(exc, 'one_line', lambda: str(exc))()}"
    return result.exit_code, result.stdout, result.stderr


def test_ctrl_in_hexdump_and_json() -> None:
    code, out, _ = run(["ctrl", "sim://loopback", "0x80", "6", "0x100", "0", "18"])
    assert code == 0
    assert out.startswith("0000  12 01 00 02 ff 00 00 40 09 12 01 00 00 01 01 02")
    code, out, _ = run(["ctrl", "sim://loopback", "0x80", "6", "0x100", "0", "8", "--json"])
    doc = json.loads(out)
    assert doc["data"] == "12010002ff000040" and doc["length"] == 8 and doc["bRequest"] == 6
    code, out, _ = run(["ctrl", "sim://loopback", "0x80", "6", "0x100", "0", "4", "--hex"])
    assert out.strip() == "12 01 00 02"


def test_ctrl_out_and_stall() -> None:
    code, out, _ = run(["ctrl", "sim://loopback", "0x40", "1", "0", "0", "hi\\n", "--ascii"])
    assert code == 0 and out.strip() == "sent 3 byte(s)"
    code, out, err = run(["ctrl", "sim://loopback", "0xc0", "0x42", "0", "0", "8"])
    assert code == 1 and "kUSBHostReturnPipeStalled" in err


def test_read_write_errors_and_timeout() -> None:
    code, out, _ = run(["write", "sim://loopback", "0x02", "de ad be ef", "--json"])
    assert code == 0 and json.loads(out) == {"device": "sim://loopback", "endpoint": 2, "sent": 4}
    code, _, err = run(["read", "sim://loopback", "0x81", "16", "--timeout", "20"])
    assert code == 1 and "kIOReturnTimeout" in err  # a fresh sim device has nothing queued
    code, _, err = run(["read", "sim://loopback", "0x02"])
    assert code == 1 and "is an OUT endpoint" in err
    code, _, err = run(["write", "sim://loopback", "2", "xyz"])
    assert code == 1 and "not hex bytes" in err


def test_main_prints_one_line_for_bad_url(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["ctrl", "usb://nope", "0x80", "6", "0x100", "0", "18"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "expected usb://VID:PID" in err and "kIOReturnBadArgument" in err


def test_spy_option_dumps_to_stderr() -> None:
    result = CliRunner().invoke(cli, ["write", "sim://loopback", "2", "41 42", "--spy"], obj={})
    assert result.exit_code == 0
    assert "|AB|" in result.stderr


def test_serial_send_expect_on_loop() -> None:
    code, out, _ = run(["serial", "send", "serial+loop://", "hello", "--ascii", "--read", "200", "--json"])
    assert code == 0 and json.loads(out)["received"] == b"hello".hex()
    code, out, _ = run(["serial", "expect", "serial+loop://", "OK", "--send", "AT\\r\\nOK\\r\\n", "-t", "500"])
    assert code == 0 and out.startswith("AT") and "OK" in out
    code, _, err = run(["serial", "expect", "serial+loop://", "ERROR", "--send", "x", "-t", "100", "-b", "9600"])
    assert code == 1 and "kIOReturnTimeout" in err
    code, out, _ = run(["serial", "list", "--json"])
    assert code == 0 and isinstance(json.loads(out), list)


def test_parse_helpers() -> None:
    assert parse_int("0x10", "x") == 16 and parse_int("10", "x") == 10
    with pytest.raises(BadArgumentError, match="wValue: 70000 is out of range"):
        parse_int("70000", "wValue")
    assert parse_data("01 02:0x03,04") == b"\x01\x02\x03\x04"
    assert parse_data("a\\x00b", ascii_mode=True) == b"a\x00b"
    with pytest.raises(BadArgumentError):
        parse_data("0")


# ------------------------------------------------------------------------------------ serial term
# As the user runs it: a separate process whose stdin is a pipe or a terminal (a pty).


def _term(args: list[str], stdin: Any, timeout: float = 30) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "dkproto", "serial", "term", *args], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_serial_term_ends_at_the_end_of_a_piped_stdin() -> None:
    proc = _term(["serial+loop://"], subprocess.PIPE)
    out, err = proc.communicate(b"hello\nlast line, no newline", timeout=30)
    assert proc.returncode == 0, err
    assert out == b"hello\r\nlast line, no newline\r\n"  # loop:// sends every line back


def test_serial_term_ends_at_a_ctrl_d_byte_with_stdin_still_open() -> None:
    proc = _term(["serial+loop://", "--eol", "lf"], subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"one\ntwo\x04three\n")  # what follows 0x04 is never sent
    proc.stdin.flush()
    try:
        rc = proc.wait(timeout=30)  # the pipe is still open: only the 0x04 can end it
    finally:
        proc.kill()
        out, err = proc.communicate()
    assert rc == 0, err
    assert out == b"one\ntwo\n"


def test_serial_term_ends_at_ctrl_d_typed_at_a_terminal() -> None:
    master, slave = os.openpty()  # stdin is a terminal in line mode: the kernel turns ^D into end of input
    try:
        proc = _term(["serial+loop://"], slave)
        os.write(master, b"typed\n")
        time.sleep(0.5)
        os.write(master, b"\x04")
        try:
            rc = proc.wait(timeout=30)
        finally:
            proc.kill()
            out, err = proc.communicate()
    finally:
        os.close(master)
        os.close(slave)
    assert rc == 0, err
    assert out == b"typed\r\n"


def test_serial_term_write_timeout_is_one_line_not_a_hang(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from cli_in_process import cli as run_main

    master, slave = os.openpty()  # the other end (master) never reads: the line backs up
    try:
        port = os.ttyname(slave)
        monkeypatch.setattr(sys, "stdin", io.StringIO("x" * 300_000 + "\n"))
        t0 = time.monotonic()
        code, _, err = run_main(["serial", "term", f"serial://{port}", "--write-timeout", "300"], capsys)
        elapsed = time.monotonic() - t0
    finally:
        os.close(master)
        os.close(slave)
    assert code == 1
    assert err.count("\n") == 1 and "kIOReturnTimeout" in err, err
    assert f"serial://{port}: the line was not taken within 300 ms (is anything reading the other end?)" in err
    assert elapsed < 10


def test_terminal_stops_at_ctrl_d_in_text_input() -> None:
    import io

    from dkproto.transport.serial import SerialTransport, terminal

    t = open_transport("serial+loop://", open=True)
    assert isinstance(t, SerialTransport)
    out = io.BytesIO()
    try:
        terminal(t, stdin=io.StringIO("a\nb\x04c\nd\n"), stdout=out, eol=b";", echo=True)
    finally:
        t.close()
    assert out.getvalue() == b"a;b;a;b;"  # echoed, then the loop's answer; nothing after ^D
