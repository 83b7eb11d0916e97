"""The one handler decorator (dkproto.device.control_request), its dispatch, and ControlRequest."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from device_sets import DEVICE, full_set

import dkproto.transport.base
from dkproto.device import (
    ControlRequest,
    RequestHandlers,
    StandardResponder,
    control_request,
    request_key,
    suggest_handler,
)
from dkproto.errors import BadArgumentError, PipeStalledError


class Base(RequestHandlers):
    def __init__(self) -> None:
        self.name = "base"
        self.value = b""

    @control_request(type="vendor", recipient="device", number=0x01, direction="in")
    @control_request(type="vendor", recipient="interface", number=0x01, direction="in")
    def version(self, req: ControlRequest) -> bytes:
        return b"\x00\x01"

    @control_request(type="vendor", number=0x02, direction="out")
    def store(self, req: ControlRequest) -> None:
        if len(req.data) > 4:
            raise PipeStalledError("too long")
        self.value = req.data

    @control_request(type="class", recipient="interface", number=0x0A)
    def both_directions(self, req: ControlRequest) -> bytes | None:
        return b"\xaa\xbb\xcc" if req.is_in else None


class Derived(Base):
    def version(self, req: ControlRequest) -> bytes:  # overridden by name: still the handler
        return b"\x00\x02"

    @control_request(type="vendor", number=0x03, direction="in")
    def count(self, req: ControlRequest) -> int:
        return 3


def test_control_request_refuses_what_no_setup_packet_carries() -> None:
    for kw in ({"type": "reserved"}, {"recipient": "hub"}, {"direction": "both"}):
        with pytest.raises(BadArgumentError, match="bad type/recipient/direction"):
            control_request(number=1, **kw)
    for number in (-1, 256, True, "1"):
        with pytest.raises(BadArgumentError, match="bRequest"):
            control_request(number=number)  # type: ignore[arg-type]


def test_methods_are_collected_stacked_and_inherited() -> None:
    dev = Derived()
    assert dev.handle_control(ControlRequest(0xC0, 0x01, 0, 0, 2)) == b"\x00\x02"
    assert dev.handle_control(ControlRequest(0xC1, 0x01, 0, 0, 2)) == b"\x00\x02"
    assert Base().handle_control(ControlRequest(0xC0, 0x01, 0, 0, 2)) == b"\x00\x01"
    assert dev.handle_control(ControlRequest(0x40, 0x02, 0, 0, 3, b"abc")) is None and dev.value == b"abc"
    assert dev.handle_control(ControlRequest(0xA1, 0x0A, 0, 0, 8)) == b"\xaa\xbb\xcc"  # direction None: IN
    assert dev.handle_control(ControlRequest(0x21, 0x0A, 0, 0, 0)) is None  # ... and OUT
    assert request_key(ControlRequest(0xC1, 0x01, 0, 0, 2)) == (2, 1, 1, True)


def test_in_data_is_cut_to_wlength_and_none_is_empty() -> None:
    dev = Derived()
    assert dev.handle_control(ControlRequest(0xA1, 0x0A, 0, 0, 2)) == b"\xaa\xbb"
    assert dev.handle_control(ControlRequest(0xA1, 0x0A, 0, 0, 0)) == b""

    @dev.control_request(type="vendor", number=0x10, direction="in")
    def nothing(device: Any, req: ControlRequest) -> None:
        return None

    assert dev.handle_control(ControlRequest(0xC0, 0x10, 0, 0, 8)) == b""


def test_an_in_answer_must_be_bytes() -> None:
    with pytest.raises(BadArgumentError, match="is int, not bytes"):  # bytes(3) would be 3 zero bytes
        Derived().handle_control(ControlRequest(0xC0, 0x03, 0, 0, 8))


def test_stall_is_pipe_stalled_error() -> None:
    with pytest.raises(PipeStalledError, match="too long"):
        Base().handle_control(ControlRequest(0x40, 0x02, 0, 0, 5, b"12345"))


def test_instance_handlers_get_the_device_and_come_first() -> None:
    dev, other = Base(), Base()
    seen: list[tuple[Any, ControlRequest]] = []

    @dev.control_request(type="vendor", recipient="device", number=0x01, direction="in")
    def mine(device: Any, req: ControlRequest) -> bytes:
        seen.append((device, req))
        return b"\xff"

    req = ControlRequest(0xC0, 0x01, 0, 0, 2)
    assert dev.handle_control(req) == b"\xff" and seen == [(dev, req)]
    assert other.handle_control(req) == b"\x00\x01"  # registered on one object only
    assert dev.handle_control(ControlRequest(0xC1, 0x01, 0, 0, 2)) == b"\x00\x01"


def test_unhandled_logs_the_decorator_and_stalls(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "dkproto.device"), pytest.raises(PipeStalledError, match="not handled"):
        Base().handle_control(ControlRequest(0xC0, 0x42, 7, 0, 4))
    assert "base: unhandled vendor device request 0x42" in caplog.text
    assert "@control_request(type='vendor', recipient='device', number=0x42, direction='in')" in caplog.text
    assert "def handle_0x42(self, req): ..." in suggest_handler(ControlRequest(0x21, 0x42, 0, 0, 0))


def test_handlers_come_before_the_responder_which_comes_before_unhandled() -> None:
    class WithSet(Base):
        def __init__(self) -> None:
            super().__init__()
            self.responder = StandardResponder(full_set())
            self.unhandled: list[ControlRequest] = []

        @control_request(type="standard", recipient="interface", number=0x06, direction="in")
        def interface_descriptor(self, req: ControlRequest) -> bytes:
            return b"mine"

        def on_unhandled(self, req: ControlRequest) -> bytes | int | None:
            self.unhandled.append(req)
            return b"fallback"

    dev = WithSet()
    assert dev.handle_control(ControlRequest(0x81, 0x06, 0x2200, 0, 64)) == b"mine"
    assert dev.handle_control(ControlRequest(0x80, 0x06, 0x0100, 0, 64)) == DEVICE
    with pytest.raises(PipeStalledError):  # the responder's STALL is final: not "unhandled"
        dev.handle_control(ControlRequest(0x80, 0x06, 0x0309, 0x0409, 64))
    assert dev.handle_control(ControlRequest(0xC0, 0x77, 0, 0, 8)) == b"fallback" and len(dev.unhandled) == 1


# ---- ControlRequest ------------------------------------------------------------------------------

def test_control_request_fields_and_setup_bytes() -> None:
    req = ControlRequest.from_setup(bytes.fromhex("a1 01 0003 0100 0800"))
    assert (req.bmRequestType, req.bRequest, req.wValue, req.wIndex, req.wLength, req.data) == \
        (0xA1, 0x01, 0x0300, 0x0001, 8, b"")
    assert req.setup == bytes.fromhex("a1010003 01000800")
    assert (req.is_in, req.direction_in, req.type, req.recipient) == (True, True, "class", "interface")
    assert req.describe() == ("class interface request 0x01 (IN, bmRequestType 0xa1, wValue 0x0300, "
                              "wIndex 0x0001, wLength 8)")
    assert ControlRequest(0x5F, 0, 0, 0, 0).recipient == "reserved(31)"
    assert ControlRequest.from_setup(bytes(8), b"xy").data == b"xy"
    with pytest.raises(BadArgumentError, match="8 bytes"):
        ControlRequest.from_setup(bytes(7))


def test_control_request_lives_in_dkproto_device_and_transport_re_exports_it() -> None:
    assert dkproto.transport.base.ControlRequest is ControlRequest
    assert ControlRequest.__module__ == "dkproto.device.request"
