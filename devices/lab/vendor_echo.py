"""The ``ffs-vendor`` lab device: a vendor-specific FunctionFS device written in Python.

Named by ``devices/lab/ffs-vendor.json`` (``"program": "vendor_echo.py:VendorEchoDevice"``). An
example device program on :mod:`dkproto.lab.ffs` and :mod:`dkproto.device`: vendor requests
through :func:`~dkproto.device.control_request`, a STALL by raising
:class:`~dkproto.errors.PipeStalledError`, bulk echo and an interrupt endpoint.
"""

from __future__ import annotations

import os
import struct
from typing import ClassVar

from dkproto.device import ControlRequest, control_request
from dkproto.errors import PipeStalledError
from dkproto.lab.ffs import Endpoint, FfsDevice

__all__ = ["VendorEchoDevice"]


class VendorEchoDevice(FfsDevice):
    """The lab's vendor-specific FunctionFS device.

    - bulk OUT 0x02 -> echoed on bulk IN 0x81;
    - interrupt IN 0x85 (8 bytes, 1 ms): :meth:`notify` queues a report;
    - vendor requests (recipient device or interface): 0x01 GET_VERSION (IN, 2 bytes: 0x0100),
      0x02 SET_VALUE / 0x03 GET_VALUE (OUT stores up to 64 bytes, IN returns them),
      0x04 ECHO_WVALUE (IN: wValue as 2 bytes, little-endian); anything else STALLs.

    (The addresses are those ``dummy_hcd`` gives these endpoint types, so the host sees the
    same numbers; on another UDC use :meth:`FfsDevice.host_address`.)
    """

    interface: ClassVar[dict[str, int]] = {"bInterfaceClass": 0xFF, "bInterfaceSubClass": 0x00,
                                           "bInterfaceProtocol": 0x00}
    endpoints: ClassVar[list[Endpoint]] = [Endpoint(0x81, "bulk"), Endpoint(0x02, "bulk"),
                                           Endpoint(0x85, "interrupt", 8, 1)]
    strings: ClassVar[list[str]] = ["dkproto vendor echo"]
    VERSION = 0x0100

    def __init__(self, mount: str | os.PathLike[str]) -> None:
        super().__init__(mount)
        self.value = b""

    @control_request(type="vendor", recipient="device", number=0x01, direction="in")
    @control_request(type="vendor", recipient="interface", number=0x01, direction="in")
    def get_version(self, req: ControlRequest) -> bytes:
        return struct.pack("<H", self.VERSION)

    @control_request(type="vendor", recipient="device", number=0x02, direction="out")
    @control_request(type="vendor", recipient="interface", number=0x02, direction="out")
    def set_value(self, req: ControlRequest) -> None:
        if len(req.data) > 64:
            raise PipeStalledError(f"SET_VALUE: {len(req.data)} bytes, at most 64 are kept")
        self.value = req.data

    @control_request(type="vendor", recipient="device", number=0x03, direction="in")
    @control_request(type="vendor", recipient="interface", number=0x03, direction="in")
    def get_value(self, req: ControlRequest) -> bytes:
        return self.value

    @control_request(type="vendor", recipient="device", number=0x04, direction="in")
    def echo_wvalue(self, req: ControlRequest) -> bytes:
        return struct.pack("<H", req.wValue)

    def on_out(self, address: int, data: bytes) -> None:
        if address == 0x02:
            self.send(0x81, data)

    def notify(self, report: bytes) -> None:
        """Queue one interrupt IN report on 0x85."""
        self.send(0x85, report)
