"""CDC functional descriptors (CS_INTERFACE, type 0x24) of Communications Class interfaces.

Layouts (``bDescriptorSubtype`` in brackets) and where they are defined:

* USB CDC 1.2 §5.2.3: Header [0x00], Union [0x06], Country Selection [0x07], USB Terminal
  [0x09], Network Channel Terminal [0x0A], Protocol Unit [0x0B], Extension Unit [0x0C].
* USB PSTN 1.2 §5.3: Call Management [0x01], Abstract Control Management [0x02], Direct Line
  Management [0x03], Telephone Ringer [0x04], Telephone Call and Line State Reporting
  Capabilities [0x05], Telephone Operational Modes [0x08].
* USB ISDN 1.2 §5.3: Multi-Channel Management [0x0D], CAPI Control Management [0x0E].
* USB ECM 1.2 §5.4: Ethernet Networking [0x0F]. USB ATM 1.2 §5.4: ATM Networking [0x10].
* USB WMC 1.1 §6.1.2 / §6.5: Wireless Handset Control Model [0x11], Mobile Direct Line Model
  [0x12], MDLM Detail [0x13], Device Management Model [0x14], OBEX [0x15], Command Set [0x16],
  Command Set Detail [0x17], Telephone Control Model [0x18], OBEX Service Identifier [0x19].
* USB NCM 1.0 §5.2.1: NCM [0x1A]. USB MBIM 1.0 §6.4 / §6.5: MBIM [0x1B], MBIM Extended [0x1C].

An unknown subtype is not decoded (the walker keeps its bytes raw at its place).

The same functional descriptors are carried by RNDIS interfaces (class 0xE0 subclass 0x01
protocol 0x03, whose Microsoft spec reuses CDC ACM) and by many vendor-class (0xFF) modem
interfaces (Qualcomm-style serial ports); they are decoded there too, but only when the
descriptor has exactly the spec's length for its subtype.
"""

from __future__ import annotations

from typing import Any

from construct import Array, Bytes, Int8ul, Int16ul, Int32ul, this

from dkproto.schema.classcommon import (
    CS_INTERFACE,
    bcd,
    cs_schema,
    enum,
    flags,
    guid,
    hexbytes,
    name_subtypes,
    subtype_of,
    unit,
)
from dkproto.schema.registry import Context, Meaning, Schema, register_class

__all__ = ["CDC_SCHEMAS", "CDC_SUBTYPES", "select_cdc"]

COMMUNICATIONS_CLASS = 0x02
CDC_DATA_CLASS = 0x0A
WIRELESS_CONTROLLER_CLASS = 0xE0
VENDOR_CLASS = 0xFF

#: CDC 1.2 Table 13: bDescriptorSubtype of functional descriptors.
CDC_SUBTYPES = {
    0x00: "Header",
    0x01: "Call Management",
    0x02: "Abstract Control Management",
    0x03: "Direct Line Management",
    0x04: "Telephone Ringer",
    0x05: "Telephone Call and Line State Reporting Capabilities",
    0x06: "Union",
    0x07: "Country Selection",
    0x08: "Telephone Operational Modes",
    0x09: "USB Terminal",
    0x0A: "Network Channel Terminal",
    0x0B: "Protocol Unit",
    0x0C: "Extension Unit",
    0x0D: "Multi-Channel Management",
    0x0E: "CAPI Control Management",
    0x0F: "Ethernet Networking",
    0x10: "ATM Networking",
    0x11: "Wireless Handset Control Model",
    0x12: "Mobile Direct Line Model",
    0x13: "MDLM Detail",
    0x14: "Device Management Model",
    0x15: "OBEX",
    0x16: "Command Set",
    0x17: "Command Set Detail",
    0x18: "Telephone Control Model",
    0x19: "OBEX Service Identifier",
    0x1A: "NCM",
    0x1B: "MBIM",
    0x1C: "MBIM Extended",
}

