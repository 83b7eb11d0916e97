"""HID class descriptor (0x21): HID 1.11 §6.2.1, and its collision with the DFU functional descriptor."""

from __future__ import annotations

import pytest
from construct import ConstructError

from dkproto.schema import dfu, hid
from dkproto.schema.registry import Context, lookup

HID_IFACE = Context(
    parent="interface", interface_class=0x03, interface_subclass=0x01, interface_protocol=0x01
)
VENDOR_IFACE = Context(
    parent="interface", interface_class=0xFF, interface_subclass=0x00, interface_protocol=0x00
)
DFU_IFACE = Context(
    parent="interface", interface_class=0xFE, interface_subclass=0x01, interface_protocol=0x02
)

# Kinesis Advantage PRO keyboard (corpus usb/kinesis-advantage-pro-keyboard.json):
# HID 1.00, country US, one report descriptor of 63 bytes
KINESIS = bytes.fromhex("092100012101223f00")


def test_field_names_follow_the_spec() -> None:
    assert [sc.name for sc in hid.HIDDescriptor.subcons] == [
        "bLength",
        "bDescriptorType",
        "bcdHID",
        "bCountryCode",
        "bNumDescriptors",
        "descriptors",
        "extra",
    ]


def test_keyboard_descriptor_and_meanings() -> None:
    schema = lookup(0x21, KINESIS, HID_IFACE)
    assert schema is hid.HID_DESCRIPTOR
    f = schema.struct.parse(KINESIS)
    assert (f.bcdHID, f.bCountryCode, f.bNumDescriptors) == (0x0100, 33, 1)
    assert [(d.bDescriptorType, d.wDescriptorLength) for d in f.descriptors] == [(0x22, 63)]
    m = schema.meanings
    assert m["bcdHID"](f.bcdHID, f) == "1.00"
    assert m["bCountryCode"](f.bCountryCode, f) == "US"
    assert m["bCountryCode"](0, f) == "Not Supported"
    assert m["bCountryCode"](200, f) == "Reserved"
    assert m["descriptors"](f.descriptors, f) == "Report (63 bytes)"
    assert schema.struct.build(f) == KINESIS


def test_report_and_physical_descriptors() -> None:
    raw = bytes.fromhex("0c2111010002224101231000")
    f = hid.HIDDescriptor.parse(raw)
    assert [(d.bDescriptorType, d.wDescriptorLength) for d in f.descriptors] == [(0x22, 0x141), (0x23, 0x10)]
    assert (
        hid.HID_DESCRIPTOR.meanings["descriptors"](f.descriptors, f)
        == "Report (321 bytes), Physical (16 bytes)"
    )
    assert hid.HIDDescriptor.build(f) == raw
    assert hid.HIDDescriptor.compile().parse(raw) == f


def test_bnumdescriptors_larger_than_blength_is_an_error() -> None:
    raw = bytes.fromhex("092100010002223f00")  # says 2 class descriptors, has room for 1
    with pytest.raises(ConstructError):
        hid.HIDDescriptor.parse(raw)


def test_type_0x21_is_chosen_by_the_interface_class() -> None:
    dfu_bytes = bytes.fromhex("092109 00ff 0008 0001".replace(" ", ""))
    assert lookup(0x21, dfu_bytes, DFU_IFACE) is dfu.DFU_FUNCTIONAL
    assert lookup(0x21, KINESIS, HID_IFACE) is hid.HID_DESCRIPTOR
    # the same HID bytes in a DFU interface are read as DFU, as the interface says
    assert lookup(0x21, KINESIS, DFU_IFACE) is dfu.DFU_FUNCTIONAL
    # vendor interfaces: decided by shape
    assert lookup(0x21, KINESIS, VENDOR_IFACE) is hid.HID_DESCRIPTOR
    assert lookup(0x21, dfu_bytes, VENDOR_IFACE) is dfu.DFU_FUNCTIONAL
    assert lookup(0x21, bytes.fromhex("0921aabbccddeeff00"), VENDOR_IFACE) is None
    # other classes do not claim 0x21
    assert lookup(0x21, KINESIS, Context(parent="interface", interface_class=0x08)) is None


def test_hid_in_vendor_interface_from_corpus() -> None:
    # ELAN fingerprint reader (corpus usb/elan-fingerprint-04f3-0c26.json), interface class 0xFF
    raw = bytes.fromhex("092110010001221500")
    schema = lookup(0x21, raw, VENDOR_IFACE)
    assert schema is hid.HID_DESCRIPTOR
    f = schema.struct.parse(raw)
    assert (f.bcdHID, f.descriptors[0].wDescriptorLength) == (0x0110, 0x15)
