"""DFU functional descriptor (type 0x21) of a Device Firmware Upgrade interface.

Layout: USB Device Firmware Upgrade 1.1, §4.1.3 "Run-Time DFU Functional Descriptor" (Table
4.2); the DFU-mode descriptor (§4.2.4) has the same layout. DFU 1.0 devices may send 7 bytes
without ``bcdDFUVersion``; the field is then absent.

Type 0x21 is also the HID descriptor: the selector decides by the interface, class 0xFE
(application specific) subclass 0x01 (DFU). A DFU-shaped 0x21 descriptor in a vendor-class
interface (0xFF) that is not HID-shaped is also read as DFU.
"""

from __future__ import annotations

from construct import If, Int8ul, Int16ul, Struct, this

from dkproto.schema.classcommon import EXTRA, bcd, flags, unit
from dkproto.schema.hid import looks_like_hid
from dkproto.schema.registry import Context, Schema, register_class

__all__ = ["DFU_FUNCTIONAL", "DFUFunctionalDescriptor", "select_dfu"]

APPLICATION_SPECIFIC_CLASS = 0xFE
DFU_SUBCLASS = 0x01
DFU_FUNCTIONAL_TYPE = 0x21

#: DFU 1.1 Table 4.2, bmAttributes.
DFU_ATTRIBUTES = {
    0: "bitCanDnload",
    1: "bitCanUpload",
    2: "bitManifestationTolerant",
    3: "bitWillDetach",
}

DFUFunctionalDescriptor = Struct(
    "bLength" / Int8ul,
    "bDescriptorType" / Int8ul,
    "bmAttributes" / Int8ul,
    "wDetachTimeOut" / Int16ul,
    "wTransferSize" / Int16ul,
    "bcdDFUVersion" / If(this.bLength >= 9, Int16ul),
    EXTRA,
)

DFU_FUNCTIONAL = Schema(
    key="dfu_functional",
    name="DFU Functional Descriptor",
    struct=DFUFunctionalDescriptor,
    meanings={
        "bmAttributes": flags(DFU_ATTRIBUTES),
        "wDetachTimeOut": unit("ms"),
        "wTransferSize": unit("bytes"),
        "bcdDFUVersion": bcd,
    },
    spec="DFU 1.1 §4.1.3 (Table 4.2)",
)


def select_dfu(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    """Selector for class 0xFE: the 0x21 functional descriptor of a DFU interface (subclass 1)."""
    if descriptor_type == DFU_FUNCTIONAL_TYPE and ctx.interface_subclass == DFU_SUBCLASS:
        return DFU_FUNCTIONAL
    return None


def select_dfu_in_vendor(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    """Generic selector: a 9-byte 0x21 with a known bcdDFUVersion in a vendor-class interface."""
    if descriptor_type != DFU_FUNCTIONAL_TYPE or ctx.interface_class != 0xFF or looks_like_hid(raw):
        return None
    if len(raw) == 9 and int.from_bytes(raw[7:9], "little") in (0x0100, 0x0101, 0x0110, 0x011A):
        return DFU_FUNCTIONAL
    return None


register_class(APPLICATION_SPECIFIC_CLASS, select_dfu)
register_class(None, select_dfu_in_vendor)
