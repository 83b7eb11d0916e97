"""BOS descriptor and its device capabilities (USB 3.2 §9.6.2).

Decoded: USB 2.0 Extension, SuperSpeed USB, SuperSpeedPlus, Container ID and Platform, with
the WebUSB (WebUSB §4.1) and Microsoft OS 2.0 (MS OS 2.0 Descriptors §3) platform
capabilities picked by their UUID. Any other capability is left undecoded (``lookup``
returns None) and the walker keeps its raw bytes in place.
"""

from __future__ import annotations

from typing import Any

from construct import Array, Bytes, Struct, this

from dkproto.schema._fields import bcd, f, make_schema, uuid_str
from dkproto.schema.registry import Context, Schema, register_standard

__all__ = [
    "BOS",
    "CONTAINER_ID",
    "MS_OS_20_PLATFORM",
    "MS_OS_20_UUID",
    "PLATFORM",
    "SUPERSPEED",
    "SUPERSPEED_PLUS",
    "USB20_EXTENSION",
    "WEBUSB_PLATFORM",
    "WEBUSB_UUID",
]

#: {3408B638-09A9-47A0-8BFD-A0768815B665} in wire (little-endian groups) order.
WEBUSB_UUID = bytes.fromhex("38b60834a909a0478bfda0768815b665")
#: {D8DD60DF-4589-4CC7-9CD2-659D9E648A9F} in wire order.
MS_OS_20_UUID = bytes.fromhex("df60ddd88945c74c9cd2659d9e648a9f")


def _usb2_ext(value: Any, _c: Any) -> str:
    parts = []
    if value & 0x2:
        parts.append("LPM")
    if value & 0x4:
        parts.append("BESL")
    if value & 0x8:
        parts.append(f"baseline BESL {(value >> 8) & 0xF}")
    if value & 0x10:
        parts.append(f"deep BESL {(value >> 12) & 0xF}")
    return ", ".join(parts) or "none"


def _speeds(value: Any, _c: Any) -> str:
    names = [n for bit, n in ((1, "Low"), (2, "Full"), (4, "High"), (8, "5Gbps")) if value & bit]
    return ", ".join(names) or "none"


def _uuid(value: Any, _c: Any) -> str:
    return uuid_str(value)


BOS = make_schema(
    "bos", "Binary Object Store Descriptor", (f("wTotalLength"), f("bNumDeviceCaps")), {}, "USB 3.2 §9.6.2"
)

USB20_EXTENSION = make_schema(
    "usb20_extension",
    "USB 2.0 Extension Device Capability",
    (f("bDevCapabilityType"), f("bmAttributes", 4)),
    {"bmAttributes": _usb2_ext},
    "USB 3.2 §9.6.2.1",
)

SUPERSPEED = make_schema(
    "superspeed_usb",
    "SuperSpeed USB Device Capability",
    (
        f("bDevCapabilityType"), f("bmAttributes"), f("wSpeedsSupported"), f("bFunctionalitySupport"),
        f("bU1DevExitLat"), f("wU2DevExitLat"),
    ),
    {
        "bmAttributes": lambda v, c: "Latency Tolerance Messages (LTM) Supported" if v & 2 else "none",
        "wSpeedsSupported": _speeds,
        "bFunctionalitySupport": lambda v, c: f"lowest fully functional speed: {_speeds(1 << v, c)}",
        "bU1DevExitLat": lambda v, c: f"less than {v} micro seconds",
        "wU2DevExitLat": lambda v, c: f"less than {v} micro seconds",
    },
    "USB 3.2 §9.6.2.2",
)


def _sublink(value: Any, _c: Any) -> str:
    out = []
    for attr in value:
        exp = ["bps", "Kbps", "Mbps", "Gbps"][(attr >> 4) & 3]
        kind = "Asymmetric" if attr & 0x40 else "Symmetric"
        direction = "TX" if attr & 0x80 else "RX"
        proto = "SuperSpeedPlus" if (attr >> 14) & 3 else "SuperSpeed"
        out.append(f"SSID {attr & 0xF}: {attr >> 16} {exp} {kind} {direction} {proto}")
    return "; ".join(out)


