"""Example app: set the keyboard LEDs, then print key events (``dkproto run ... --app app.py``).

As a real app, it finds the driver by matching (``open_driver``) and gives its notification port
the app's dispatch queue before the first async call; the service ``dkproto run`` hands to
``main`` is not used.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from dkproto.errors import NotFoundError
from dkproto.iokit import (
    IOConnect,
    IODispatchQueue,
    IONotificationPort,
    async_reference,
    io_connect_call_async_scalar_method,
    io_connect_call_scalar_method,
    io_iterator_next,
    io_notification_port_create,
    io_notification_port_destroy,
    io_notification_port_set_dispatch_queue,
    io_object_release,
    io_service_close,
    io_service_get_matching_services,
    io_service_name_matching,
    io_service_open,
    kIOMainPortDefault,
)

kSetLEDs, kGetKeys, kWaitKey = range(3)
#: What the kernel reads from the app's code signature (``app.entitlements``).
APP_ENTITLEMENTS = {"com.apple.developer.driverkit.userclient-access": ["org.dkproto.example.hid-keyboard-leds"]}


def open_driver() -> IOConnect:
    """IOServiceGetMatchingServices(kIOMainPortDefault, IOServiceNameMatching("KeyboardLEDDriver"), &it),
    IOIteratorNext, IOServiceOpen; the iterator and the service are released."""
    iterator = io_service_get_matching_services(kIOMainPortDefault, io_service_name_matching("KeyboardLEDDriver"))
    service = io_iterator_next(iterator)
    io_object_release(iterator)
    if service is None:
        raise NotFoundError("no KeyboardLEDDriver is running (IOServiceGetMatchingServices found none)")
    try:
        return io_service_open(service, 0, app_entitlements=APP_ENTITLEMENTS)
    finally:
        io_object_release(service)


def notification_port(queue: IODispatchQueue) -> IONotificationPort:
    """IONotificationPortCreate + IONotificationPortSetDispatchQueue: async results run on ``queue``."""
    port = io_notification_port_create(kIOMainPortDefault)
    io_notification_port_set_dispatch_queue(port, queue)
    return port


def set_leds(conn: IOConnect, mask: int) -> None:
    """Selector 0: bit 0 Num Lock, 1 Caps Lock, 2 Scroll Lock."""
    io_connect_call_scalar_method(conn, kSetLEDs, [mask], 0)


def get_keys(conn: IOConnect) -> list[tuple[int, int, int]]:
    """Selector 1: (usage page, usage, value) of the queued events."""
    out = io_connect_call_scalar_method(conn, kGetKeys, [], 16)
    return [(v >> 32, (v >> 16) & 0xFFFF, v & 0xFFFF) for v in out]


def wait_key(conn: IOConnect, port: IONotificationPort, timeout: float = 5.0) -> tuple[int, int, int, int]:
    """Selector 2: (result, usage page, usage, value) of the next event; ``port`` has a queue."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def callback(refcon: Any, result: int, args: list[int], n: int) -> None:  # 3 async arguments
        box["v"] = (int(result), *args)
        done.set()

    io_connect_call_async_scalar_method(conn, kWaitKey, port, async_reference(callback), [])
    if not done.wait(timeout):
        raise TimeoutError("no key event")
    return box["v"]  # type: ignore[no-any-return]


def main(service: Any = None) -> int:
    """Caps Lock on, then the next key event and what else was queued."""
    conn = open_driver()
    queue = IODispatchQueue("hid-keyboard-leds app")  # dispatch_queue_create
    port = notification_port(queue)
    try:
        set_leds(conn, 0b010)
        try:
            print("next key:", wait_key(conn, port, float(os.environ.get("KEY_TIMEOUT", "5"))))
        except TimeoutError:
            print("no key pressed")
        print("queued:", get_keys(conn))
        return 0
    finally:
        io_notification_port_destroy(port)
        queue.cancel()
        io_service_close(conn)


if __name__ == "__main__":
    sys.exit(main())
