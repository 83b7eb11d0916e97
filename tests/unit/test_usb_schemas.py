"""Chapter 9, BOS and hub schemas: spec field names, decoding of known bytes, round trip."""

from __future__ import annotations

import pytest

from dkproto.schema import bos, enums, hub, usb
from dkproto.schema._fields import bcd, compiled, uuid_str
from dkproto.schema.registry import Context, lookup
from dkproto.usb import parse, render_json, render_text, usbids

CTX = Context()


def decode(raw: bytes):
    schema = lookup(raw[1], raw, CTX)
    assert schema is not None
    fields = compiled(schema.struct).parse(raw)
    assert compiled(schema.struct).build(fields) == raw  # round trip (compiled)
    assert schema.struct.build(schema.struct.parse(raw)) == raw  # and interpreted
    return schema, fields


@pytest.mark.parametrize("key", sorted(usb.SPEC_FIELD_NAMES))
def test_field_names_are_the_specs(key: str) -> None:
    schemas = {s.key: s for s in (usb.DEVICE, usb.CONFIGURATION, usb.INTERFACE, usb.ENDPOINT, usb.DEVICE_QUALIFIER,
                                  usb.INTERFACE_ASSOCIATION, usb.SS_ENDPOINT_COMPANION,
                                  usb.SSP_ISOC_ENDPOINT_COMPANION)}
    names = tuple(sc.name for sc in schemas[key].struct.subcons)
    assert names == usb.SPEC_FIELD_NAMES[key]


def test_every_schema_compiles() -> None:
    for module in (usb, bos, hub):
        for name in module.__all__:
            schema = getattr(module, name)
            if hasattr(schema, "struct"):
                assert type(compiled(schema.struct)).__name__ == "Compiled", name


def test_device_descriptor_meanings() -> None:
    raw = bytes.fromhex("12 01 00 02 00 00 00 40 6d 04 25 08 10 00 00 02 00 01")
    schema, f = decode(raw)
    assert schema is usb.DEVICE
    assert (f.idVendor, f.idProduct, f.bcdUSB, f.iSerialNumber) == (0x046D, 0x0825, 0x0200, 0)
    assert schema.meanings["idVendor"](f.idVendor, f) == "Logitech, Inc."
    assert schema.meanings["idProduct"](f.idProduct, f) == "Webcam C270"


def test_endpoint_variants_and_meanings() -> None:
    schema, f = decode(bytes.fromhex("07 05 81 03 40 00 0a"))
    assert schema is usb.ENDPOINT
    assert usb.endpoint_attributes(f.bmAttributes) == "Transfer Type Interrupt, Usage Type Data"
    schema, f = decode(bytes.fromhex("09 05 01 0d c0 00 01 00 00"))  # UAC1 9-byte endpoint
    assert schema is usb.ENDPOINT_AUDIO and f.bRefresh == 0 and f.bSynchAddress == 0
    assert usb.endpoint_attributes(0x0D) == "Transfer Type Isochronous, Synch Type Synchronous, Usage Type Data"
    assert usb.max_packet_size(0x1400) == "3x 1024 bytes"


def test_other_speed_qualifier_otg_companions() -> None:
    schema, f = decode(bytes.fromhex("09 07 20 00 01 01 00 c0 32"))
    assert schema is usb.OTHER_SPEED_CONFIGURATION and f.wTotalLength == 32
    schema, f = decode(bytes.fromhex("0a 06 00 02 00 00 00 40 01 00"))
    assert schema is usb.DEVICE_QUALIFIER and f.bNumConfigurations == 1
    schema, f = decode(bytes.fromhex("03 09 03"))
    assert schema is usb.OTG and schema.meanings["bmAttributes"](f.bmAttributes, f) == "SRP, HNP"
    schema, f = decode(bytes.fromhex("05 09 03 00 02"))
    assert schema is usb.OTG_20 and f.bcdOTG == 0x0200
    schema, f = decode(bytes.fromhex("06 30 0f 00 00 00"))
    assert schema is usb.SS_ENDPOINT_COMPANION and f.bMaxBurst == 15
    schema, f = decode(bytes.fromhex("08 31 00 00 00 60 00 00"))
    assert schema is usb.SSP_ISOC_ENDPOINT_COMPANION and f.dwBytesPerInterval == 0x6000


def test_string_and_langid_list() -> None:
    ds = parse(
        bytes.fromhex("12 01 00 02 00 00 00 40 50 1d 89 60 00 01 01 00 00 00"),
        strings={(0, 0): bytes.fromhex("06 03 09 04 07 04"), (0x0409, 1): "\x0a\x03".encode("latin-1")
                 + "Gadg".encode("utf-16-le")},
    )
    assert ds.langids() == [0x0409, 0x0407]
    assert ds.string(1) == "Gadg"
    assert ds.errors == []
    text = render_text(ds)
    assert "iManufacturer               1  Gadg" in text
    assert "0x0409 English (United States), 0x0407 German (Standard)" in text


