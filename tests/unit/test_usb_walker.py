"""The walker on hand-made bytes: placement, Context, and a precise complaint for every rule."""

from __future__ import annotations

import pytest

from dkproto.errors import DecodeError, EncodeError
from dkproto.schema import registry
from dkproto.schema.registry import Context
from dkproto.usb import parse, walk
from dkproto.usb.tree import clear_choice_cache

# Device descriptor, 1 configuration (annotated)
DEVICE = bytes.fromhex(
    "12 01 00 02"  # bLength 18, DEVICE, bcdUSB 2.00
    "ef 02 01 40"  # class Misc/IAD/IAD, bMaxPacketSize0 64
    "09 12 01 00"  # idVendor 0x1209, idProduct 0x0001
    "00 01 01 02 03 01"  # bcdDevice 1.00, iManufacturer 1, iProduct 2, iSerialNumber 3, 1 configuration
)
IAD = bytes.fromhex("08 0b 00 02 77 01 00 00")  # IAD: interfaces 0..1, function class 0x77
IF0 = bytes.fromhex("09 04 00 00 01 77 02 03 00")  # interface 0 alt 0, class 0x77/2/3, 1 endpoint
CS_HEADER = bytes.fromhex("05 24 01 10 01")  # class-specific header of made-up class 0x77
EP81 = bytes.fromhex("07 05 81 03 40 00 0a")  # EP 1 IN interrupt, 64 bytes, bInterval 10
CS_EP = bytes.fromhex("05 25 01 00 00")  # class-specific endpoint descriptor
IF1 = bytes.fromhex("09 04 01 00 00 ff 00 00 00")  # interface 1, vendor, no endpoints
VENDOR = bytes.fromhex("04 41 aa bb")  # a vendor descriptor type 0x41
IF2 = bytes.fromhex("09 04 02 00 00 ff 00 00 00")  # interface 2: outside the IAD


def config(*parts: bytes, total: int | None = None, interfaces: int = 3) -> bytes:
    body = b"".join(parts)
    length = 9 + len(body) if total is None else total
    return bytes([9, 2, length & 0xFF, length >> 8, interfaces, 1, 0, 0x80, 50]) + body


GOOD = DEVICE + config(IAD, IF0, CS_HEADER, EP81, CS_EP, IF1, VENDOR, IF2)

SEEN: list[tuple[int, bytes, Context]] = []


def _spy(dtype: int, raw: bytes, ctx: Context) -> None:
    SEEN.append((dtype, raw, ctx))


@pytest.fixture(scope="module", autouse=True)
def spy_selector():
    registry.register_class(0x77, _spy)  # class 0x77 is not a real class: only this test uses it
    yield


def test_placement_and_roundtrip() -> None:
    ds = parse(GOOD)
    assert ds.errors == [] and ds.warnings == []
    cfg = ds.configurations[0]
    assert [c.role for c in cfg.children] == ["interface_association", "interface"]
    iad, if2 = cfg.children
    assert [c["bInterfaceNumber"] for c in iad.children] == [0, 1]
    assert if2["bInterfaceNumber"] == 2
    if0 = iad.children[0]
    assert [c.role for c in if0.children] == ["descriptor", "endpoint"]
    ep = if0.children[1]
    assert ep["bEndpointAddress"] == 0x81
    assert [c.bDescriptorType for c in ep.children] == [0x25]
    vendor = iad.children[1].children[0]
    assert vendor.bDescriptorType == 0x41 and not vendor.decoded and vendor.raw == VENDOR
    assert ds.to_bytes() == GOOD
    # document order: a pre-order walk visits the nodes in byte order
    offsets = [n.offset for n in ds.nodes()]
    assert offsets == sorted(offsets)


