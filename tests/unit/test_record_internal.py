"""Transfers a transport makes on its own (``by``): recorded, skipped by replay, exported; usb://
reads its strings through them exactly as pyusb's ``usb.util.get_string`` did."""

from __future__ import annotations

import array
from pathlib import Path
from typing import Any

import pytest
import usb.core
import usb.util

from dkproto.capture import session_packets
from dkproto.errors import DkError, PipeStalledError
from dkproto.session import load_session
from dkproto.transport import TransportInfo, open_transport
from dkproto.transport import usb as usb_transport
from dkproto.transport.record import Recorder, RecordTransport
from dkproto.transport.replay import replaying
from dkproto.transport.sim import SimTransport
from dkproto.transport.spy import SpyTransport


class StringsSim(SimTransport):
    """A sim:// device whose ``info`` reads its product string through control transfers made
    on its own (dkproto's seam, :meth:`Transport._internal`), as ``usb://`` does: string 0,
    the product string, and string 9, which the device does not have (it stalls)."""

    _product: str | None = None

    def _string(self, index: int, langid: int) -> bytes:
        args = {"bmRequestType": 0x80, "bRequest": 0x06, "wValue": 0x0300 | index, "wIndex": langid,
                "data_or_wLength": 254, "timeout": 1000}
        return bytes(self._internal("info", "control_transfer", args, lambda: self.control_transfer(
            0x80, 0x06, 0x0300 | index, langid, 254)))  # type: ignore[arg-type]

    @property
    def info(self) -> TransportInfo:
        base = super().info
        if self._product is None and self.is_open:
            zero = self._string(0, 0)
            langid = int.from_bytes(zero[2:4], "little")
            got = self._string(self.device.device_descriptor[15], langid)
            self._product = got[2:got[0]].decode("utf-16-le")
            with pytest.raises(PipeStalledError):
                self._string(9, langid)
        return TransportInfo(url=base.url, scheme="sim", idVendor=base.idVendor, idProduct=base.idProduct,
                             product=self._product)


def _record(path: Path, *, spy: bool = False) -> None:
    inner = StringsSim.from_url("sim://loopback")
    recorder = Recorder(path)
    try:
        t = RecordTransport(SpyTransport(inner, sink=lambda _t: None) if spy else inner, recorder, "sim://loopback")
        with t:
            assert t.info.product == "sim loopback"
            assert bytes(t.control_transfer(0x80, 0x06, 0x0100, 0, 18))[:2] == b"\x12\x01"
            assert t.info.product == "sim loopback"  # read once
    finally:
        recorder.close()


@pytest.mark.parametrize("spy", [False, True], ids=["direct", "through spy+"])
def test_the_transfers_info_makes_are_recorded_with_by_after_the_open_event(tmp_path: Path, spy: bool) -> None:
    path = tmp_path / "s.jsonl"
    _record(path, spy=spy)
    s = load_session(path)
    ops = [(e.op, e.fields.get("by"), e.fields.get("wValue")) for e in s.events]
    assert ops == [("open", None, None), ("control", "info", 0x0300), ("control", "info", 0x0302),
                   ("control", "info", 0x0309), ("control", None, 0x0100), ("close", None, None)]
    opened, zero, product, missing = s.events[:4]
    assert s.devices[0].info is not None and s.devices[0].info["product"] == "sim loopback"
    assert zero.fields["wLength"] == 254 and zero.ok and zero.bytes_of("in")[1] == 3
    assert product.fields["wIndex"] == 0x0409 and product.bytes_of("in")[2:].decode("utf-16-le") == "sim loopback"
    assert missing.status == "kUSBHostReturnPipeStalled" and missing.error
    for e in (zero, product, missing):  # inside the open call, in the order they happened
        assert opened.t <= e.t and e.t + e.dt <= opened.t + opened.dt + 1e-6
    assert zero.t <= product.t <= missing.t
    line = path.read_text().splitlines()[2]
    assert '"wLength":254,"by":"info","in":' in line  # the key order of docs/session-format.md


