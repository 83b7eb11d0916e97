"""Transports: every byte to or from a device goes through one, chosen by URL.

``open_transport("usb://1d6b:0104")``, ``hid:///dev/hidraw0``, ``serial:///dev/ttyACM0?baudrate=115200``,
``sim://loopback``, ``spy+usb://1/2``. See ``docs/transports.md``.

The names below are imported on first use (module ``__getattr__``): ``import dkproto.transport``
or ``from dkproto.transport.url import ...`` (``dkproto dump FILE``) then loads neither the
transport base classes nor the scheme registry (whose entry-point scan needs
``importlib.metadata``). ``from dkproto.transport import X`` works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dkproto.transport.base import (
        DEFAULT_TIMEOUT_MS,
        HID_REPORT_FEATURE,
        HID_REPORT_INPUT,
        HID_REPORT_OUTPUT,
        Transfer,
        TransferCallback,
        Transport,
        TransportInfo,
        TransportWrapper,
    )
    from dkproto.transport.registry import open_transport, register_scheme, schemes

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "HID_REPORT_FEATURE",
    "HID_REPORT_INPUT",
    "HID_REPORT_OUTPUT",
    "Transfer",
    "TransferCallback",
    "Transport",
    "TransportInfo",
    "TransportWrapper",
    "open_transport",
    "register_scheme",
    "schemes",
]

#: public name -> the submodule that defines it.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("DEFAULT_TIMEOUT_MS", "HID_REPORT_FEATURE", "HID_REPORT_INPUT", "HID_REPORT_OUTPUT",
                     "Transfer", "TransferCallback", "Transport", "TransportInfo", "TransportWrapper"),
                    "base"),
    **dict.fromkeys(("open_transport", "register_scheme", "schemes"), "registry"),
}


#: Submodules an eager ``__init__`` used to load: still reachable as attributes
#: (``dkproto.transport.base.X`` after ``import dkproto.transport``).
_SUBMODULES = frozenset({"base", "descriptors", "registry", "url"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"dkproto.transport.{name}")  # the import binds it here too
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dkproto.transport' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"dkproto.transport.{module}"), name)
    globals()[name] = value  # once: later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
