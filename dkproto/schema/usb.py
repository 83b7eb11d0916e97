"""USB 2.0 / USB 3.2 chapter 9 standard descriptors.

Device, configuration, other-speed configuration, interface, endpoint (7 bytes, and the
9-byte audio variant with ``bRefresh``/``bSynchAddress``), string, LANGID list (string 0),
device qualifier, interface association, OTG, debug, SuperSpeed endpoint companion and
SuperSpeedPlus isochronous endpoint companion. Each is a Construct ``Struct`` whose field
names are spelled as in the spec; the selectors registered here pick them by
``bDescriptorType`` (and ``bLength`` where the spec has two sizes).
"""

from __future__ import annotations

from typing import Any

from construct import Array, Bytes, this

from dkproto import usbids
from dkproto.schema import enums
from dkproto.schema._fields import bcd, f, make_schema
from dkproto.schema.registry import Context, Schema, register_standard

__all__ = [
    "CONFIGURATION",
    "DEBUG",
    "DEVICE",
    "DEVICE_QUALIFIER",
    "ENDPOINT",
    "ENDPOINT_AUDIO",
    "INTERFACE",
    "INTERFACE_ASSOCIATION",
    "LANGID_LIST",
    "OTG",
    "OTG_20",
    "OTHER_SPEED_CONFIGURATION",
    "SSP_ISOC_ENDPOINT_COMPANION",
    "SS_ENDPOINT_COMPANION",
    "STRING",
    "endpoint_attributes",
    "max_packet_size",
]


# -- meanings ---------------------------------------------------------------------------


def _bcd(value: Any, _c: Any) -> str:
    return bcd(value)


def _class(value: Any, _c: Any) -> str:
    return enums.class_name(value)


def _subclass_of(class_field: str) -> Any:
    def meaning(value: Any, c: Any) -> str | None:
        name = usbids.subclass_name(c[class_field], value)
        return None if name in (None, "?") else name

    return meaning


def _protocol_of(class_field: str, subclass_field: str) -> Any:
    def meaning(value: Any, c: Any) -> str | None:
        return usbids.protocol_name(c[class_field], c[subclass_field], value)

    return meaning


def _vendor(value: Any, _c: Any) -> str | None:
    return usbids.vendor_name(value)


def _product(value: Any, c: Any) -> str | None:
    return usbids.product_name(c.idVendor, value)


def _config_attributes(value: Any, _c: Any) -> str:
    parts = ["Self Powered" if value & 0x40 else "Bus Powered"]
    if value & 0x20:
        parts.append("Remote Wakeup")
    if value & 0x10:
        parts.append("Battery Powered")
    if not value & 0x80:
        parts.append("(bit 7 must be set)")
    return ", ".join(parts)


def _max_power(value: Any, _c: Any) -> str:
    return f"{value * 2}mA (units of 2 mA; 8 mA at SuperSpeed)"


def _endpoint_address(value: Any, _c: Any) -> str:
    return f"EP {value & 0x0F} {'IN' if value & 0x80 else 'OUT'}"


def endpoint_attributes(value: int) -> str:
    """``bmAttributes`` of an endpoint as lsusb spells it."""
    kind = value & 3
    parts = [f"Transfer Type {('Control', 'Isochronous', 'Bulk', 'Interrupt')[kind]}"]
    if kind == 1:
        parts.append(f"Synch Type {('None', 'Asynchronous', 'Adaptive', 'Synchronous')[(value >> 2) & 3]}")
    if kind in (1, 3):
        usage = ("Data", "Feedback", "Implicit feedback Data", "Reserved")[(value >> 4) & 3]
        parts.append(f"Usage Type {usage}")
    return ", ".join(parts)


def max_packet_size(value: int) -> str:
    """``wMaxPacketSize`` as lsusb spells it ("1x 64 bytes")."""
    return f"{((value >> 11) & 3) + 1}x {value & 0x7FF} bytes"


def _ep_attributes(value: Any, _c: Any) -> str:
    return endpoint_attributes(value)


def _mps(value: Any, _c: Any) -> str:
    return max_packet_size(value)


def _interval(value: Any, c: Any) -> str | None:
    kind = c.bmAttributes & 3
    if kind in (1, 3):
        return f"{value} (frames at full/low speed; 2^({value}-1) microframes at high speed and above)"
    return None


def _otg_attributes(value: Any, _c: Any) -> str:
    parts = []
    if value & 1:
        parts.append("SRP")
    if value & 2:
        parts.append("HNP")
    if value & 4:
        parts.append("ADP")
    if value & 8:
        parts.append("RSP")
    return ", ".join(parts) or "none"


def _ss_companion_attributes(value: Any, _c: Any) -> str:
    return f"MaxStreams {value & 0x1F} (bulk) / Mult {value & 3} (isochronous); SSP ISO companion {bool(value & 0x80)}"