SUPERSPEED_PLUS = make_schema(
    "superspeed_plus",
    "SuperSpeedPlus USB Device Capability",
    (
        f("bDevCapabilityType"), f("bReserved"), f("bmAttributes", 4), f("wFunctionalitySupport"),
        f("wReserved"), "bmSublinkSpeedAttr" / Array((this.bmAttributes & 0x1F) + 1, f("dwAttr").subcon),
    ),
    {
        "bmAttributes": lambda v, c: f"Sublink Speed Attribute count {(v & 0x1F) + 1}, "
        f"Sublink Speed ID count {((v >> 5) & 0xF) + 1}",
        "bmSublinkSpeedAttr": _sublink,
    },
    "USB 3.2 §9.6.2.5",
)

CONTAINER_ID = make_schema(
    "container_id",
    "Container ID Device Capability",
    (f("bDevCapabilityType"), f("bReserved"), "ContainerID" / Bytes(16)),
    {"ContainerID": _uuid},
    "USB 3.2 §9.6.2.3",
)

PLATFORM = make_schema(
    "platform",
    "Platform Device Capability",
    (
        f("bDevCapabilityType"), f("bReserved"), "PlatformCapabilityUUID" / Bytes(16),
        "CapabilityData" / Bytes(this.bLength - 20),
    ),
    {"PlatformCapabilityUUID": _uuid},
    "USB 3.2 §9.6.2.4",
)

WEBUSB_PLATFORM = make_schema(
    "platform_webusb",
    "Platform Device Capability (WebUSB)",
    (
        f("bDevCapabilityType"), f("bReserved"), "PlatformCapabilityUUID" / Bytes(16), f("bcdVersion"),
        f("bVendorCode"), f("iLandingPage"),
    ),
    {
        "PlatformCapabilityUUID": lambda v, c: "WebUSB " + uuid_str(v),
        "bcdVersion": lambda v, c: bcd(v),
        "bVendorCode": lambda v, c: "bRequest of WebUSB vendor requests",
        "iLandingPage": lambda v, c: "URL descriptor index of the landing page" if v else "no landing page",
    },
    "WebUSB §4.1",
)

_MS_SET = Struct(
    f("dwWindowsVersion"), f("wMSOSDescriptorSetTotalLength"), f("bMS_VendorCode"), f("bAltEnumCode")
)

MS_OS_20_PLATFORM = make_schema(
    "platform_ms_os_20",
    "Platform Device Capability (Microsoft OS 2.0)",
    (
        f("bDevCapabilityType"), f("bReserved"), "PlatformCapabilityUUID" / Bytes(16),
        "CapabilityData" / Array((this.bLength - 20) // 8, _MS_SET),
    ),
    {
        "PlatformCapabilityUUID": lambda v, c: "Microsoft OS 2.0 " + uuid_str(v),
        "CapabilityData": lambda v, c: "; ".join(
            f"Windows 0x{s.dwWindowsVersion:08x}: descriptor set {s.wMSOSDescriptorSetTotalLength} bytes, "
            f"vendor code 0x{s.bMS_VendorCode:02x}, alt enum {s.bAltEnumCode}"
            for s in v
        ),
    },
    "Microsoft OS 2.0 Descriptors Specification §3",
)

_CAPS: dict[int, Schema] = {0x02: USB20_EXTENSION, 0x03: SUPERSPEED, 0x04: CONTAINER_ID, 0x0A: SUPERSPEED_PLUS}


def _select_capability(_t: int, raw: bytes, _ctx: Context) -> Schema | None:
    if len(raw) < 3:
        return None
    cap = raw[2]
    if cap == 0x05:
        uuid = raw[4:20]
        if uuid == WEBUSB_UUID and len(raw) >= 24:
            return WEBUSB_PLATFORM
        if uuid == MS_OS_20_UUID and len(raw) >= 28 and (len(raw) - 20) % 8 == 0:
            return MS_OS_20_PLATFORM
        return PLATFORM
    return _CAPS.get(cap)


def _select_bos(_t: int, _raw: bytes, _ctx: Context) -> Schema:
    return BOS


register_standard(0x0F, _select_bos)
register_standard(0x10, _select_capability)
