"""CDC functional descriptors: CDC 1.2, PSTN 1.2, ISDN 1.2, ECM 1.2, ATM 1.2, WMC 1.1, NCM 1.0, MBIM 1.0."""

from __future__ import annotations

import pytest
from classdesc_corpus import meaning, parse_slice

from dkproto.schema import cdc
from dkproto.schema.registry import Context, lookup

COMM = Context(parent="interface", interface_class=0x02, interface_subclass=0x02, interface_protocol=0x01)
VENDOR = Context(parent="interface", interface_class=0xFF, interface_subclass=0x00, interface_protocol=0x00)
RNDIS = Context(parent="interface", interface_class=0xE0, interface_subclass=0x01, interface_protocol=0x03)


def parse(hexstr: str, ctx: Context = COMM):
    return parse_slice(hexstr, ctx)


#: Spec field names, copied from the spec tables, for every subtype.
SPEC_FIELDS = {
    0x00: ["bcdCDC"],
    0x01: ["bmCapabilities", "bDataInterface"],
    0x02: ["bmCapabilities"],
    0x03: ["bmCapabilities"],
    0x04: ["bRingerVolSteps", "bNumRingerPatterns"],
    0x05: ["bmCapabilities"],
    0x06: ["bControlInterface", "bSubordinateInterface"],
    0x07: ["iCountryCodeRelDate", "wCountryCode"],
    0x08: ["bmCapabilities"],
    0x09: ["bEntityId", "bInterfaceNo", "bOutInterfaceNo", "bmOptions", "bChildId"],
    0x0A: ["bEntityId", "iName", "bChannelIndex", "bPhysicalInterface"],
    0x0B: ["bEntityId", "bProtocol", "bChildId"],
    0x0C: ["bEntityId", "bExtensionCode", "iName", "bChildId"],
    0x0D: ["bmCapabilities"],
    0x0E: ["bmCapabilities"],
    0x0F: [
        "iMACAddress",
        "bmEthernetStatistics",
        "wMaxSegmentSize",
        "wNumberMCFilters",
        "bNumberPowerFilters",
    ],
    0x10: [
        "iEndSystemIdentifier",
        "bmDataCapabilities",
        "bmATMDeviceStatistics",
        "wType2MaxSegmentSize",
        "wType3MaxSegmentSize",
        "wMaxVC",
    ],
    0x11: ["bcdVersion"],
    0x12: ["bcdVersion", "bGUID"],
    0x13: ["bGuidDescriptorType", "bDetailData"],
    0x14: ["bcdVersion", "wMaxCommand"],
    0x15: ["bcdVersion"],
    0x16: ["bcdVersion", "iCommandSet", "bGUID"],
    0x17: ["bGUID", "bDetailData"],
    0x18: ["bcdVersion", "wMaxCommand"],
    0x19: ["bmOBEXRole", "bOBEXServiceUUID", "wOBEXServiceVersion"],
    0x1A: ["bcdNcmVersion", "bmNetworkCapabilities"],
    0x1B: [
        "bcdMBIMVersion",
        "wMaxControlMessage",
        "bNumberFilters",
        "bMaxFilterSize",
        "wMaxSegmentSize",
        "bmNetworkCapabilities",
    ],
    0x1C: ["bcdMBIMExtendedVersion", "bMaxOutstandingCommandMessages", "wMTU"],
}


@pytest.mark.parametrize("subtype", sorted(SPEC_FIELDS))
def test_field_names_follow_the_specs(subtype: int) -> None:
    names = [sc.name for sc in cdc.CDC_SCHEMAS[subtype].struct.subcons]
    assert names == ["bLength", "bDescriptorType", "bDescriptorSubtype", *SPEC_FIELDS[subtype], "extra"]


@pytest.mark.parametrize("subtype", sorted(cdc.CDC_LENGTHS))
def test_each_subtype_round_trips_at_its_spec_length(subtype: int) -> None:
    length = cdc.CDC_LENGTHS[subtype] or max(8, cdc.CDC_MIN_LENGTHS[subtype] + 2)
    raw = bytes([length, 0x24, subtype]) + bytes(range(0x41, 0x41 + length - 3))
    schema, f = parse(raw.hex())
    assert schema.key.startswith("cdc_")
    assert f.bDescriptorSubtype == subtype