# -- structs ----------------------------------------------------------------------------

_DEVICE_MEANINGS = {
    "bcdUSB": _bcd,
    "bDeviceClass": _class,
    "bDeviceSubClass": _subclass_of("bDeviceClass"),
    "bDeviceProtocol": _protocol_of("bDeviceClass", "bDeviceSubClass"),
    "idVendor": _vendor,
    "idProduct": _product,
    "bcdDevice": _bcd,
}

DEVICE = make_schema(
    "device",
    "Device Descriptor",
    (
        f("bcdUSB"), f("bDeviceClass"), f("bDeviceSubClass"), f("bDeviceProtocol"), f("bMaxPacketSize0"),
        f("idVendor"), f("idProduct"), f("bcdDevice"), f("iManufacturer"), f("iProduct"),
        f("iSerialNumber"), f("bNumConfigurations"),
    ),
    _DEVICE_MEANINGS,
    "USB 2.0 §9.6.1",
)

_CONFIG_FIELDS = (
    f("wTotalLength"), f("bNumInterfaces"), f("bConfigurationValue"), f("iConfiguration"),
    f("bmAttributes"), f("bMaxPower"),
)
_CONFIG_MEANINGS = {"bmAttributes": _config_attributes, "bMaxPower": _max_power}

CONFIGURATION = make_schema(
    "configuration", "Configuration Descriptor", _CONFIG_FIELDS, _CONFIG_MEANINGS, "USB 2.0 §9.6.3"
)
OTHER_SPEED_CONFIGURATION = make_schema(
    "other_speed_configuration", "Other Speed Configuration Descriptor", _CONFIG_FIELDS, _CONFIG_MEANINGS,
    "USB 2.0 §9.6.4",
)

INTERFACE = make_schema(
    "interface",
    "Interface Descriptor",
    (
        f("bInterfaceNumber"), f("bAlternateSetting"), f("bNumEndpoints"), f("bInterfaceClass"),
        f("bInterfaceSubClass"), f("bInterfaceProtocol"), f("iInterface"),
    ),
    {
        "bInterfaceClass": _class,
        "bInterfaceSubClass": _subclass_of("bInterfaceClass"),
        "bInterfaceProtocol": _protocol_of("bInterfaceClass", "bInterfaceSubClass"),
    },
    "USB 2.0 §9.6.5",
)

_EP_FIELDS = (f("bEndpointAddress"), f("bmAttributes"), f("wMaxPacketSize"), f("bInterval"))
_EP_MEANINGS = {
    "bEndpointAddress": _endpoint_address,
    "bmAttributes": _ep_attributes,
    "wMaxPacketSize": _mps,
    "bInterval": _interval,
}

ENDPOINT = make_schema("endpoint", "Endpoint Descriptor", _EP_FIELDS, _EP_MEANINGS, "USB 2.0 §9.6.6")
ENDPOINT_AUDIO = make_schema(
    "endpoint",
    "Endpoint Descriptor",
    (*_EP_FIELDS, f("bRefresh"), f("bSynchAddress")),
    {**_EP_MEANINGS, "bSynchAddress": lambda v, c: _endpoint_address(v, c) if v else None},
    "USB Audio 1.0 §4.6.1.1 (standard AS isochronous endpoint, 9 bytes)",
)


def _string_text(value: Any, _c: Any) -> str:
    return bytes(value).decode("utf-16-le", errors="replace")


