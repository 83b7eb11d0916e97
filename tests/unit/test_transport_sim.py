"""sim://, spy+, MockTransport and the threaded async engine, end to end in-process."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from dkproto.errors import (
    AbortedError,
    BadArgumentError,
    DkError,
    DkTimeoutError,
    NoDeviceError,
    NotOpenError,
    PipeStalledError,
    UnsupportedError,
    URLError,
)
from dkproto.ioreturn import IOReturn
from dkproto.transport import HID_REPORT_FEATURE, Transfer, open_transport
from dkproto.transport.mock import MockRequest, MockTransport
from dkproto.transport.sim import SimDevice, SimTransport, loopback_device
from dkproto.transport.spy import SpyTransport, hexdump


@pytest.fixture
def sim() -> SimTransport:
    t = open_transport("sim://loopback")
    assert isinstance(t, SimTransport)
    with t:
        yield t


def test_standard_requests_from_descriptors(sim: SimTransport) -> None:
    dd = sim.control_transfer(0x80, 0x06, 0x0100, 0, 64)
    assert isinstance(dd, bytes) and len(dd) == 18 and dd[:2] == b"\x12\x01"
    cfg = sim.control_transfer(0x80, 0x06, 0x0200, 0, 9)
    assert cfg == bytes.fromhex("0902200001010080fa")  # short read: only wLength bytes
    s = sim.control_transfer(0x80, 0x06, 0x0302, 0x0409, 255)
    assert isinstance(s, bytes) and s[2:].decode("utf-16-le") == "sim loopback"
    assert sim.get_configuration() == 0
    sim.set_configuration(1)
    assert sim.get_configuration() == 1
    with pytest.raises(PipeStalledError):
        sim.set_configuration(7)
    info = sim.info
    assert (info.idVendor, info.idProduct, info.product, info.serial_number) == (0x1209, 0x0001, "sim loopback", "0001")


def test_vendor_requests_and_unhandled_stall(sim: SimTransport, caplog: pytest.LogCaptureFixture) -> None:
    assert sim.control_transfer(0x40, 0x01, 0, 0, b"payload") == 7
    assert sim.control_transfer(0xC0, 0x02, 0, 0, 64) == b"payload"
    with caplog.at_level(logging.WARNING), pytest.raises(PipeStalledError) as info:
        sim.control_transfer(0xC0, 0x33, 0, 0, 4)
    assert info.value.ioreturn == IOReturn.kUSBHostReturnPipeStalled
    assert "@control_request(type='vendor', recipient='device', number=0x33, direction='in')" in caplog.text


def test_bulk_loopback_stall_clear_timeout(sim: SimTransport) -> None:
    assert sim.write(0x02, b"abc" * 100) == 300
    assert sim.read(0x81, 512) == b"abc" * 100
    sim.write(0x02, b"0123456789")
    assert sim.read(0x81, 4) == b"0123"  # the rest stays queued
    assert sim.read(0x81, 64) == b"456789"
    t0 = time.monotonic()
    with pytest.raises(DkTimeoutError):
        sim.read(0x81, 64, timeout=50)
    assert time.monotonic() - t0 < 1.0
    sim.device.stall(0x81)
    assert sim.control_transfer(0x82, 0x00, 0, 0x81, 2) == b"\x01\x00"  # GET_STATUS: halted
    with pytest.raises(PipeStalledError):
        sim.read(0x81, 64)
    sim.clear_halt(0x81)
    sim.write(0x02, b"ok")
    assert sim.read(0x81, 64) == b"ok"
    with pytest.raises(BadArgumentError, match="no endpoint 0x83"):
        sim.read(0x83, 1)
    with pytest.raises(BadArgumentError, match="not an IN endpoint"):
        sim.read(0x02, 1)


def test_unplug_wakes_pending_read_and_close_is_clean(sim: SimTransport) -> None:
    threading.Timer(0.1, sim.device.unplug).start()
    t0 = time.monotonic()
    with pytest.raises(NoDeviceError):
        sim.read(0x81, 64, timeout=0)  # would wait forever without the unplug
    assert time.monotonic() - t0 < 2
    with pytest.raises(NoDeviceError):
        sim.control_transfer(0x80, 0x06, 0x100, 0, 18)
    sim.close()
    assert not sim.is_open
    with pytest.raises(NotOpenError, match="not open"):
        sim.read(0x81, 1)


def test_async_queue_depth_and_callbacks(sim: SimTransport) -> None:
    done: list[Transfer] = []
    ev = threading.Event()

    def cb(x: Transfer) -> None:
        done.append(x)
        if len(done) == 4:
            ev.set()

    transfers = [sim.submit(0x81, 16, cb, timeout=2000, user_data=i) for i in range(4)]
    assert not any(x.done() for x in transfers)
    for i in range(4):
        sim.submit(0x02, f"msg{i}".encode()).wait(2)
    assert ev.wait(2)
    assert [x.data for x in done] == [b"msg0", b"msg1", b"msg2", b"msg3"]  # in order per endpoint
    assert all(x.status == IOReturn.kIOReturnSuccess and x.error is None for x in done)
    assert [x.user_data for x in done] == [0, 1, 2, 3]
    assert done[0].timestamp_ns > 0 and done[0].actual_length == 4
    assert transfers[0].result() == b"msg0"


def test_async_abort_and_errors(sim: SimTransport) -> None:
    first = sim.submit(0x81, 8, timeout=300)
    queued = [sim.submit(0x81, 8, timeout=0) for _ in range(3)]
    time.sleep(0.05)
    sim.abort(0x81)
    for x in queued:
        assert x.done() and x.status == IOReturn.kIOReturnAborted
        with pytest.raises(AbortedError):
            x.result()
    first.wait(2)  # the one on the wire is interrupted too (sim can cancel a blocked read)
    assert first.status == IOReturn.kIOReturnAborted and isinstance(first.error, AbortedError)
    with pytest.raises(BadArgumentError, match="give a length"):
        sim.submit(0x81, b"data")
    with pytest.raises(BadArgumentError, match="give the bytes"):
        sim.submit(0x02, 5)


def test_close_aborts_pending_async() -> None:
    t = open_transport("sim://loopback", open=True)
    pending = t.submit(0x81, 8, timeout=0)
    extra = t.submit(0x81, 8, timeout=0)
    threading.Timer(0.1, lambda: t.write(0x02, b"x")).start()  # completes the one on the wire
    time.sleep(0.3)
    t.close()
    assert pending.status == IOReturn.kIOReturnSuccess
    assert extra.done() and extra.status == IOReturn.kIOReturnAborted


def test_sim_device_from_corpus_file(tmp_path: object) -> None:
    import json
    import pathlib

    dev = loopback_device()
    blob = dev.device_descriptor + dev.configurations[0]
    path = pathlib.Path(str(tmp_path)) / "item.json"
    path.write_text(json.dumps({"name": "x", "descriptors_hex": blob.hex()}))
    with open_transport(f"sim://{path}") as t:
        assert t.control_transfer(0x80, 6, 0x200, 0, 255) == dev.configurations[0]
    raw = pathlib.Path(str(tmp_path)) / "descriptors"
    raw.write_bytes(blob[:-3])
    with pytest.raises(BadArgumentError, match="wTotalLength 32 runs past the end"):
        open_transport(f"sim://{raw}")


def test_custom_sim_device_by_module_attr() -> None:
    with open_transport("sim://tests.unit.test_transport_sim:make_hid_like") as t:
        assert t.get_report(HID_REPORT_FEATURE, 3, 4) == b"\x0a\x0b\x0c\x0d"
        assert t.set_report(HID_REPORT_FEATURE, 3, b"\x01\x02") == 2
        assert t.info.interface is None


def make_hid_like() -> SimDevice:
    dev = loopback_device()
    got: list[bytes] = []

    @dev.control_request(type="class", recipient="interface", number=0x01, direction="in")  # GET_REPORT
    def get_report(device: SimDevice, req: object) -> bytes:
        return b"\x03\x0a\x0b\x0c\x0d"

    @dev.control_request(type="class", recipient="interface", number=0x09, direction="out")  # SET_REPORT
    def set_report(device: SimDevice, req: object) -> None:
        got.append(req.data)

    return dev


def test_spy_hexdumps_everything() -> None:
    lines: list[str] = []
    with SpyTransport(open_transport("sim://loopback"), sink=lines.append) as t:
        t.write(0x02, b"hello, world")
        t.read(0x81, 64)
        with pytest.raises(DkTimeoutError):
            t.read(0x81, 64, timeout=10)
        t.submit(0x02, b"Z").wait(1)
    text = "\n".join(lines)
    assert "> write endpoint=0x02" in text
    assert "0000  68 65 6c 6c 6f 2c 20 77 6f 72 6c 64" in text and "|hello, world|" in text
    assert "< read 12 bytes" in text
    assert "! read:" in text and "kIOReturnTimeout" in text
    assert "< complete ep=0x02 status=0x00000000" in text
    assert hexdump(b"") == "(no data)"
    assert hexdump(bytes(range(17))).splitlines()[1].startswith("0010  10")


def test_mock_transport_records_and_raises() -> None:
    def handler(req: MockRequest) -> object:
        if req.op == "control_transfer" and req.bRequest == 0x02:
            return b"\x01\x02\x03"
        if req.op == "read":
            raise PipeStalledError("stalled")
        return None

    t = MockTransport(handler)
    with pytest.raises(NotOpenError):
        t.write(0x02, b"x")
    with t:
        assert t.control_transfer(0xC0, 0x02, 0, 0, 2) == b"\x01\x02"  # clipped to wLength
        assert t.write(0x02, b"abc") == 3
        with pytest.raises(PipeStalledError):
            t.read(0x81, 1)
        t.claim_interface(1)
    assert [r.op for r in t.requests] == ["control_transfer", "write", "read", "claim_interface"]
    assert t.requests[0].length == 2 and t.requests[1].data == b"abc"


def test_unsupported_management_calls() -> None:
    t = open_transport("serial+loop://", open=True)
    try:
        with pytest.raises(UnsupportedError) as info:
            t.clear_halt(0x81)
        assert info.value.ioreturn == IOReturn.kIOReturnUnsupported
        with pytest.raises(UnsupportedError):
            t.control_transfer(0x80, 6, 0x100, 0, 18)
    finally:
        t.close()


def test_serial_loop_read_write_expect() -> None:
    from dkproto.transport.serial import SerialTransport

    t = open_transport("serial+loop://?baudrate=9600", open=True)
    assert isinstance(t, SerialTransport)
    try:
        assert t.write(0x02, b"ping\r\n") == 6
        assert t.expect(b"\r\n", timeout=500) == b"ping\r\n"
        with pytest.raises(DkTimeoutError):
            t.read(0x81, 10, timeout=50)
        t.configure(baudrate=115200, parity="E", stopbits=2, bytesize=7)
        assert t.info.extra["baudrate"] == 115200 and t.info.extra["parity"] == "E"
        t.set_dtr(False)
        t.set_rts(True)
        t.send_break(0.01)
        with pytest.raises(DkTimeoutError, match="'never' not seen"):
            t.expect("never", timeout=100)
    finally:
        t.close()
    assert isinstance(DkError(), Exception)


def test_wrapper_seam_sees_every_call_including_async_completions() -> None:
    """The record/replay seam: a TransportWrapper overriding one hook sees every operation."""
    from collections.abc import Callable
    from typing import Any

    from dkproto.transport import TransportWrapper

    class Recorder(TransportWrapper):
        def __init__(self, inner: Any) -> None:
            super().__init__(inner)
            self.ops: list[tuple[str, Any]] = []

        def _call(self, op: str, args: dict[str, Any], fn: Callable[[], Any]) -> Any:
            result = fn()
            self.ops.append((op, args["transfer"].data if op == "complete" else result))
            return result

    rec = Recorder(open_transport("sim://loopback"))
    with rec as t:  # callers see a Transport and nothing else
        t.control_transfer(0x40, 0x01, 0, 0, b"v")
        t.write(0x02, b"abc")
        t.submit(0x81, 8).wait(2)
        t.claim_interface(0)
        t.set_alternate_setting(0, 0)
        t.clear_halt(0x81)
    names = [op for op, _ in rec.ops]
    assert names == ["open", "control_transfer", "write", "complete", "submit", "claim_interface",
                     "set_alternate_setting", "clear_halt", "close"] or \
        names == ["open", "control_transfer", "write", "submit", "complete", "claim_interface",
                  "set_alternate_setting", "clear_halt", "close"]
    assert ("complete", b"abc") in rec.ops and ("write", 3) in rec.ops


def test_entry_point_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from dkproto.transport import registry

    ep = metadata.EntryPoint(name="viaep", value="dkproto.transport.sim:SimTransport",
                             group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: {"viaep": ep})
    assert "viaep" in registry.schemes()
    assert registry.resolve_scheme("viaep") is SimTransport
    with pytest.raises(URLError, match="scheme 'viaep' is not sim"):
        open_transport("viaep://loopback")  # reached SimTransport.from_url, which checks its scheme


def test_line_mode_terminal_on_loop() -> None:
    import io

    from dkproto.transport.serial import SerialTransport, terminal

    t = open_transport("serial+loop://", open=True)
    assert isinstance(t, SerialTransport)
    out = io.BytesIO()
    try:
        terminal(t, stdin=io.StringIO("hello\nsecond line\n"), stdout=out, eol=b"\r\n")
    finally:
        t.close()
    assert out.getvalue() == b"hello\r\nsecond line\r\n"  # loop:// sends every line straight back
