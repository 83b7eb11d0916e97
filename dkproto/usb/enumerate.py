"""What is on the bus: the rows of ``dkproto list`` (and its ``-t`` tree).

Devices come from the USB transport's enumeration (:func:`dkproto.transport.usb.find_devices`,
libusb's device list). Names come from the device's own strings when it can be opened (through
its ``usb://BUS/ADDRESS`` transport), else from usb.ids; on Linux the bound driver of each
interface and the names the kernel cached (``manufacturer``, ``product``) are read from sysfs,
which needs no permission. Where there is no sysfs, the interfaces come from the active
configuration descriptor, read through the transport.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkproto import usbids
from dkproto.errors import DkError
from dkproto.schema.enums import Speed, class_name
from dkproto.transport import open_transport
from dkproto.transport.descriptors import active_configuration, iter_descriptors
from dkproto.transport.usb import UsbDeviceInfo, find_devices

__all__ = ["DeviceInfo", "InterfaceInfo", "describe", "list_devices", "render_list", "render_tree"]

SYSFS = Path("/sys/bus/usb/devices")


@dataclass
class InterfaceInfo:
    """One interface of the active configuration (for ``-t``)."""

    bInterfaceNumber: int
    bInterfaceClass: int
    driver: str | None = None


@dataclass
class DeviceInfo:
    """One row of ``dkproto list``."""

    bus: int
    address: int
    port_path: str
    port_numbers: tuple[int, ...]
    idVendor: int
    idProduct: int
    speed: int
    manufacturer: str | None
    product: str | None
    names_from: str  # "device", "sysfs", "usb.ids" or ""
    bDeviceClass: int
    driver: str | None
    interfaces: list[InterfaceInfo] = field(default_factory=list)

    @property
    def speed_label(self) -> str:
        """``480M`` etc."""
        try:
            return Speed(self.speed).label
        except ValueError:
            return "?"

    def to_json(self) -> dict[str, Any]:
        """Plain dict for ``--json``."""
        return {
            "bus": self.bus,
            "device": self.address,
            "port_path": self.port_path,
            "idVendor": f"0x{self.idVendor:04x}",
            "idProduct": f"0x{self.idProduct:04x}",
            "speed": self.speed_label,
            "manufacturer": self.manufacturer,
            "product": self.product,
            "names_from": self.names_from,
            "bDeviceClass": self.bDeviceClass,
            "class": class_name(self.bDeviceClass),
            "driver": self.driver,
            "interfaces": [
                {"bInterfaceNumber": i.bInterfaceNumber, "bInterfaceClass": i.bInterfaceClass,
                 "class": class_name(i.bInterfaceClass), "driver": i.driver}
                for i in self.interfaces
            ],
        }


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _driver(path: Path) -> str | None:
    link = path / "driver"
    try:
        return os.path.basename(os.readlink(link))
    except OSError:
        return None


def _interfaces_from_sysfs(live: UsbDeviceInfo) -> list[InterfaceInfo]:
    base = live.sysfs_path
    out = []
    name = base.name if live.port_numbers else f"{live.bus}-0"
    try:
        entries = sorted(p for p in base.iterdir() if p.name.startswith(name + ":"))
    except OSError:
        return []
    for entry in entries:
        num = _read(entry / "bInterfaceNumber")
        cls = _read(entry / "bInterfaceClass")
        if num is None or cls is None:
            continue
        out.append(InterfaceInfo(int(num, 16), int(cls, 16), _driver(entry)))
    return out


def _interfaces_from_configuration(config: bytes) -> list[InterfaceInfo]:
    """One entry per bInterfaceNumber of a configuration descriptor (its first alternate setting)."""
    out: list[InterfaceInfo] = []
    seen: set[int] = set()
    for desc in iter_descriptors(config):
        if desc[1] == 0x04 and len(desc) >= 9 and desc[2] not in seen:
            seen.add(desc[2])
            out.append(InterfaceInfo(desc[2], desc[5], None))
    return out


def _from_device(live: UsbDeviceInfo, strings: bool, interfaces: bool) -> tuple[str | None, str | None,
                                                                                list[InterfaceInfo]]:
    """The manufacturer and product strings and the interfaces of the active configuration, asked of
    the device itself (where sysfs does not have them); whatever cannot be read (permission,
    stall, no langid) is left out."""
    manufacturer = product = None
    found: list[InterfaceInfo] = []
    try:
        with open_transport(live.url) as t:
            if strings:
                manufacturer, product = t.info.manufacturer, t.info.product
            if interfaces:
                found = _interfaces_from_configuration(active_configuration(t))
    except DkError:
        pass  # names and interfaces fall back (sysfs, usb.ids)
    return manufacturer, product, found


def describe(live: UsbDeviceInfo) -> DeviceInfo:
    """A :class:`DeviceInfo` for one device of :func:`dkproto.transport.usb.find_devices`."""
    sys_path = live.sysfs_path if live.port_numbers else SYSFS / f"usb{live.bus}"
    has_sysfs = sys_path.exists()
    interfaces = _interfaces_from_sysfs(live) if has_sysfs else []
    # The kernel read the strings at enumeration: sysfs has them with no device I/O and no
    # permission (opening each device for them cost ~0.7 s a device in the lab's emulated CPU).
    manufacturer = _read(sys_path / "manufacturer") if has_sysfs else None
    product = _read(sys_path / "product") if has_sysfs else None
    names_from = "sysfs" if (manufacturer or product) else ""
    wants_strings = bool(live.iManufacturer or live.iProduct) and not names_from
    if wants_strings or not interfaces:
        from_manufacturer, from_product, from_device = _from_device(live, wants_strings, not interfaces)
        interfaces = interfaces or from_device
        if wants_strings and (from_manufacturer or from_product):
            manufacturer, product, names_from = from_manufacturer, from_product, "device"
    if not manufacturer and not product:
        manufacturer = usbids.vendor_name(live.idVendor)
        product = usbids.product_name(live.idVendor, live.idProduct)
        names_from = "usb.ids" if (manufacturer or product) else ""
    return DeviceInfo(
        bus=live.bus, address=live.address, port_path=live.port_path, port_numbers=live.port_numbers,
        idVendor=live.idVendor, idProduct=live.idProduct, speed=live.speed, manufacturer=manufacturer,
        product=product, names_from=names_from, bDeviceClass=live.bDeviceClass,
        driver=_driver(sys_path) if has_sysfs else None, interfaces=interfaces,
    )


def list_devices(vid: int | None = None, pid: int | None = None) -> list[DeviceInfo]:
    """Every device on the bus (optionally filtered), sorted by bus and device number."""
    return [describe(live) for live in find_devices(vid, pid)]


def render_list(devices: list[DeviceInfo]) -> str:
    """One line per device: bus, device, port path, VID:PID, speed, names, class, driver."""
    lines = []
    for d in devices:
        names = " ".join(x for x in (d.manufacturer, d.product) if x) or "(no name)"
        cls = class_name(d.bDeviceClass)
        if d.bDeviceClass == 0 and d.interfaces:
            cls = "/".join(dict.fromkeys(class_name(i.bInterfaceClass) for i in d.interfaces))
        drivers = ",".join(sorted({i.driver for i in d.interfaces if i.driver})) or (d.driver or "-")
        lines.append(f"Bus {d.bus:03d} Device {d.address:03d} Port {d.port_path:<10} "
                     f"ID {d.idVendor:04x}:{d.idProduct:04x} {d.speed_label:>6}  {names}  [{cls}]  driver={drivers}")
    return "\n".join(lines) + ("\n" if lines else "")


def render_tree(devices: list[DeviceInfo]) -> str:
    """A tree like ``lsusb -t``: per bus, devices under the hub ports they hang from."""
    lines: list[str] = []
    for bus in sorted({d.bus for d in devices}):
        on_bus = sorted((d for d in devices if d.bus == bus), key=lambda d: d.port_numbers)
        for d in on_bus:
            depth = len(d.port_numbers)
            port = d.port_numbers[-1] if d.port_numbers else 1
            head = "/:  " if depth == 0 else "    " * depth + "|__ "
            kind = "Bus" if depth == 0 else "Port"
            number = f"{bus:03d}" if depth == 0 else f"{port:03d}"
            ifaces = d.interfaces or [InterfaceInfo(-1, d.bDeviceClass, d.driver)]
            for i, intf in enumerate(ifaces):
                if i and depth == 0:
                    continue
                intf_text = f"If {intf.bInterfaceNumber}, " if intf.bInterfaceNumber >= 0 else ""
                prefix = head if i == 0 else "    " * depth + "|__ "
                lines.append(
                    f"{prefix}{kind} {number}: Dev {d.address:03d}, {intf_text}"
                    f"Class={class_name(intf.bInterfaceClass)}, Driver={intf.driver or '[none]'}, "
                    f"{d.speed_label}"
                )
            lines.append("    " * (depth + 1) + f"ID {d.idVendor:04x}:{d.idProduct:04x} "
                         + " ".join(x for x in (d.manufacturer, d.product) if x))
    return "\n".join(lines) + ("\n" if lines else "")
