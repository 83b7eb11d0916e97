"""Read ``lsusb -v`` output and compare it with a :class:`~dkproto.usb.model.DescriptorSet`.

Used by the corpus oracle test (``descriptors/oracle/usb/*.lsusb``) and by the QEMU lab,
which runs ``lsusb -v`` next to ``dkproto dump`` in the same VM.

Only the standard descriptors lsusb prints in a fixed layout are read: device,
configuration, interface association, interface and endpoint (class-specific sections are
skipped: lsusb's layout for them is not a stable contract). lsusb's spellings are mapped to
the spec's: ``iSerial`` is ``iSerialNumber``; ``MaxPower 100mA`` is ``bMaxPower`` 50 (or
12/13 at SuperSpeed, where the unit is 8 mA).
"""

from __future__ import annotations

import re
from typing import Any

from dkproto.usb.model import DescriptorSet, Node

__all__ = ["compare_with_lsusb", "parse_lsusb"]

_FIELD = re.compile(r"^(\s+)((?:b|w|i|id|bcd|bm|dw)[A-Z0-9]\w*|MaxPower)\s+(\S+)")
_BUS = re.compile(r"^Bus (\d+) Device (\d+): ID ([0-9a-fA-F]{4}):([0-9a-fA-F]{4})")
_RENAME = {"iSerial": "iSerialNumber"}


def _value(name: str, token: str) -> int | None:
    try:
        if name == "MaxPower":
            return int(token.lower().rstrip("ma"))
        if name.startswith("bcd") and "." in token:
            major, minor = token.split(".", 1)
            return (int(major, 16) << 8) | int(minor, 16)
        if token.lower().startswith("0x"):
            return int(token, 16)
        return int(token)
    except ValueError:
        return None


def parse_lsusb(text: str) -> list[dict[str, Any]]:
    """The devices of an ``lsusb -v`` output.

    Returns:
        One dict per device: ``bus``, ``device`` (numbers, when the ``Bus`` line is there),
        ``id`` (``(vid, pid)``), ``fields`` (device descriptor), ``configurations``: a list of
        ``{"fields", "iads": [fields...], "interfaces": [{"fields", "endpoints": [fields...]}]}``.
        Field values are ints (``bcd`` values as ``0x0200``; ``MaxPower`` as mA).
    """
    devices: list[dict[str, Any]] = []
    dev: dict[str, Any] | None = None
    section: dict[str, Any] | None = None  # the fields dict lines go to; None = skip
    config: dict[str, Any] | None = None
    iface: dict[str, Any] | None = None
    header_indent = -1
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _BUS.match(line)
        if m:
            dev = {"bus": int(m.group(1)), "device": int(m.group(2)),
                   "id": (int(m.group(3), 16), int(m.group(4), 16)), "fields": {}, "configurations": []}
            devices.append(dev)
            section = config = iface = None
            continue
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        fm = _FIELD.match(line)
        if fm is None and stripped.endswith(":"):
            title = stripped[:-1]
            header_indent = indent
            if title == "Device Descriptor":
                if dev is None or dev["fields"]:
                    dev = {"bus": None, "device": None, "id": None, "fields": {}, "configurations": []}
                    devices.append(dev)
                section = dev["fields"]
                config = iface = None
            elif dev is not None and title == "Configuration Descriptor":
                config = {"fields": {}, "iads": [], "interfaces": []}
                dev["configurations"].append(config)
                section = config["fields"]
                iface = None
            elif config is not None and title == "Interface Association":
                section = {}
                config["iads"].append(section)
            elif config is not None and title == "Interface Descriptor":
                iface = {"fields": {}, "endpoints": []}
                config["interfaces"].append(iface)
                section = iface["fields"]
            elif iface is not None and title == "Endpoint Descriptor":
                section = {}
                iface["endpoints"].append(section)
            else:
                section = None
            continue
        if fm is None:
            # "Device Status:     0x0000" and other top-level lines end a section
            if indent <= header_indent and not stripped.startswith("(") and ":" in stripped \
                    and not stripped.endswith(":"):
                section = None
            continue
        if section is None or len(fm.group(1)) <= header_indent:
            continue
        name = _RENAME.get(fm.group(2), fm.group(2))
        if name in section:
            continue  # a sub-line repeating a name belongs to a nested explanation
        value = _value(name, fm.group(3))
        if value is not None:
            section[name] = value
    return devices


def _fields(node: Node) -> dict[str, Any]:
    return {k: v for k, v in node.field_items()} if node.fields is not None else {}


