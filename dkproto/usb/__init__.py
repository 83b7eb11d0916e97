"""USB descriptor sets: load (files, the descriptors/ library, live devices), walk, render.

The stable entry points::

    from dkproto.usb import load, parse, render_text, render_json, render_hex
    ds = load("descriptors/hackrf-one")        # DescriptorSet
    ds.device["idVendor"], ds.configurations[0].interfaces, ds.errors
    ds.to_bytes()                               # rebuilt from the decoded fields

See ``docs/descriptors.md``.

The names below are imported on first use (module ``__getattr__``), so a caller that needs one
submodule (``dkproto dump`` imports the renderer and the loader) pays for that one only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dkproto._lazy import lazy_exports

if TYPE_CHECKING:
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

#: public name -> the submodule that defines it.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("DescriptorSet", "Node"), "model"),
    "parse": "parser",
    **dict.fromkeys(("render_as", "render_hex", "render_json", "render_text", "to_json"), "render"),
    **dict.fromkeys(("from_bytes", "from_hex", "from_json", "load", "load_embedded_example", "load_folder"),
                    "sources"),
    "walk": "walker",
}

#: Submodules an eager ``__init__`` used to load: still reachable as attributes
#: (``dkproto.usb.render.X`` after ``import dkproto.usb``).
_SUBMODULES = frozenset({"bounds", "choice", "model", "parser", "render", "sources", "walker"})


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, _SUBMODULES)