STRING = make_schema(
    "string", "String Descriptor", ("bString" / Bytes(this.bLength - 2),), {"bString": _string_text},
    "USB 2.0 §9.6.7",
)
LANGID_LIST = make_schema(
    "langid_list",
    "String Descriptor 0 (LANGID list)",
    ("wLANGID" / Array((this.bLength - 2) // 2, f("wLANGID").subcon),),
    {"wLANGID": lambda v, c: ", ".join(enums.langid_name(x) for x in v)},
    "USB 2.0 §9.6.7",
)

DEVICE_QUALIFIER = make_schema(
    "device_qualifier",
    "Device Qualifier Descriptor",
    (
        f("bcdUSB"), f("bDeviceClass"), f("bDeviceSubClass"), f("bDeviceProtocol"), f("bMaxPacketSize0"),
        f("bNumConfigurations"), f("bReserved"),
    ),
    {"bcdUSB": _bcd, "bDeviceClass": _class},
    "USB 2.0 §9.6.2",
)

INTERFACE_ASSOCIATION = make_schema(
    "interface_association",
    "Interface Association Descriptor",
    (
        f("bFirstInterface"), f("bInterfaceCount"), f("bFunctionClass"), f("bFunctionSubClass"),
        f("bFunctionProtocol"), f("iFunction"),
    ),
    {
        "bFunctionClass": _class,
        "bFunctionSubClass": _subclass_of("bFunctionClass"),
        "bFunctionProtocol": _protocol_of("bFunctionClass", "bFunctionSubClass"),
    },
    "USB 2.0 ECN Interface Association Descriptor; USB 3.2 §9.6.4",
)

OTG = make_schema("otg", "OTG Descriptor", (f("bmAttributes"),), {"bmAttributes": _otg_attributes},
                  "USB OTG 1.3 §6.4")
OTG_20 = make_schema(
    "otg", "OTG Descriptor", (f("bmAttributes"), f("bcdOTG")), {"bmAttributes": _otg_attributes, "bcdOTG": _bcd},
    "USB OTG and EH 2.0 §6.4",
)

DEBUG = make_schema("debug", "Debug Descriptor", (f("bDebugInEndpoint"), f("bDebugOutEndpoint")), {},
                    "USB 2.0 Debug Device Functional Specification")

SS_ENDPOINT_COMPANION = make_schema(
    "ss_endpoint_companion",
    "SuperSpeed USB Endpoint Companion Descriptor",
    (f("bMaxBurst"), f("bmAttributes"), f("wBytesPerInterval")),
    {"bMaxBurst": lambda v, c: f"{v + 1} packets per burst", "bmAttributes": _ss_companion_attributes},
    "USB 3.2 §9.6.7",
)
SSP_ISOC_ENDPOINT_COMPANION = make_schema(
    "ssp_isoc_endpoint_companion",
    "SuperSpeedPlus Isochronous Endpoint Companion Descriptor",
    (f("wReserved"), f("dwBytesPerInterval")),
    {},
    "USB 3.2 §9.6.8",
)


# -- selectors --------------------------------------------------------------------------

def _fixed(schema: Schema) -> Any:
    def select(_t: int, _raw: bytes, _ctx: Context) -> Schema:
        return schema

    return select


def _select_endpoint(_t: int, raw: bytes, _ctx: Context) -> Schema:
    return ENDPOINT_AUDIO if len(raw) >= 9 else ENDPOINT


def _select_string(_t: int, _raw: bytes, ctx: Context) -> Schema:
    return STRING


def _select_otg(_t: int, raw: bytes, _ctx: Context) -> Schema:
    return OTG_20 if len(raw) >= 5 else OTG


register_standard(0x01, _fixed(DEVICE))
register_standard(0x02, _fixed(CONFIGURATION))
register_standard(0x03, _select_string)
register_standard(0x04, _fixed(INTERFACE))
register_standard(0x05, _select_endpoint)
register_standard(0x06, _fixed(DEVICE_QUALIFIER))
register_standard(0x07, _fixed(OTHER_SPEED_CONFIGURATION))
register_standard(0x09, _select_otg)
register_standard(0x0A, _fixed(DEBUG))
register_standard(0x0B, _fixed(INTERFACE_ASSOCIATION))
register_standard(0x30, _fixed(SS_ENDPOINT_COMPANION))
register_standard(0x31, _fixed(SSP_ISOC_ENDPOINT_COMPANION))

#: Field names of each standard descriptor exactly as the spec tables print them (tests
#: check the structs against this list, so a misspelling such as ``bDeviceSubclass`` fails).
SPEC_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "device": ("bLength", "bDescriptorType", "bcdUSB", "bDeviceClass", "bDeviceSubClass", "bDeviceProtocol",
               "bMaxPacketSize0", "idVendor", "idProduct", "bcdDevice", "iManufacturer", "iProduct",
               "iSerialNumber", "bNumConfigurations"),
    "configuration": ("bLength", "bDescriptorType", "wTotalLength", "bNumInterfaces", "bConfigurationValue",
                      "iConfiguration", "bmAttributes", "bMaxPower"),
    "interface": ("bLength", "bDescriptorType", "bInterfaceNumber", "bAlternateSetting", "bNumEndpoints",
                  "bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol", "iInterface"),
    "endpoint": ("bLength", "bDescriptorType", "bEndpointAddress", "bmAttributes", "wMaxPacketSize", "bInterval"),
    "device_qualifier": ("bLength", "bDescriptorType", "bcdUSB", "bDeviceClass", "bDeviceSubClass",
                         "bDeviceProtocol", "bMaxPacketSize0", "bNumConfigurations", "bReserved"),
    "interface_association": ("bLength", "bDescriptorType", "bFirstInterface", "bInterfaceCount", "bFunctionClass",
                              "bFunctionSubClass", "bFunctionProtocol", "iFunction"),
    "ss_endpoint_companion": ("bLength", "bDescriptorType", "bMaxBurst", "bmAttributes", "wBytesPerInterval"),
    "ssp_isoc_endpoint_companion": ("bLength", "bDescriptorType", "wReserved", "dwBytesPerInterval"),
}
