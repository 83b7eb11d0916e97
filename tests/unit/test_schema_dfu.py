"""DFU functional descriptor: DFU 1.1 §4.1.3 (Table 4.2)."""

from __future__ import annotations

from dkproto.schema import dfu
from dkproto.schema.registry import Context, lookup

DFU_MODE = Context(parent="interface", interface_class=0xFE, interface_subclass=0x01, interface_protocol=0x02)
# NXP LPC4330 ROM bootloader in DFU mode (corpus usb/nxp-lpc4330-dfu-mode.json)
NXP = bytes.fromhex("092109 00ff 0008 0001".replace(" ", ""))


def test_field_names_follow_the_spec() -> None:
    assert [sc.name for sc in dfu.DFUFunctionalDescriptor.subcons] == [
        "bLength",
        "bDescriptorType",
        "bmAttributes",
        "wDetachTimeOut",
        "wTransferSize",
        "bcdDFUVersion",
        "extra",
    ]


def test_nxp_bootloader_matches_lsusb() -> None:
    schema = lookup(0x21, NXP, DFU_MODE)
    assert schema is dfu.DFU_FUNCTIONAL
    f = schema.struct.parse(NXP)
    # lsusb: bmAttributes 9 (Will Detach, Manifestation Intolerant, Upload Unsupported, Download Supported),
    # wDetachTimeout 65280 milliseconds, wTransferSize 2048 bytes, bcdDFUVersion 1.00
    assert (f.bmAttributes, f.wDetachTimeOut, f.wTransferSize, f.bcdDFUVersion) == (9, 65280, 2048, 0x0100)
    m = schema.meanings
    assert m["bmAttributes"](f.bmAttributes, f) == "bitCanDnload, bitWillDetach"
    assert m["wDetachTimeOut"](f.wDetachTimeOut, f) == "65280 ms"
    assert m["wTransferSize"](f.wTransferSize, f) == "2048 bytes"
    assert m["bcdDFUVersion"](f.bcdDFUVersion, f) == "1.00"
    assert schema.struct.build(f) == NXP


def test_dfu_1_0_descriptor_without_version() -> None:
    raw = bytes.fromhex("07210f e803 0004".replace(" ", ""))
    f = dfu.DFUFunctionalDescriptor.parse(raw)
    assert f.bcdDFUVersion is None
    assert dfu.DFU_FUNCTIONAL.meanings["bmAttributes"](f.bmAttributes, f) == (
        "bitCanDnload, bitCanUpload, bitManifestationTolerant, bitWillDetach"
    )
    assert dfu.DFUFunctionalDescriptor.build(f) == raw
    assert dfu.DFUFunctionalDescriptor.compile().parse(raw) == f


def test_only_the_dfu_subclass_is_claimed() -> None:
    other = Context(parent="interface", interface_class=0xFE, interface_subclass=0x02)  # IrDA bridge
    assert lookup(0x21, NXP, other) is None
    runtime = Context(
        parent="interface", interface_class=0xFE, interface_subclass=0x01, interface_protocol=0x01
    )
    assert lookup(0x21, NXP, runtime) is dfu.DFU_FUNCTIONAL
