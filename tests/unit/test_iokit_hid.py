"""HID family: IOUserHIDDevice -> IOHIDInterface -> IOUserHIDEventService, pure (the lab proves hid://)."""

from __future__ import annotations

import threading
import time

import pytest

from dkproto.errors import DkError, UnsupportedError
from dkproto.iokit import IOMemoryDescriptor, IOService, ServiceState, start_service
from dkproto.iokit.hid import (
    HIDEvent,
    IOHIDInterface,
    IOHIDReportType,
    IOUserHIDDevice,
    IOUserHIDEventDriver,
)
from dkproto.ioreturn import IOReturn

KEYBOARD_RD = bytes.fromhex(
    "05010906a101050819012903150025017501950391029505910105071ae0002ae7009508810275089501810119002a910026ff00"
    "95068100050c0ac002a1021ac1022ac6029506b103c0c0")
MOUSE_RD = bytes.fromhex(
    "05010902a10185010901a1000509190129051500250195057501810295017503810305011601f826ff07750c95020930093181061581"
    "257f7508950109388106c0050c0a380295018106c0")


class VirtualKeyboard(IOUserHIDDevice):
    def __init__(self, rd: bytes = KEYBOARD_RD) -> None:
        super().__init__()
        self.rd = rd
        self.set_reports: list[tuple[int, int, bytes]] = []

    def new_device_description(self) -> dict:
        return {"VendorID": 0x1209, "ProductID": 0x0001, "Transport": "Virtual", "Product": "vkbd"}

    def new_report_descriptor(self) -> bytes:
        return self.rd

    def set_report(self, report, report_type, options, completion_timeout, action):
        self.set_reports.append((report_type, options & 0xFF, report.read_bytes()))
        self.complete_report(action, IOReturn.kIOReturnSuccess, report.get_length())
        return 0

    def get_report(self, report, report_type, options, completion_timeout, action):
        if report_type != IOHIDReportType.kIOHIDReportTypeFeature:
            return IOReturn.kIOReturnUnsupported
        report.write_bytes(0, b"\x2a")
        self.complete_report(action, 0, 1)
        return 0


class Events(IOUserHIDEventDriver):
    def handle_start(self, provider: IOHIDInterface) -> bool:
        self.got = threading.Event()
        self.event_sink = lambda e: self.got.set()
        return True


def wait_events(svc: Events, n: int) -> list[HIDEvent]:
    deadline = time.monotonic() + 5
    while len(svc.events) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return svc.events


def test_device_publishes_interface_with_usages() -> None:
    dev = start_service(VirtualKeyboard(), None)
    nub = dev.hid_interface
    assert nub is not None and nub.get_provider() is dev and nub.is_registered
    assert nub.properties["PrimaryUsagePage"] == 1 and nub.properties["PrimaryUsage"] == 6
    assert nub.properties["VendorID"] == 0x1209
    assert len(nub.get_elements()) > 3


def test_keyboard_events_press_and_release() -> None:
    dev = start_service(VirtualKeyboard(), None)
    svc = start_service(Events(), dev.hid_interface)
    dev.handle_report(123, bytes([0x02, 0, 0x04, 0, 0, 0, 0, 0]))  # LeftShift + 'a'
    dev.handle_report(124, bytes(8))
    ev = wait_events(svc, 4)
    assert [(e.kind, e.usage_page, e.usage, e.value, e.timestamp) for e in ev] == [
        ("keyboard", 7, 0x04, 1, 123), ("keyboard", 7, 0xE1, 1, 123),
        ("keyboard", 7, 0x04, 0, 124), ("keyboard", 7, 0xE1, 0, 124)]


def test_led_output_report_reaches_device_with_type_and_id() -> None:
    dev = start_service(VirtualKeyboard(), None)
    svc = start_service(Events(), dev.hid_interface)
    assert svc.set_report(b"\x02", IOHIDReportType.kIOHIDReportTypeOutput, 0) == 1
    assert dev.set_reports == [(1, 0, b"\x02")]
    assert dev.hid_interface.get_report(IOHIDReportType.kIOHIDReportTypeFeature, 0, 1) == b"\x2a"
    with pytest.raises(UnsupportedError):
        dev.hid_interface.get_report(IOHIDReportType.kIOHIDReportTypeInput, 0, 8)


def test_mouse_pointer_and_scroll_with_report_id() -> None:
    dev = start_service(VirtualKeyboard(MOUSE_RD), None)
    nub = dev.hid_interface
    assert nub.uses_report_ids and nub.properties["PrimaryUsage"] == 2
    svc = start_service(Events(), nub)
    # report 1: 5 buttons + 3 pad bits, X/Y 12 bits each, wheel 8 bits, AC Pan 8 bits
    x, y = 5, -3 & 0xFFF
    xy = x | (y << 12)
    dev.handle_report(7, bytes([1, 0b00001, xy & 0xFF, (xy >> 8) & 0xFF, xy >> 16, 0xFF, 0]))
    ev = wait_events(svc, 2)
    assert ev[0] == HIDEvent("relative_pointer", 7, dx=5 << 16, dy=-3 << 16, buttons=1)
    assert ev[1] == HIDEvent("scroll", 7, dx=0, dy=-1 << 16, dz=0)


def test_stop_closes_and_terminate_chain() -> None:
    dev = start_service(VirtualKeyboard(), None)
    svc = start_service(Events(), dev.hid_interface)
    dev.terminate()
    assert dev.wait_terminated(5)
    assert svc.state is ServiceState.FREED and dev.hid_interface.state is ServiceState.FREED


def test_event_service_needs_hid_interface() -> None:
    with pytest.raises(DkError):
        start_service(Events(), start_service(IOService(), None))


def test_report_type_values() -> None:
    assert [int(t) for t in IOHIDReportType] == [0, 1, 2, 3]


def test_unimplemented_device_description() -> None:
    class Bare(IOUserHIDDevice):
        pass

    with pytest.raises(UnsupportedError):
        start_service(Bare(), None)


def test_md_passthrough() -> None:
    dev = start_service(VirtualKeyboard(), None)
    svc = start_service(Events(), dev.hid_interface)
    dev.handle_report(1, IOMemoryDescriptor(bytes([0, 0, 0x05, 0, 0, 0, 0, 0])), 8)
    assert wait_events(svc, 1)[0].usage == 0x05