#: CDC 1.2 Table 19 (data class protocol codes), used by the Protocol Unit's bProtocol.
CDC_DATA_PROTOCOLS = {
    0x00: "No class specific protocol required",
    0x01: "Network Transfer Block",
    0x02: "Network Transfer Block (IP + DSS)",
    0x30: "Physical interface protocol for ISDN BRI (I.430)",
    0x31: "HDLC",
    0x32: "Transparent",
    0x50: "Management protocol for Q.921 data link protocol",
    0x51: "Data link protocol for Q.931",
    0x52: "TEI-multiplexor for Q.921 data link protocol",
    0x90: "Data compression procedures (V.42bis)",
    0x91: "Euro-ISDN protocol control (Q.931)",
    0x92: "V.24 rate adaptation to ISDN (V.120)",
    0x93: "CAPI Commands",
    0xFD: "Host based driver",
    0xFE: "Described by a Protocol Unit functional descriptor",
    0xFF: "Vendor-specific",
}

#: ECM 1.2 Table 3: bmEthernetStatistics bits.
ETHERNET_STATISTICS = dict(
    enumerate(
        [
            "XMIT_OK",
            "RCV_OK",
            "XMIT_ERROR",
            "RCV_ERROR",
            "RCV_NO_BUFFER",
            "DIRECTED_BYTES_XMIT",
            "DIRECTED_FRAMES_XMIT",
            "MULTICAST_BYTES_XMIT",
            "MULTICAST_FRAMES_XMIT",
            "BROADCAST_BYTES_XMIT",
            "BROADCAST_FRAMES_XMIT",
            "DIRECTED_BYTES_RCV",
            "DIRECTED_FRAMES_RCV",
            "MULTICAST_BYTES_RCV",
            "MULTICAST_FRAMES_RCV",
            "BROADCAST_BYTES_RCV",
            "BROADCAST_FRAMES_RCV",
            "RCV_CRC_ERROR",
            "TRANSMIT_QUEUE_LENGTH",
            "RCV_ERROR_ALIGNMENT",
            "XMIT_ONE_COLLISION",
            "XMIT_MORE_COLLISIONS",
            "XMIT_DEFERRED",
            "XMIT_MAX_COLLISIONS",
            "RCV_OVERRUN",
            "XMIT_UNDERRUN",
            "XMIT_HEARTBEAT_FAILURE",
            "XMIT_TIMES_CRS_LOST",
            "XMIT_LATE_COLLISIONS",
        ]
    )
)


def _mc_filters(value: object, _c: object = None) -> str | None:
    if not isinstance(value, int):
        return None
    kind = "imperfect" if value & 0x8000 else "perfect"
    return f"{value & 0x7FFF} multicast filters, {kind} filtering"


def _country_codes(value: object, _c: object = None) -> str | None:
    if not isinstance(value, list):
        return None
    # ISO 3166 codes (CDC 1.2 §5.2.3.3); shown in hex, as the spec writes them
    return ", ".join(f"0x{code:04x}" for code in value) or "(none)"


def _cdc(
    subtype: int,
    key: str,
    spec: str,
    fields: list[Any],
    meanings: dict[str, Meaning] | None = None,
    length: int | None = None,
) -> tuple[int, Schema, int | None]:
    return (
        subtype,
        cs_schema(f"cdc_{key}", f"CDC {CDC_SUBTYPES[subtype]} Functional Descriptor", spec, fields, meanings),
        length,
    )


_GUID = "bGUID" / Bytes(16)

