"""Example app: set the keyboard LEDs, then print key events (``dkproto run ... --app app.py``)."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from dkproto.iokit import (
    IODispatchQueue,
    RemoteService,
    async_reference,
    io_connect_call_async_scalar_method,
    io_connect_call_scalar_method,
    io_notification_port_create,
    io_notification_port_set_dispatch_queue,
    io_service_close,
    io_service_open,
)

kSetLEDs, kGetKeys, kWaitKey = range(3)
APP_ENTITLEMENTS = {"com.apple.developer.driverkit.userclient-access": ["org.dkproto.example.hid-keyboard-leds"]}
#: The app's queue for async results (IOKitLib delivers nothing until a port has one).
APP_QUEUE = IODispatchQueue("hid-keyboard-leds app")


def set_leds(conn: Any, mask: int) -> None:
    """Selector 0."""
    io_connect_call_scalar_method(conn, kSetLEDs, [mask], 0)


def get_keys(conn: Any) -> list[tuple[int, int, int]]:
    """Selector 1: (usage page, usage, value) of the queued events."""
    out = io_connect_call_scalar_method(conn, kGetKeys, [], 16)
    return [(v >> 32, (v >> 16) & 0xFFFF, v & 0xFFFF) for v in out]


def wait_key(conn: Any, port: Any, timeout: float = 5.0) -> tuple[int, int, int, int]:
    """Selector 2: (result, usage page, usage, value) of the next event."""
    io_notification_port_set_dispatch_queue(port, APP_QUEUE)
    box: dict[str, Any] = {}
    done = threading.Event()

    def cb(refcon: Any, result: int, args: list[int], n: int) -> None:
        box["v"] = (int(result), *args)
        done.set()

    io_connect_call_async_scalar_method(conn, kWaitKey, port, async_reference(cb), [])
    if not done.wait(timeout):
        raise TimeoutError("no key event")
    return box["v"]


def main(service: Any) -> int:
    """Caps Lock on, then print key events for a few seconds."""
    conn = io_service_open(service, 0, app_entitlements=APP_ENTITLEMENTS)
    try:
        set_leds(conn, 0b010)
        port = io_notification_port_create()
        try:
            print("next key:", wait_key(conn, port, float(os.environ.get("KEY_TIMEOUT", "5"))))
        except TimeoutError:
            print("no key pressed")
        print("queued:", get_keys(conn))
        port.destroy()
        return 0
    finally:
        io_service_close(conn)


if __name__ == "__main__":
    sys.exit(main(RemoteService(os.environ["DKPROTO_UC_ADDRESS"], bytes.fromhex(os.environ["DKPROTO_UC_KEY"]))))
