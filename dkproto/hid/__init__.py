"""HID end to end: report descriptor items, layouts, codecs, usage names, lint and hidapi transport.

Typical use::

    from dkproto.hid import DescriptorCodec, parse
    rd = parse(descriptor_bytes)
    codec = DescriptorCodec(rd)
    values = codec.decode(report_bytes)          # {"Button 1": 1, "X": -5, ...}
    data = codec.build({"X": -5, "Y": 3}, report_id=1)

See docs/hid.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dkproto.hid.codec import DescriptorCodec, ReportCodec, ReportValues
from dkproto.hid.items import Item, ItemType, iter_items, parse_items
from dkproto.hid.lint import lint
from dkproto.hid.parser import Collection, Field, Finding, Report, ReportDescriptor, parse
from dkproto.hid.sources import Source, load

if TYPE_CHECKING:
    from dkproto.hid.device import HidDevice, HidDeviceInfo, enumerate_devices

#: Names of :mod:`dkproto.hid.device` (codecs bound to a transport, a layer above the parser):
#: imported on first use, so ``import dkproto.hid`` loads no transport and no hidapi.
_DEVICE_NAMES = ("HidDevice", "HidDeviceInfo", "enumerate_devices")


def __getattr__(name: str) -> Any:
    if name in _DEVICE_NAMES:
        from dkproto.hid import device

        return getattr(device, name)
    raise AttributeError(f"module 'dkproto.hid' has no attribute {name!r}")

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
