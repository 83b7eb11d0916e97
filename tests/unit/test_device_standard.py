"""The standard-request responder (dkproto.device.StandardResponder): every standard request a
device side answers, the STALLs, and wLength shorter than the descriptor (USB 2.0 §9.4.3)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from device_sets import (
    BOS,
    CONFIG_1,
    CONFIG_2,
    DEVICE,
    HID,
    HUB,
    HUB_CONFIG,
    HUB_DEVICE,
    LANGIDS,
    OTHER_SPEED,
    QUALIFIER,
    REPORT,
    STRINGS,
    full_set,
    hub_set,
    superspeed_set,
)

from dkproto.device import (
    ControlRequest,
    RequestHandlers,
    StandardResponder,
    langid_list,
    load_set,
    set_from_parts,
    split_descriptors,
    string_descriptor,
)
from dkproto.errors import BadArgumentError, DecodeError, PipeStalledError
from dkproto.ioreturn import IOReturn
from dkproto.usb import DescriptorSet, parse


class Device(RequestHandlers):
    """The smallest device side: the responder and nothing else."""

    def __init__(self, ds: DescriptorSet, **kw: object) -> None:
        self.name = "test"
        self.responder = StandardResponder(ds, **kw)  # type: ignore[arg-type]


def get(dev: Device, bm: int, value: int, index: int = 0, length: int = 0xFFFF, request: int = 6) -> bytes:
    result = dev.handle_control(ControlRequest(bm, request, value, index, length))
    assert isinstance(result, bytes)
    return result


def out(dev: Device, bm: int, request: int, value: int = 0, index: int = 0, data: bytes = b"") -> None:
    assert dev.handle_control(ControlRequest(bm, request, value, index, len(data), data)) is None


def stalls(dev: Device, bm: int, request: int, value: int = 0, index: int = 0, length: int = 0,
           data: bytes = b"") -> None:
    with pytest.raises(PipeStalledError) as info:
        dev.handle_control(ControlRequest(bm, request, value, index, length, data))
    assert info.value.ioreturn == IOReturn.kUSBHostReturnPipeStalled and "STALL" in str(info.value)


@pytest.fixture
def dev() -> Device:
    return Device(full_set(), report_descriptors={0: REPORT})


# ---- GET_DESCRIPTOR --------------------------------------------------------------------------------

def test_device_and_configurations(dev: Device) -> None:
    assert get(dev, 0x80, 0x0100) == DEVICE
    assert get(dev, 0x80, 0x0200) == CONFIG_1 and get(dev, 0x80, 0x0201) == CONFIG_2
    stalls(dev, 0x80, 6, 0x0202, 0, 255)  # no third configuration


@pytest.mark.parametrize("length", [0, 1, 8, 9, 17])
def test_wlength_shorter_than_the_descriptor_returns_its_first_bytes(dev: Device, length: int) -> None:
    assert get(dev, 0x80, 0x0100, length=length) == DEVICE[:length]
    assert get(dev, 0x80, 0x0200, length=length) == CONFIG_1[:length]
    assert get(dev, 0x80, 0x0301, 0x0409, length) == STRINGS[(0x0409, 1)][:length]


def test_wlength_longer_returns_the_descriptor_only(dev: Device) -> None:
    assert get(dev, 0x80, 0x0200, length=4096) == CONFIG_1
    assert get(dev, 0x80, 0x0F00, length=4096) == BOS


def test_strings_in_every_langid(dev: Device) -> None:
    assert get(dev, 0x80, 0x0300) == LANGIDS
    for (langid, index), raw in STRINGS.items():
        if index:
            assert get(dev, 0x80, 0x0300 | index, langid) == raw
    stalls(dev, 0x80, 6, 0x0303, 0x0407, 255)  # string 3 exists in 0x0409 only
    stalls(dev, 0x80, 6, 0x0309, 0x0409, 255)  # no string 9
    stalls(dev, 0x80, 6, 0x0301, 0x0411, 255)  # a LANGID the set lacks


def test_langid_list_made_when_the_set_has_strings_but_no_string_0() -> None:
    ds = parse(DEVICE + CONFIG_1 + CONFIG_2, strings={(0x0407, 1): string_descriptor("x"),
                                                      (0x0409, 1): string_descriptor("y")})
    assert get(Device(ds), 0x80, 0x0300) == langid_list([0x0407, 0x0409])


def test_no_strings_stalls_string_0() -> None:
    stalls(Device(parse(DEVICE + CONFIG_1 + CONFIG_2)), 0x80, 6, 0x0300, 0, 255)


def test_bos_qualifier_and_other_speed(dev: Device) -> None:
    assert get(dev, 0x80, 0x0F00) == BOS
    assert get(dev, 0x80, 0x0600) == QUALIFIER
    assert get(dev, 0x80, 0x0700) == OTHER_SPEED[0] and get(dev, 0x80, 0x0701) == OTHER_SPEED[1]
    stalls(dev, 0x80, 6, 0x0702, 0, 255)
    bare = Device(parse(DEVICE + CONFIG_1 + CONFIG_2))
    for value in (0x0F00, 0x0600, 0x0700):  # a set without them: the device STALLs, as a full-speed one
        stalls(bare, 0x80, 6, value, 0, 255)


def test_hid_class_and_report_descriptors(dev: Device) -> None:
    assert get(dev, 0x81, 0x2100, 0) == HID
    assert get(dev, 0x81, 0x2200, 0) == REPORT
    assert get(dev, 0x81, 0x2200, 0, 7) == REPORT[:7]
    stalls(dev, 0x81, 6, 0x2100, 1, 9)  # interface 1 is not HID
    stalls(dev, 0x81, 6, 0x2200, 1, 255)  # no report descriptor for it
    stalls(dev, 0x81, 6, 0x2300, 0, 255)  # no physical descriptor
    stalls(dev, 0x81, 6, 0x2201, 0, 255)  # one report descriptor only
    stalls(dev, 0x80, 6, 0x2200, 0, 255)  # a class descriptor asked of the device
    assert get(Device(full_set()), 0x81, 0x2100, 0) == HID  # the HID descriptor is in the set
    stalls(Device(full_set()), 0x81, 6, 0x2200, 0, 255)  # the report descriptor is not


def test_report_descriptors_the_set_carries() -> None:
    carrying = parse(DEVICE + CONFIG_1 + CONFIG_2, hid_report_descriptors={0: REPORT})
    assert get(Device(carrying), 0x81, 0x2200, 0) == REPORT
    assert get(Device(carrying, report_descriptors={0: b"\x05\x01"}), 0x81, 0x2200, 0) == b"\x05\x01"


def test_hub_descriptor_is_a_class_request() -> None:
    hub = Device(hub_set())
    assert get(hub, 0xA0, 0x2900) == HUB
    assert get(hub, 0xA0, 0x2900, length=2) == HUB[:2]
    stalls(hub, 0xA0, 6, 0x2A00, 0, 255)  # a USB 2.0 hub has no SuperSpeed hub descriptor
    stalls(hub, 0x80, 6, 0x2900, 0, 255)  # not a standard request
    stalls(Device(full_set()), 0xA0, 6, 0x2900, 0, 255)  # not a hub: unhandled class request


def test_a_hub_set_without_a_hub_descriptor_stalls_it_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """The class GET_DESCRIPTOR(0x29/0x2A) of a hub whose set lacks the descriptor is the responder's:
    a STALL, no "add @control_request" warning. The warning stays for requests nobody answers."""
    caplog.set_level(logging.WARNING, logger="dkproto.device")
    bare = Device(parse(HUB_DEVICE + HUB_CONFIG))
    assert bare.responder is not None and bare.responder.is_hub and not bare.responder.hub
    for kind in (0x2900, 0x2A00):
        with pytest.raises(PipeStalledError, match="carries none"):
            bare.handle_control(ControlRequest(0xA0, 6, kind, 0, 255))
    assert caplog.records == []
    stalls(bare, 0xA0, 6, 0x2200, 0, 255)  # another class descriptor: nobody answers it
    stalls(Device(full_set()), 0xA0, 6, 0x2900, 0, 255)  # not a hub
    assert [r.getMessage().count("@control_request") for r in caplog.records] == [1, 1]


def test_get_descriptor_of_other_types_stalls(dev: Device) -> None:
    for value in (0x0400, 0x0500, 0x0800, 0x0B00, 0x1000, 0xFF00):
        stalls(dev, 0x80, 6, value, 0, 255)
    stalls(dev, 0x82, 6, 0x0100, 0x81, 18)  # to an endpoint


# ---- status, features, configuration, interface ----------------------------------------------------

def test_get_status_device_and_remote_wakeup(dev: Device) -> None:
    assert get(dev, 0x80, 0, length=2, request=0) == b"\0\0"
    out(dev, 0x00, 3, 1)  # SET_FEATURE(DEVICE_REMOTE_WAKEUP)
    assert get(dev, 0x80, 0, length=2, request=0) == b"\x02\0"
    out(dev, 0x00, 1, 1)
    assert get(dev, 0x80, 0, length=2, request=0) == b"\0\0"
    assert get(Device(full_set(), self_powered=True), 0x80, 0, length=2, request=0) == b"\x01\0"
    out(dev, 0x00, 3, 2)  # SET_FEATURE(TEST_MODE) is accepted
    stalls(dev, 0x00, 1, 2)  # TEST_MODE cannot be cleared
    stalls(dev, 0x00, 3, 48)  # U1_ENABLE: SuperSpeed only


def test_endpoint_halt_and_status(dev: Device) -> None:
    status = dev.responder.halted  # type: ignore[union-attr]
    assert get(dev, 0x82, 0, 0x81, 2, request=0) == b"\0\0"
    out(dev, 0x02, 3, 0, 0x81)  # SET_FEATURE(ENDPOINT_HALT)
    assert 0x81 in status and get(dev, 0x82, 0, 0x81, 2, request=0) == b"\x01\0"
    out(dev, 0x02, 1, 0, 0x81)  # CLEAR_FEATURE(ENDPOINT_HALT)
    assert get(dev, 0x82, 0, 0x81, 2, request=0) == b"\0\0"
    assert get(dev, 0x82, 0, 0x00, 2, request=0) == b"\0\0"  # endpoint 0
    out(dev, 0x02, 1, 0, 0x80)  # clearing endpoint 0's halt is allowed
    stalls(dev, 0x82, 0, 0, 0x02, 2)  # 0x02 is in interface 1's alternate setting 1, not selected
    stalls(dev, 0x02, 3, 0, 0x05)  # no such endpoint
    stalls(dev, 0x02, 3, 7, 0x81)  # not a feature of an endpoint


def test_interface_status(dev: Device) -> None:
    assert get(dev, 0x81, 0, 1, 2, request=0) == b"\0\0"
    stalls(dev, 0x81, 0, 0, 7, 2)
    stalls(dev, 0x01, 3, 0, 0)  # FUNCTION_SUSPEND: SuperSpeed only


def test_set_and_get_configuration(dev: Device) -> None:
    r = dev.responder
    assert r is not None
    assert get(dev, 0x80, 0, length=1, request=8) == b"\0"
    stalls(dev, 0x82, 0, 0, 0x03, 2)  # before SET_CONFIGURATION: the first configuration's endpoints
    out(dev, 0x00, 9, 2)
    assert get(dev, 0x80, 0, length=1, request=8) == b"\x02" and r.configuration == 2
    assert get(dev, 0x82, 0, 0x03, 2, request=0) == b"\0\0"
    stalls(dev, 0x82, 0, 0, 0x81, 2)  # 0x81 is configuration 1's
    stalls(dev, 0x81, 6, 0x2100, 0, 9)  # configuration 2's interface 0 is not HID
    stalls(dev, 0x00, 9, 3)
    out(dev, 0x00, 9, 0)
    assert r.configuration == 0


def test_set_and_get_interface(dev: Device) -> None:
    r = dev.responder
    assert r is not None
    out(dev, 0x00, 9, 1)
    assert get(dev, 0x81, 0, 1, 1, request=10) == b"\0"
    out(dev, 0x01, 11, 1, 1)  # SET_INTERFACE(1, alt 1)
    assert get(dev, 0x81, 0, 1, 1, request=10) == b"\x01" and r.alternates == {1: 1}
    out(dev, 0x02, 3, 0, 0x82)
    assert get(dev, 0x82, 0, 0x82, 2, request=0) == b"\x01\0"
    out(dev, 0x01, 11, 0, 1)  # back to alt 0: its endpoints' halts are gone
    assert 0x82 not in r.halted
    stalls(dev, 0x01, 11, 2, 1)  # no alternate setting 2
    stalls(dev, 0x01, 11, 0, 5)  # no interface 5
    stalls(dev, 0x81, 10, 0, 5, 1)
    out(dev, 0x01, 11, 1, 1)
    out(dev, 0x00, 9, 1)  # SET_CONFIGURATION resets the alternate settings and halts
    assert r.alternates == {} and r.halted == set()


def test_set_address_and_reset(dev: Device) -> None:
    r = dev.responder
    assert r is not None
    out(dev, 0x00, 5, 7)
    assert r.address == 7
    stalls(dev, 0x00, 5, 128)
    out(dev, 0x00, 9, 1)
    out(dev, 0x00, 3, 1)
    r.halted.add(0x81)
    r.reset()
    assert (r.address, r.configuration, r.halted, r.features) == (0, 0, set(), set())


def test_superspeed_requests() -> None:
    ss = Device(superspeed_set())
    stalls(Device(full_set()), 0x00, 0x30, 0, 0, 6, bytes(6))
    stalls(Device(full_set()), 0x00, 0x31, 40)
    out(ss, 0x00, 0x30, data=bytes(range(6)))  # SET_SEL
    out(ss, 0x00, 0x31, 40)  # SET_ISOCH_DELAY
    assert ss.responder is not None and (ss.responder.sel, ss.responder.isoch_delay) == (bytes(range(6)), 40)
    stalls(ss, 0x00, 0x30, 0, 0, 2, b"\0\0")  # SET_SEL carries 6 bytes
    for feature, bit in ((48, 0x04), (49, 0x08), (50, 0x10)):
        out(ss, 0x00, 3, feature)
        assert get(ss, 0x80, 0, length=2, request=0)[0] & bit
    out(ss, 0x01, 3, 0, 0)  # FUNCTION_SUSPEND


@pytest.mark.parametrize(("bm", "number"), [
    (0x00, 7),     # SET_DESCRIPTOR
    (0x82, 12),    # SYNCH_FRAME
    (0x80, 0x55),  # not a standard request
    (0x00, 6),     # GET_DESCRIPTOR with an OUT direction
    (0x80, 9),     # SET_CONFIGURATION with an IN direction
])
def test_other_standard_requests_stall(dev: Device, bm: int, number: int) -> None:
    stalls(dev, bm, number, 0, 0, 2 if bm & 0x80 else 0)


def test_respond_refuses_what_it_does_not_answer(dev: Device) -> None:
    r = dev.responder
    assert r is not None
    vendor = ControlRequest(0xC0, 6, 0x0100, 0, 18)
    assert not r.answers(vendor) and r.answers(ControlRequest(0x80, 0x55, 0, 0, 0))
    with pytest.raises(PipeStalledError, match="not a request this device answers"):
        r.respond(vendor)
    assert r.respond(ControlRequest(0x80, 6, 0x0100, 0, 8)) == DEVICE  # whole: the dispatch cuts


def test_the_set_is_served_as_rebuilt_at_construction() -> None:
    ds = full_set()
    device = ds.device
    assert device is not None and device.fields is not None
    device.fields["idProduct"] = 0xBEEF  # an edit made before the responder is made is served
    assert get(Device(ds), 0x80, 0x0100)[10:12] == b"\xef\xbe"


# ---- sets from parts and files ---------------------------------------------------------------------

def test_set_from_parts_makes_string_0() -> None:
    ds = set_from_parts(DEVICE, [CONFIG_1, CONFIG_2], bos=BOS, strings={1: "dkproto"})
    dev = Device(ds)
    assert get(dev, 0x80, 0x0300) == bytes.fromhex("04030904")
    assert get(dev, 0x80, 0x0301, 0x0409) == string_descriptor("dkproto")
    assert get(dev, 0x80, 0x0F00) == BOS
    with pytest.raises(BadArgumentError, match="string index 0"):
        set_from_parts(DEVICE, [CONFIG_1, CONFIG_2], strings={0: "x"})
    with pytest.raises(BadArgumentError, match="at most 126"):
        string_descriptor("x" * 127)


def test_split_descriptors_names_offset_and_rule() -> None:
    assert split_descriptors(DEVICE + CONFIG_1) == (DEVICE, [CONFIG_1])
    with pytest.raises(DecodeError, match=r"offset 20, configuration: wTotalLength 66 runs past the end"):
        split_descriptors(DEVICE + CONFIG_1[:-1])
    with pytest.raises(DecodeError, match=r"offset 0, device"):
        split_descriptors(CONFIG_1)
    with pytest.raises(DecodeError, match=r"offset 18, configuration: expected a configuration"):
        split_descriptors(DEVICE + BOS)


def test_load_set_reads_every_format(tmp_path: Path) -> None:
    from dkproto.usb import render_hex, render_json

    ds = full_set()
    for name, text in (("set.hex", render_hex(ds)), ("set.json", render_json(ds))):
        path = tmp_path / name
        path.write_text(text)
        again = load_set(path, max_bytes=1 << 20)
        assert again.to_bytes() == ds.to_bytes() and again.bos_bytes() == BOS
        assert {k: n.to_bytes() for k, n in again.strings.items()} == STRINGS
        assert [n.to_bytes() for n in again.extras] == [QUALIFIER, *OTHER_SPEED]
    capture = tmp_path / "capture.json"  # the lab capture format: strings as {"index": "text"}
    capture.write_text(json.dumps({"descriptors_hex": (DEVICE + CONFIG_1 + CONFIG_2).hex(), "strings": {"2": "x"}}))
    assert get(Device(load_set(capture, max_bytes=1 << 20)), 0x80, 0x0302, 0x0409) == string_descriptor("x")
    broken = tmp_path / "broken"
    broken.write_bytes(DEVICE + CONFIG_1[:-3])
    with pytest.raises(DecodeError, match="wTotalLength 66 runs past"):
        load_set(broken, max_bytes=1 << 20)
    with pytest.raises(BadArgumentError, match="more than the 10 accepted"):
        load_set(broken, max_bytes=10)
