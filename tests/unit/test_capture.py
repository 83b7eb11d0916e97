"""dkproto.capture: the usbmon schemas, the pcapng reader and writer, export to and import from
Wireshark captures, checked against the real tshark (a test that needs it FAILS when it is missing)."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import pytest
from capture_helpers import (
    CONFIG_DESCRIPTOR,
    fixture_events,
    tshark_malformed,
    tshark_raw,
    tshark_rows,
    usb_open,
    write_session,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dkproto.capture import (
    LINKTYPE_USB_LINUX,
    LINKTYPE_USB_LINUX_MMAPPED,
    PcapngReader,
    PcapngSessionSink,
    PcapngWriter,
    UsbmonPacket,
    capture_info,
    export_pcapng,
    import_pcapng,
    ioreturn_for_status,
    read_pcapng,
    session_packets,
    status_for_ioreturn,
)
from dkproto.capture.usbmon import (
    SETUP,
    USBMON_HEADER,
    USBMON_HEADER_BE,
    USBMON_HEADER_MMAPPED,
    USBMON_HEADER_MMAPPED_BE,
    errno_name,
)
from dkproto.errors import DecodeError, DkError, EncodeError
from dkproto.ioreturn import IOReturn
from dkproto.session import Session, SessionError, dumps_session, load_session

# ------------------------------------------------------------------------------------ usbmon schemas
HEADER_VALUES: dict[str, Any] = {
    "id": 0xFFFF888012345678, "type": ord("C"), "xfer_type": 2, "epnum": 0x80, "devnum": 7, "busnum": 3,
    "flag_setup": ord("-"), "flag_data": 0, "ts_sec": 1796305500, "ts_usec": 123456, "status": -32,
    "length": 18, "len_cap": 18, "setup": bytes(8),
}
MMAPPED_VALUES = {**HEADER_VALUES, "interval": 10, "start_frame": -1, "xfer_flags": 0x200, "ndesc": 0}


@pytest.mark.parametrize(("schema", "values", "size"), [
    (USBMON_HEADER, HEADER_VALUES, 48), (USBMON_HEADER_BE, HEADER_VALUES, 48),
    (USBMON_HEADER_MMAPPED, MMAPPED_VALUES, 64), (USBMON_HEADER_MMAPPED_BE, MMAPPED_VALUES, 64),
])
def test_usbmon_header_round_trip(schema: Any, values: dict[str, Any], size: int) -> None:
    raw = schema.build(values)
    assert len(raw) == size == schema.sizeof()
    parsed = schema.parse(raw)
    assert {k: parsed[k] for k in values} == values


def test_usbmon_header_offsets_are_the_kernels() -> None:
    """Offsets of Documentation/usb/usbmon.rst (struct usbmon_packet), little-endian host."""
    raw = USBMON_HEADER_MMAPPED.build(MMAPPED_VALUES)
    assert struct.unpack_from("<Q", raw, 0)[0] == 0xFFFF888012345678
    assert raw[8:12] == b"C\x02\x80\x07"
    assert struct.unpack_from("<H", raw, 12)[0] == 3
    assert raw[14:16] == b"-\x00"
    assert struct.unpack_from("<qiiII", raw, 16) == (1796305500, 123456, -32, 18, 18)
    assert struct.unpack_from("<iiII", raw, 48) == (10, -1, 0x200, 0)
    assert USBMON_HEADER_BE.build(HEADER_VALUES)[12:14] == b"\x00\x03"


def test_setup_packet_is_usb_wire_order() -> None:
    raw = SETUP.build({"bmRequestType": 0x80, "bRequest": 6, "wValue": 0x0100, "wIndex": 0, "wLength": 18})
    assert raw == bytes.fromhex("8006000100001200")


@pytest.mark.parametrize("linktype", [LINKTYPE_USB_LINUX, LINKTYPE_USB_LINUX_MMAPPED])
@pytest.mark.parametrize("big_endian", [False, True])
def test_usbmon_packet_round_trip(linktype: int, big_endian: bool) -> None:
    p = UsbmonPacket(id=5, type="S", xfer_type=2, epnum=0, devnum=4, busnum=1, flag_setup=0, ts_sec=10,
                     ts_usec=20, status=-115, length=3, setup=bytes.fromhex("4001020003000300"), data=b"abc")
    raw = p.pack(linktype, big_endian)
    q = UsbmonPacket.parse(raw, linktype, big_endian)
    assert (q.id, q.type, q.xfer_type, q.epnum, q.devnum, q.busnum, q.flag_setup, q.ts_sec, q.ts_usec, q.status,
            q.length, q.len_cap, q.setup, q.data) == (5, "S", 2, 0, 4, 1, 0, 10, 20, -115, 3, 3, p.setup, b"abc")
    assert q.setup_fields() == {"bmRequestType": 0x40, "bRequest": 1, "wValue": 2, "wIndex": 3, "wLength": 3}


def test_usbmon_iso_descriptors() -> None:
    iso = [{"status": 0, "offset": 0, "length": 4, "pad": 0}, {"status": -18, "offset": 4, "length": 0, "pad": 0}]
    p = UsbmonPacket(type="C", xfer_type=0, epnum=0x83, iso=iso, data=b"wxyz")
    raw = p.pack()
    assert len(raw) == 64 + 32 + 4
    q = UsbmonPacket.parse(raw)
    assert q.ndesc == 2 and q.iso == iso and q.data == b"wxyz" and q.len_cap == 36
    with pytest.raises(EncodeError, match="220"):
        p.pack(LINKTYPE_USB_LINUX)
    with pytest.raises(DecodeError, match="isochronous descriptors"):
        UsbmonPacket.parse(raw[:80])


def test_usbmon_refusals() -> None:
    with pytest.raises(DecodeError, match="offset 99.*shorter than the 64-byte header"):
        UsbmonPacket.parse(b"\x00" * 63, offset=99)
    with pytest.raises(DecodeError, match="link type 1 is not usbmon"):
        UsbmonPacket.parse(b"\x00" * 64, 1)
    with pytest.raises(EncodeError):
        UsbmonPacket(devnum=300).pack()


def test_errno_mapping() -> None:
    """The mapping of docs/capture.md, both ways (kernel error-codes.rst numbers, Linux errno values)."""
    assert status_for_ioreturn(IOReturn.kIOReturnSuccess) == 0
    assert status_for_ioreturn(IOReturn.kUSBHostReturnPipeStalled) == -32
    assert status_for_ioreturn(IOReturn.kIOReturnTimeout) == -110
    assert status_for_ioreturn(IOReturn.kIOReturnAborted) == -2
    assert status_for_ioreturn(IOReturn.kIOReturnOverrun) == -75
    assert status_for_ioreturn(IOReturn.kIOReturnNoDevice) == -19
    assert status_for_ioreturn(IOReturn.kIOReturnBadArgument) is None
    for code in (IOReturn.kIOReturnSuccess, IOReturn.kUSBHostReturnPipeStalled, IOReturn.kIOReturnTimeout,
                 IOReturn.kIOReturnAborted, IOReturn.kIOReturnOverrun, IOReturn.kIOReturnUnderrun,
                 IOReturn.kIOReturnNotResponding, IOReturn.kIOReturnIOError, IOReturn.kIOReturnNoDevice):
        status = status_for_ioreturn(code)
        assert status is not None and ioreturn_for_status(status) == code
    assert ioreturn_for_status(-104) == IOReturn.kIOReturnAborted  # -ECONNRESET: usb_unlink_urb
    assert ioreturn_for_status(-108) == IOReturn.kIOReturnNoDevice  # -ESHUTDOWN
    assert ioreturn_for_status(-84) == IOReturn.kIOReturnIOError  # -EILSEQ: what libusb calls LIBUSB_ERROR_IO
    assert ioreturn_for_status(-9999) == IOReturn.kIOReturnError
    assert errno_name(-32) == "-EPIPE" and errno_name(0) == "0" and errno_name(-9999) == "-9999"


# ------------------------------------------------------------------------------------ pcapng
def _block(block_type: int, body: bytes, e: str = "<") -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack(e + "II", block_type, len(body) + 12) + body + struct.pack(e + "I", len(body) + 12)


def _shb(e: str = "<") -> bytes:
    return _block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def _idb(linktype: int, e: str = "<", tsresol: int | None = None, snaplen: int = 0) -> bytes:
    opts = b""
    if tsresol is not None:
        opts = struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(e + "HH", 0, 0)
    return _block(1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts, e)


def _epb(data: bytes, ts: int, e: str = "<", iface: int = 0) -> bytes:
    return _block(6, struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
                  + data + bytes(-len(data) % 4), e)


@pytest.mark.parametrize("nanoseconds", [False, True])
def test_pcapng_round_trip(nanoseconds: bool) -> None:
    buf = io.BytesIO()
    with PcapngWriter(buf, linktype=220, nanoseconds=nanoseconds, if_name="usbmon0", user_appl="test") as w:
        w.write_packet(b"\x01\x02\x03", 1_796_305_500_123_456_789, comment="first")
        w.write_packet(b"", 1_796_305_501_000_000_000)
        w.write_packet(bytes(range(256)) * 3, 1_796_305_502_000_001_000, orig_len=10_000)
    packets = read_pcapng(buf.getvalue())
    assert [p.data for p in packets] == [b"\x01\x02\x03", b"", bytes(range(256)) * 3]
    assert [p.orig_len for p in packets] == [3, 0, 10_000]
    first = 1_796_305_500_123_456_789 if nanoseconds else 1_796_305_500_123_456_000
    assert [p.timestamp_ns for p in packets] == [first, 1_796_305_501_000_000_000, 1_796_305_502_000_001_000]
    iface = packets[0].interface
    assert (iface.linktype, iface.name, iface.units_per_second) == (220, "usbmon0",
                                                                   10**9 if nanoseconds else 10**6)


def test_pcapng_reader_handles_every_block_and_both_byte_orders() -> None:
    usb = UsbmonPacket(id=1, type="S", xfer_type=3, epnum=2, devnum=4, busnum=1, data=b"hi")
    data = (
        _shb("<") + _idb(220, "<", tsresol=9) + _idb(1, "<")
        + _block(4, struct.pack("<HH", 0, 0))  # NRB
        + _epb(usb.pack(220, False), 5_000_000_001, "<")
        + _block(3, struct.pack("<I", 4) + b"spb!")  # SPB: interface 0
        + _block(5, struct.pack("<III", 0, 0, 0))  # ISB
        + _block(0x0A, struct.pack("<II", 0x544C534B, 0))  # DSB
        + _block(0x00000BAD, struct.pack("<I", 32473) + b"vendor data")  # custom
        + _block(0x40000BAD, struct.pack("<I", 32473))
        + _block(0x1234, b"unknown")
        + _block(2, struct.pack("<HHIIII", 0, 0, 0, 7, 1, 1) + b"x")  # obsolete Packet Block
        # a second section, big-endian, microseconds as 2^-20 resolution
        + _shb(">") + _idb(189, ">", tsresol=0x80 | 20)
        + _epb(usb.pack(189, True), 3 << 20, ">")
    )
    with PcapngReader(data) as reader:
        packets = list(reader)
        assert reader.sections == 2
        assert reader.skipped == {"Name Resolution Block": 1, "Interface Statistics Block": 1,
                                  "Decryption Secrets Block": 1, "Custom Block": 1, "Custom Block (do not copy)": 1,
                                  "block type 0x00001234": 1}
    assert [p.data for p in packets[1:3]] == [b"spb!", b"x"]
    assert packets[0].timestamp_ns == 5_000_000_001 and packets[1].timestamp is None
    assert packets[2].timestamp_ns == 7  # the obsolete block, on interface 0 (nanoseconds)
    last = packets[3]
    assert last.interface.big_endian and last.interface.section == 1 and last.timestamp_ns == 3_000_000_000
    assert UsbmonPacket.parse(last.data, 189, True).data == b"hi"
    assert UsbmonPacket.parse(packets[0].data, 220, False).busnum == 1


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty file"),
    (b"\xd4\xc3\xb2\xa1" + bytes(20), "a pcap file: convert it with editcap"),
    (b"garbage!" * 4, "offset 0, pcapng: does not start with a Section Header Block"),
    (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x11\x22\x33\x44" + bytes(16), "byte-order magic 11223344"),
    (_shb() + struct.pack("<II", 6, 13) + bytes(5), "offset 28, pcapng Enhanced Packet Block: block length 13"),
    (_shb() + struct.pack("<II", 6, 1 << 30), "over the 67,108,864-byte cap"),
    (_shb() + _idb(220)[:-4] + b"\x00\x00\x00\x00", "offset 28, pcapng Interface Description Block: trailing block"),
    (_shb() + _epb(b"x", 0), "interface 0 not described"),
    (_shb() + _idb(220) + _block(6, struct.pack("<IIIII", 0, 0, 0, 99, 99)), "captured length 99 runs past"),
    (_shb() + _block(1, struct.pack("<HHI", 220, 0, 0) + struct.pack("<HH", 2, 200)), "option 2 of 200 bytes"),
    (_shb() + _idb(220, tsresol=30), "if_tsresol 10^-30"),
    (_shb() + _idb(220) + b"\x06\x00\x00", "3 bytes left, less than a block header"),
    (_shb() + _idb(220) + _epb(b"abcd", 0)[:-5], "only 31 bytes left"),
])
def test_pcapng_refuses_garbage_naming_offset_and_block(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        read_pcapng(data)
    assert message in str(info.value)
    assert info.value.ioreturn == IOReturn.kIOReturnBadArgument


def test_pcapng_cut_tail_is_a_complaint_when_not_strict() -> None:
    data = _shb() + _idb(220) + _epb(b"abcd", 1) + _epb(b"efgh", 2)[:-3]
    with PcapngReader(data, strict=False) as reader:
        assert [p.data for p in reader] == [b"abcd"]
    assert len(reader.complaints) == 1 and "offset 84" in reader.complaints[0]


def _valid_capture() -> bytes:
    usb = UsbmonPacket(id=1, type="S", xfer_type=2, epnum=0x80, devnum=4, busnum=1, flag_setup=0,
                       setup=bytes.fromhex("8006000100001200"), length=18, flag_data=ord("<"))
    done = UsbmonPacket(id=1, type="C", xfer_type=2, epnum=0x80, devnum=4, busnum=1, length=18,
                        data=bytes.fromhex("12010002000000408d1d0101000101020301"))
    return _shb() + _idb(220) + _epb(usb.pack(), 1) + _epb(done.pack(), 2) + _idb(189) + _epb(usb.pack(189), 3, iface=1)


def _mutated(at: int, patch: bytes) -> bytes:
    base = _valid_capture()
    return base[:at] + patch + base[at + len(patch):]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=400),
    st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=8)).map(lambda m: _mutated(*m)),
    st.integers(0, 400).map(lambda n: _valid_capture()[:n]),
))
def test_hostile_pcapng_never_crashes(data: bytes) -> None:
    """Any bytes: packets or a DkError, never another exception; the importer the same."""
    try:
        read_pcapng(data)
    except DkError:
        pass
    try:
        session = import_pcapng(data)
    except DkError as exc:
        assert not isinstance(exc, SessionError), exc  # the importer always builds a valid session
        return
    assert isinstance(session, Session)
    try:
        capture_info(data)
    except DkError:
        pass


# ------------------------------------------------------------------------------------ export
@pytest.fixture
def fixture_session(tmp_path: Path) -> Session:
    return load_session(write_session(tmp_path / "s.jsonl", fixture_events()))


#: What tshark must list for fixture_events(): (urb_type, transfer_type, endpoint, bmRequestType, bRequest,
#: urb_len, data_len, urb_status), one row per record.
EXPECTED = [
    ("'S'", "0x02", "0x80", "0x80", "6", "18", "0", "-115"), ("'C'", "0x02", "0x80", "", "", "18", "18", "0"),
    ("'S'", "0x02", "0x80", "0x80", "6", "255", "0", "-115"), ("'C'", "0x02", "0x80", "", "", "41", "41", "0"),
    ("'S'", "0x02", "0x00", "0x00", "9", "0", "0", "-115"), ("'C'", "0x02", "0x00", "", "", "0", "0", "0"),
    ("'S'", "0x02", "0x00", "0x40", "1", "3", "3", "-115"), ("'C'", "0x02", "0x00", "", "", "3", "0", "0"),
    ("'S'", "0x02", "0x80", "0xc0", "2", "4", "0", "-115"), ("'C'", "0x02", "0x80", "", "", "0", "0", "-32"),
    ("'S'", "0x01", "0x81", "", "", "8", "0", "-115"), ("'C'", "0x01", "0x81", "", "", "8", "8", "0"),
    ("'S'", "0x01", "0x02", "", "", "1", "1", "-115"), ("'C'", "0x01", "0x02", "", "", "1", "0", "0"),
    ("'S'", "0x01", "0x81", "", "", "8", "0", "-115"), ("'C'", "0x01", "0x81", "", "", "0", "0", "-110"),
    ("'S'", "0x01", "0x81", "", "", "8", "0", "-115"), ("'S'", "0x01", "0x81", "", "", "8", "0", "-115"),
    ("'C'", "0x01", "0x81", "", "", "2", "2", "0"), ("'C'", "0x01", "0x81", "", "", "0", "0", "-2"),
    # GET_REPORT and GET_DESCRIPTOR(Report): tshark knows interface 0 is HID (from the configuration) and
    # dissects their bRequest as usbhid.setup.bRequest
    ("'S'", "0x02", "0x80", "0xa1", "", "3", "0", "-115"), ("'C'", "0x02", "0x80", "", "", "3", "3", "0"),
    ("'S'", "0x02", "0x80", "0x81", "", "7", "0", "-115"), ("'C'", "0x02", "0x80", "", "", "7", "7", "0"),
]


def _row(r: dict[str, str]) -> tuple[str, ...]:
    return (r["usb.urb_type"], r["usb.transfer_type"], r["usb.endpoint_address"], r["usb.bmRequestType"],
            r["usb.setup.bRequest"], r["usb.urb_len"], r["usb.data_len"], r["usb.urb_status"])


def test_export_is_what_tshark_lists(fixture_session: Session, tmp_path: Path) -> None:
    out = tmp_path / "s.pcapng"
    summary = export_pcapng(fixture_session, out)
    assert summary.packets == len(EXPECTED) and summary.events == 17
    assert summary.skipped == {"no URB (open, close, claim, abort, reset, serial line calls)": 2,
                               "failed before the bus (kIOReturnBadArgument)": 1}
    rows = tshark_rows(out)
    assert [_row(r) for r in rows] == EXPECTED
    assert {r["usb.device_address"] for r in rows} == {"7"} and {r["usb.bus_id"] for r in rows} == {"3"}
    assert tshark_malformed(out) == ""
    # S and C share their URB id; every URB id is one transfer
    ids = [r["usb.urb_id"] for r in rows]
    assert all(ids.count(i) == 2 for i in ids) and len(set(ids)) == 12
    # descriptors dissected: the device descriptor's idVendor, the configuration's descriptor types
    assert rows[1]["usb.bDescriptorType"] == "0x01" and rows[1]["usb.idVendor"] == "0x1d8d"
    assert rows[1]["usb.idProduct"] == "0x0101"
    assert rows[3]["usb.bDescriptorType"] == "0x02,0x04,0x21,0x05,0x05"
    # setup fields and timestamps
    assert (rows[6]["usb.setup.wValue"], rows[6]["usb.setup.wIndex"], rows[6]["usb.setup.wLength"]) == ("0x0002", "3", "3")
    # data: OUT on the Submit, IN on the Complete, bytes as recorded
    raw = tshark_raw(out)
    assert raw[6][64:] == bytes.fromhex("aabbcc") and raw[7][64:] == b""
    assert raw[11][64:] == bytes.fromhex("0000040000000000")
    assert raw[12][64:] == b"\x01"
    assert raw[20][40:48] == bytes.fromhex("a101030300000300")  # GET_REPORT(Feature, ID 3), wLength 2 + ID byte
    assert raw[21][64:] == bytes.fromhex("030a0b")  # with its report-ID byte
    assert raw[22][40:48] == bytes.fromhex("8106002200000700")  # GET_DESCRIPTOR(Report) of interface 0
    assert raw[3][64:] == bytes.fromhex(CONFIG_DESCRIPTOR)
    packets = read_pcapng(out)
    assert packets[0].timestamp_ns == 1_796_305_500_010_000_000
    assert packets[1].timestamp_ns == 1_796_305_500_010_200_000  # t + dt


def test_export_interface_types_come_from_the_configuration(tmp_path: Path) -> None:
    """Without a configuration descriptor in the session, a non-control endpoint is bulk."""
    events = [usb_open(), {"t": 0.1, "op": "read", "endpoint": 0x81, "length": 4, "timeout": 0, "data": "01"},
              {"t": 0.2, "op": "write", "endpoint": 0x02, "data": "02", "timeout": 0, "length": 1}]
    out = tmp_path / "bulk.pcapng"
    export_pcapng(write_session(tmp_path / "bulk.jsonl", events), out)
    assert {r["usb.transfer_type"] for r in tshark_rows(out)} == {"0x03"}


def test_export_hid_transport(tmp_path: Path) -> None:
    """hid:// calls as they are on the wire: interrupt IN, GET/SET_REPORT, GET_DESCRIPTOR(Report);
    an output report without a known interrupt OUT endpoint is SET_REPORT(Output)."""
    events = [usb_open("hid://1d8d:0101", bus=None, scheme="hid", interface=2),
              {"t": 0.1, "op": "read", "endpoint": 0x81, "length": 64, "timeout": 10, "data": "0100"},
              {"t": 0.2, "op": "get_report", "report_type": 2, "report_id": 0, "length": 4, "data": "01020304"},
              {"t": 0.3, "op": "set_report", "report_type": 2, "report_id": 5, "data": "aa", "length": 1},
              {"t": 0.4, "op": "set_report", "report_type": 1, "report_id": 0, "data": "07", "length": 1},
              {"t": 0.5, "op": "write", "endpoint": 1, "data": "0003", "timeout": 10, "length": 2},
              {"t": 0.6, "op": "report_descriptor", "interface": None, "data": "05010906a101c0"}]
    out = tmp_path / "hid.pcapng"
    export_pcapng(write_session(tmp_path / "hid.jsonl", events), out)
    rows = tshark_rows(out)
    subs = [(r["usb.transfer_type"], r["usb.endpoint_address"], r["usb.bmRequestType"], r["usb.setup.bRequest"],
             r["usb.setup.wValue"], r["usb.setup.wIndex"], r["usb.setup.wLength"]) for r in rows[::2]]
    assert subs == [
        ("0x01", "0x81", "", "", "", "", ""),
        ("0x02", "0x80", "0xa1", "1", "0x0300", "2", "4"),
        ("0x02", "0x00", "0x21", "9", "0x0305", "2", "2"),
        ("0x02", "0x00", "0x21", "9", "0x0200", "2", "1"),
        ("0x02", "0x00", "0x21", "9", "0x0200", "2", "1"),  # hid write: report ID 0 is not on the wire
        ("0x02", "0x80", "0x81", "6", "0x2200", "2", "7"),
    ]
    assert {r["usb.bus_id"] for r in rows} == {"0"} and {r["usb.device_address"] for r in rows} == {"1"}
    raw = tshark_raw(out)
    assert raw[4][64:] == b"\x05\xaa" and raw[8][64:] == b"\x03" and raw[11][64:] == bytes.fromhex("05010906a101c0")


def test_export_hid_output_reports_use_the_interrupt_out_endpoint_when_known(tmp_path: Path) -> None:
    events = [usb_open("usb://1d8d:0101", scheme="hid", interface=0),
              {"t": 0.01, "op": "control", "bmRequestType": 0x80, "bRequest": 6, "wValue": 0x0200, "wIndex": 0,
               "wLength": 255, "in": CONFIG_DESCRIPTOR, "length": len(CONFIG_DESCRIPTOR) // 2},
              {"t": 0.1, "op": "set_report", "report_type": 1, "report_id": 0, "data": "07", "length": 1}]
    out = tmp_path / "hid2.pcapng"
    export_pcapng(write_session(tmp_path / "hid2.jsonl", events), out)
    rows = tshark_rows(out)
    assert (rows[2]["usb.transfer_type"], rows[2]["usb.endpoint_address"]) == ("0x01", "0x02")


def test_export_serial_transport_is_bulk(tmp_path: Path) -> None:
    events = [usb_open("serial+loop://", bus=None, scheme="serial"),
              {"t": 0.1, "op": "configure", "baudrate": 115200},
              {"t": 0.2, "op": "write", "endpoint": 0x02, "data": "6869", "timeout": 10, "length": 2},
              {"t": 0.3, "op": "read", "endpoint": 0x81, "length": 4096, "timeout": 10, "data": "6869"}]
    out = tmp_path / "serial.pcapng"
    summary = export_pcapng(write_session(tmp_path / "serial.jsonl", events), out)
    assert summary.packets == 4
    assert [(r["usb.transfer_type"], r["usb.endpoint_address"], r["usb.urb_len"]) for r in tshark_rows(out)] == [
        ("0x03", "0x02", "2"), ("0x03", "0x02", "2"), ("0x03", "0x81", "4096"), ("0x03", "0x81", "2")]


def test_no_device_is_a_submission_error(tmp_path: Path) -> None:
    events = [usb_open(), {"t": 0.1, "op": "read", "endpoint": 0x81, "length": 4, "timeout": 0,
                           "status": "kIOReturnNoDevice", "error": "gone"}]
    out = tmp_path / "gone.pcapng"
    export_pcapng(write_session(tmp_path / "gone.jsonl", events), out)
    assert [(r["usb.urb_type"], r["usb.urb_status"]) for r in tshark_rows(out)] == [("'E'", "-19")]
    s = import_pcapng(out)
    assert [(e.op, e.status) for e in s.events] == [("open", "kIOReturnSuccess"), ("read", "kIOReturnNoDevice")]


# ------------------------------------------------------------------------------------ import
def _transfers(session: Session) -> list[tuple[Any, ...]]:
    """Each record's wire content: what export then import must keep."""
    packets, _ = session_packets(session)
    return [(p.type, p.xfer_type, p.epnum, p.devnum, p.busnum, p.setup if p.has_setup else None, p.status,
             p.length, p.data, p.timestamp_ns) for p in packets]


