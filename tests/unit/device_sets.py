"""Descriptor sets for the device-side tests (``test_device_*.py``; no tests here): every kind of
descriptor a device serves, made by hand so each byte is known."""

from __future__ import annotations

from dkproto.device import string_descriptor
from dkproto.usb import DescriptorSet, parse

# Device: bcdUSB 0x0201 (so a BOS), 1209:1234, strings 1/2/3, two configurations.
DEVICE = bytes.fromhex("12 01 0102 00 00 00 40 0912 3412 0001 01 02 03 02")
REPORT = bytes.fromhex("05 01 09 02 a1 01 09 01 a1 00 05 09 19 01 29 03 15 00 25 01 95 03 75 01 81 02"
                       "95 01 75 05 81 03 05 01 09 30 09 31 15 81 25 7f 75 08 95 02 81 06 c0 c0")
HID = bytes([9, 0x21, 0x11, 0x01, 0, 1, 0x22]) + len(REPORT).to_bytes(2, "little")
CONFIG_1 = (bytes.fromhex("09 02 4200 02 01 00 c0 32")      # value 1, 2 interfaces, self-powered
            + bytes.fromhex("09 04 00 00 01 03 00 00 00")   # interface 0: HID
            + HID
            + bytes.fromhex("07 05 81 03 0800 0a")          # interrupt IN 0x81
            + bytes.fromhex("09 04 01 00 00 ff 00 00 00")   # interface 1 alt 0: no endpoints
            + bytes.fromhex("09 04 01 01 02 ff 00 00 00")   # interface 1 alt 1: bulk 0x02, 0x82
            + bytes.fromhex("07 05 02 02 0002 00")
            + bytes.fromhex("07 05 82 02 0002 00"))
CONFIG_2 = (bytes.fromhex("09 02 1900 01 02 00 80 32")      # value 2, bus powered
            + bytes.fromhex("09 04 00 00 01 ff 00 00 00")
            + bytes.fromhex("07 05 03 02 0002 00"))          # bulk OUT 0x03
BOS = bytes.fromhex("05 0f 0c00 01" "07 10 02 02000000")
QUALIFIER = bytes.fromhex("0a 06 0002 00 00 00 40 02 00")
OTHER_SPEED = [bytes([CONFIG_1[0], 7]) + CONFIG_1[2:], bytes([CONFIG_2[0], 7]) + CONFIG_2[2:]]
LANGIDS = bytes.fromhex("06 03 0904 0704")
TEXTS = {(0x0409, 1): "dkproto", (0x0409, 2): "Test device", (0x0409, 3): "0001",
         (0x0407, 1): "dkproto DE", (0x0407, 2): "Pr\u00fcfger\u00e4t"}
STRINGS = {(0, 0): LANGIDS, **{key: string_descriptor(text) for key, text in TEXTS.items()}}

# A USB 2.0 hub and its class descriptor (4 ports).
HUB_DEVICE = bytes.fromhex("12 01 0002 09 00 01 40 0912 0100 0001 00 00 00 01")
HUB_CONFIG = bytes.fromhex("09 02 1900 01 01 00 e0 00" "09 04 00 00 01 09 00 00 00" "07 05 81 03 0100 0c")
HUB = bytes.fromhex("09 29 04 0000 32 64 00 ff")

# A SuperSpeed device (bcdUSB 0x0300): SET_SEL, SET_ISOCH_DELAY, U1/U2/LTM are its requests.
SS_DEVICE = bytes.fromhex("12 01 0003 00 00 00 09 0912 3500 0001 00 00 00 01")
SS_CONFIG = bytes.fromhex("09 02 1f00 01 01 00 80 32" "09 04 00 00 01 ff 00 00 00" "07 05 81 02 0004 00"
                          "06 30 00 00 0000")


def full_set() -> DescriptorSet:
    """Device, two configurations, BOS, strings in two LANGIDs, qualifier, two other-speed configurations."""
    return parse(DEVICE + CONFIG_1 + CONFIG_2, BOS, strings=STRINGS, extras=[QUALIFIER, *OTHER_SPEED])


def hub_set() -> DescriptorSet:
    return parse(HUB_DEVICE + HUB_CONFIG, strings={}, extras=[HUB])


def superspeed_set() -> DescriptorSet:
    return parse(SS_DEVICE + SS_CONFIG)
