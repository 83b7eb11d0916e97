"""What is on the USB bus (private to the USB transport; use :func:`dkproto.transport.usb.find_devices`).

Enumeration reads libusb's device list only: no device is opened, so it needs no permission.
Each :class:`UsbDeviceInfo` names its device by :attr:`UsbDeviceInfo.url` (``usb://BUS/ADDRESS``);
open that with :func:`dkproto.transport.open_transport` to talk to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import usb.core

from dkproto.transport.usb_backend import PYUSB_OS_ERRORS, SPEEDS, get_backend

__all__ = ["SYSFS_USB_DEVICES", "UsbDeviceInfo", "find_devices", "pyusb_devices"]

#: Where Linux lists USB devices by port path.
SYSFS_USB_DEVICES = Path("/sys/bus/usb/devices")


@dataclass(frozen=True)
class UsbDeviceInfo:
    """A device on the bus, from libusb's device list (what ``dkproto list`` shows).

    Attributes:
        bus, address: bus number and device number (``-s BUS:DEVNUM``; ``usb://BUS/ADDRESS``).
        port_numbers: port path from the root hub (``1-1.4`` is ``(1, 4)`` on bus 1; ``()`` for a root hub).
        idVendor, idProduct, bcdDevice, bDeviceClass: from the device descriptor.
        iManufacturer, iProduct, iSerialNumber: string indexes (0: none), read when the device is opened.
        speed: libusb speed code (``enum libusb_speed``, :class:`dkproto.schema.enums.Speed`; 0 unknown).
    """

    bus: int
    address: int
    port_numbers: tuple[int, ...]
    idVendor: int
    idProduct: int
    speed: int
    bcdDevice: int = 0
    bDeviceClass: int = 0
    iManufacturer: int = 0
    iProduct: int = 0
    iSerialNumber: int = 0

    @property
    def url(self) -> str:
        """``usb://BUS/ADDRESS``: the URL that opens this device."""
        return f"usb://{self.bus}/{self.address}"

    @property
    def vid_pid(self) -> str:
        """``1d6b:0104``."""
        return f"{self.idVendor:04x}:{self.idProduct:04x}"

    @property
    def speed_name(self) -> str | None:
        """``low``, ``full``, ``high``, ``super``, ``super-plus`` (as :attr:`TransportInfo.speed`), or None."""
        return SPEEDS.get(self.speed)

    @property
    def port_path(self) -> str:
        """Linux sysfs-style port path (``1-1.4``), or ``usbBUS`` for a root hub."""
        if not self.port_numbers:
            return f"usb{self.bus}"
        return f"{self.bus}-" + ".".join(str(p) for p in self.port_numbers)

    @property
    def sysfs_path(self) -> Path:
        """``/sys/bus/usb/devices/<port path>`` (Linux; it may not exist elsewhere)."""
        return SYSFS_USB_DEVICES / self.port_path

    @classmethod
    def from_pyusb(cls, dev: Any) -> UsbDeviceInfo:
        """From a pyusb ``usb.core.Device`` (descriptor fields only: nothing is opened)."""
        try:
            ports = tuple(dev.port_numbers or ())
        except (usb.core.USBError, NotImplementedError):
            ports = ()
        return cls(bus=dev.bus, address=dev.address, port_numbers=ports, idVendor=dev.idVendor,
                   idProduct=dev.idProduct, speed=int(dev.speed or 0), bcdDevice=dev.bcdDevice,
                   bDeviceClass=dev.bDeviceClass, iManufacturer=dev.iManufacturer, iProduct=dev.iProduct,
                   iSerialNumber=dev.iSerialNumber)


def pyusb_devices() -> list[Any]:
    """Every device in libusb's list, as pyusb ``Device`` objects (for the USB transport only).

    Raises:
        MissingToolError: no libusb back end.
        The pyusb errors of :data:`~dkproto.transport.usb_backend.PYUSB_ERRORS` (the caller maps them).
    """
    return list(usb.core.find(find_all=True, backend=get_backend()))


def find_devices(vid: int | None = None, pid: int | None = None, bus: int | None = None,
                 address: int | None = None) -> list[UsbDeviceInfo]:
    """Devices on the bus matching lsusb-style selectors (``-d VID:PID``, ``-s BUS:DEVNUM``), sorted
    by bus and address.

    Returns an empty list when no USB bus is reachable (for instance in a container).

    Raises:
        MissingToolError: no libusb back end (``pip install libusb-package``).
    """
    try:
        found = pyusb_devices()
    except PYUSB_OS_ERRORS:
        return []
    out = [UsbDeviceInfo.from_pyusb(dev) for dev in found
           if (vid is None or dev.idVendor == vid) and (pid is None or dev.idProduct == pid)
           and (bus is None or dev.bus == bus) and (address is None or dev.address == address)]
    out.sort(key=lambda d: (d.bus, d.address))
    return out
