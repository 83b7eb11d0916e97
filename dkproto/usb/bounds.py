"""How much a device can present: the spec's size limits of a descriptor set (docs/descriptors.md, "Bounds").

Nothing a device can present is refused, and nothing larger is read: :func:`check_bounds`
refuses blobs past these limits before any walk, the walker places at most
:data:`MAX_CONFIGURATION` bytes under one configuration, and :mod:`dkproto.usb.read` never asks
a device for more than they allow.
"""

from __future__ import annotations

from dkproto.errors import DecodeError

__all__ = [
    "MAX_BOS",
    "MAX_COMPLAINTS",
    "MAX_CONFIGURATION",
    "MAX_CONFIGURATIONS",
    "MAX_DESCRIPTORS",
    "MAX_EXTRA",
    "MAX_EXTRAS",
    "MAX_HID_REPORT",
    "MAX_LANGIDS",
    "MAX_STRING",
    "MAX_STRINGS",
    "check_bounds",
]

#: The longest configuration: ``wTotalLength`` is 16 bits (USB 2.0 §9.6.3). The walker places
#: at most this many bytes under one configuration.
MAX_CONFIGURATION = 0xFFFF
#: ``bNumConfigurations`` is 8 bits (USB 2.0 §9.6.1).
MAX_CONFIGURATIONS = 255
#: The longest ``descriptors`` blob a device can present: its device descriptor and 255
#: configurations of 65,535 bytes (16,711,443 bytes).
MAX_DESCRIPTORS = 18 + MAX_CONFIGURATIONS * MAX_CONFIGURATION
#: The longest BOS: its ``wTotalLength`` is 16 bits (USB 3.2 §9.6.2).
MAX_BOS = 0xFFFF
#: The longest string descriptor: ``bLength`` is 8 bits (USB 2.0 §9.6.7).
MAX_STRING = 255
#: String 0 lists at most (255 - 2) // 2 LANGIDs.
MAX_LANGIDS = (MAX_STRING - 2) // 2
#: String indices are 8 bits (``iManufacturer``...): the LANGID list and 255 strings per LANGID.
MAX_STRINGS = 1 + MAX_LANGIDS * 255
#: Standalone descriptors: a device qualifier, a hub descriptor and one other-speed
#: configuration per configuration (USB 2.0 §9.6.4).
MAX_EXTRAS = 2 + MAX_CONFIGURATIONS
#: The longest standalone descriptor: an other-speed configuration (16-bit ``wTotalLength``).
MAX_EXTRA = 0xFFFF
#: The longest HID report descriptor: the HID descriptor's ``wDescriptorLength`` is 16 bits
#: (HID 1.11 §6.2.1); one per interface number (8 bits).
MAX_HID_REPORT = 0xFFFF
#: Complaints kept per set (errors and warnings each); the rest are counted in one last line.
MAX_COMPLAINTS = 1000


def check_bounds(
    descriptors: bytes,
    bos: bytes | None = None,
    strings: dict[tuple[int, int], bytes] | None = None,
    extras: list[bytes] | None = None,
    *,
    source: str = "",
    hid_reports: dict[int, bytes] | None = None,
) -> None:
    """Refuse blobs larger than any device can present (see docs/descriptors.md, "Bounds").

    Raises:
        DecodeError: a blob past its bound (the message names the blob, its size and the rule).
    """
    where = source or "descriptor set"

    def refuse(what: str, size: int, bound: int, rule: str) -> DecodeError:
        return DecodeError(f"{what} is {size:,} bytes, more than the {bound:,} any device can present ({rule})",
                           descriptor=where, rule=rule)

    if len(descriptors) > MAX_DESCRIPTORS:
        raise refuse("the descriptors blob", len(descriptors), MAX_DESCRIPTORS,
                     "an 18-byte device descriptor and at most 255 configurations of at most 65,535 bytes")
    if bos and len(bos) > MAX_BOS:
        raise refuse("the BOS blob", len(bos), MAX_BOS, "BOS wTotalLength is 16 bits")
    if extras:
        if len(extras) > MAX_EXTRAS:
            raise DecodeError(f"{len(extras):,} standalone descriptors, more than the {MAX_EXTRAS} a device "
                              "can present (a device qualifier, a hub descriptor and one other-speed "
                              "configuration per configuration)", descriptor=where, rule="extras")
        for i, raw in enumerate(extras):
            if len(raw) > MAX_EXTRA:
                raise refuse(f"standalone descriptor {i + 1}", len(raw), MAX_EXTRA,
                             "an other-speed configuration's wTotalLength is 16 bits")
    if strings:
        if len(strings) > MAX_STRINGS:
            raise DecodeError(f"{len(strings):,} string descriptors, more than the {MAX_STRINGS:,} a device can "
                              "present (string indices are 8 bits, string 0 lists at most 126 LANGIDs)",
                              descriptor=where, rule="strings")
        for (langid, index), raw in strings.items():
            if not 0 <= index <= 255 or not 0 <= langid <= 0xFFFF:
                raise DecodeError(f"string (LANGID {langid}, index {index}): the index is 8 bits and the "
                                  "LANGID 16 bits", descriptor=where, rule="strings")
            if len(raw) > MAX_STRING:
                raise refuse(f"string descriptor {index} (LANGID 0x{langid:04x})", len(raw), MAX_STRING,
                             "bLength is 8 bits")
    for interface, raw in (hid_reports or {}).items():
        if not 0 <= interface <= 255:
            raise DecodeError(f"HID report descriptor of interface {interface}: bInterfaceNumber is 8 bits",
                              descriptor=where, rule="hid reports")
        if len(raw) > MAX_HID_REPORT:
            raise refuse(f"the HID report descriptor of interface {interface}", len(raw), MAX_HID_REPORT,
                         "wDescriptorLength is 16 bits")
