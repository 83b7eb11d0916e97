"""``ControlRequest``: one SETUP packet and its OUT data stage, as a device sees it."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dkproto.errors import BadArgumentError
from dkproto.schema.enums import Recipient, RequestType

__all__ = ["SETUP_SIZE", "ControlRequest"]

#: A SETUP packet is 8 bytes (USB 2.0 §9.3).
SETUP_SIZE = 8
_SETUP = struct.Struct("<BBHHH")


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """One SETUP packet (USB 2.0 §9.3) and, for OUT requests, its data stage, as a device sees it.

    The one request type of dkproto's device sides (``sim://``, the lab's FunctionFS devices and
    its USB/IP server): handlers registered with :func:`dkproto.device.control_request` and the
    :class:`~dkproto.device.StandardResponder` take it. Attributes use the spec's field names.
    """

    bmRequestType: int
    bRequest: int
    wValue: int
    wIndex: int
    wLength: int
    data: bytes = b""

    @classmethod
    def from_setup(cls, setup: bytes, data: bytes = b"") -> ControlRequest:
        """From the 8 little-endian SETUP bytes (and the OUT data stage, if any).

        Raises:
            BadArgumentError: ``setup`` is not 8 bytes.
        """
        if len(setup) != SETUP_SIZE:
            raise BadArgumentError(f"a SETUP packet is {SETUP_SIZE} bytes, got {len(setup)}")
        bm, request, value, index, length = _SETUP.unpack(setup)
        return cls(bm, request, value, index, length, bytes(data))

    @property
    def setup(self) -> bytes:
        """The 8 SETUP bytes (little-endian, as on the wire)."""
        return _SETUP.pack(self.bmRequestType, self.bRequest, self.wValue, self.wIndex, self.wLength)

    @property
    def is_in(self) -> bool:
        """Device-to-host (bit 7 of ``bmRequestType``)."""
        return bool(self.bmRequestType & 0x80)

    direction_in = is_in

    @property
    def type(self) -> str:
        """``standard``, ``class``, ``vendor`` or ``reserved`` (bits 6..5)."""
        return RequestType((self.bmRequestType >> 5) & 3).name.lower()

    @property
    def recipient(self) -> str:
        """``device``, ``interface``, ``endpoint``, ``other``, or ``reserved(N)`` (bits 4..0)."""
        r = self.bmRequestType & 0x1F
        return Recipient(r).name.lower() if r < 4 else f"reserved({r})"

    def describe(self) -> str:
        """One line for logs: type, recipient, number, direction and the setup fields."""
        return (f"{self.type} {self.recipient} request 0x{self.bRequest:02x} "
                f"({'IN' if self.is_in else 'OUT'}, bmRequestType 0x{self.bmRequestType:02x}, "
                f"wValue 0x{self.wValue:04x}, wIndex 0x{self.wIndex:04x}, wLength {self.wLength})")

    def __repr__(self) -> str:
        return (f"ControlRequest(bmRequestType=0x{self.bmRequestType:02x}, bRequest=0x{self.bRequest:02x}, "
                f"wValue=0x{self.wValue:04x}, wIndex=0x{self.wIndex:04x}, wLength={self.wLength})")
