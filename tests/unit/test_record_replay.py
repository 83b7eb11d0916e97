"""Recording sim:// and serial+loop:// sessions, then replaying them with the device gone."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from cli_in_process import cli

from dkproto.errors import AbortedError, DkTimeoutError, NotFoundError, ReplayMismatchError, URLError
from dkproto.ioreturn import IOReturn
from dkproto.session import load_session
from dkproto.transport import open_transport
from dkproto.transport.record import RecordTransport, SerialRecordTransport, recording
from dkproto.transport.replay import ReplayTransport, SerialReplayTransport, replaying
from dkproto.transport.sim import SimDevice, SimKeyboard, hid_keyboard_device

KEY_A = 0x04
BUILT: list[str] = []  # every device the factories below made


def typing_keyboard() -> SimDevice:
    """sim://test_record_replay:typing_keyboard: "a" pressed with Left Shift, then released."""
    BUILT.append("keyboard")
    keyboard = hid_keyboard_device()
    keyboard.press(KEY_A, modifiers=0x02)
    keyboard.release()
    return keyboard


KBD = "sim://test_record_replay:typing_keyboard"


def _watch(out: str) -> list[dict[str, object]]:
    """hid watch --json lines without their timing (t, rate)."""
    rows = [json.loads(line) for line in out.splitlines()]
    return [{k: v for k, v in r.items() if k not in ("t", "rate")} for r in rows]