def test_context_given_to_selectors() -> None:
    SEEN.clear()
    clear_choice_cache()  # the walker caches each choice per (context, first bytes): ask afresh
    parse(GOOD)
    by_type = {t: ctx for t, raw, ctx in SEEN}
    header = by_type[0x24]
    assert header.parent == "interface"
    assert (header.interface_class, header.interface_subclass, header.interface_protocol) == (0x77, 2, 3)
    assert (header.function_class, header.function_subclass, header.function_protocol) == (0x77, 1, 0)
    assert header.device_class == 0xEF and header.bcd_usb == 0x0200
    cs_ep = by_type[0x25]
    assert cs_ep.parent == "endpoint" and cs_ep.endpoint_address == 0x81
    assert [raw for t, raw, ctx in SEEN if t == 0x24] == [CS_HEADER]


def test_class_version_from_class_header() -> None:
    # a real CDC header (bcdCDC 1.10) then a union: the union's Context carries class_version 0x0110
    cdc_if = bytes.fromhex("09 04 00 00 00 02 02 01 00")
    header = bytes.fromhex("05 24 00 10 01")
    union = bytes.fromhex("05 24 06 00 01")
    ds = parse(DEVICE[:17] + b"\x01" + config(cdc_if, header, union, interfaces=1))
    assert ds.errors == []
    header_node, union_node = ds.configurations[0].interfaces[0].children
    assert header_node.context.class_version is None
    assert union_node.context.class_version == 0x0110


def errors_of(data: bytes) -> list[str]:
    ds = parse(data)
    assert ds.to_bytes() == data  # whatever the damage, every byte is kept in place
    return [str(e) for e in ds.errors]


def test_blength_zero() -> None:
    data = DEVICE + config(IF0[:0] + b"\x00\x04" + IF0[2:], interfaces=1)
    errs = errors_of(data)
    assert ("offset 27, Interface descriptor: bLength 0 < 2: a descriptor cannot be shorter than "
            "its header; the 9 remaining bytes are kept undecoded") in errs


def test_blength_one() -> None:
    errs = errors_of(DEVICE + b"\x01\x02")
    assert "offset 18, Configuration descriptor: bLength 1 < 2" in errs[0]


def test_blength_past_end() -> None:
    errs = errors_of(DEVICE + bytes([9, 2, 9, 0, 0, 1, 0, 0x80]))
    assert errs[0].startswith("offset 18, Configuration descriptor: bLength 9 runs past the end of the data "
                              "(8 bytes left)")


def test_short_slice_for_schema() -> None:
    short_if = bytes.fromhex("07 04 00 00 00 ff 00")
    errs = errors_of(DEVICE + config(short_if, interfaces=1))
    assert "offset 27, Interface Descriptor: bLength 7 < 9 required by Interface Descriptor; kept undecoded" in errs


def test_long_fixed_descriptor_keeps_extra() -> None:
    long_if = IF1[:1].replace(b"\x09", b"\x0a") + IF1[1:] + b"\xee"
    data = DEVICE + config(long_if, interfaces=1)
    ds = parse(data)
    node = ds.configurations[0].children[0]
    assert node.decoded and node.extra == b"\xee"
    assert [str(e) for e in ds.errors] == [
        "offset 27, Interface Descriptor: bLength 10 > 9 fixed by the spec; 1 extra bytes kept"]
    assert ds.to_bytes() == data


def test_total_length_too_big_and_too_small() -> None:
    errs = errors_of(DEVICE + config(IF1, total=40, interfaces=1))
    assert errs == [("offset 18, Configuration Descriptor: wTotalLength 40 disagrees with the bytes: 18 bytes "
                    "follow up to the next configuration or the end")]
    errs = errors_of(DEVICE + config(IF1, EP81, total=22, interfaces=1))
    assert "offset 36, Endpoint Descriptor: runs past the end of its configuration (wTotalLength 22 ends it " \
           "at offset 40)" in errs


def test_counts() -> None:
    errs = errors_of(DEVICE[:17] + b"\x02" + config(IF1, interfaces=2))
    assert errs == [
        "offset 0, Device Descriptor: bNumConfigurations 2 but 1 configurations follow",
        "offset 18, Configuration Descriptor: bNumInterfaces 2 but 1 interfaces follow",
    ]
    errs = errors_of(DEVICE + config(IF0, interfaces=1))
    assert errs == [("offset 27, Interface Descriptor: bNumEndpoints 1 but 0 endpoint descriptors follow "
                    "(interface 0 alt 0)")]


