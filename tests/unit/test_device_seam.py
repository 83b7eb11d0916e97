"""The one seam: sim://, the lab's FunctionFS framework and its USB/IP server all answer standard
requests through dkproto.device's StandardResponder and their own through control_request;
sim:// serves a whole descriptor file; the example device programs live in devices/."""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from device_sets import (
    BOS,
    CONFIG_1,
    CONFIG_2,
    DEVICE,
    HID,
    HUB,
    OTHER_SPEED,
    QUALIFIER,
    REPORT,
    STRINGS,
    full_set,
    hub_set,
)

import dkproto.lab.ffs
from dkproto.device import ControlRequest, RequestHandlers, StandardResponder
from dkproto.errors import PipeStalledError
from dkproto.lab.devices import load_definitions
from dkproto.lab.ffs import FfsDevice, FfsHidDevice
from dkproto.lab.gadget import load_program
from dkproto.lab.usbip import CapturedDevice
from dkproto.transport import open_transport
from dkproto.transport.sim import SimDevice, SimTransport
from dkproto.usb import parse, render_hex, render_json

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ControlRequest]]:
    """Every request StandardResponder.respond answers, by responder name."""
    seen: list[tuple[str, ControlRequest]] = []
    real = StandardResponder.respond

    def spy(self: StandardResponder, req: ControlRequest) -> bytes | None:
        seen.append((self.name, req))
        return real(self, req)

    monkeypatch.setattr(StandardResponder, "respond", spy)
    return seen


class FakeEp0:
    """FunctionFS ep0 stand-in: the device writes IN data to one end of a socket pair."""

    def __init__(self, dev: FfsDevice) -> None:
        self.host, device_end = socket.socketpair()
        dev._ep0 = device_end.detach()
        self.dev = dev

    def request(self, req: ControlRequest, data: bytes = b"") -> bytes:
        if data:
            self.host.sendall(data)  # the OUT data stage, read by the device
        self.dev._setup(req)
        self.host.setblocking(False)
        try:
            return self.host.recv(65536)
        except BlockingIOError:
            return b""
        finally:
            self.host.setblocking(True)

    def close(self) -> None:
        assert self.dev._ep0 is not None
        os.close(self.dev._ep0)
        self.host.close()


@pytest.fixture
def ffs_hid() -> Iterator[tuple[FfsHidDevice, FakeEp0]]:
    dev = FfsHidDevice("/nonexistent-ffs")
    ep0 = FakeEp0(dev)
    yield dev, ep0
    ep0.close()


def test_the_three_emulators_are_request_handlers_with_the_one_responder() -> None:
    sim = SimDevice.from_set(full_set())
    ffs = FfsHidDevice("/nonexistent-ffs")
    capture = CapturedDevice(descriptor_set=full_set())
    for emulator in (sim, ffs, capture):
        assert isinstance(emulator, RequestHandlers)
        assert type(emulator.responder) is StandardResponder


def test_standard_requests_route_through_the_responder_in_all_three(
        answered: list[tuple[str, ControlRequest]], ffs_hid: tuple[FfsHidDevice, FakeEp0]) -> None:
    with SimTransport(SimDevice.from_set(full_set(), "sim-seam"), "sim://seam") as t:
        assert t.control_transfer(0x80, 6, 0x0100, 0, 18) == DEVICE
    capture = CapturedDevice(descriptor_set=full_set(), name="usbip-seam")
    assert capture.control(ControlRequest(0x80, 6, 0x0200, 0, 9).setup) == (0, CONFIG_1[:9])
    dev, ep0 = ffs_hid
    assert ep0.request(ControlRequest(0x81, 6, 0x2200, 0, 4096)) == dev.report_descriptor
    assert [name for name, _ in answered] == ["sim-seam", "usbip-seam", "FfsHidDevice"]