_TABLE = [
    _cdc(0x00, "header", "CDC 1.2 §5.2.3.1", ["bcdCDC" / Int16ul], {"bcdCDC": bcd}, 5),
    _cdc(
        0x01,
        "call_management",
        "PSTN 1.2 §5.3.1 (Table 3)",
        ["bmCapabilities" / Int8ul, "bDataInterface" / Int8ul],
        {
            "bmCapabilities": flags(
                {
                    0: "call management handled by the device",
                    1: "call management over the Data Class interface",
                }
            )
        },
        5,
    ),
    _cdc(
        0x02,
        "acm",
        "PSTN 1.2 §5.3.2 (Table 4)",
        ["bmCapabilities" / Int8ul],
        {
            "bmCapabilities": flags(
                {
                    0: "Set/Clear/Get_Comm_Feature",
                    1: "Set_Line_Coding, Set_Control_Line_State, Get_Line_Coding, Serial_State",
                    2: "Send_Break",
                    3: "Network_Connection",
                }
            )
        },
        4,
    ),
    _cdc(
        0x03,
        "direct_line",
        "PSTN 1.2 §5.3.3 (Table 5)",
        ["bmCapabilities" / Int8ul],
        {
            "bmCapabilities": flags(
                {
                    0: "Pulse_Setup, Send_Pulse, Set_Pulse_Time",
                    1: "Set_Aux_Line_State, Ring_Aux_Jack, Set_Hook_State",
                    2: "requires Pulse_Setup before each dial",
                }
            )
        },
        4,
    ),
    _cdc(
        0x04,
        "telephone_ringer",
        "PSTN 1.2 §5.3.4 (Table 6)",
        ["bRingerVolSteps" / Int8ul, "bNumRingerPatterns" / Int8ul],
        {"bRingerVolSteps": lambda v, c: "256 steps" if v == 0 else f"{v} steps"},
        5,
    ),
    _cdc(
        0x05,
        "telephone_call_state",
        "PSTN 1.2 §5.3.6 (Table 8)",
        ["bmCapabilities" / Int32ul],
        {
            "bmCapabilities": flags(
                {
                    0: "interrupted dialtone",
                    1: "ringback, busy, fast busy",
                    2: "caller ID",
                    3: "incoming distinctive ring",
                    4: "dual tone multi-frequency",
                    5: "line state change notification",
                }
            )
        },
        7,
    ),
    _cdc(
        0x06,
        "union",
        "CDC 1.2 §5.2.3.2",
        ["bControlInterface" / Int8ul, "bSubordinateInterface" / Array(this.bLength - 4, Int8ul)],
    ),
    _cdc(
        0x07,
        "country_selection",
        "CDC 1.2 §5.2.3.3",
        ["iCountryCodeRelDate" / Int8ul, "wCountryCode" / Array((this.bLength - 4) // 2, Int16ul)],
        {"wCountryCode": _country_codes},
    ),
    _cdc(
        0x08,
        "telephone_operational_modes",
        "PSTN 1.2 §5.3.5 (Table 7)",
        ["bmCapabilities" / Int8ul],
        {"bmCapabilities": flags({0: "Simple mode", 1: "Standalone mode", 2: "Computer Centric mode"})},
        4,
    ),
    _cdc(
        0x09,
        "usb_terminal",
        "CDC 1.2 §5.2.3.4",
        [
            "bEntityId" / Int8ul,
            "bInterfaceNo" / Int8ul,
            "bOutInterfaceNo" / Int8ul,
            "bmOptions" / Int8ul,
            "bChildId" / Array(this.bLength - 7, Int8ul),
        ],
        {"bmOptions": flags({0: "wrapper used"}, none="no wrapper")},
    ),
    _cdc(
        0x0A,
        "network_channel",
        "CDC 1.2 §5.2.3.5",
        ["bEntityId" / Int8ul, "iName" / Int8ul, "bChannelIndex" / Int8ul, "bPhysicalInterface" / Int8ul],
        {
            "bPhysicalInterface": lambda v, c: {0: "None", 1: "ISDN"}.get(
                v, "vendor" if v >= 201 else "reserved"
            )
        },
        7,
    ),
    _cdc(
        0x0B,
        "protocol_unit",
        "CDC 1.2 §5.2.3.6",
        ["bEntityId" / Int8ul, "bProtocol" / Int8ul, "bChildId" / Array(this.bLength - 5, Int8ul)],
        {"bProtocol": enum(CDC_DATA_PROTOCOLS, "reserved")},
    ),
    _cdc(
        0x0C,
        "extension_unit",
        "CDC 1.2 §5.2.3.7",
        [
            "bEntityId" / Int8ul,
            "bExtensionCode" / Int8ul,
            "iName" / Int8ul,
            "bChildId" / Array(this.bLength - 6, Int8ul),
        ],
    ),
    _cdc(
        0x0D,
        "multi_channel",
        "ISDN 1.2 §5.3.1",
        ["bmCapabilities" / Int8ul],
        {
            "bmCapabilities": flags(
                {
                    0: "Set/Get/Clear_Unit_Parameter",
                    1: "Clear_Unit_Parameter",
                    2: "unit parameters in non-volatile memory",
                }
            )
        },
        4,
    ),
    _cdc(
        0x0E,
        "capi",
        "ISDN 1.2 §5.3.2",
        ["bmCapabilities" / Int8ul],
        {"bmCapabilities": lambda v, c: "Intelligent CAPI device" if v & 1 else "Simple CAPI device"},
        4,
    ),
    _cdc(
        0x0F,
        "ethernet",
        "ECM 1.2 §5.4 (Table 3)",
        [
            "iMACAddress" / Int8ul,
            "bmEthernetStatistics" / Int32ul,
            "wMaxSegmentSize" / Int16ul,
            "wNumberMCFilters" / Int16ul,
            "bNumberPowerFilters" / Int8ul,
        ],
        {
            "bmEthernetStatistics": flags(ETHERNET_STATISTICS),
            "wMaxSegmentSize": unit("bytes"),
            "wNumberMCFilters": _mc_filters,
        },
        13,
    ),
    _cdc(
        0x10,
        "atm",
        "ATM 1.2 §5.4.1",
        [
            "iEndSystemIdentifier" / Int8ul,
            "bmDataCapabilities" / Int8ul,
            "bmATMDeviceStatistics" / Int8ul,
            "wType2MaxSegmentSize" / Int16ul,
            "wType3MaxSegmentSize" / Int16ul,
            "wMaxVC" / Int16ul,
        ],
        {
            "bmDataCapabilities": flags({1: "ATM data type 1", 2: "ATM data type 2", 3: "ATM data type 3"}),
            "bmATMDeviceStatistics": flags(
                {
                    0: "US_CELLS_SENT",
                    1: "DS_CELLS_RECEIVED",
                    2: "DS_CELLS_USB_CONGESTION",
                    3: "DS_CELLS_AAL5_CRC_ERROR",
                    4: "DS_CELLS_HEC_ERROR",
                    5: "DS_CELLS_HEC_ERROR_CORRECTED",
                }
            ),
            "wType2MaxSegmentSize": unit("bytes"),
            "wType3MaxSegmentSize": unit("bytes"),
        },
        12,
    ),
    _cdc(0x11, "whcm", "WMC 1.1 §6.1.2.2", ["bcdVersion" / Int16ul], {"bcdVersion": bcd}, 5),
    _cdc(
        0x12,
        "mdlm",
        "WMC 1.1 §6.1.2.3",
        ["bcdVersion" / Int16ul, _GUID],
        {"bcdVersion": bcd, "bGUID": guid()},
        21,
    ),
    _cdc(
        0x13,
        "mdlm_detail",
        "WMC 1.1 §6.1.2.4",
        ["bGuidDescriptorType" / Int8ul, "bDetailData" / Bytes(this.bLength - 4)],
        {"bDetailData": hexbytes},
    ),
    _cdc(
        0x14,
        "dmm",
        "WMC 1.1 §6.1.2.5",
        ["bcdVersion" / Int16ul, "wMaxCommand" / Int16ul],
        {"bcdVersion": bcd, "wMaxCommand": unit("bytes")},
        7,
    ),
    _cdc(0x15, "obex", "WMC 1.1 §6.1.2.6", ["bcdVersion" / Int16ul], {"bcdVersion": bcd}, 5),
    _cdc(
        0x16,
        "command_set",
        "WMC 1.1 §6.1.2.7",
        ["bcdVersion" / Int16ul, "iCommandSet" / Int8ul, _GUID],
        {"bcdVersion": bcd, "bGUID": guid()},
        22,
    ),
    _cdc(
        0x17,
        "command_set_detail",
        "WMC 1.1 §6.1.2.8",
        [_GUID, "bDetailData" / Bytes(this.bLength - 19)],
        {"bGUID": guid(), "bDetailData": hexbytes},
    ),
    _cdc(
        0x18,
        "telephone_control_model",
        "WMC 1.1 §6.1.2.9",
        ["bcdVersion" / Int16ul, "wMaxCommand" / Int16ul],
        {"bcdVersion": bcd, "wMaxCommand": unit("bytes")},
        7,
    ),
    _cdc(
        0x19,
        "obex_service_identifier",
        "WMC 1.1 §6.5.2.1",
        ["bmOBEXRole" / Int8ul, "bOBEXServiceUUID" / Bytes(16), "wOBEXServiceVersion" / Int16ul],
        {
            "bmOBEXRole": lambda v, c: "server" if v & 1 else "client",
            "bOBEXServiceUUID": guid(),
            "wOBEXServiceVersion": bcd,
        },
        22,
    ),
    _cdc(
        0x1A,
        "ncm",
        "NCM 1.0 §5.2.1 (Table 5-2)",
        ["bcdNcmVersion" / Int16ul, "bmNetworkCapabilities" / Int8ul],
        {
            "bcdNcmVersion": bcd,
            "bmNetworkCapabilities": flags(
                {
                    0: "SetEthernetPacketFilter",
                    1: "Get/SetNetAddress",
                    2: "Send/GetEncapsulatedCommand",
                    3: "Get/SetMaxDatagramSize",
                    4: "Get/SetCrcMode",
                    5: "8-byte GetNtbInputSize/SetNtbInputSize",
                }
            ),
        },
        6,
    ),
    _cdc(
        0x1B,
        "mbim",
        "MBIM 1.0 §6.4 (Table 6-3)",
        [
            "bcdMBIMVersion" / Int16ul,
            "wMaxControlMessage" / Int16ul,
            "bNumberFilters" / Int8ul,
            "bMaxFilterSize" / Int8ul,
            "wMaxSegmentSize" / Int16ul,
            "bmNetworkCapabilities" / Int8ul,
        ],
        {
            "bcdMBIMVersion": bcd,
            "wMaxControlMessage": unit("bytes"),
            "bMaxFilterSize": unit("bytes"),
            "wMaxSegmentSize": unit("bytes"),
            "bmNetworkCapabilities": flags(
                {3: "Get/SetMaxDatagramSize", 5: "8-byte GetNtbInputSize/SetNtbInputSize"}
            ),
        },
        12,
    ),
    _cdc(
        0x1C,
        "mbim_extended",
        "MBIM 1.0 §6.5 (Table 6-4)",
        ["bcdMBIMExtendedVersion" / Int16ul, "bMaxOutstandingCommandMessages" / Int8ul, "wMTU" / Int16ul],
        {"bcdMBIMExtendedVersion": bcd, "wMTU": unit("bytes")},
        8,
    ),
]

#: bDescriptorSubtype -> Schema.
CDC_SCHEMAS: dict[int, Schema] = {sub: schema for sub, schema, _ in _TABLE}
name_subtypes(CDC_SCHEMAS, CDC_SUBTYPES)
#: bDescriptorSubtype -> the spec's bLength for fixed-size layouts (None: variable).
CDC_LENGTHS: dict[int, int | None] = {sub: length for sub, _, length in _TABLE}
#: Smallest valid bLength of variable-size layouts.
CDC_MIN_LENGTHS: dict[int, int] = {0x06: 5, 0x07: 6, 0x09: 7, 0x0B: 5, 0x0C: 6, 0x13: 4, 0x17: 19}


def select_cdc(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    """Selector for Communications (0x02) and CDC Data (0x0A) interfaces: functional descriptors."""
    if descriptor_type != CS_INTERFACE:
        return None
    sub = subtype_of(raw)
    return CDC_SCHEMAS.get(sub) if sub is not None else None


def _exact_shape(raw: bytes) -> Schema | None:
    sub = subtype_of(raw)
    if sub is None or sub not in CDC_SCHEMAS:
        return None
    length = CDC_LENGTHS[sub]
    if length is not None:
        return CDC_SCHEMAS[sub] if len(raw) == length else None
    if len(raw) < CDC_MIN_LENGTHS[sub]:
        return None
    if sub == 0x07 and len(raw) % 2:
        return None
    return CDC_SCHEMAS[sub]


def select_cdc_rndis(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    """Selector for class 0xE0: RNDIS (subclass 1, protocol 3) carries CDC ACM functional descriptors."""
    if descriptor_type != CS_INTERFACE or (ctx.interface_subclass, ctx.interface_protocol) != (0x01, 0x03):
        return None
    return _exact_shape(raw)


def select_cdc_in_vendor(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    """Generic selector: CDC-shaped functional descriptors in vendor-class (0xFF) interfaces."""
    if descriptor_type != CS_INTERFACE or ctx.interface_class != VENDOR_CLASS:
        return None
    return _exact_shape(raw)


register_class(COMMUNICATIONS_CLASS, select_cdc)
register_class(CDC_DATA_CLASS, select_cdc)
register_class(WIRELESS_CONTROLLER_CLASS, select_cdc_rndis)
register_class(None, select_cdc_in_vendor)
