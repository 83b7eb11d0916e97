"""HID end to end: report descriptor items, layouts, codecs, usage names, lint and hidapi transport.

Typical use::

    from dkproto.hid import parse, ReportCodec
    rd = parse(descriptor_bytes)
    codec = ReportCodec.for_descriptor(rd)
    values = codec.decode(report_bytes)          # {"Button 1": 1, "X": -5, ...}
    data = codec.build({"X": -5, "Y": 3}, report_id=1)

See docs/hid.md.
"""

from dkproto.hid.items import Item, ItemType, iter_items, parse_items
from dkproto.hid.parser import Collection, Field, Finding, Report, ReportDescriptor, parse

__all__ = [
    "Collection",
    "Field",
    "Finding",
    "Item",
    "ItemType",
    "Report",
    "ReportDescriptor",
    "iter_items",
    "parse",
    "parse_items",
]