def _edit(path: Path, line: int, old: str, new: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    assert old in lines[line - 1], lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("".join(lines))


def _line_of(path: Path, predicate: str) -> int:
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if predicate in line:
            return n
    raise AssertionError(predicate)


# ---------------------------------------------------------------------------------------------- CLI in process
def test_dump_and_hid_watch_replay_identically_with_the_device_gone(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kbd.jsonl"
    with recording(path):
        dump_live = cli(["dump", KBD], capsys)
        watch_live = cli(["hid", "watch", KBD, "-n", "2", "--json"], capsys)
    assert dump_live[0] == 0 and watch_live[0] == 0
    assert "ID 1209:0003" in dump_live[1]
    assert len(_watch(watch_live[1])) == 2
    session = load_session(path)
    assert [d.url for d in session.devices] == [KBD, KBD]
    ops = [e.op for e in session.devices[1].events]
    assert ops[0] == "open" and "report_descriptor" in ops and ops.count("read") == 2 and ops[-1] == "close"
    built = len(BUILT)
    with replaying(path) as replayer:
        dump_replayed = cli(["dump", KBD], capsys)
        watch_replayed = cli(["hid", "watch", KBD, "-n", "2", "--json"], capsys)
        assert replayer.unconsumed() == []
    assert len(BUILT) == built  # no device was made: the recording answered
    assert dump_replayed == dump_live
    assert watch_replayed[0] == 0 and _watch(watch_replayed[1]) == _watch(watch_live[1])
    assert _watch(watch_live[1])[0]["values"]  # a real report, decoded
    # the recording opened directly by URL: device 0 is the dump, device 1 the watch
    assert cli(["dump", f"replay://{path}"], capsys) == dump_live
    assert _watch(cli(["hid", "watch", f"replay://{path}?device=1", "-n", "2", "--json"], capsys)[1]) \
        == _watch(watch_live[1])


def test_a_changed_response_byte_changes_the_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kbd.jsonl"
    with recording(path):
        live = cli(["dump", "sim://hid-keyboard"], capsys)
    n = _line_of(path, '"wValue":256,"wIndex":0,"wLength":18')
    _edit(path, n, '"in":"12010002000000400912', '"in":"12010002000000400a12')  # idVendor 0x1209 -> 0x120a
    with replaying(path):
        replayed = cli(["dump", "sim://hid-keyboard"], capsys)
    assert replayed[0] == 0 and replayed[1] != live[1]
    assert "ID 120a:0003" in replayed[1] and "ID 1209:0003" in live[1]


def test_a_changed_request_fails_at_that_line_with_the_precise_message(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "session.jsonl"
    with recording(path):
        assert cli(["dump", "sim://hid-keyboard"], capsys)[0] == 0
    n = _line_of(path, '"wValue":256,"wIndex":0,"wLength":18')
    _edit(path, n, '"wValue":256', '"wValue":257')
    with replaying(path):
        status, out, err = cli(["dump", "sim://hid-keyboard"], capsys)
    assert status == 1 and out == ""
    assert err == (f"dkproto: {path} line {n} (event {n - 2}, device 0 sim://hid-keyboard): expected control "
                   "bmRequestType=0x80 bRequest=0x06 wValue=0x0101 wIndex=0x0000 wLength=18, got control "
                   "bmRequestType=0x80 bRequest=0x06 wValue=0x0100 wIndex=0x0000 wLength=18 "
                   "[kIOReturnBadMessageID (0xe00002c6)]\n")


def test_serial_expect_records_as_reads_and_replays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "serial.jsonl"
    args = ["serial", "expect", "serial+loop://", "OK", "--send", "AT\\r\\nOK\\r\\n", "--baudrate", "115200"]
    with recording(path):
        live = cli(args, capsys)
    assert live[0] == 0 and live[1] == "AT\r\nOK\r\n"
    ops = [(e.op, e.fields.get("endpoint")) for e in load_session(path).events]
    assert ops[:4] == [("open", None), ("configure", None), ("write", 0x02), ("read", 0x81)]
    assert load_session(path).events[1].fields == {"baudrate": 115200}
    with replaying(path):
        assert cli(args, capsys) == live
    with replaying(path):  # a different line setting is a mismatch
        status, _, err = cli([*args[:-1], "9600"], capsys)
    assert status == 1
    assert "expected configure baudrate=115200, got configure baudrate=9600 [kIOReturnBadMessageID" in err


# ---------------------------------------------------------------------------------------------- API
def _loopback_work() -> list[object]:
    out: list[object] = []
    with open_transport("sim://loopback") as t:
        out.append(t.write(0x02, b"hello"))
        out.append(t.read(0x81, 64))
        out.append(t.control_transfer(0x40, 0x01, 0, 0, b"stored"))
        out.append(t.control_transfer(0xC0, 0x02, 0, 0, 64))
        done = threading.Event()
        seen: list[bytes] = []
        transfer = t.submit(0x81, 64, lambda tr: (seen.append(tr.data), done.set()))
        t.write(0x02, b"async")
        assert done.wait(5)
        out.append((transfer.status, transfer.data, transfer.actual_length, seen))
        out_transfer = t.submit(0x02, b"out!")
        out.append((out_transfer.wait(5).status, out_transfer.actual_length))
        out.append(t.read(0x81, 64))  # what the OUT transfer looped back
        pending = t.submit(0x81, 8, timeout=0)
        t.abort(0x81)
        out.append((pending.done(), pending.status, type(pending.error).__name__))
        try:
            t.read(0x81, 64, 30)
        except DkTimeoutError as exc:
            out.append(str(exc))
        out.append(t.get_configuration())
    return out


def test_bulk_control_async_abort_and_errors_replay(tmp_path: Path) -> None:
    path = tmp_path / "loop.jsonl"
    with recording(path) as rec:
        live = _loopback_work()
    assert rec.devices == 1
    assert live[1] == b"hello" and live[3] == b"stored"
    assert live[4] == (IOReturn.kIOReturnSuccess, b"async", 5, [b"async"])
    assert live[5:8] == [(IOReturn.kIOReturnSuccess, 4), b"out!", (True, IOReturn.kIOReturnAborted, "AbortedError")]
    assert live[8] == "sim://loopback: read from endpoint 0x81 timed out after 30 ms"
    session = load_session(path)
    ops = [e.op for e in session.events]
    assert ops.count("submit") == 3 and ops.count("complete") == 3 and "abort" in ops
    for e in session.events:  # each completion comes after its submit, with its id
        if e.op == "complete":
            sub = next(s for s in session.events if s.op == "submit" and s.fields["id"] == e.fields["id"])
            assert sub.seq < e.seq
    with replaying(path) as replayer:
        replayed = _loopback_work()
        assert replayer.unconsumed() == []
    assert replayed == live


def test_replayed_transports_and_wrappers(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    with recording(path):
        t = open_transport("spy+sim://loopback")
        assert isinstance(t.inner, RecordTransport)  # type: ignore[attr-defined]
        with t:
            t.write(0x02, b"x")
        s = open_transport("serial+loop://")
        assert isinstance(s, SerialRecordTransport)
    assert load_session(path).devices[0].url == "sim://loopback"  # the device, not the spy
    with replaying(path):
        t = open_transport("spy+sim://loopback")
        assert isinstance(t.inner, ReplayTransport)  # type: ignore[attr-defined]
        with t:
            assert t.write(0x02, b"x") == 1
            assert t.info.idVendor == 0x1209 and t.info.product == "sim loopback"
        with pytest.raises(NotFoundError, match=r"w.jsonl: usb://1d6b:0104 was not recorded \(recorded: "
                                                r"sim://loopback\)"):
            open_transport("usb://1d6b:0104")
        with pytest.raises(NotFoundError, match="opened 2 times, the recording has 1 device"):
            open_transport("sim://loopback").open()


def test_nth_open_gets_the_nth_recorded_device(tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    with recording(path):
        for data in (b"first", b"second"):
            with open_transport("sim://loopback") as t:
                t.write(0x02, data)
                t.read(0x81, 64)
    with replaying(path):
        got = []
        for _ in range(2):
            with open_transport("sim://loopback") as t:
                got.append(t.write(0x02, b"first" if not got else b"second"))
                got.append(t.read(0x81, 64))
    assert got == [5, b"first", 6, b"second"]


def _two_endpoints(first: str) -> None:
    with open_transport("sim://loopback") as t:
        if first == "write":
            t.write(0x02, b"ab")
            t.control_transfer(0xC0, 0x02, 0, 0, 8)
        else:
            t.control_transfer(0xC0, 0x02, 0, 0, 8)
            t.write(0x02, b"ab")
        t.read(0x81, 64, timeout=200)


def test_strictness_order_and_endpoints(tmp_path: Path) -> None:
    path = tmp_path / "order.jsonl"
    with recording(path):
        _two_endpoints("write")
    with replaying(path, strict="order"):
        _two_endpoints("write")
    with replaying(path, strict="order"), pytest.raises(ReplayMismatchError) as info:
        _two_endpoints("control")
    assert "expected write endpoint=0x02 data=6162 (2 bytes), got control bmRequestType=0xc0" in str(info.value)
    with replaying(path, strict="endpoints"):
        _two_endpoints("control")  # another order across endpoints: fine
    with replaying(path, strict="endpoints"), open_transport("sim://loopback") as t, \
            pytest.raises(ReplayMismatchError) as info:
        t.read(0x81, 64, timeout=200)
        t.read(0x81, 64, timeout=200)  # the recording has one read on 0x81
    assert "the recording has no more events on endpoint 0x81 for this device, got read endpoint=0x81 " \
           "length=64" in str(info.value)


def test_strictness_exact_compares_timeouts_and_paces(tmp_path: Path) -> None:
    path = tmp_path / "exact.jsonl"
    with recording(path), open_transport("sim://loopback") as t, pytest.raises(DkTimeoutError):
        t.read(0x81, 64, timeout=150)
    with replaying(path, strict="order"), open_transport("sim://loopback") as t:
        start = time.monotonic()
        with pytest.raises(DkTimeoutError, match="timed out after 150 ms"):
            t.read(0x81, 64, timeout=20)  # another timeout: fine, and no waiting
        assert time.monotonic() - start < 0.1
    with replaying(path, strict="exact"), open_transport("sim://loopback") as t:
        start = time.monotonic()
        with pytest.raises(DkTimeoutError):
            t.read(0x81, 64, timeout=150)
        assert time.monotonic() - start >= 0.13  # paced as recorded
    with replaying(path, strict="exact"), open_transport("sim://loopback") as t, \
            pytest.raises(ReplayMismatchError, match="expected read endpoint=0x81 length=64 timeout=150, got "
                                                     "read endpoint=0x81 length=64 timeout=20"):
        t.read(0x81, 64, timeout=20)


def test_out_payload_difference_names_the_first_byte(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with recording(path), open_transport("sim://loopback") as t:
        t.write(0x02, b"hello world")
    line = _line_of(path, '"op":"write"')
    with replaying(path), open_transport("sim://loopback") as t, pytest.raises(ReplayMismatchError) as info:
        t.write(0x02, b"hello wOrld")
    assert str(info.value) == (
        f"{path} line {line} (event {line - 2}, device 0 sim://loopback): expected write endpoint=0x02 "
        "data=68656c6c6f20776f726c64 (11 bytes), got write endpoint=0x02 data=68656c6c6f20774f726c64 (11 bytes) "
        "(data bytes differ: first difference at byte 7 (0x6f recorded, 0x4f sent))")
    assert info.value.ioreturn == IOReturn.kIOReturnBadMessageID


def test_a_request_after_the_end_is_a_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "end.jsonl"
    with recording(path), open_transport("sim://loopback") as t:
        t.write(0x02, b"a")
    lines = path.read_text().splitlines(keepends=True)
    assert '"op":"close"' in lines[-1]
    path.write_text("".join(lines[:-1]))  # as a run interrupted before the close
    with replaying(path), open_transport("sim://loopback") as t:
        t.write(0x02, b"a")
        with pytest.raises(ReplayMismatchError) as info:
            t.read(0x81, 64)
    assert str(info.value) == (f"{path} after line 3 (event 1, device 0 sim://loopback): the recording has no more "
                               "events for this device, got read endpoint=0x81 length=64")


def test_serial_api_extras_replay(tmp_path: Path) -> None:
    path = tmp_path / "ser.jsonl"

    def work() -> list[object]:
        with open_transport("serial+loop://") as s:
            s.configure(baudrate=57600)  # type: ignore[attr-defined]
            s.set_rts(False)  # type: ignore[attr-defined]
            s.write(0x02, b"ping\r\n")
            out: list[object] = [s.expect(b"ping", 1000)]  # type: ignore[attr-defined]
            out.append(s.modem_lines())  # type: ignore[attr-defined]
            s.reset_input()  # type: ignore[attr-defined]
            try:
                s.expect("never", 300)  # type: ignore[attr-defined]
            except DkTimeoutError as exc:
                out.append(type(exc).__name__)
            return out

    with recording(path):
        live = work()
    assert live[0] == b"ping\r\n"
    with replaying(path, strict="exact"):
        t = open_transport("serial+loop://")
        assert isinstance(t, SerialReplayTransport)
        assert work() == live


def test_replay_url_errors(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    with recording(path), open_transport("sim://loopback") as t:
        t.write(0x02, b"a")
    with open_transport(f"replay://{path}?url=sim://loopback") as t:
        assert t.write(0x02, b"a") == 1
    with pytest.raises(NotFoundError, match="no device 3"):
        open_transport(f"replay://{path}?device=3")
    with pytest.raises(URLError, match="unknown option"):
        open_transport(f"replay://{path}?nope=1")
    with pytest.raises(URLError, match="not one of exact, order, endpoints"):
        open_transport(f"replay://{path}?strict=loose")
    with pytest.raises(NotFoundError, match="no such session file"):
        open_transport(f"replay://{tmp_path}/missing.jsonl")


def test_a_failed_open_replays_as_the_same_error(tmp_path: Path) -> None:
    path = tmp_path / "gone.jsonl"
    keyboard = SimKeyboard()
    keyboard.unplug()
    from dkproto.transport.record import Recorder, record_transport
    from dkproto.transport.sim import SimTransport

    rec = Recorder(path)
    t = record_transport(SimTransport(keyboard, "sim://hid-keyboard"), rec, "sim://hid-keyboard")
    with pytest.raises(Exception, match="device unplugged") as live:
        t.open()
    rec.close()
    with replaying(path), pytest.raises(type(live.value), match="device unplugged") as again:
        open_transport("sim://hid-keyboard").open()
    assert again.value.ioreturn == IOReturn.kIOReturnNoDevice  # type: ignore[attr-defined]


def test_abort_without_a_recorded_completion(tmp_path: Path) -> None:
    path = tmp_path / "ab.jsonl"
    with recording(path), open_transport("sim://loopback") as t:
        t.submit(0x81, 8, timeout=0)
    session = load_session(path)
    assert [e.op for e in session.events] == ["open", "submit", "complete", "close"]
    recorded = session.events[2]
    assert not recorded.ok  # completed at close (aborted; NotOpen when the close won the race)
    with replaying(path), open_transport("sim://loopback") as t:
        transfer = t.submit(0x81, 8, timeout=0)
        assert not transfer.done()  # still pending: the recording completes it at close
    assert transfer.done() and transfer.status == recorded.code
    assert type(transfer.error) is type(recorded.exception()) and str(transfer.error) == recorded.error


def test_abort_completes_pending_transfers_as_recorded(tmp_path: Path) -> None:
    path = tmp_path / "ab2.jsonl"

    def work() -> tuple[object, ...]:
        with open_transport("sim://loopback") as t:
            pending = t.submit(0x81, 8, timeout=0)
            time.sleep(0.05)
            t.abort(0x81)
            return pending.done(), pending.status, type(pending.error)

    with recording(path):
        live = work()
    assert live == (True, IOReturn.kIOReturnAborted, AbortedError)
    with replaying(path) as replayer:
        assert work() == live
        assert replayer.unconsumed() == []


def test_completions_due_together_replay_in_recorded_order(tmp_path: Path) -> None:
    """Two transfers whose completions the replay reaches at once (both recorded before the next
    call) complete in their recorded order: a replay must not try to order the events themselves."""

    def work() -> list[object]:
        with open_transport("sim://loopback") as t:
            first = t.submit(0x81, 3)
            second = t.submit(0x81, 3)
            t.write(0x02, b"onetwo")  # one write completes both reads
            assert first.wait(5) and second.wait(5)
            time.sleep(0.05)  # both completions are recorded before the next call
            return [(first.status, first.data), (second.status, second.data), t.get_configuration()]

    path = tmp_path / "two.jsonl"
    with recording(path):
        live = work()
    with replaying(path) as replayer:
        replayed = work()
        assert replayer.unconsumed() == []
    assert replayed == live
    assert live[0] == (IOReturn.kIOReturnSuccess, b"one") and live[1] == (IOReturn.kIOReturnSuccess, b"two")