@pytest.mark.parametrize("strict", ["exact", "order", "endpoints"])
def test_replay_consumes_the_by_events_without_matching_them(tmp_path: Path, strict: str) -> None:
    path = tmp_path / "s.jsonl"
    _record(path)
    with replaying(path, strict=strict) as replayer:
        with open_transport("sim://loopback") as t:
            assert t.info.product == "sim loopback"  # the open event's info
            assert bytes(t.control_transfer(0x80, 0x06, 0x0100, 0, 18))[:2] == b"\x12\x01"
        assert replayer.unconsumed() == []
        assert replayer.mismatch is None


def test_a_program_call_after_open_is_not_served_from_a_by_event(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    _record(path)
    with replaying(path) as replayer, open_transport("sim://loopback") as t:
        with pytest.raises(DkError, match="expected control .*wValue=0x0100.*, got control .*wValue=0x0300"):
            t.control_transfer(0x80, 0x06, 0x0300, 0, 254)
        assert replayer.mismatch is not None


def test_the_export_has_the_by_transfers_in_time_order(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    _record(path)
    packets, summary = session_packets(load_session(path))
    setups = [(p.type, p.setup[2:4], p.status) for p in packets if p.type == "S"]
    assert [w for _, w, _ in setups] == [b"\x00\x03", b"\x02\x03", b"\x09\x03", b"\x00\x01"]
    assert summary.packets == 8
    stalled = [p for p in packets if p.type == "C" and p.status == -32]
    assert len(stalled) == 1  # string 9: -EPIPE


# ------------------------------------------------------------------------------------ usb://
class FakeCtx:
    handle = None

    def managed_open(self) -> None:
        pass

    def dispose(self, device: Any) -> None:
        pass


class FakeUsbDevice:
    """What dkproto's ``pyusb_devices`` hands the USB transport: a pyusb ``Device``'s attributes and
    ``ctrl_transfer``, answering string descriptors from ``answers`` (wValue -> bytes or an exception).
    ``langids`` is pyusb's own property, so ``usb.util.get_string`` runs pyusb's code on it."""

    langids = usb.core.Device.langids

    def __init__(self, answers: dict[int, Any], serial: int = 3, bus: int = 1, address: int = 4) -> None:
        self.answers = answers
        self.requests: list[tuple[int, int, int, int, int]] = []
        self._langids = None
        self._ctx = FakeCtx()
        self.bus, self.address, self.idVendor, self.idProduct, self.speed = bus, address, 0x1209, 0x0001, 3
        self.iManufacturer, self.iProduct, self.iSerialNumber = 1, 2, serial

    def ctrl_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                      data_or_wLength: Any = None, timeout: Any = None) -> array.array[int]:
        self.requests.append((bmRequestType, bRequest, wValue, wIndex, int(data_or_wLength)))
        answer = self.answers.get(wValue, usb.core.USBError("Pipe error", errno=32, error_code=-9))
        if isinstance(answer, BaseException):
            raise answer
        return array.array("B", answer[:int(data_or_wLength)])


def _sd(text: str) -> bytes:
    data = text.encode("utf-16-le")
    return bytes([len(data) + 2, 3]) + data


GOOD = {0x0300: bytes([4, 3, 0x09, 0x04]), 0x0301: _sd("dkproto"), 0x0302: _sd("gadget"), 0x0303: _sd("0001")}
CASES = {
    "good": GOOD,
    "odd bLength": {**GOOD, 0x0302: bytes([7]) + _sd("gadget")[1:]},
    "short descriptor": {**GOOD, 0x0302: b"\x02"},
    "not UTF-16": {**GOOD, 0x0302: bytes([6, 3, 0x00, 0xD8, 0x41, 0x00])},
    "bLength past the data": {**GOOD, 0x0302: bytes([40, 3, 0x41, 0x00, 0x42])},
    "string 0 short": {**GOOD, 0x0300: bytes([2, 3])},
    "string 0 odd": {**GOOD, 0x0300: bytes([5, 3, 0x09, 0x04, 0])},
    "string 0 stalls": {k: v for k, v in GOOD.items() if k != 0x0300},
    "string 0 unsupported": {**GOOD, 0x0300: NotImplementedError("LIBUSB_ERROR_NOT_SUPPORTED")},
    "a string stalls": {k: v for k, v in GOOD.items() if k != 0x0301},
}


def _pyusb_strings(answers: dict[int, Any]) -> tuple[list[str | None], list[tuple[int, ...]]]:
    dev = FakeUsbDevice(answers)
    out: list[str | None] = []
    for index in (3, 1, 2):
        try:
            out.append(usb.util.get_string(dev, index))
        except (usb.core.USBError, NotImplementedError, ValueError):
            out.append(None)
    return out, dev.requests


@pytest.mark.parametrize("case", list(CASES))
def test_usb_info_reads_the_strings_as_pyusb_did_and_records_them(case: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    answers = CASES[case]
    expected, pyusb_requests = _pyusb_strings(answers)
    dev = FakeUsbDevice(answers)
    monkeypatch.setattr(usb_transport, "pyusb_devices", lambda: [dev])
    recorder = Recorder(tmp_path / "s.jsonl")
    try:
        with RecordTransport(usb_transport.USBTransport.from_url("usb://1/4"), recorder, "usb://1/4") as t:
            info = t.info
    finally:
        recorder.close()
    assert [info.serial_number, info.manufacturer, info.product] == expected
    assert dev.requests == pyusb_requests  # the same requests, wLength 254, as usb.util.get_string
    events = load_session(tmp_path / "s.jsonl").events
    assert events[0].op == "open" and events[-1].op == "close"
    recorded = [(e.fields["bmRequestType"], e.fields["bRequest"], e.fields["wValue"], e.fields["wIndex"],
                 e.fields["wLength"]) for e in events[1:-1]]
    assert recorded == pyusb_requests
    assert all(e.op == "control" and e.fields["by"] == "info" for e in events[1:-1])


def test_usb_serial_match_records_only_the_opened_devices_requests(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    other = FakeUsbDevice({**GOOD, 0x0303: _sd("0002")}, address=5)
    mine = FakeUsbDevice(GOOD, address=6)
    monkeypatch.setattr(usb_transport, "pyusb_devices", lambda: [other, mine])
    recorder = Recorder(tmp_path / "s.jsonl")
    url = "usb://1209:0001?serial=0001"
    try:
        with RecordTransport(usb_transport.USBTransport.from_url(url), recorder, url) as t:
            assert (t.info.address, t.info.serial_number, t.info.product) == (6, "0001", "gadget")
    finally:
        recorder.close()
    assert len(other.requests) == 2  # its serial number was read, and did not match
    events = load_session(tmp_path / "s.jsonl").events
    by = [(e.fields["by"], e.fields["wValue"]) for e in events if "by" in e.fields]
    # open: string 0 and the serial number (the LANGIDs stay known, as pyusb caches them); info: all three
    assert by == [("open", 0x0300), ("open", 0x0303), ("info", 0x0303), ("info", 0x0301), ("info", 0x0302)]
    assert [(r[2], r[3]) for r in mine.requests] == [(0x0300, 0), (0x0303, 0x0409), (0x0303, 0x0409),
                                                     (0x0301, 0x0409), (0x0302, 0x0409)]


def test_usb_without_an_observer_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = FakeUsbDevice(GOOD)
    monkeypatch.setattr(usb_transport, "pyusb_devices", lambda: [dev])
    with usb_transport.USBTransport.from_url("usb://1/4") as t:
        assert (t.info.serial_number, t.info.manufacturer, t.info.product) == ("0001", "dkproto", "gadget")
    assert len(dev.requests) == 4
