"""Descriptor sets as trees: the names of the modules that now hold them, in one place.

``dkproto.usb.tree`` was one module; it is kept so that existing imports work. New code imports
from where each part lives:

* :mod:`dkproto.usb.model`: :class:`Node`, :class:`DescriptorSet`;
* :mod:`dkproto.usb.bounds`: the ``MAX_*`` bounds and :func:`check_bounds`;
* :mod:`dkproto.usb.choice`: the cache of schema choices (:func:`clear_choice_cache`);
* :mod:`dkproto.usb.walker`: framing, decoding and placement (:func:`walk`);
* :mod:`dkproto.usb.parser`: :func:`parse`, a set from raw blobs.
"""

from __future__ import annotations

from dkproto.usb.bounds import (
    MAX_BOS,
    MAX_COMPLAINTS,
    MAX_CONFIGURATION,
    MAX_CONFIGURATIONS,
    MAX_DESCRIPTORS,
    MAX_EXTRA,
    MAX_EXTRAS,
    MAX_STRING,
    MAX_STRINGS,
    check_bounds,
)
from dkproto.usb.choice import clear_choice_cache
from dkproto.usb.model import DescriptorSet, Node
from dkproto.usb.parser import parse
from dkproto.usb.walker import walk

__all__ = [
    "MAX_BOS",
    "MAX_COMPLAINTS",
    "MAX_CONFIGURATION",
    "MAX_CONFIGURATIONS",
    "MAX_DESCRIPTORS",
    "MAX_EXTRA",
    "MAX_EXTRAS",
    "MAX_STRING",
    "MAX_STRINGS",
    "DescriptorSet",
    "Node",
    "check_bounds",
    "clear_choice_cache",
    "parse",
    "walk",
]