def test_export_then_import_gives_the_same_transfers(fixture_session: Session, tmp_path: Path) -> None:
    out = tmp_path / "s.pcapng"
    export_pcapng(fixture_session, out)
    back = import_pcapng(out, urls={"3.7": "usb://1d8d:0101"})
    assert back.complaints == []
    assert _transfers(back) == _transfers(fixture_session)
    again = tmp_path / "again.pcapng"
    export_pcapng(back, again)
    assert out.read_bytes() == again.read_bytes()
    dev = back.devices[0]
    assert dev.url == "usb://1d8d:0101"
    assert dev.info == {"url": "usb://1d8d:0101", "scheme": "usbmon", "idVendor": 0x1D8D, "idProduct": 0x0101,
                        "bus": 3, "address": 7}
    ops = [e.op for e in back.events]
    assert ops == ["open", "control", "control", "set_configuration", "control", "control", "read", "write", "read",
                   "submit", "submit", "complete", "complete", "control", "control"]
    by_op = {e.seq: e for e in back.events}
    assert by_op[5].status == "kUSBHostReturnPipeStalled" and "-EPIPE" in (by_op[5].error or "")
    assert by_op[8].status == "kIOReturnTimeout" and by_op[12].status == "kIOReturnAborted"
    assert by_op[6].fields == {"endpoint": 0x81, "length": 8, "timeout": 0, "data": "0000040000000000"}
    # what was written is a valid session file
    text = dumps_session(back)
    (tmp_path / "back.jsonl").write_text(text)
    assert dumps_session(load_session(tmp_path / "back.jsonl")) == text


