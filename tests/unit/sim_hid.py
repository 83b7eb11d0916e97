"""Test helper: a HID device on ``sim://`` with a given report descriptor.

One interface (class 3) with interrupt IN 0x81 and OUT 0x02, the HID descriptor pointing at the
report descriptor, GET_REPORT/SET_REPORT(Feature) on EP0 from ``features``, output reports
collected in ``outputs``. Subclasses set ``RDESC`` and ``PRODUCT``.
"""

from __future__ import annotations

from typing import ClassVar

from dkproto.device import ControlRequest, control_request
from dkproto.errors import PipeStalledError
from dkproto.transport.sim import SimDevice

DEVICE = bytes.fromhex("12 01 0002 00 00 00 40 0912 0270 0001 01 02 03 01")  # 1209:7002


def config_for(rdesc: bytes) -> bytes:
    """A 41-byte configuration: one HID interface, interrupt IN 0x81 and OUT 0x02."""
    return (bytes.fromhex("09 02 2900 01 01 00 80 32"      # configuration 1, 41 bytes
                          "09 04 00 00 02 03 00 00 00"     # interface 0: HID, 2 endpoints
                          "09 21 1101 00 01 22") + len(rdesc).to_bytes(2, "little")
            + bytes.fromhex("07 05 81 03 0800 0a"           # interrupt IN 0x81
                            "07 05 02 03 0800 0a"))         # interrupt OUT 0x02


class SimHid(SimDevice):
    """A HID device on ``sim://`` serving ``RDESC``; feature report 3 holds two vendor bytes."""

    RDESC: ClassVar[bytes] = b""
    PRODUCT: ClassVar[str] = "sim hid"

    def __init__(self) -> None:
        super().__init__(DEVICE, [config_for(self.RDESC)], {1: "dkproto", 2: self.PRODUCT, 3: "s1"},
                         name=self.PRODUCT.replace(" ", "-"), report_descriptors={0: self.RDESC})
        self.features = {3: b"\x03\x10\x20"}
        self.outputs: list[bytes] = []
        self.on_write(0x02)(lambda _dev, data: self.outputs.append(data))

    @control_request(type="class", recipient="interface", number=0x01, direction="in")
    def get_report(self, req: ControlRequest) -> bytes:
        if req.wValue >> 8 != 3 or req.wValue & 0xFF not in self.features:
            raise PipeStalledError("no such report")
        return self.features[req.wValue & 0xFF]

    @control_request(type="class", recipient="interface", number=0x09, direction="out")
    def set_report(self, req: ControlRequest) -> None:
        self.features[req.wValue & 0xFF] = req.data
