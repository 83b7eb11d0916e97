"""The session format v1 (dkproto.session): writing, the exact round trip, interrupted files, hostile lines."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import dkproto.session.format as fmt
from dkproto.errors import BadArgumentError, DkError, NotFoundError, PipeStalledError
from dkproto.ioreturn import IOReturn
from dkproto.session import Event, SessionError, SessionWriter, dumps_session, load_session, loads_session

HEADER = ('{"format":"dkproto-session","version":1,"created":"2026-12-03T13:45:00Z","dkproto":"0.1.0",'
          '"argv":["dkproto","dump","sim://loopback"],"clock":"monotonic"}')
OPEN = ('{"seq":0,"t":0.000100,"dt":0.000210,"dev":0,"op":"open","url":"sim://loopback","scheme":"sim",'
        '"info":{"url":"sim://loopback","scheme":"sim","idVendor":4617,"idProduct":1},"status":"kIOReturnSuccess"}')
CONTROL = ('{"seq":1,"t":0.000400,"dt":0.000050,"dev":0,"op":"control","bmRequestType":128,"bRequest":6,'
           '"wValue":256,"wIndex":0,"wLength":18,"in":"12010002","length":4,"status":"kIOReturnSuccess"}')
READ_TIMEOUT = ('{"seq":2,"t":0.001000,"dt":0.050000,"dev":0,"op":"read","endpoint":129,"length":64,"timeout":50,'
                '"status":"kIOReturnTimeout","error":"read timed out"}')
GOOD = f"{HEADER}\n{OPEN}\n{CONTROL}\n{READ_TIMEOUT}\n"


def _write_sample(path: Path) -> str:
    with SessionWriter(path, ["dkproto", "test"]) as w:
        w.append({"t": 0.1, "dt": 0.0002, "dev": 0, "op": "open", "url": "sim://loopback", "scheme": "sim",
                  "info": {"url": "sim://loopback", "scheme": "sim"}})
        w.append({"t": 0.2, "dt": 0.00001, "dev": 0, "op": "control", "bmRequestType": 0x40, "bRequest": 1,
                  "wValue": 0, "wIndex": 0, "wLength": 3, "out": b"\x01\x02\x03", "length": 3})
        w.append({"t": 0.3, "dt": 0.0, "dev": 0, "op": "submit", "id": 0, "endpoint": 0x81, "length": 8,
                  "timeout": 0})
        w.append({"t": 0.4, "dt": 0.0, "dev": 0, "op": "complete", "id": 0, "endpoint": 0x81, "actual_length": 2,
                  "data": b"\xaa\xbb"})
        w.append({"t": 0.5, "dt": 0.05, "dev": 0, "op": "write", "endpoint": 2, "data": b"hi", "timeout": 100,
                  "status": IOReturn.kUSBHostReturnPipeStalled, "error": "stalled"})
        w.append({"t": 0.6, "dt": 0.0, "dev": 0, "op": "modem_lines", "value": {"cts": True, "dsr": False}})
        w.append({"t": 0.7, "dt": 0.0, "dev": 0, "op": "close"})
    return path.read_text()


def test_written_file_loads_and_round_trips_exactly(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    text = _write_sample(path)
    lines = text.splitlines()
    assert len(lines) == 8 and text.endswith("\n")
    header = json.loads(lines[0])
    assert list(header) == ["format", "version", "created", "dkproto", "argv", "clock"]
    assert header["argv"] == ["dkproto", "test"]
    # keys in the contract's order, t/dt with 6 decimals, bytes as lowercase hex
    assert lines[2] == ('{"seq":1,"t":0.200000,"dt":0.000010,"dev":0,"op":"control","bmRequestType":64,"bRequest":1,'
                        '"wValue":0,"wIndex":0,"wLength":3,"out":"010203","length":3,"status":"kIOReturnSuccess"}')
    assert lines[5].endswith('"status":"kUSBHostReturnPipeStalled","error":"stalled"}')
    session = load_session(path)
    assert [e.seq for e in session.events] == list(range(7))
    assert [e.op for e in session.events] == ["open", "control", "submit", "complete", "write", "modem_lines",
                                              "close"]
    assert session.complaints == []
    assert len(session.devices) == 1 and session.devices[0].url == "sim://loopback"
    assert session.devices[0].info == {"url": "sim://loopback", "scheme": "sim"}
    stalled = session.events[4]
    assert not stalled.ok and isinstance(stalled.exception(), PipeStalledError)
    assert stalled.exception().ioreturn == IOReturn.kUSBHostReturnPipeStalled
    assert session.events[3].bytes_of("data") == b"\xaa\xbb"
    assert session.events[2].line == 4
    assert dumps_session(session) == text
    assert dumps_session(loads_session(text)) == text


def test_the_contract_example_round_trips() -> None:
    session = loads_session(GOOD, "s.jsonl")
    assert dumps_session(session) == GOOD
    assert session.events[1].fields["in"] == "12010002"
    assert session.events[2].error == "read timed out"


def test_writer_is_thread_safe(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    w = SessionWriter(path)
    w.append({"t": 0, "dt": 0, "dev": 0, "op": "open", "url": "sim://x", "scheme": "sim", "info": {}})

    def many(ep: int) -> None:
        for i in range(150):
            w.append({"t": w.now(), "dt": 0, "dev": 0, "op": "write", "endpoint": ep, "data": bytes([i]) * 300,
                      "timeout": 0, "length": 300})

    threads = [threading.Thread(target=many, args=(ep,)) for ep in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    session = load_session(path)
    assert len(session.events) == 1 + 8 * 150
    assert [e.seq for e in session.events] == list(range(len(session.events)))


def test_writer_refuses_an_event_off_the_format(tmp_path: Path) -> None:
    with SessionWriter(tmp_path / "w.jsonl") as w:
        with pytest.raises(SessionError, match="read.endpoint"):
            w.append({"t": 0, "dt": 0, "dev": 0, "op": "read", "endpoint": 300, "length": 1, "timeout": 0,
                      "data": b""})
        assert w.events == 0
    assert (tmp_path / "w.jsonl").read_text().count("\n") == 1


def test_an_interrupted_file_loads_what_came_before(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_text(GOOD + READ_TIMEOUT.replace('"seq":2', '"seq":3')[:37])
    session = load_session(path)
    assert len(session.events) == 3
    assert len(session.complaints) == 1
    assert session.complaints[0].startswith(f"{path} line 5: cut short")
    # the complete lines round-trip; the cut one is gone
    assert dumps_session(session) == GOOD


def test_a_cut_header_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match=r"line 1: not valid JSON"):
        loads_session(HEADER[:30])


def _bad(line: str, *, after: str = GOOD) -> str:
    return after + line + "\n"


HOSTILE = [
    ("not json", _bad("{nope"), 5, "JSON"),
    ("an array", _bad("[1,2]"), 5, "JSON"),
    ("NaN", _bad(READ_TIMEOUT.replace('"seq":2', '"seq":3').replace('"t":0.001000', '"t":NaN')), 5, "JSON"),
    ("duplicate key", _bad('{"seq":3,"seq":3}'), 5, "JSON"),
    ("deep nesting", _bad('{"a":' * 5000 + "1" + "}" * 5000), 5, "JSON"),
    ("huge number", _bad('{"seq":' + "9" * 5000 + "}"), 5, "JSON"),
    ("empty line", GOOD + "\n" + READ_TIMEOUT.replace('"seq":2', '"seq":3') + "\n", 5, "JSON"),
    ("seq out of order", _bad(READ_TIMEOUT), 5, "seq"),
    ("unknown op", _bad(READ_TIMEOUT.replace('"seq":2', '"seq":3').replace('"read"', '"rm"')), 5, "op"),
    ("unknown field", _bad(READ_TIMEOUT.replace('"seq":2', '"seq":3').replace('"timeout":50', '"timeout":50,"x":1')),
     5, "read.x"),
    ("endpoint out of range", _bad(READ_TIMEOUT.replace('"seq":2', '"seq":3').replace("129", "300")), 5,
     "read.endpoint"),
    ("bool as int", _bad(READ_TIMEOUT.replace('"seq":2', '"seq":3').replace("129", "true")), 5, "read.endpoint"),
    ("upper-case hex", GOOD.replace('"12010002"', '"12010A02"'), 3, "control.in"),
    ("odd hex", GOOD.replace('"12010002"', '"1201000"'), 3, "control.in"),
    ("in longer than wLength", GOOD.replace('"wLength":18', '"wLength":2'), 3, "control.in"),
    ("length not the in bytes", GOOD.replace('"length":4', '"length":5'), 3, "control.length"),
    ("negative t", GOOD.replace('"t":0.000400', '"t":-1'), 3, "t"),
    ("bad status", GOOD.replace('"status":"kIOReturnTimeout"', '"status":"kIOReturnNope"'), 4, "status"),
    ("error on success", GOOD.replace('"length":4,"status":"kIOReturnSuccess"',
                                      '"length":4,"status":"kIOReturnSuccess","error":"x"'), 3, "error"),
    ("missing request field", GOOD.replace('"endpoint":129,', ""), 4, "read.endpoint"),
    ("dev never opened", GOOD.replace('"dev":0,"op":"read"', '"dev":1,"op":"read"'), 4, "dev"),
    ("complete without submit", _bad('{"seq":3,"t":0.1,"dt":0,"dev":0,"op":"complete","id":7,"endpoint":129,'
                                     '"actual_length":0,"data":"","status":"kIOReturnSuccess"}'), 5, "complete.id"),
    ("not a session", '{"format":"pcap"}\n', 1, "header.format"),
    ("version 2", HEADER.replace('"version":1', '"version":2') + "\n", 1, "header.version"),
    ("argv not strings", HEADER.replace('"argv":["dkproto","dump","sim://loopback"]', '"argv":[1]') + "\n", 1,
     "header.argv"),
]


@pytest.mark.parametrize(("text", "line", "rule"), [(t, n, r) for _, t, n, r in HOSTILE],
                         ids=[name for name, *_ in HOSTILE])
def test_hostile_lines_are_one_error_naming_file_line_and_rule(tmp_path: Path, text: str, line: int,
                                                               rule: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(SessionError) as info:
        load_session(path)
    err = info.value
    assert isinstance(err, DkError) and err.ioreturn == IOReturn.kIOReturnBadArgument
    assert (err.source, err.line, err.rule) == (str(path), line, rule)
    assert str(err).startswith(f"{path} line {line}: ")
    assert f"(rule: {rule})" in str(err)
    assert "\n" not in str(err) and len(str(err)) - len(str(path)) < 400


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(GOOD.encode() + b'{"seq":3,"op":"\xff"}\n')
    with pytest.raises(SessionError, match=r"line 5: not UTF-8 .*\(rule: UTF-8\)"):
        load_session(path)


def test_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "MAX_LINE_BYTES", 200)
    path = tmp_path / "long.jsonl"
    path.write_text(GOOD + '{"seq":3,"pad":"' + "a" * 400 + '"}\n')
    with pytest.raises(SessionError, match=r"line 5: longer than 200 bytes \(rule: size\)"):
        load_session(path)
    monkeypatch.setattr(fmt, "MAX_LINE_BYTES", 32 << 20)
    monkeypatch.setattr(fmt, "MAX_EVENTS", 2)
    with pytest.raises(SessionError, match=r"line 4: more than 2 events \(rule: size\)"):
        loads_session(GOOD)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such session file"):
        load_session(tmp_path / "none.jsonl")
    with pytest.raises(BadArgumentError, match="is a directory"):
        load_session(tmp_path)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(SessionError, match="empty: no header line"):
        load_session(tmp_path / "empty.jsonl")


def test_header_only_is_an_empty_session() -> None:
    session = loads_session(HEADER + "\n")
    assert session.events == [] and session.devices == [] and session.header["version"] == 1


def test_events_compare_without_their_line() -> None:
    a = loads_session(GOOD).events[1]
    b = Event(1, a.t, a.dt, 0, "control", dict(a.fields))
    assert a == b and a.line == 3 and b.line is None
    assert a.request() == {"bmRequestType": 128, "bRequest": 6, "wValue": 256, "wIndex": 0, "wLength": 18}
