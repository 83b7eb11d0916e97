"""Hub class descriptors: USB 2.0 hub (0x29, USB 2.0 §11.23.2.1) and SuperSpeed hub
(0x2A, USB 3.2 §10.15.2.1).

They come from a class GET_DESCRIPTOR request to the hub, not from the configuration set.
"""

from __future__ import annotations

from typing import Any

from construct import Bytes, this

from dkproto.schema._fields import f, make_schema
from dkproto.schema.registry import Context, Schema, register_standard

__all__ = ["HUB", "SUPERSPEED_HUB", "hub_characteristics"]


def hub_characteristics(value: int, superspeed: bool = False) -> str:
    """``wHubCharacteristics`` as lsusb spells it."""
    power = ("Ganged power switching", "Per-port power switching", "No power switching (usb 1.0)",
             "No power switching (usb 1.0)")[value & 3]
    parts = [power]
    if value & 4:
        parts.append("Compound device")
    parts.append(("Ganged overcurrent protection", "Per-port overcurrent protection",
                  "No overcurrent protection", "No overcurrent protection")[(value >> 3) & 3])
    if not superspeed:
        parts.append(f"TT think time {((value >> 5) & 3) * 8 + 8} FS bits")
        if value & 0x80:
            parts.append("Port indicators")
    return ", ".join(parts)


def _ports_bytes(container: Any) -> int:
    return int(container.bNbrPorts) // 8 + 1


HUB = make_schema(
    "hub",
    "Hub Descriptor",
    (
        f("bNbrPorts"), f("wHubCharacteristics"), f("bPwrOn2PwrGood"), f("bHubContrCurrent"),
        "DeviceRemovable" / Bytes(this.bNbrPorts // 8 + 1),
        "PortPwrCtrlMask" / Bytes(this.bLength - 7 - (this.bNbrPorts // 8 + 1)),
    ),
    {
        "wHubCharacteristics": lambda v, c: hub_characteristics(v),
        "bPwrOn2PwrGood": lambda v, c: f"{v * 2} ms",
        "bHubContrCurrent": lambda v, c: f"{v} mA",
    },
    "USB 2.0 §11.23.2.1",
)

SUPERSPEED_HUB = make_schema(
    "superspeed_hub",
    "SuperSpeed Hub Descriptor",
    (
        f("bNbrPorts"), f("wHubCharacteristics"), f("bPwrOn2PwrGood"), f("bHubContrCurrent"),
        f("bHubHdrDecLat"), f("wHubDelay"), f("DeviceRemovable", 2),
    ),
    {
        "wHubCharacteristics": lambda v, c: hub_characteristics(v, superspeed=True),
        "bPwrOn2PwrGood": lambda v, c: f"{v * 2} ms",
        "bHubContrCurrent": lambda v, c: f"{v * 4} mA",
        "bHubHdrDecLat": lambda v, c: f"{v / 10:g} us",
        "wHubDelay": lambda v, c: f"{v} ns",
    },
    "USB 3.2 §10.15.2.1",
)


def _select_hub(_t: int, raw: bytes, _ctx: Context) -> Schema | None:
    if len(raw) >= 3 and len(raw) < 7 + raw[2] // 8 + 1:
        return HUB  # too short: the walker reports the rule broken
    return HUB


def _select_ss_hub(_t: int, _raw: bytes, _ctx: Context) -> Schema:
    return SUPERSPEED_HUB


register_standard(0x29, _select_hub)
register_standard(0x2A, _select_ss_hub)