def test_import_filters_devices_and_complains(tmp_path: Path) -> None:
    def rec(**kw: Any) -> bytes:
        return UsbmonPacket(**kw).pack()

    setup = bytes.fromhex("8006000100001200")
    data = (_shb() + _idb(220) + _idb(249)
            + _epb(rec(id=9, type="C", xfer_type=3, epnum=0x81, devnum=2, busnum=1, data=b"x"), 1)  # no Submit
            + _epb(rec(id=1, type="S", xfer_type=2, epnum=0x80, devnum=2, busnum=1, flag_setup=0, setup=setup,
                       length=18, flag_data=60), 2)
            + _epb(rec(id=1, type="C", xfer_type=2, epnum=0x80, devnum=2, busnum=1, length=18,
                       data=b"\x12\x01" + bytes(16)), 3)
            + _epb(rec(id=1, type="S", xfer_type=3, epnum=0x02, devnum=5, busnum=1, length=2, data=b"ab"), 4)
            + _epb(b"usbpcap", 5, iface=1)
            + _epb(rec(id=7, type="S", xfer_type=1, epnum=0x81, devnum=2, busnum=1, length=8, flag_data=60), 6))
    s = import_pcapng(data, devices=["1.2"])
    assert [d.url for d in s.devices] == ["usbmon://1.2"]
    assert [e.op for e in s.events] == ["open", "control", "submit"]  # the pending interrupt IN is a submit
    assert any("Complete records without their Submit" in c for c in s.complaints)
    assert any("link type 249 (Windows USBPcap" in c for c in s.complaints)
    everything = import_pcapng(data)
    assert [d.url for d in everything.devices] == ["usbmon://1.2", "usbmon://1.5"]
    with pytest.raises(DecodeError, match="BUS.DEVICE"):
        import_pcapng(data, devices=["1:2"])