WEBUSB = bytes.fromhex("18 10 05 00 38 b6 08 34 a9 09 a0 47 8b fd a0 76 88 15 b6 65 00 01 01 01")
MSOS20 = bytes.fromhex("1c 10 05 00 df 60 dd d8 89 45 c7 4c 9c d2 65 9d 9e 64 8a 9f 00 00 03 06 b2 00 02 00")
SSP = bytes.fromhex("14 10 0a 00 01 00 00 00 00 11 00 00 30 40 0a 00 b0 40 0a 00")
CONTAINER = bytes.fromhex("14 10 04 00") + bytes(range(16))
OTHER_PLATFORM = bytes.fromhex("18 10 05 00") + bytes(16) + b"\x01\x02\x03\x04"
BILLBOARD = bytes.fromhex("08 10 0d 00 01 02 03 04")


def test_bos_capabilities_decoded() -> None:
    schema, f = decode(WEBUSB)
    assert schema is bos.WEBUSB_PLATFORM and (f.bcdVersion, f.bVendorCode, f.iLandingPage) == (0x0100, 1, 1)
    assert uuid_str(f.PlatformCapabilityUUID) == "{3408b638-09a9-47a0-8bfd-a0768815b665}"
    schema, f = decode(MSOS20)
    assert schema is bos.MS_OS_20_PLATFORM
    (s,) = f.CapabilityData
    assert (s.dwWindowsVersion, s.wMSOSDescriptorSetTotalLength, s.bMS_VendorCode, s.bAltEnumCode) == (
        0x06030000, 0xB2, 2, 0)
    schema, f = decode(SSP)
    assert schema is bos.SUPERSPEED_PLUS and list(f.bmSublinkSpeedAttr) == [0x000A4030, 0x000A40B0]
    assert "SSID 0: 10 Gbps Symmetric RX SuperSpeedPlus" in schema.meanings["bmSublinkSpeedAttr"](
        f.bmSublinkSpeedAttr, f)
    schema, f = decode(CONTAINER)
    assert schema is bos.CONTAINER_ID and f.ContainerID == bytes(range(16))
    schema, f = decode(OTHER_PLATFORM)
    assert schema is bos.PLATFORM and f.CapabilityData == b"\x01\x02\x03\x04"


def test_bos_set_with_unknown_capability_kept_raw() -> None:
    caps = WEBUSB + MSOS20 + SSP + CONTAINER + BILLBOARD
    blob = bytes([5, 0x0F]) + (5 + len(caps)).to_bytes(2, "little") + bytes([5]) + caps
    ds = parse(bytes.fromhex("12 01 01 02 00 00 00 40 50 1d 89 60 00 01 00 00 00 00"), blob)
    assert ds.errors == []
    keys = [c.key for c in ds.bos.children]
    assert keys == ["platform_webusb", "platform_ms_os_20", "superspeed_plus", "container_id", "unknown"]
    assert ds.bos.children[-1].raw == BILLBOARD
    assert ds.bos_bytes() == blob
    obj = __import__("json").loads(render_json(ds))
    assert obj["bos"][0]["children"][4] == {"descriptor": "unknown", "name": "Device Capability Descriptor "
                                            "(undecoded)", "offset": len(blob) - 8, "bDescriptorType": 16,
                                            "bLength": 8, "hex": BILLBOARD.hex()}


def test_hub_descriptors() -> None:
    schema, f = decode(bytes.fromhex("09 29 04 e0 00 32 64 00 ff"))
    assert schema is hub.HUB and f.bNbrPorts == 4 and f.DeviceRemovable == b"\x00" and f.PortPwrCtrlMask == b"\xff"
    assert hub.hub_characteristics(0xE0).startswith("Ganged power switching, Ganged overcurrent protection, "
                                                    "TT think time 32 FS bits, Port indicators")
    schema, f = decode(bytes.fromhex("0c 2a 04 09 00 0a 00 04 00 00 00 00"))
    assert schema is hub.SUPERSPEED_HUB and (f.bNbrPorts, f.bHubHdrDecLat, f.DeviceRemovable) == (4, 4, 0)


def test_enums() -> None:
    assert enums.DescriptorType.INTERFACE_ASSOCIATION == 0x0B
    assert enums.class_name(0x0E) == "Video" and enums.class_name(0x42) == "Unknown class 0x42"
    assert enums.descriptor_type_name(0x41) == "Vendor-specific 0x41"
    assert enums.Direction.from_endpoint_address(0x81) is enums.Direction.IN
    assert enums.langid_name(0x0409) == "English (United States)"
    assert enums.Speed.HIGH.label == "480M"
    assert bcd(0x0210) == "2.10"


def test_usbids() -> None:
    assert usbids.vendor_name(0x1D6B) == "Linux Foundation"
    assert usbids.product_name(0x1D6B, 0x0002) == "2.0 root hub"
    assert usbids.vendor_name(0xFFFE) is None
    assert usbids.product_name(0x046D, 0xFFFF) is None
    assert usbids.subclass_name(0x02, 0x02) == "Abstract (modem)"
    assert usbids.protocol_name(0x02, 0x02, 0x01) == "AT-commands (v.25ter)"
    assert usbids.class_name(0xFF) == "Vendor Specific Class"
    assert usbids.version() == "2025.07.26"
