"""HID class descriptor (type 0x21) found after a HID interface descriptor.

Layout: Device Class Definition for HID 1.11, §6.2.1 "HID Descriptor". The report and physical
descriptors it announces are fetched separately (GET_DESCRIPTOR to the interface) and are
decoded by the HID issue's report-descriptor parser, not here.

A HID descriptor also turns up in vendor-class interfaces (0xFF) of devices that speak HID
under a vendor class (e.g. fingerprint readers); it is decoded there too when its bytes have
the HID shape (``bLength == 6 + 3 * bNumDescriptors`` and a known class descriptor type).
"""

from __future__ import annotations

from construct import Array, Int8ul, Int16ul, Struct, this

from dkproto.schema.classcommon import EXTRA, bcd, enum
from dkproto.schema.registry import Context, Schema, register_class

__all__ = ["HID_COUNTRY_CODES", "HID_DESCRIPTOR", "HIDDescriptor", "select_hid"]

HID_CLASS = 0x03
HID_DESCRIPTOR_TYPE = 0x21

#: HID 1.11 §7.1: class descriptor types announced in the HID descriptor.
HID_CLASS_DESCRIPTOR_TYPES = {0x21: "HID", 0x22: "Report", 0x23: "Physical"}

#: HID 1.11 §6.2.1, bCountryCode.
HID_COUNTRY_CODES = {
    0: "Not Supported",
    1: "Arabic",
    2: "Belgian",
    3: "Canadian-Bilingual",
    4: "Canadian-French",
    5: "Czech Republic",
    6: "Danish",
    7: "Finnish",
    8: "French",
    9: "German",
    10: "Greek",
    11: "Hebrew",
    12: "Hungary",
    13: "International (ISO)",
    14: "Italian",
    15: "Japan (Katakana)",
    16: "Korean",
    17: "Latin American",
    18: "Netherlands/Dutch",
    19: "Norwegian",
    20: "Persian (Farsi)",
    21: "Poland",
    22: "Portuguese",
    23: "Russia",
    24: "Slovakia",
    25: "Spanish",
    26: "Swedish",
    27: "Swiss/French",
    28: "Swiss/German",
    29: "Switzerland",
    30: "Taiwan",
    31: "Turkish-Q",
    32: "UK",
    33: "US",
    34: "Yugoslavia",
    35: "Turkish-F",
}

#: HID 1.11 §6.2.1. ``descriptors`` holds the bNumDescriptors (bDescriptorType, wDescriptorLength)
#: pairs; the spec prints the first pair inline and the rest as optional repeats.
HIDDescriptor = Struct(
    "bLength" / Int8ul,
    "bDescriptorType" / Int8ul,
    "bcdHID" / Int16ul,
    "bCountryCode" / Int8ul,
    "bNumDescriptors" / Int8ul,
    "descriptors"
    / Array(
        this.bNumDescriptors,
        Struct(
            "bDescriptorType" / Int8ul,
            "wDescriptorLength" / Int16ul,
        ),
    ),
    EXTRA,
)


def _class_descriptors(value: object, _c: object = None) -> str | None:
    if not isinstance(value, list):
        return None
    parts = []
    for d in value:
        name = HID_CLASS_DESCRIPTOR_TYPES.get(d.bDescriptorType, f"type 0x{d.bDescriptorType:02x}")
        parts.append(f"{name} ({d.wDescriptorLength} bytes)")
    return ", ".join(parts) or "(none)"


HID_DESCRIPTOR = Schema(
    key="hid",
    name="HID Descriptor",
    struct=HIDDescriptor,
    meanings={
        "bcdHID": bcd,
        "bCountryCode": enum(HID_COUNTRY_CODES, "Reserved"),
        "descriptors": _class_descriptors,
    },
    spec="HID 1.11 §6.2.1",
)


def looks_like_hid(raw: bytes) -> bool:
    """True when a type-0x21 slice has the HID descriptor's shape (used outside HID interfaces)."""
    if len(raw) < 9 or raw[1] != HID_DESCRIPTOR_TYPE:
        return False
    n = raw[5]
    if n < 1 or len(raw) != 6 + 3 * n:
        return False
    return all(raw[6 + 3 * i] in HID_CLASS_DESCRIPTOR_TYPES for i in range(n))


def select_hid(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    """Selector for interfaces of class 0x03 (HID): the 0x21 descriptor."""
    if descriptor_type == HID_DESCRIPTOR_TYPE:
        return HID_DESCRIPTOR
    return None


def select_hid_in_vendor(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    """Generic selector: a HID-shaped 0x21 descriptor in a vendor-class (0xFF) interface."""
    if descriptor_type == HID_DESCRIPTOR_TYPE and ctx.interface_class == 0xFF and looks_like_hid(raw):
        return HID_DESCRIPTOR
    return None


register_class(HID_CLASS, select_hid)
register_class(None, select_hid_in_vendor)
