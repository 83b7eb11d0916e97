"""Transports: every byte to or from a device goes through one, chosen by URL.

``open_transport("usb://1d6b:0104")``, ``hid:///dev/hidraw0``, ``serial:///dev/ttyACM0?baudrate=115200``,
``sim://loopback``, ``spy+usb://1/2``. See ``docs/transports.md``.
"""

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
