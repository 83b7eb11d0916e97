"""Example app: find the CDC-ACM port, set 115200 8N1, write a line, read what comes back.

A macOS app finds a serial port by matching (``IOServiceMatching(kIOSerialBSDServiceValue)``) and
opens the tty named by its ``kIOCalloutDeviceKey``. dkproto has no tty: the app matches the
driver's service by its kernel class, ``IOUserSerial`` (the personality's ``IOClass``), and
``open_port()`` stands for ``open("/dev/cu.dkacm...")``. The service ``dkproto run`` hands to
``main`` is not used.
"""

from __future__ import annotations

import os
from typing import Any

from dkproto.errors import NotFoundError
from dkproto.iokit import (
    io_iterator_next,
    io_object_release,
    io_service_get_matching_services,
    io_service_matching,
    kIOMainPortDefault,
)


def find_serial_service() -> Any:
    """IOServiceGetMatchingServices(kIOMainPortDefault, IOServiceMatching("IOUserSerial"), &it) +
    IOIteratorNext: the first serial port whose tty base name is the driver's (``dkacm``)."""
    iterator = io_service_get_matching_services(kIOMainPortDefault, io_service_matching("IOUserSerial"))
    try:
        service = io_iterator_next(iterator)
        while service is not None:
            if service.properties.get("IOTTYBaseName") == "dkacm":
                return service
            io_object_release(service)
            service = io_iterator_next(iterator)
    finally:
        io_object_release(iterator)
    raise NotFoundError("no dkacm serial port (IOServiceGetMatchingServices found none)")


def main(service: Any = None) -> int:
    """Open the port as the tty layer would, set the line, write a line, print what comes back."""
    with find_serial_service().open_port() as port:
        port.set_line(115200, 8, 1)
        port.write(b"hello from the app\r\n")
        data = port.read(256, float(os.environ.get("READ_TIMEOUT", "2")))
        print(f"read back: {data!r}")
    return 0
