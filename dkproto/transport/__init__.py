"""Transports: every byte to or from a device goes through one, chosen by URL.

``open_transport("usb://1d6b:0104")``, ``hid:///dev/hidraw0``, ``serial:///dev/ttyACM0?baudrate=115200``,
``sim://loopback``, ``spy+usb://1/2``. See ``docs/transports.md``.

The names below are imported on first use (module ``__getattr__``): ``import dkproto.transport``
or ``from dkproto.transport.url import ...`` (``dkproto dump FILE``) then loads neither the
transport base classes nor the scheme registry (whose entry-point scan needs
``importlib.metadata``). ``from dkproto.transport import X`` works as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dkproto._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, _SUBMODULES)
