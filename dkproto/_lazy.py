"""Lazy package exports: a package ``__init__`` names what it exports and the submodule each
name lives in, and a name's submodule is imported on first use (PEP 562 module ``__getattr__``),
so importing the package costs nothing until a name is asked for.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, lazy: Mapping[str, str],
                 submodules: Iterable[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``.

    Args:
        package: the package's name (``__name__``).
        lazy: exported name -> the submodule (relative name) that defines it.
        submodules: submodules an eager ``__init__`` used to load, still reachable as attributes.
    """
    subs = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        if name in subs:
            return importlib.import_module(f"{package}.{name}")  # the import binds it there too
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # once: later look-ups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        mod = sys.modules[package]
        return sorted(set(vars(mod)) | set(getattr(mod, "__all__", ())))

    return __getattr__, __dir__