def _compare(label: str, ours: dict[str, Any], theirs: dict[str, Any], out: list[str]) -> None:
    for name, value in theirs.items():
        if name == "MaxPower":
            mine = ours.get("bMaxPower")
            if mine is None or value not in (mine * 2, mine * 8):
                out.append(f"{label}: bMaxPower dkproto {mine} ({None if mine is None else mine * 2}mA) "
                           f"lsusb MaxPower {value}mA")
            continue
        if name not in ours:
            out.append(f"{label}: {name} missing in dkproto (lsusb {value})")
            continue
        if ours[name] != value:
            out.append(f"{label}: {name} dkproto {ours[name]} lsusb {value}")


def compare_with_lsusb(descriptor_set: DescriptorSet, lsusb_text: str) -> list[str]:
    """Disagreements between a descriptor set and ``lsusb -v`` of the same device.

    Compares the device, configuration, interface association, interface and endpoint
    fields that lsusb prints (string *indices*, not texts). When ``lsusb_text`` holds several
    devices, the one whose ``ID vvvv:pppp`` (and, for live sets, bus/device number) matches
    is used.

    Returns:
        One line per disagreement; an empty list when they agree.
    """
    devices = parse_lsusb(lsusb_text)
    if not devices:
        return ["lsusb output has no device"]
    vp = descriptor_set.vid_pid
    chosen = devices[0]
    if len(devices) > 1 and vp is not None:
        bus = descriptor_set.meta.get("bus")
        addr = descriptor_set.meta.get("address")
        matching = [d for d in devices if d["id"] == vp]
        exact = [d for d in matching if bus is not None and d["bus"] == bus and d["device"] == addr]
        if exact:
            chosen = exact[0]
        elif matching:
            chosen = matching[0]
        else:
            return [f"lsusb output has no device {vp[0]:04x}:{vp[1]:04x}"]
    out: list[str] = []
    dev = descriptor_set.device
    if dev is None:
        return ["dkproto has no device descriptor"]
    _compare("device", _fields(dev), chosen["fields"], out)
    configs = descriptor_set.configurations
    if len(configs) != len(chosen["configurations"]):
        out.append(f"configurations: dkproto {len(configs)} lsusb {len(chosen['configurations'])}")
    for index, (cfg, theirs) in enumerate(zip(configs, chosen["configurations"])):
        label = f"configuration {index + 1}"
        _compare(label, _fields(cfg), theirs["fields"], out)
        iads = [n for n in cfg.walk() if n.role == "interface_association"]
        if len(iads) != len(theirs["iads"]):
            out.append(f"{label}: interface associations dkproto {len(iads)} lsusb {len(theirs['iads'])}")
        for j, (iad, their_iad) in enumerate(zip(iads, theirs["iads"])):
            _compare(f"{label} interface association {j}", _fields(iad), their_iad, out)
        mine: dict[tuple[int, int], Node] = {}
        for iface in cfg.interfaces:
            if iface.fields is not None:
                mine.setdefault((iface.fields.bInterfaceNumber, iface.fields.bAlternateSetting), iface)
        seen = set()
        for their_iface in theirs["interfaces"]:
            key = (their_iface["fields"].get("bInterfaceNumber"), their_iface["fields"].get("bAlternateSetting"))
            seen.add(key)
            ilabel = f"{label} interface {key[0]}.{key[1]}"
            node = mine.get(key)
            if node is None:
                out.append(f"{ilabel}: missing in dkproto")
                continue
            _compare(ilabel, _fields(node), their_iface["fields"], out)
            eps = [c for c in node.children if c.role == "endpoint"]
            if len(eps) != len(their_iface["endpoints"]):
                out.append(f"{ilabel}: endpoints dkproto {len(eps)} lsusb {len(their_iface['endpoints'])}")
            for ep, their_ep in zip(eps, their_iface["endpoints"]):
                addr = their_ep.get("bEndpointAddress")
                ours = _fields(ep)
                for child in ep.children:  # lsusb prints the companion's bMaxBurst inline
                    if child.key in ("ss_endpoint_companion", "ssp_isoc_endpoint_companion"):
                        for name, value in child.field_items():
                            ours.setdefault(name, value)
                _compare(f"{ilabel} endpoint 0x{addr or 0:02x}", ours, their_ep, out)
        for key in mine:
            if key not in seen:
                out.append(f"{label} interface {key[0]}.{key[1]}: missing in lsusb")
    return out
