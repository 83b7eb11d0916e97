"""Entry points of one group, without importing :mod:`importlib.metadata` when no package has any.

``importlib.metadata`` costs more to import (``email``, ``zipfile``, ``csv``...: about 15-20 ms,
half of ``python -c pass``) than a ``dkproto dump FILE`` spends on the dump itself, and the
schema registry asks it for the ``dkproto.schemas`` group on every dump. Most installations
declare no such entry point, and that can be seen cheaply: :func:`may_declare` lists the
``*.dist-info`` / ``*.egg-info`` folders of ``sys.path`` and looks for the group's name in their
``entry_points.txt``. When the name is in none of them, ``importlib.metadata`` would find no
entry point of the group either, so :func:`entry_points` returns ``()`` without importing it.

Anything this check does not fully understand is answered with "maybe", and then
``importlib.metadata.entry_points(group=...)`` (the reference) runs as before: a finder on
``sys.meta_path`` other than the standard path finder that can find distributions, a
``sys.path`` entry that is not a string, a zip file or an ``.egg``, an ``entry_points.txt`` that
is not ASCII or cannot be read.

The module stands in for ``importlib.metadata`` where only ``entry_points(group=...)`` (and the
``EntryPoint`` type) is used: ``from dkproto import _entry_points as metadata``.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import PathFinder
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.metadata import EntryPoint

__all__ = ["EntryPoint", "entry_points", "may_declare"]

_INFO_SUFFIXES = (".dist-info", ".egg-info")


def may_declare(group: str) -> bool:
    """False only when no distribution on ``sys.path`` can declare an entry point of ``group``."""
    for finder in sys.meta_path:
        # importlib.metadata asks every finder that has find_distributions; only the standard
        # path finder's search (sys.path, below) is mirrored here.
        if finder is not PathFinder and getattr(finder, "find_distributions", None) is not None:
            return True
    needle = group.encode("ascii", "replace")
    for root in sys.path:
        if not isinstance(root, str) or os.path.basename(root).lower().endswith(".egg"):
            return True
        try:
            children = os.listdir(root or ".")
        except OSError:
            if os.path.exists(root or "."):
                return True  # a zip archive (or a folder we may not list): importlib.metadata knows
            continue
        for child in children:
            if not child.lower().endswith(_INFO_SUFFIXES):
                continue
            try:
                with open(os.path.join(root, child, "entry_points.txt"), "rb") as fh:
                    text = fh.read()
            except (FileNotFoundError, NotADirectoryError):
                continue  # no entry points (or a one-file .egg-info)
            except OSError:
                return True
            if needle in text or not text.isascii():
                return True
    return False


def entry_points(group: str) -> Sequence[EntryPoint]:
    """``importlib.metadata.entry_points(group=group)``; ``()`` when :func:`may_declare` says none can exist."""
    if not may_declare(group):
        return ()
    from importlib import metadata

    return metadata.entry_points(group=group)


def __getattr__(name: str) -> Any:
    if name == "EntryPoint":  # the type, for code that names it at run time
        from importlib import metadata

        return metadata.EntryPoint
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
