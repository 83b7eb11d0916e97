"""The one home of USB constants: descriptor types, class codes, requests, speeds, LANGIDs.

Values and names follow USB 2.0 chapter 9 (tables 9-4, 9-5), USB 3.2 chapter 9 (table 9-6)
and the usb.org "Defined Class Codes" page. Enum members are UPPER_CASE; the spec's own
display names are in the ``*_NAMES`` tables and the ``name_of`` helpers.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CLASS_NAMES",
    "DESCRIPTOR_TYPE_NAMES",
    "LANGID_NAMES",
    "DescriptorType",
    "DeviceCapabilityType",
    "Direction",
    "Recipient",
    "RequestType",
    "Speed",
    "StandardRequest",
    "SynchronizationType",
    "TransferType",
    "USBClass",
    "UsageType",
    "class_name",
    "descriptor_type_name",
    "langid_name",
]


class DescriptorType(IntEnum):
    """``bDescriptorType`` values (USB 2.0 table 9-5, USB 3.2 table 9-6, class specs)."""

    DEVICE = 0x01
    CONFIGURATION = 0x02
    STRING = 0x03
    INTERFACE = 0x04
    ENDPOINT = 0x05
    DEVICE_QUALIFIER = 0x06
    OTHER_SPEED_CONFIGURATION = 0x07
    INTERFACE_POWER = 0x08
    OTG = 0x09
    DEBUG = 0x0A
    INTERFACE_ASSOCIATION = 0x0B
    BOS = 0x0F
    DEVICE_CAPABILITY = 0x10
    HID = 0x21
    HID_REPORT = 0x22
    HID_PHYSICAL = 0x23
    CS_INTERFACE = 0x24
    CS_ENDPOINT = 0x25
    HUB = 0x29
    SUPERSPEED_HUB = 0x2A
    SUPERSPEED_USB_ENDPOINT_COMPANION = 0x30
    SUPERSPEEDPLUS_ISOCHRONOUS_ENDPOINT_COMPANION = 0x31


DESCRIPTOR_TYPE_NAMES: dict[int, str] = {
    0x01: "Device",
    0x02: "Configuration",
    0x03: "String",
    0x04: "Interface",
    0x05: "Endpoint",
    0x06: "Device Qualifier",
    0x07: "Other Speed Configuration",
    0x08: "Interface Power",
    0x09: "OTG",
    0x0A: "Debug",
    0x0B: "Interface Association",
    0x0F: "BOS",
    0x10: "Device Capability",
    0x21: "HID / class functional",
    0x22: "HID Report",
    0x23: "HID Physical",
    0x24: "Class-specific Interface",
    0x25: "Class-specific Endpoint",
    0x29: "Hub",
    0x2A: "SuperSpeed Hub",
    0x30: "SuperSpeed Endpoint Companion",
    0x31: "SuperSpeedPlus Isochronous Endpoint Companion",
}


def descriptor_type_name(value: int) -> str:
    """Display name of a ``bDescriptorType`` ("Interface", "Vendor-specific 0xff")."""
    name = DESCRIPTOR_TYPE_NAMES.get(value)
    if name:
        return name
    if 0x40 <= value:
        return f"Vendor-specific 0x{value:02x}"
    return f"Unknown 0x{value:02x}"


class DeviceCapabilityType(IntEnum):
    """``bDevCapabilityType`` of a BOS device capability (USB 3.2 table 9-14)."""

    WIRELESS_USB = 0x01
    USB_20_EXTENSION = 0x02
    SUPERSPEED_USB = 0x03
    CONTAINER_ID = 0x04
    PLATFORM = 0x05
    POWER_DELIVERY_CAPABILITY = 0x06
    BATTERY_INFO_CAPABILITY = 0x07
    PD_CONSUMER_PORT_CAPABILITY = 0x08
    PD_PROVIDER_PORT_CAPABILITY = 0x09
    SUPERSPEED_PLUS = 0x0A
    PRECISION_TIME_MEASUREMENT = 0x0B
    WIRELESS_USB_EXT = 0x0C
    BILLBOARD = 0x0D
    AUTHENTICATION = 0x0E
    BILLBOARD_EX = 0x0F
    CONFIGURATION_SUMMARY = 0x10
    FWSTATUS_CAPABILITY = 0x11


class USBClass(IntEnum):
    """Base class codes (usb.org Defined Class Codes)."""

    PER_INTERFACE = 0x00
    AUDIO = 0x01
    CDC = 0x02
    HID = 0x03
    PHYSICAL = 0x05
    IMAGE = 0x06
    PRINTER = 0x07
    MASS_STORAGE = 0x08
    HUB = 0x09
    CDC_DATA = 0x0A
    SMART_CARD = 0x0B
    CONTENT_SECURITY = 0x0D
    VIDEO = 0x0E
    PERSONAL_HEALTHCARE = 0x0F
    AUDIO_VIDEO = 0x10
    BILLBOARD = 0x11
    USB_TYPE_C_BRIDGE = 0x12
    BULK_DISPLAY = 0x13
    MCTP = 0x14
    I3C = 0x3C
    DIAGNOSTIC = 0xDC
    WIRELESS_CONTROLLER = 0xE0
    MISCELLANEOUS = 0xEF
    APPLICATION_SPECIFIC = 0xFE
    VENDOR_SPECIFIC = 0xFF


CLASS_NAMES: dict[int, str] = {
    0x00: "(Defined at Interface level)",
    0x01: "Audio",
    0x02: "Communications",
    0x03: "Human Interface Device",
    0x05: "Physical Interface Device",
    0x06: "Imaging",
    0x07: "Printer",
    0x08: "Mass Storage",
    0x09: "Hub",
    0x0A: "CDC Data",
    0x0B: "Chip/SmartCard",
    0x0D: "Content Security",
    0x0E: "Video",
    0x0F: "Personal Healthcare",
    0x10: "Audio/Video",
    0x11: "Billboard",
    0x12: "Type-C Bridge",
    0x13: "Bulk Display",
    0x14: "MCTP",
    0x3C: "I3C",
    0xDC: "Diagnostic",
    0xE0: "Wireless",
    0xEF: "Miscellaneous Device",
    0xFE: "Application Specific Interface",
    0xFF: "Vendor Specific Class",
}


def class_name(value: int | None) -> str:
    """Display name of a class code ("Audio", "Vendor Specific Class")."""
    if value is None:
        return ""
    return CLASS_NAMES.get(value, f"Unknown class 0x{value:02x}")


class Direction(IntEnum):
    """Data direction, bit 7 of ``bEndpointAddress`` and ``bmRequestType``."""

    OUT = 0
    IN = 1

    @classmethod
    def from_endpoint_address(cls, address: int) -> Direction:
        """The direction of a ``bEndpointAddress``."""
        return cls.IN if address & 0x80 else cls.OUT


class RequestType(IntEnum):
    """Type field of ``bmRequestType`` (bits 6..5)."""

    STANDARD = 0
    CLASS = 1
    VENDOR = 2
    RESERVED = 3


class Recipient(IntEnum):
    """Recipient field of ``bmRequestType`` (bits 4..0)."""

    DEVICE = 0
    INTERFACE = 1
    ENDPOINT = 2
    OTHER = 3


class StandardRequest(IntEnum):
    """``bRequest`` codes of standard requests (USB 3.2 table 9-5)."""

    GET_STATUS = 0
    CLEAR_FEATURE = 1
    SET_FEATURE = 3
    SET_ADDRESS = 5
    GET_DESCRIPTOR = 6
    SET_DESCRIPTOR = 7
    GET_CONFIGURATION = 8
    SET_CONFIGURATION = 9
    GET_INTERFACE = 10
    SET_INTERFACE = 11
    SYNCH_FRAME = 12
    SET_SEL = 48
    SET_ISOCH_DELAY = 49


class TransferType(IntEnum):
    """Bits 1..0 of an endpoint's ``bmAttributes``."""

    CONTROL = 0
    ISOCHRONOUS = 1
    BULK = 2
    INTERRUPT = 3


