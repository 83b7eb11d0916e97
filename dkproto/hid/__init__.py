"""HID end to end: report descriptor items, layouts, codecs, usage names, lint and hidapi transport.

Typical use::

    from dkproto.hid import DescriptorCodec, parse
    rd = parse(descriptor_bytes)
    codec = DescriptorCodec(rd)
    values = codec.decode(report_bytes)          # {"Button 1": 1, "X": -5, ...}
    data = codec.build({"X": -5, "Y": 3}, report_id=1)

See docs/hid.md.
"""

from dkproto.hid.codec import DescriptorCodec, ReportCodec, ReportValues
from dkproto.hid.device import HidDevice, HidDeviceInfo, enumerate_devices
from dkproto.hid.items import Item, ItemType, iter_items, parse_items
from dkproto.hid.lint import lint
from dkproto.hid.parser import Collection, Field, Finding, Report, ReportDescriptor, parse
from dkproto.hid.sources import Source, load

__all__ = [
    "Collection",
    "DescriptorCodec",
    "Field",
    "Finding",
    "HidDevice",
    "HidDeviceInfo",
    "Item",
    "ItemType",
    "Report",
    "ReportCodec",
    "ReportDescriptor",
    "ReportValues",
    "Source",
    "enumerate_devices",
    "iter_items",
    "lint",
    "load",
    "parse",
    "parse_items",
]