def test_import_makes_overlapping_transfers_asynchronous(tmp_path: Path) -> None:
    """usbhid keeps an interrupt IN pending while control transfers run: it becomes submit/complete."""
    def rec(**kw: Any) -> bytes:
        return UsbmonPacket(busnum=1, devnum=3, **kw).pack()

    setup = bytes.fromhex("a101000100000100")
    data = (_shb() + _idb(220)
            + _epb(rec(id=1, type="S", xfer_type=1, epnum=0x81, length=8, flag_data=60), 1000)
            + _epb(rec(id=2, type="S", xfer_type=2, epnum=0x80, flag_setup=0, setup=setup, length=1,
                       flag_data=60), 2000)
            + _epb(rec(id=2, type="C", xfer_type=2, epnum=0x80, length=1, data=b"\x07"), 3000)
            + _epb(rec(id=1, type="C", xfer_type=1, epnum=0x81, length=2, data=b"\x01\x02"), 4000)
            + _epb(rec(id=3, type="S", xfer_type=3, epnum=0x02, length=2, data=b"ok"), 5000)
            + _epb(rec(id=3, type="C", xfer_type=3, epnum=0x02, length=2, flag_data=62), 6000))
    s = import_pcapng(data)
    assert [(e.op, e.t) for e in s.events] == [("open", 0.001), ("submit", 0.001), ("control", 0.002),
                                               ("complete", 0.004), ("write", 0.005)]
    assert s.events[3].fields == {"id": 0, "endpoint": 0x81, "actual_length": 2, "data": "0102"}
    assert s.events[2].fields["in"] == "07" and s.events[4].fields["length"] == 2


