"""The USB/IP codec and the captured device's control answers (pure; the live path is in tests/lab)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from dkproto.errors import BadArgumentError, DecodeError
from dkproto.lab.usbip import (
    CMD_SUBMIT,
    CMD_UNLINK,
    SPEED_HIGH,
    SPEED_SUPER,
    CapturedDevice,
    decode_cmd,
    encode_op_rep_import,
    encode_ret_submit,
    encode_ret_unlink,
)

ROOT = Path(__file__).resolve().parents[2]
# FTDI FT2232 (corpus usb/ftdi-ft2232-dual-uart.json): device + one 55-byte configuration.
FTDI = (
    "1201000200000040030410600007010200010902370002010080fa0904000002ffffff02070581020002000705020200"
    "02000904010002ffffff020705830200020007050402000200"
)


def _ftdi() -> CapturedDevice:
    return CapturedDevice.from_json({"descriptors_hex": FTDI}, "ftdi")


def test_split_and_identity() -> None:
    dev = _ftdi()
    assert len(dev.device) == 18 and len(dev.configurations) == 1
    assert len(dev.configurations[0]) == 0x37
    assert dev.id == "0403:6010" and dev.speed() == SPEED_HIGH
    usb3 = CapturedDevice(device=bytes.fromhex("12010003000000090000000000000000" "0001"), configurations=[])
    assert usb3.speed() == SPEED_SUPER


def test_truncated_capture_names_offset_and_rule() -> None:
    with pytest.raises(DecodeError, match=r"offset 20, configuration: wTotalLength 55 runs past"):
        CapturedDevice.from_json({"descriptors_hex": FTDI[:-20]})
    with pytest.raises(DecodeError, match="offset 0"):
        CapturedDevice.from_json({"descriptors_hex": "0902"})
    with pytest.raises(BadArgumentError, match="descriptors_hex"):
        CapturedDevice.from_json({"descriptors_hex": "zz"})


def _setup(bm: int, req: int, value: int, index: int, length: int) -> bytes:
    return struct.pack("<BBHHH", bm, req, value, index, length)


def test_control_answers() -> None:
    dev = _ftdi()
    assert dev.control(_setup(0x80, 6, 0x0100, 0, 64)) == (0, dev.device)
    assert dev.control(_setup(0x80, 6, 0x0100, 0, 8)) == (0, dev.device[:8])
    assert dev.control(_setup(0x80, 6, 0x0200, 0, 9)) == (0, dev.configurations[0][:9])
    assert dev.control(_setup(0x80, 6, 0x0200, 0, 0xFF))[1] == dev.configurations[0]
    assert dev.control(_setup(0x80, 6, 0x0201, 0, 9))[0] == -32  # no second configuration
    assert dev.control(_setup(0x80, 6, 0x0300, 0, 255))[0] == -32  # no strings captured
    assert dev.control(_setup(0x80, 6, 0x0F00, 0, 5))[0] == -32  # no BOS
    assert dev.control(_setup(0x00, 9, 1, 0, 0)) == (0, b"")  # SET_CONFIGURATION
    assert dev.control(_setup(0x01, 11, 0, 1, 0)) == (0, b"")  # SET_INTERFACE
    assert dev.control(_setup(0x80, 0, 0, 0, 2)) == (0, b"\0\0")  # GET_STATUS
    assert dev.control(_setup(0x40, 0x01, 0, 0, 0))[0] == -32  # vendor: stall
    assert dev.control(_setup(0xA1, 0x01, 0, 0, 7))[0] == -32  # class: stall


def test_strings_when_captured() -> None:
    dev = CapturedDevice.from_json({"descriptors_hex": FTDI, "strings": {"1": "FTDI", "2": "Dual RS232"}})
    assert dev.control(_setup(0x80, 6, 0x0300, 0x0000, 255)) == (0, b"\x04\x03\x09\x04")
    assert dev.control(_setup(0x80, 6, 0x0301, 0x0409, 255)) == (0, b"\x0a\x03F\0T\0D\0I\0")
    assert dev.control(_setup(0x80, 6, 0x0303, 0x0409, 255))[0] == -32


def test_cmd_submit_and_unlink_decode() -> None:
    setup = _setup(0x80, 6, 0x0100, 0, 18)
    head = struct.pack(">IIIIIIIIII", CMD_SUBMIT, 7, 0x10002, 1, 0, 0x200, 18, 0, 0, 0) + setup
    cmd = decode_cmd(head)
    assert (cmd.command, cmd.seqnum, cmd.devid, cmd.direction, cmd.ep) == (1, 7, 0x10002, 1, 0)
    assert cmd.transfer_buffer_length == 18 and cmd.setup == setup and not cmd.is_iso
    unlink = decode_cmd(struct.pack(">IIIIII", CMD_UNLINK, 9, 0x10002, 0, 0, 7) + b"\0" * 24)
    assert unlink.unlink_seqnum == 7
    with pytest.raises(DecodeError, match="48"):
        decode_cmd(head[:40])
    with pytest.raises(DecodeError, match="unknown USB/IP command 0x9"):
        decode_cmd(struct.pack(">I", 9) + head[4:])


def test_replies() -> None:
    r = encode_ret_submit(7, 0, b"\x12\x01")
    assert len(r) == 48 + 2 and struct.unpack_from(">IIIIIiI", r) == (3, 7, 0, 0, 0, 0, 2)
    r = encode_ret_submit(8, -32)
    assert struct.unpack_from(">i", r, 20)[0] == -32 and len(r) == 48
    r = encode_ret_unlink(9, -104)
    assert len(r) == 48 and struct.unpack_from(">IIIIIi", r) == (4, 9, 0, 0, 0, -104)


def test_op_rep_import_layout() -> None:
    rep = encode_op_rep_import(_ftdi(), "1-1")
    assert struct.unpack_from(">HHI", rep) == (0x0111, 0x0003, 0)
    assert len(rep) == 8 + 312
    body = rep[8:]
    assert body[256:259] == b"1-1"
    _busnum, _devnum, speed, vid, pid, bcd = struct.unpack_from(">IIIHHH", body, 288)
    assert (speed, vid, pid, bcd) == (SPEED_HIGH, 0x0403, 0x6010, 0x0700)
    assert body[-1] == 2  # bNumInterfaces of configuration 1


@pytest.mark.parametrize("path", sorted((ROOT / "descriptors").glob("*.json")), ids=lambda p: p.stem)
def test_every_capture_in_descriptors_loads(path: Path) -> None:
    dev = CapturedDevice.load(path)
    obj = json.loads(path.read_text())
    assert dev.device + b"".join(dev.configurations) == bytes.fromhex(obj["descriptors_hex"])


def test_uvc_probe_is_the_only_class_behaviour() -> None:
    dev = CapturedDevice.load(ROOT / "descriptors" / "logitech-c270-webcam.json")
    vs = dev.video_streaming_interfaces()
    assert vs == {1}
    status, probe = dev.control(_setup(0xA1, 0x87, 0x0100, 1, 26))  # GET_DEF(VS_PROBE_CONTROL)
    assert status == 0 and len(probe) == 26 and probe[2:4] == b"\x01\x01"
    assert dev.control(_setup(0x21, 0x01, 0x0200, 1, 26), bytes(26)) == (0, b"")  # SET_CUR(COMMIT)
    assert dev.control(_setup(0xA1, 0x81, 0x0300, 1, 4))[0] == -32  # other VS controls stall
    assert dev.control(_setup(0xA1, 0x81, 0x0100, 0, 26))[0] == -32  # not a VS interface