def test_acm_serial_port_from_corpus() -> None:
    # STM32 virtual COM port (corpus usb/stm32-virtual-com-port.json)
    s, f = parse("05 24 00 10 01")
    assert (s.key, f.bcdCDC, meaning(s, f, "bcdCDC")) == ("cdc_header", 0x0110, "1.10")
    s, f = parse("05 24 01 00 01")
    assert (s.key, f.bmCapabilities, f.bDataInterface) == ("cdc_call_management", 0, 1)
    s, f = parse("04 24 02 02")
    assert meaning(s, f, "bmCapabilities") == (
        "Set_Line_Coding, Set_Control_Line_State, Get_Line_Coding, Serial_State"
    )
    s, f = parse("05 24 06 00 01")
    assert (s.key, f.bControlInterface, list(f.bSubordinateInterface)) == ("cdc_union", 0, [1])


def test_union_with_several_subordinates() -> None:
    _, f = parse("07 24 06 02 03 04 05")
    assert list(f.bSubordinateInterface) == [3, 4, 5]


def test_ethernet_from_lg_phone() -> None:
    # LG phone CDC-ECM (corpus): lsusb says iMacAddress 14, bmEthernetStatistics 0, wMaxSegmentSize 1514
    s, f = parse("0d 24 0f 0e 00000000 ea05 0000 00")
    assert (f.iMACAddress, f.bmEthernetStatistics, f.wMaxSegmentSize, f.wNumberMCFilters) == (14, 0, 1514, 0)
    assert meaning(s, f, "wMaxSegmentSize") == "1514 bytes"
    assert meaning(s, f, "bmEthernetStatistics") == "(none)"
    assert meaning(s, f, "wNumberMCFilters") == "0 multicast filters, perfect filtering"
    s, f = parse("0d 24 0f 01 03000000 ea05 1080 00")
    assert meaning(s, f, "bmEthernetStatistics") == "XMIT_OK, RCV_OK"
    assert meaning(s, f, "wNumberMCFilters") == "16 multicast filters, imperfect filtering"


def test_ncm() -> None:
    # NCM 1.0 Table 5-2: bcdNcmVersion 1.00,
    # SetEthernetPacketFilter + Get/SetMaxDatagramSize + Get/SetNetAddress
    s, f = parse("06 24 1a 00 01 0b")
    assert (s.key, f.bcdNcmVersion, f.bmNetworkCapabilities) == ("cdc_ncm", 0x0100, 0x0B)
    assert meaning(s, f, "bcdNcmVersion") == "1.00"
    assert meaning(s, f, "bmNetworkCapabilities") == (
        "SetEthernetPacketFilter, Get/SetNetAddress, Get/SetMaxDatagramSize"
    )


def test_mbim_and_mbim_extended() -> None:
    # MBIM 1.0 Table 6-3 / 6-4, values as a typical LTE modem sends them
    s, f = parse("0c 24 1b 00 01 00 10 20 80 dc 05 20")
    assert s.key == "cdc_mbim"
    assert (
        f.bcdMBIMVersion,
        f.wMaxControlMessage,
        f.bNumberFilters,
        f.bMaxFilterSize,
        f.wMaxSegmentSize,
        f.bmNetworkCapabilities,
    ) == (0x0100, 4096, 32, 128, 1500, 0x20)
    assert meaning(s, f, "bmNetworkCapabilities") == "8-byte GetNtbInputSize/SetNtbInputSize"
    assert meaning(s, f, "wMaxControlMessage") == "4096 bytes"
    s, f = parse("08 24 1c 00 01 10 dc 05")
    assert (s.key, f.bcdMBIMExtendedVersion, f.bMaxOutstandingCommandMessages, f.wMTU) == (
        "cdc_mbim_extended",
        0x0100,
        16,
        1500,
    )