class SynchronizationType(IntEnum):
    """Bits 3..2 of an isochronous endpoint's ``bmAttributes``."""

    NONE = 0
    ASYNCHRONOUS = 1
    ADAPTIVE = 2
    SYNCHRONOUS = 3


class UsageType(IntEnum):
    """Bits 5..4 of an endpoint's ``bmAttributes``."""

    DATA = 0
    FEEDBACK = 1
    IMPLICIT_FEEDBACK = 2
    RESERVED = 3


class Speed(IntEnum):
    """Bus speeds, numbered as libusb's ``enum libusb_speed``."""

    UNKNOWN = 0
    LOW = 1
    FULL = 2
    HIGH = 3
    SUPER = 4
    SUPER_PLUS = 5
    SUPER_PLUS_X2 = 6

    @property
    def label(self) -> str:
        """Rate as lsusb -t prints it ("480M")."""
        return {0: "?", 1: "1.5M", 2: "12M", 3: "480M", 4: "5000M", 5: "10000M", 6: "20000M"}[int(self)]


#: The commonest LANGIDs (USB-IF "Language Identifiers" 1.0); others print as hex.
LANGID_NAMES: dict[int, str] = {
    0x0409: "English (United States)",
    0x0809: "English (United Kingdom)",
    0x0C09: "English (Australian)",
    0x1009: "English (Canadian)",
    0x0407: "German (Standard)",
    0x040C: "French (Standard)",
    0x0410: "Italian (Standard)",
    0x0C0A: "Spanish (Modern Sort)",
    0x0411: "Japanese",
    0x0412: "Korean",
    0x0804: "Chinese (PRC)",
    0x0404: "Chinese (Taiwan)",
    0x0419: "Russian",
    0x0416: "Portuguese (Brazil)",
    0x0816: "Portuguese (Standard)",
    0x0413: "Dutch (Netherlands)",
    0x041D: "Swedish",
    0x0406: "Danish",
    0x0414: "Norwegian (Bokmal)",
    0x040B: "Finnish",
    0x0415: "Polish",
    0x0405: "Czech",
    0x040E: "Hungarian",
    0x041F: "Turkish",
    0x0408: "Greek",
    0x040D: "Hebrew",
    0x0401: "Arabic (Saudi Arabia)",
    0x04FF: "HID (Usage Data Descriptor)",
}


def langid_name(value: int) -> str:
    """Display name of a LANGID ("English (United States)")."""
    return LANGID_NAMES.get(value, f"LANGID 0x{value:04x}")
