"""USB descriptor sets: load (files, the descriptors/ library, live devices), walk, render.

The stable entry points::

    from dkproto.usb import load, parse, render_text, render_json, render_hex
    ds = load("descriptors/hackrf-one")        # DescriptorSet
    ds.device["idVendor"], ds.configurations[0].interfaces, ds.errors
    ds.to_bytes()                               # rebuilt from the decoded fields

See ``docs/descriptors.md``.
"""

from dkproto.usb.model import DescriptorSet, Node
from dkproto.usb.parser import parse
from dkproto.usb.render import render_as, render_hex, render_json, render_text, to_json
from dkproto.usb.sources import from_bytes, from_hex, from_json, load, load_embedded_example, load_folder
from dkproto.usb.walker import walk

__all__ = [
    "DescriptorSet",
    "Node",
    "from_bytes",
    "from_hex",
    "from_json",
    "load",
    "load_embedded_example",
    "load_folder",
    "parse",
    "render_as",
    "render_hex",
    "render_json",
    "render_text",
    "to_json",
    "walk",
]