def test_recorded_sim_session_exports_and_imports(tmp_path: Path) -> None:
    """A real recording of sim:// devices (dkproto.transport.record): tshark lists its transfers; the
    import gives them back; the streaming sink writes the same records."""
    from dkproto.transport import open_transport
    from dkproto.transport.record import recording
    from dkproto.usb.read import read_descriptor_set

    path = tmp_path / "rec.jsonl"
    with recording(path, argv=["test"]), open_transport("sim://loopback") as t:
        read_descriptor_set(t)
        t.set_configuration(1)
        t.write(0x02, b"hello")
        assert t.read(0x81, 64, 100) == b"hello"
        t.control_transfer(0x40, 0x01, 0, 0, b"abc")
        assert t.control_transfer(0xC0, 0x02, 0, 0, 16) == b"abc"
        with pytest.raises(DkError):
            t.control_transfer(0xC0, 0x77, 0, 0, 4)
    session = load_session(path)
    out = tmp_path / "rec.pcapng"
    export_pcapng(session, out)
    rows = tshark_rows(out)
    moving = [e for e in session.events if e.op not in ("open", "close")]
    assert len(rows) == 2 * len(moving)
    for e, (s_row, c_row) in zip(moving, zip(rows[::2], rows[1::2])):
        assert (s_row["usb.urb_type"], c_row["usb.urb_type"]) == ("'S'", "'C'")
        assert s_row["usb.urb_id"] == c_row["usb.urb_id"]
        if e.op == "control":
            assert int(s_row["usb.bmRequestType"], 16) == e.fields["bmRequestType"]
            assert int(s_row["usb.setup.bRequest"]) == e.fields["bRequest"]
        elif e.op in ("read", "write"):
            assert int(s_row["usb.endpoint_address"], 16) == e.fields["endpoint"]
            assert s_row["usb.transfer_type"] == "0x03"  # the loopback's configuration says bulk
        expected_status = "0" if e.ok else str(status_for_ioreturn(e.code))
        assert c_row["usb.urb_status"] == expected_status
    assert [r["usb.idVendor"] for r in rows if r["usb.idVendor"]] == ["0x1209"]
    back = import_pcapng(out)
    assert _transfers(back) == _transfers(session)
    # the recorder's sink: the same records, fed one event at a time
    sink_out = tmp_path / "sink.pcapng"
    with PcapngSessionSink(sink_out, start_ns=1_796_305_500_000_000_000) as sink:
        for e in session.events:
            sink.append({"t": e.t, "dt": e.dt, "dev": e.dev, "op": e.op, **e.fields, "status": e.status})
        assert sink.events == len(session.events) and sink.now() >= 0
    assert [(r["usb.urb_type"], r["usb.transfer_type"], r["usb.endpoint_address"], r["usb.urb_len"],
             r["usb.data_len"], r["usb.urb_status"]) for r in tshark_rows(sink_out)] == [
        (r["usb.urb_type"], r["usb.transfer_type"], r["usb.endpoint_address"], r["usb.urb_len"],
         r["usb.data_len"], r["usb.urb_status"]) for r in rows]