def test_country_selection_and_variable_lists() -> None:
    s, f = parse("08 24 07 05 5553 4544")
    assert (f.iCountryCodeRelDate, list(f.wCountryCode)) == (5, [0x5355, 0x4445])
    s, f = parse("09 24 09 01 02 03 01 07 08")
    assert (s.key, list(f.bChildId), meaning(s, f, "bmOptions")) == (
        "cdc_usb_terminal",
        [7, 8],
        "wrapper used",
    )
    s, f = parse("06 24 0b 01 31 02")
    assert (s.key, meaning(s, f, "bProtocol"), list(f.bChildId)) == ("cdc_protocol_unit", "HDLC", [2])
    s, f = parse("07 24 0c 01 80 04 02")
    assert (s.key, f.bExtensionCode, list(f.bChildId)) == ("cdc_extension_unit", 0x80, [2])


def test_pstn_wmc_isdn_layouts() -> None:
    s, f = parse("05 24 04 00 03")
    assert (s.key, meaning(s, f, "bRingerVolSteps"), f.bNumRingerPatterns) == (
        "cdc_telephone_ringer",
        "256 steps",
        3,
    )
    s, f = parse("07 24 05 3f 00 00 00")
    assert meaning(s, f, "bmCapabilities").startswith("interrupted dialtone, ringback")
    s, f = parse("04 24 08 07")
    assert meaning(s, f, "bmCapabilities") == "Simple mode, Standalone mode, Computer Centric mode"
    s, f = parse("04 24 0e 01")
    assert meaning(s, f, "bmCapabilities") == "Intelligent CAPI device"
    mdlm = "15 24 12 00 01" + "ab" * 16
    s, f = parse(mdlm)
    assert (s.key, f.bcdVersion, len(f.bGUID)) == ("cdc_mdlm", 0x0100, 16)
    s, f = parse("06 24 13 00 01 02")
    assert (s.key, f.bGuidDescriptorType, f.bDetailData) == ("cdc_mdlm_detail", 0, b"\x01\x02")
    s, f = parse("16 24 19 01" + "00" * 16 + "0001")
    assert (s.key, meaning(s, f, "bmOBEXRole")) == ("cdc_obex_service_identifier", "server")


def test_unknown_subtype_is_left_raw() -> None:
    assert lookup(0x24, bytes.fromhex("05243010aa"), COMM) is None
    assert lookup(0x24, bytes.fromhex("0524fe10aa"), COMM) is None


def test_vendor_and_rndis_interfaces_need_the_exact_shape() -> None:
    # Qualcomm-style vendor serial ports (corpus usb/simcom-sim7600e-modem.json) and RNDIS (simcom-a7672e)
    for ctx in (VENDOR, RNDIS):
        assert lookup(0x24, bytes.fromhex("0524001001"), ctx) is cdc.CDC_SCHEMAS[0x00]
        assert lookup(0x24, bytes.fromhex("0424020200"[:8]), ctx) is cdc.CDC_SCHEMAS[0x02]
        assert lookup(0x24, bytes.fromhex("0524060001"), ctx) is cdc.CDC_SCHEMAS[0x06]
        assert lookup(0x24, bytes.fromhex("062400100100"), ctx) is None  # header of the wrong length
        assert lookup(0x24, bytes.fromhex("052431aabb"), ctx) is None
        assert lookup(0x24, bytes.fromhex("0424060a"), ctx) is None  # union without a subordinate
    # a wireless controller that is not RNDIS (Bluetooth) is not claimed
    bt = Context(parent="interface", interface_class=0xE0, interface_subclass=0x01, interface_protocol=0x01)
    assert lookup(0x24, bytes.fromhex("0524001001"), bt) is None
    # in a Communications interface a longer-than-spec descriptor is decoded, its tail kept
    s = lookup(0x24, bytes.fromhex("062400100199"), COMM)
    f = s.struct.parse(bytes.fromhex("062400100199"))
    assert f.extra == b"\x99" and s.struct.build(f) == bytes.fromhex("062400100199")