def test_endpoint_outside_interface() -> None:
    errs = errors_of(DEVICE + config(EP81, interfaces=0))
    assert errs == ["offset 27, Endpoint Descriptor: endpoint descriptor outside any interface"]


def test_not_a_device_first_and_empty() -> None:
    assert [str(e) for e in parse(b"").errors] == [
        "offset 0, Device Descriptor: no bytes: a descriptor set starts with the 18-byte device descriptor"]
    errs = errors_of(IF1)
    assert "offset 0, Device Descriptor: the data does not start with a device descriptor (bDescriptorType 1)" \
        in errs


def test_errors_are_decode_errors_with_offset_and_rule() -> None:
    ds = parse(DEVICE + config(IF0, interfaces=1))
    err = ds.errors[0]
    assert isinstance(err, DecodeError)
    assert (err.offset, err.descriptor, err.rule) == (27, "Interface Descriptor", "bNumEndpoints")


def test_edit_field_and_rebuild() -> None:
    ds = parse(GOOD)
    ep = ds.configurations[0].endpoints[0]
    ep.fields.wMaxPacketSize = 8
    assert ep.own_bytes() == bytes.fromhex("07 05 81 03 08 00 0a")
    ep.fields.wMaxPacketSize = 70000
    with pytest.raises(EncodeError):
        ds.to_bytes()


def test_walk_bos_blob_alone() -> None:
    bos = bytes.fromhex("05 0f 0c 00 01 07 10 02 06 00 00 00")
    errs: list[DecodeError] = []
    roots = walk(bos, errors=errs, blob="BOS")
    assert errs == [] and roots[0].key == "bos" and roots[0].children[0].key == "usb20_extension"
    errs.clear()
    walk(bytes.fromhex("05 0f 0d 00 02 07 10 02 06 00 00 00"), errors=errs, blob="BOS")
    assert [str(e) for e in errs] == [
        ("offset 0, BOS Binary Object Store Descriptor: wTotalLength 13 disagrees with the bytes: 12 bytes "
        "belong to the BOS"),
        "offset 0, BOS Binary Object Store Descriptor: bNumDeviceCaps 2 but 1 device capabilities follow",
    ]


def test_document_order_after_class_descriptor_following_an_endpoint() -> None:
    # endpoint, an unknown type 0x00 (hangs under the endpoint), a class-specific interface
    # descriptor (hangs under the interface), another 0x00: it must not go back under the
    # endpoint, which would put it before the class descriptor in a pre-order walk
    unknown = bytes.fromhex("05 00 01 00 00")
    data = DEVICE[:17] + b"\x01" + config(IF0, EP81, unknown, CS_HEADER, unknown, interfaces=1)
    ds = parse(data)
    assert ds.to_bytes() == data
    offsets = [n.offset for n in ds.nodes()]
    assert offsets == sorted(offsets)
    if0 = ds.configurations[0].interfaces[0]
    assert [c.bDescriptorType for c in if0.children] == [0x05, 0x24, 0x00]
    assert [c.bDescriptorType for c in if0.children[0].children] == [0x00]


def test_document_order_after_an_endpoint_outside_any_interface() -> None:
    # an endpoint right after an IAD (no interface), then a class-specific descriptor (hangs
    # under the configuration), then an unknown type: it must not go under the endpoint
    stray_ep = bytes.fromhex("07 05 81 03 40 00 0a")
    unknown = bytes.fromhex("05 00 01 00 00")
    data = DEVICE[:17] + b"\x01" + config(IAD, stray_ep, CS_HEADER, unknown, interfaces=0)
    ds = parse(data)
    assert ds.to_bytes() == data
    offsets = [n.offset for n in ds.nodes()]
    assert offsets == sorted(offsets)
    assert any(e.rule == "placement" for e in ds.errors)