def test_capture_info_summary(fixture_session: Session, tmp_path: Path) -> None:
    out = tmp_path / "s.pcapng"
    export_pcapng(fixture_session, out)
    info = capture_info(out)
    assert (info.sections, info.packets, info.linktypes) == (1, 24, {220: 24})
    (d,) = info.devices
    assert (d.bus, d.address, d.idVendor, d.idProduct, d.records) == (3, 7, 0x1D8D, 0x0101, 24)
    assert d.transfers == {"control IN": 5, "control OUT": 2, "interrupt IN": 4, "interrupt OUT": 1}
    assert d.errors == {"-EPIPE": 1, "-ETIMEDOUT": 1, "-ENOENT": 1}


def test_import_survives_inconsistent_records() -> None:
    """Found by fuzzing: a Complete stamped before its Submit, OUT data longer than its length, a
    4 GiB length, an 'E' record with status 0, timestamps 2^62 ns apart: a valid session, with complaints."""
    def rec(**kw: Any) -> bytes:
        return UsbmonPacket(busnum=1, devnum=3, **kw).pack()

    data = (_shb() + _idb(220, tsresol=9)
            + _epb(rec(id=1, type="S", xfer_type=3, epnum=0x81, length=8, flag_data=60), 5000)
            + _epb(rec(id=2, type="S", xfer_type=3, epnum=0x82, length=8, flag_data=60), 5001)
            + _epb(rec(id=1, type="C", xfer_type=3, epnum=0x81, length=2, data=b"ab"), 4000)
            + _epb(rec(id=3, type="S", xfer_type=3, epnum=0x02, length=1, data=b"toolong"), 6000)
            + _epb(rec(id=3, type="C", xfer_type=3, epnum=0x02, length=1, flag_data=62), 7000)
            + _epb(rec(id=4, type="S", xfer_type=3, epnum=0x02, length=0xFFFFFFFF, data=b"x"), 8000)
            + _epb(rec(id=5, type="E", xfer_type=2, epnum=0x80, flag_setup=0, setup=bytes(8)), 9000)
            + _epb(rec(id=2, type="C", xfer_type=3, epnum=0x82, length=1, data=b"z"), 1 << 62))
    s = import_pcapng(data)
    assert [e.op for e in s.events] == ["open", "read", "submit", "submit", "complete", "control", "complete"]
    assert s.events[1].dt == 0  # its Complete is stamped before its Submit
    assert s.events[3].fields["out"] == "74"  # cut to its length
    assert s.events[5].status == "kIOReturnError"
    assert s.events[6].t == 1e9
    assert any("more than a session holds" in c for c in s.complaints)
    assert any("set to 1e+09 s" in c for c in s.complaints)
