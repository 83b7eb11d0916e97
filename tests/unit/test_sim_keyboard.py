"""``sim://hid-keyboard``: the built-in HID profile, a boot keyboard with LEDs, driven by the
``dkproto hid`` verbs with no code and by :class:`~dkproto.hid.device.HidDevice`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dkproto.cli import cli
from dkproto.errors import PipeStalledError
from dkproto.hid.device import HidDevice
from dkproto.transport import HID_REPORT_FEATURE, HID_REPORT_INPUT, HID_REPORT_OUTPUT, open_transport
from dkproto.transport.sim import (
    BOOT_KEYBOARD_REPORT_DESCRIPTOR,
    PROFILES,
    SimDevice,
    SimKeyboard,
    SimTransport,
    hid_keyboard_device,
)
from dkproto.usb.read import read_descriptor_set

CAPS_LOCK = 0x02  # LED bit 1 (LED page usage 2)
KEY_A = 0x04


def typed() -> SimDevice:
    """sim://test_sim_keyboard:typed: the profile with "a" pressed (Left Shift held) and released."""
    keyboard = hid_keyboard_device()
    keyboard.press(KEY_A, modifiers=0x02)
    keyboard.release()
    return keyboard


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_the_profile_is_built_in() -> None:
    assert PROFILES["hid-keyboard"] is hid_keyboard_device
    t = open_transport("sim://hid-keyboard")
    assert isinstance(t, SimTransport) and isinstance(t.device, SimKeyboard)
    ds = read_descriptor_set(t)
    assert ds.errors == [] and ds.hid_report_descriptors == {0: BOOT_KEYBOARD_REPORT_DESCRIPTOR}
    (iface,) = ds.configurations[0].interfaces
    assert (iface["bInterfaceClass"], iface["bInterfaceSubClass"], iface["bInterfaceProtocol"]) == (3, 1, 1)
    assert ds.vid_pid == (0x1209, 0x0003)


def test_hid_parse_sim_hid_keyboard() -> None:
    code, out = invoke("hid", "parse", "sim://hid-keyboard", "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["length"] == 63
    assert [(r["report_type"], r["report_id"], r["size"]) for r in doc["reports"]] == [("input", 0, 8), ("output", 0, 1)]
    assert [f for f in doc["findings"] if f["severity"] == "error"] == []
    code, text = invoke("hid", "parse", "sim://hid-keyboard")
    assert code == 0 and text.startswith("# 63 bytes")
    assert "input report (no ID): 8 bytes" in text and "output report (no ID): 1 bytes" in text


def test_led_output_report_write_and_read_back() -> None:
    keyboard = hid_keyboard_device()
    with HidDevice(SimTransport(keyboard)) as dev:
        assert dev.write_values(0, {"Caps Lock": 1}) == bytes([CAPS_LOCK])  # no OUT pipe: SET_REPORT(Output)
        assert keyboard.leds == CAPS_LOCK and keyboard.outputs == [bytes([CAPS_LOCK])]
        assert dev.transport.get_report(HID_REPORT_OUTPUT, 0, 1) == bytes([CAPS_LOCK])  # GET_REPORT(Output)
        assert dev.write(bytes([0, 0x01 | CAPS_LOCK])) == 2  # Num Lock too, ID byte 0 first
        assert dev.transport.get_report(HID_REPORT_OUTPUT, 0, 1) == bytes([0x03])
        with pytest.raises(PipeStalledError, match="no such report"):
            dev.get_feature(0)  # a boot keyboard has no feature report
    code, out = invoke("hid", "write", "sim://hid-keyboard", "0", "Caps Lock=1")
    assert code == 0 and out.strip() == "sent output report 0: 02"


def test_input_reports_queued_on_the_device_side() -> None:
    keyboard = hid_keyboard_device()
    with HidDevice(SimTransport(keyboard)) as dev:
        assert keyboard.press(KEY_A, modifiers=0x02) == bytes([0x02, 0, KEY_A, 0, 0, 0, 0, 0])
        values = dev.read_values(500)
        assert values["Keyboard LeftShift"] == 1 and ["Keyboard A"] in values.values()
        assert dev.transport.get_report(HID_REPORT_INPUT, 0, 8) == bytes([0x02, 0, KEY_A, 0, 0, 0, 0, 0])
        keyboard.release()
        assert dev.read(500) == bytes(8)
    code, out = invoke("hid", "watch", f"sim://{__name__}:typed", "-n", "2", "--json")
    assert code == 0, out
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 2 and rows[0]["values"]["Keyboard LeftShift"] == 1 and rows[1]["values"]["Keyboard LeftShift"] == 0
    code, out = invoke("hid", "watch", "sim://hid-keyboard", "--timeout", "0.1")
    assert code == 0 and out.strip().startswith("# 0 reports")


def test_class_requests_idle_protocol_and_stalls() -> None:
    with open_transport("sim://hid-keyboard", open=True) as t:
        t.control_transfer(0x21, 0x0A, 0x7D00, 0, None)  # SET_IDLE 500 ms
        assert t.control_transfer(0xA1, 0x02, 0, 0, 1) == b"\x7d"
        t.control_transfer(0x21, 0x0B, 0, 0, None)  # SET_PROTOCOL boot
        assert t.control_transfer(0xA1, 0x03, 0, 0, 1) == b"\x00"
        for bad in ((0xA1, 0x01, 0x0100, 1, 8),          # GET_REPORT to interface 1: there is none
                    (0xA1, 0x01, 0x0101, 0, 8),          # report ID 1: there are no IDs
                    (0x21, 0x09, 0x0200, 0, b"\x01\x02"),  # a 2-byte LED report
                    (0x21, 0x0B, 2, 0, None)):           # protocol 2
            with pytest.raises(PipeStalledError):
                t.control_transfer(*bad)
        with pytest.raises(PipeStalledError):
            t.get_report(HID_REPORT_FEATURE, 0, 1)
