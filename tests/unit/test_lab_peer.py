"""Lab peers (dkproto.lab.peer): the ``peer`` key of gadget definitions, the echo thread on a real
pty pair, the report player on a real FIFO, and their wiring in the lab agent."""

from __future__ import annotations

import copy
import json
import os
import select
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from dkproto.errors import BadArgumentError
from dkproto.lab import agent
from dkproto.lab.devices import load_definitions, parse_definition
from dkproto.lab.peer import (
    EchoPeer,
    PeerSpec,
    ReportPlayer,
    parse_peer,
    peer_spec,
    raw_mode,
    start_peers,
    stop_peers,
)

ROOT = Path(__file__).resolve().parents[2]

HID = {"hid.0": {"attrs": {"report_length": 8, "report_desc": {"hex": "05 01 09 06"}}}}
ACM = {"acm.0": {}}
GADGET: dict[str, Any] = {
    "name": "t-peer",
    "kind": "gadget",
    "device": {"idVendor": "0x1d6b", "idProduct": "0x0104"},
    "functions": {},
    "configs": [{"functions": []}],
}


def gadget(functions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    g = copy.deepcopy(GADGET)
    g["functions"] = copy.deepcopy(functions)
    g["configs"][0]["functions"] = list(functions)
    g.update(extra)
    return g


# ------------------------------------------------------------------------------------ the spec


def test_defaults_echo_for_serial_gadgets_none_for_others() -> None:
    assert peer_spec(gadget(ACM)) == PeerSpec("echo")
    assert peer_spec(gadget({"gser.1": {}})) == PeerSpec("echo")
    assert peer_spec(gadget({**HID, **ACM})) == PeerSpec("echo")
    assert peer_spec(gadget(HID)) == PeerSpec("none")
    assert peer_spec(gadget({"Loopback.0": {}})) == PeerSpec("none")
    assert peer_spec(gadget(ACM, peer="none")) == PeerSpec("none")
    assert peer_spec(gadget(ACM, peer="echo")) == PeerSpec("echo")


def test_shipped_definitions_get_their_default_peer() -> None:
    defs = load_definitions([ROOT / "devices" / "lab"])
    assert peer_spec(defs["cdc-acm"].spec).kind == "echo"
    assert peer_spec(defs["composite-iad"].spec).kind == "echo"
    for name in ("hid-keyboard", "hid-gamepad", "loopback", "ffs-vendor"):
        assert peer_spec(defs[name].spec).kind == "none", name


def test_reports_peer_defaults_and_values() -> None:
    spec = parse_peer({"reports": ["01 02", "03:04", "0506"]}, HID)
    assert spec == PeerSpec("reports", reports=(b"\x01\x02", b"\x03\x04", b"\x05\x06"), interval=0.01,
                            function=None, loop=True)
    spec = parse_peer({"reports": ["00"], "interval": 1, "function": "hid.1", "loop": False},
                      {**HID, "hid.1": {}})
    assert (spec.interval, spec.function, spec.loop) == (1.0, "hid.1", False)
    assert parse_peer({"reports": ["00"], "interval": 0}, HID).interval == 0.0
    d = parse_definition(gadget(HID, peer={"reports": ["0000000000000000"]}))
    assert peer_spec(d.spec).reports == (bytes(8),)


@pytest.mark.parametrize(
    ("functions", "peer", "message"),
    [
        (HID, "echo", "peer: 'echo' needs a serial function (acm.* or gser.*)"),
        (ACM, "loud", "peer: 'loud': 'none', 'echo' or {'reports'"),
        (ACM, 3, "peer: 3: 'none', 'echo'"),
        (HID, {"reports": ["00"], "speed": 1}, "peer.speed: unknown key (known: reports, interval, function, loop)"),
        (HID, {}, "peer.reports: a non-empty list of hex strings"),
        (HID, {"reports": []}, "peer.reports: a non-empty list"),
        (HID, {"reports": "00 01"}, "peer.reports: a non-empty list"),
        (HID, {"reports": ["00", "zz"]}, "peer.reports[1]: bad hex"),
        (HID, {"reports": ["00", ""]}, "peer.reports[1]: an empty report"),
        (HID, {"reports": [[0, 1]]}, "peer.reports[0]: a report is a hex string"),
        (HID, {"reports": ["00"], "interval": -1}, "peer.interval: -1 is not a number of seconds in 0..3600"),
        (HID, {"reports": ["00"], "interval": "fast"}, "peer.interval: 'fast'"),
        (HID, {"reports": ["00"], "interval": True}, "peer.interval: True"),
        (HID, {"reports": ["00"], "loop": "yes"}, "peer.loop: 'yes' is not true or false"),
        (HID, {"reports": ["00"], "function": "hid.7"}, "peer.function: 'hid.7' is not a hid function"),
        ({**HID, "hid.1": {}}, {"reports": ["00"], "function": "hid.7"}, "(has hid.0, hid.1)"),
        ({**HID, **ACM}, {"reports": ["00"], "function": "acm.0"}, "peer.function: 'acm.0' is not a hid function"),
        (ACM, {"reports": ["00"]}, "peer.reports: the gadget has no hid function to play them on"),
    ],
)
def test_bad_peer_is_one_line_naming_file_and_key(functions: dict[str, Any], peer: Any, message: str) -> None:
    with pytest.raises(BadArgumentError) as info:
        parse_definition(gadget(functions, peer=peer), "devices/lab/t-peer.json")
    text = str(info.value)
    assert text.startswith("devices/lab/t-peer.json: peer") and message in text, text
    assert "\n" not in text


def test_only_gadgets_have_a_peer() -> None:
    qemu = {"name": "q", "kind": "qemu", "qemu": ["-device", "usb-kbd"], "peer": "echo"}
    with pytest.raises(BadArgumentError, match=r"^q.json: peer: only a gadget has a peer \(this is a qemu device\)"):
        parse_definition(qemu, "q.json")


def test_raw_mode_turns_off_echo_translation_and_signals() -> None:
    cooked = [termios.ICRNL | termios.IXON | termios.INLCR, termios.OPOST | termios.ONLCR,
              termios.CS7 | termios.PARENB, termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN,
              termios.B9600, termios.B9600, [b"\x00"] * 32]
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = raw_mode(cooked)
    assert not iflag & (termios.ICRNL | termios.IXON | termios.INLCR)
    assert not oflag & termios.OPOST
    assert not lflag & (termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
    assert cflag & termios.CSIZE == termios.CS8 and not cflag & termios.PARENB and cflag & termios.CREAD
    assert (cc[termios.VMIN], cc[termios.VTIME]) == (1, 0) and (ispeed, ospeed) == (termios.B9600, termios.B9600)
    assert cooked[6] == [b"\x00"] * 32  # the input's cc list is left alone


# ------------------------------------------------------------------------------------ echo over a pty


def read_exactly(fd: int, n: int, timeout: float = 5.0) -> bytes:
    deadline = time.monotonic() + timeout
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        buf += os.read(fd, n - len(buf))
    return buf


def quiet(fd: int, timeout: float = 0.3) -> bool:
    return not select.select([fd], [], [], timeout)[0]


@pytest.fixture
def pty_pair() -> Any:
    """(host end, device-end path): the test plays the host on the pty master; the peer opens the
    slave by its path, as it opens /dev/ttyGSn."""
    master, slave = os.openpty()
    # the slave starts cooked (echo, CR/LF translation): the peer must make it raw itself
    attrs = termios.tcgetattr(slave)
    attrs[3] |= termios.ECHO | termios.ICANON
    attrs[0] |= termios.ICRNL
    attrs[1] |= termios.OPOST | termios.ONLCR
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    yield master, os.ttyname(slave)  # the slave stays open here too: the pty is never hung up by the peer
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def test_echo_peer_writes_every_byte_back_unchanged(pty_pair: Any) -> None:
    master, path = pty_pair
    peer = EchoPeer(path)
    peer.start()
    try:
        os.write(master, b"hello\r\n")
        assert read_exactly(master, 7) == b"hello\r\n"  # no CR/LF translation, nothing doubled
        assert quiet(master)  # no line-discipline echo on top of the peer's
        every = bytes(range(256))  # Ctrl-C, Ctrl-D, XON/XOFF, DEL... are data in raw mode
        os.write(master, every)
        assert read_exactly(master, 256) == every
        assert quiet(master)
        assert peer.running and peer.echoed == 7 + 256 and peer.error is None
    finally:
        peer.stop()
    assert peer.fd is None and not peer.running
    os.write(master, b"after stop")
    assert quiet(master)  # nobody echoes any more


def test_echo_peer_stops_promptly_when_the_host_never_reads(pty_pair: Any) -> None:
    master, path = pty_pair
    peer = EchoPeer(path)
    peer.start()
    os.set_blocking(master, False)
    sent, full = 0, 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and full < 3:  # the host writes, never reads: the echo backs up
        try:
            sent += os.write(master, b"x" * 4096)
        except BlockingIOError:
            full += 1
            time.sleep(0.1)
    assert sent > 4096 and full == 3 and peer.running
    assert 0 < peer.echoed < sent  # the peer is stuck writing back: the tty took no more
    t0 = time.monotonic()
    peer.stop()
    assert time.monotonic() - t0 < 1.5 and not peer.running


def test_echo_peer_survives_a_hang_up(pty_pair: Any) -> None:
    master, path = pty_pair
    peer = EchoPeer(path)
    peer.start()
    os.close(master)  # the host side goes away: the peer's tty is hung up
    time.sleep(0.3)
    assert peer.running  # it waits to reopen, it does not die
    t0 = time.monotonic()
    peer.stop()
    assert time.monotonic() - t0 < 1.5 and not peer.running and peer.error is None


def test_echo_peer_on_a_missing_tty_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        EchoPeer(str(tmp_path / "ttyGS9")).start()


# ------------------------------------------------------------------------------------ report player


@pytest.fixture
def fifo(tmp_path: Path) -> Any:
    """(read end, path) of a FIFO standing for /dev/hidgN (the host reads it)."""
    path = tmp_path / "hidg0"
    os.mkfifo(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    yield fd, str(path)
    os.close(fd)


def test_report_player_plays_in_order_and_loops(fifo: Any) -> None:
    fd, path = fifo
    reports = [b"\x01\x00", b"\x02\x00", b"\x03\xff"]
    player = ReportPlayer(path, reports, interval=0)
    player.start()
    try:
        got = read_exactly(fd, 2 * 3 * 4)
    finally:
        player.stop()
    assert got == b"".join(reports) * 4
    assert player.sent >= 12 and player.error is None and not player.running


def test_report_player_once_with_interval(fifo: Any) -> None:
    fd, path = fifo
    player = ReportPlayer(path, [b"\xaa", b"\xbb", b"\xcc"], interval=0.05, loop=False)
    t0 = time.monotonic()
    player.start()
    try:
        got = read_exactly(fd, 3)
        elapsed = time.monotonic() - t0
        assert quiet(fd, 0.3)  # once: nothing after the last report
    finally:
        player.stop()
    assert got == b"\xaa\xbb\xcc" and player.sent == 3
    assert elapsed >= 0.09  # two intervals between three reports


def test_report_player_stops_while_blocked_on_a_full_node(fifo: Any) -> None:
    _, path = fifo  # nobody reads: the FIFO fills, as /dev/hidgN does while the host does not poll
    player = ReportPlayer(path, [b"\x00" * 64], interval=0)
    player.start()
    time.sleep(0.3)
    assert player.running
    t0 = time.monotonic()
    player.stop()
    assert time.monotonic() - t0 < 1.5 and not player.running and player.error is None


def test_report_player_needs_reports() -> None:
    with pytest.raises(BadArgumentError):
        ReportPlayer("/dev/null", [])


# ------------------------------------------------------------------------------------ start/stop


class DeviceSide:
    """Stands for a Gadget: its definition and where its device-side nodes are."""

    def __init__(self, spec: dict[str, Any], nodes: dict[str, str]) -> None:
        self.definition = parse_definition(spec)
        self.nodes = nodes

    def tty(self, function: str | None = None) -> str:
        return self.nodes[function or "acm.0"]

    def hidg(self, function: str | None = None) -> str:
        return self.nodes[function or "hid.0"]


def test_start_peers_echoes_on_every_serial_function(pty_pair: Any) -> None:
    master, path = pty_pair
    master2, slave2 = os.openpty()
    path2 = os.ttyname(slave2)
    try:
        g = DeviceSide(gadget({**ACM, **HID, "gser.0": {}}), {"acm.0": path, "gser.0": path2})
        peers = start_peers(g)  # type: ignore[arg-type]
        assert [type(p) for p in peers] == [EchoPeer, EchoPeer] and [p.path for p in peers] == [path, path2]
        os.write(master, b"one")
        os.write(master2, b"two")
        assert read_exactly(master, 3) == b"one" and read_exactly(master2, 3) == b"two"
        assert stop_peers(peers) == [] and peers == []
    finally:
        os.close(master2)
        os.close(slave2)


def test_start_peers_plays_reports_on_the_named_function(fifo: Any) -> None:
    fd, path = fifo
    spec = gadget({**HID, "hid.1": {}}, peer={"reports": ["0102"], "function": "hid.1", "loop": False})
    peers = start_peers(DeviceSide(spec, {"hid.1": path}))  # type: ignore[arg-type]
    try:
        assert read_exactly(fd, 2) == b"\x01\x02"
    finally:
        assert stop_peers(peers) == []
    assert start_peers(DeviceSide(gadget(HID), {})) == []  # type: ignore[arg-type]
    assert start_peers(DeviceSide(gadget(ACM, peer="none"), {})) == []  # type: ignore[arg-type]


def test_start_peers_opens_everything_or_nothing(pty_pair: Any, tmp_path: Path) -> None:
    master, path = pty_pair
    g = DeviceSide(gadget({**ACM, "acm.1": {}}), {"acm.0": path, "acm.1": str(tmp_path / "missing")})
    with pytest.raises(FileNotFoundError):
        start_peers(g)  # type: ignore[arg-type]
    os.write(master, b"x")
    assert quiet(master)  # the first echo was stopped again


def test_agent_starts_peers_after_bind_and_stops_them_before_removal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    from dkproto.lab import gadget as gadget_mod
    from dkproto.lab import peer as peer_mod

    events: list[str] = []

    class FakeGadget:
        def __init__(self, definition: Any) -> None:
            self.definition = definition

        def create(self) -> None:
            events.append("create")

        def bind(self, wait: float = 10.0) -> str:
            events.append("bind")
            return "dummy_udc.0"

        def remove(self) -> None:
            events.append("remove")

    class FakePeer:
        error = "echo on /dev/ttyGS0: gone"

        def stop(self) -> None:
            events.append("peer stop")

    def fake_start(g: Any) -> list[Any]:
        events.append(f"peer start {peer_spec(g.definition.spec).kind}")
        return [FakePeer()]

    monkeypatch.setattr(gadget_mod, "Gadget", FakeGadget)
    monkeypatch.setattr(peer_mod, "start_peers", fake_start)
    monkeypatch.setattr(agent, "wait_for_ids", lambda expected, timeout: [])
    job = {"devices": [{"name": "t-peer", "spec": gadget(ACM)}],
           "argv": [sys.executable, "-c", "print('the command')"]}
    (tmp_path / "job.json").write_text(json.dumps(job))
    assert agent.main([str(tmp_path / "job.json")]) == 0
    assert events == ["create", "bind", "peer start echo", "peer stop", "remove"]
    out = capfd.readouterr().out
    assert "@@dklab:warn peer stopped early: echo on /dev/ttyGS0: gone" in out


def test_the_pytest_fixtures_start_no_peer() -> None:
    """Lab tests are the device side themselves: only the agent starts peers."""
    plugin = (ROOT / "dkproto" / "pytest_plugin" / "lab.py").read_text()
    gadget_src = (ROOT / "dkproto" / "lab" / "gadget.py").read_text()
    assert "peer" not in plugin and "dkproto.lab.peer" not in gadget_src