def test_ffs_answers_and_stalls_through_the_seam(ffs_hid: tuple[FfsHidDevice, FakeEp0],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    dev, ep0 = ffs_hid
    stalled: list[ControlRequest] = []
    monkeypatch.setattr(dev, "_stall_ep0", stalled.append)
    hid = ep0.request(ControlRequest(0x81, 6, 0x2100, 0, 9))
    assert hid[:2] == b"\x09\x21" and int.from_bytes(hid[7:9], "little") == len(dev.report_descriptor)
    assert ep0.request(ControlRequest(0x81, 6, 0x2200, 0, 5)) == dev.report_descriptor[:5]
    dev.hid.features[0] = bytes(range(8))
    assert ep0.request(ControlRequest(0xA1, 0x01, 0x0300, 0, 8)) == bytes(range(8))  # GET_REPORT(Feature)
    ep0.request(ControlRequest(0x21, 0x09, 0x0300, 0, 3), b"new")  # SET_REPORT(Feature), OUT data stage
    assert dev.hid.features[0] == b"new"
    assert ep0.request(ControlRequest(0xA1, 0x01, 0x0307, 0, 8)) == b"" and stalled[-1].wValue == 0x0307
    ep0.request(ControlRequest(0xC0, 0x42, 0, 0, 4))
    assert stalled[-1].bRequest == 0x42 and dev.unhandled[-1].bRequest == 0x42
    assert [r.bRequest for r in dev.requests] == [6, 6, 1, 9, 1, 0x42]


def test_sim_and_usbip_give_the_same_answers_for_the_same_set() -> None:
    requests = [ControlRequest(0x80, 6, value, index, 255) for value, index in
                ((0x0100, 0), (0x0200, 0), (0x0201, 0), (0x0202, 0), (0x0300, 0), (0x0301, 0x0409),
                 (0x0302, 0x0407), (0x0303, 0x0407), (0x0F00, 0), (0x0600, 0), (0x0701, 0))]
    requests += [ControlRequest(0x80, 0, 0, 0, 2), ControlRequest(0x81, 6, 0x2100, 0, 9),
                 ControlRequest(0x80, 8, 0, 0, 1), ControlRequest(0xC0, 1, 0, 0, 1)]
    sim = SimDevice.from_set(full_set())
    capture = CapturedDevice(descriptor_set=full_set())
    for req in requests:
        try:
            ours: tuple[int, bytes] = (0, bytes(sim.control(req.bmRequestType, req.bRequest, req.wValue,
                                                              req.wIndex, req.wLength)))
        except PipeStalledError:
            ours = (-32, b"")
        assert capture.control(req.setup) == ours, req


@pytest.mark.parametrize("render", [render_hex, render_json], ids=["hex", "json"])
def test_sim_serves_a_whole_descriptor_file(tmp_path: Path, render: Any) -> None:
    path = tmp_path / "device.txt"
    path.write_text(render(full_set()))
    with open_transport(f"sim://{path}") as t:
        def get(value: int, index: int = 0, bm: int = 0x80) -> bytes:
            return bytes(t.control_transfer(bm, 6, value, index, 0xFFFF))

        assert get(0x0100) == DEVICE and [get(0x0200), get(0x0201)] == [CONFIG_1, CONFIG_2]
        assert get(0x0F00) == BOS and get(0x0600) == QUALIFIER and [get(0x0700), get(0x0701)] == OTHER_SPEED
        served = {(0, 0): get(0x0300)}
        for langid in (0x0409, 0x0407):
            for index in (1, 2, 3):
                try:
                    served[(langid, index)] = get(0x0300 | index, langid)
                except PipeStalledError:
                    pass
        assert served == STRINGS
        assert get(0x2100, 0, bm=0x81) == HID
        assert (t.info.manufacturer, t.info.product, t.info.serial_number) == ("dkproto", "Test device", "0001")


def test_sim_serves_hub_and_report_descriptors(tmp_path: Path) -> None:
    path = tmp_path / "hub.hex"
    path.write_text(render_hex(hub_set()))
    with open_transport(f"sim://{path}") as t:
        assert t.control_transfer(0xA0, 6, 0x2900, 0, 255) == HUB
    for render in (render_hex, render_json):  # a file that carries the report descriptor
        path.write_text(render(parse(DEVICE + CONFIG_1 + CONFIG_2, hid_report_descriptors={0: REPORT})))
        with open_transport(f"sim://{path}") as t:
            assert t.control_transfer(0x81, 6, 0x2200, 0, 4096) == REPORT
    with SimTransport(SimDevice.from_set(full_set(), report_descriptors={0: REPORT})) as t:
        assert t.control_transfer(0x81, 6, 0x2200, 0, 4096) == REPORT
        assert t.control_transfer(0x81, 6, 0x2200, 0, 3) == REPORT[:3]


def test_sim_device_state_is_the_responders() -> None:
    sim = SimDevice.from_set(full_set())
    sim.control(0x00, 9, 2, 0, None)
    assert sim.configuration == 2 == sim.responder.configuration
    sim.stall(0x03)
    assert sim.halted is sim.responder.halted and 0x03 in sim.halted
    sim.plug()
    assert sim.configuration == 0 and not sim.halted
    assert sim.endpoint_addresses() == {0x81, 0x02, 0x82, 0x03}


def test_the_example_programs_are_in_devices_not_in_the_package() -> None:
    defs = load_definitions([ROOT / "devices" / "lab"])
    vendor = load_program(defs["ffs-vendor"].spec["functions"]["ffs.vendor"]["program"], defs["ffs-vendor"])
    ups = load_program(defs["ffs-hid-ups"].spec["functions"]["ffs.hid"]["program"], defs["ffs-hid-ups"])
    assert Path(vendor.get_version.__code__.co_filename) == ROOT / "devices" / "lab" / "vendor_echo.py"
    dev = vendor("/nonexistent-ffs")
    assert isinstance(dev, FfsDevice)
    assert dev.handle_control(ControlRequest(0xC0, 0x01, 0, 0, 2)) == b"\x00\x01"  # GET_VERSION
    assert dev.handle_control(ControlRequest(0x40, 0x02, 0, 0, 3, b"abc")) is None
    assert dev.handle_control(ControlRequest(0xC1, 0x03, 0, 0, 64)) == b"abc"
    with pytest.raises(PipeStalledError):
        dev.handle_control(ControlRequest(0x40, 0x02, 0, 0, 65, bytes(65)))
    hid = ups("/nonexistent-ffs")
    assert isinstance(hid, FfsHidDevice) and len(hid.hid.features) == 29
    assert hid.handle_control(ControlRequest(0x81, 6, 0x2200, 0, 4096)) == hid.report_descriptor
    assert not hasattr(dkproto.lab.ffs, "VendorEchoDevice") and not hasattr(dkproto.lab.ffs, "Stall")
    assert set(dkproto.lab.ffs.__all__) == {"Endpoint", "FfsDevice", "FfsHidDevice"}
    assert importlib.util.find_spec("dkproto.lab.hid_ffs") is None
