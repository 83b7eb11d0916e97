"""Finding the file a command-line target names (``descriptors/<name>`` without its extension)."""

from __future__ import annotations

import os
from pathlib import Path

#: Extensions tried, in order, when a target is not a file as given.
SUFFIXES = (".json", ".bin", ".hex", ".txt")


def find_file(target: str | os.PathLike[str]) -> Path | None:
    """``target`` if it is a file, else the first of ``target`` + :data:`SUFFIXES` that is; else None."""
    path = Path(target)
    try:
        if path.is_file():
            return path
        for suffix in SUFFIXES:
            cand = path.with_name(path.name + suffix)
            if cand.is_file():
                return cand
    except (OSError, ValueError):  # a hex string too long for a file name, an empty name
        return None
    return None
