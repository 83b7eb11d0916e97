"""Hardware-in-the-loop suite of the HID keyboard example: the driver on the real keyboard, driven
as ``app.py`` drives it: LEDs through output reports, key events through the user client
(docs/hil.md).

Runs against ``hid://1209:0002``: the example's gadget (``gadget.json``) in the lab, or a board
with that firmware. In the lab the test also plays the keyboard (``/dev/hidgN``: it presses
keys and reads the LED reports the host sent); elsewhere the key test needs a replay. Without
the device the committed recordings in ``recordings/`` are replayed (or the tests skip)::

    python -m pytest devices/hid-keyboard-leds
    python -m pytest devices/hid-keyboard-leds --dk-replay devices/hid-keyboard-leds/recordings

The input reports come from a reader thread whose timeouts depend on timing, so the replay
keeps order per endpoint only (``strict="endpoints"``), except for the key test, which is
replayed paced as recorded (``strict="exact"``).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import select
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent

pytestmark = [pytest.mark.dk_hid("1209:0002", strict="endpoints"), pytest.mark.dk_recordings("recordings")]


def _load(name: str) -> ModuleType:
    """This example's own ``app.py`` (other examples have modules of the same name)."""
    spec = importlib.util.spec_from_file_location(f"hid_keyboard_leds_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app = _load("app")


class Keyboard:
    """The device side of the lab gadget: ``/dev/hidgN``."""

    def __init__(self, node: str) -> None:
        self.fd = os.open(node, os.O_RDWR | os.O_NONBLOCK)

    def press(self, report: bytes) -> None:
        os.write(self.fd, report)

    def leds(self, timeout: float = 5.0) -> bytes | None:
        """The next output report the host sent, or None."""
        if not select.select([self.fd], [], [], timeout)[0]:
            return None
        return os.read(self.fd, 64)

    def drain(self) -> None:
        while self.leds(0.3) is not None:
            pass

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def keyboard(dk_mode: str | None) -> Iterator[Keyboard | None]:
    """The keyboard's device side when the test runs live in the lab; None otherwise."""
    nodes = sorted(glob.glob("/dev/hidg*"))
    if dk_mode == "replay" or os.environ.get("DKPROTO_LAB") != "1" or not nodes:
        yield None
        return
    kb = Keyboard(nodes[0])
    kb.drain()  # the host's input layer sends its LED state when the keyboard appears
    try:
        yield kb
    finally:
        kb.close()


def test_the_driver_matches_the_keyboard(dk_driver: Any) -> None:
    assert dk_driver.personality.name == "KeyboardLEDDriver"
    assert dk_driver.running


def test_the_app_finds_the_driver_by_matching(dk_driver: Any) -> None:
    from dkproto.iokit import io_service_close

    conn = app.open_driver()  # IOServiceGetMatchingServices + IOIteratorNext + IOServiceOpen
    try:
        assert conn.user_client is not None and conn.user_client.driver is dk_driver.driver
    finally:
        io_service_close(conn)


def test_set_leds_sends_one_output_report_per_changed_led(dk_user_client: Any, keyboard: Keyboard | None) -> None:
    app.set_leds(dk_user_client, 0b010)  # Caps Lock: SetLED(CapsLock, true)
    if keyboard is not None:
        assert keyboard.leds() == b"\x02"
    app.set_leds(dk_user_client, 0b101)  # SetLED(NumLock, true), (CapsLock, false), (ScrollLock, true)
    if keyboard is not None:
        assert [keyboard.leds(), keyboard.leds(), keyboard.leds()] == [b"\x03", b"\x01", b"\x05"]


def test_a_bad_led_mask_is_refused(dk_user_client: Any) -> None:
    from dkproto.errors import BadArgumentError

    with pytest.raises(BadArgumentError):
        app.set_leds(dk_user_client, 8)


# Replayed as recorded, paced (strict="exact"): the driver's reader thread is the only caller on the
# device here, and the key reports must not arrive before the driver has started (as they would
# when a replay serves them as fast as the reader asks).
@pytest.mark.dk_hid("1209:0002", strict="exact")
def test_key_events_reach_the_app(dk_mode: str | None, dk_driver: Any, dk_user_client: Any,
                                  keyboard: Keyboard | None) -> None:
    from dkproto.iokit import IODispatchQueue, io_notification_port_destroy

    if keyboard is None and dk_mode != "replay":
        pytest.skip("pressing keys needs the keyboard's device side: run in the lab or from a recording")
    queue = IODispatchQueue("test app")
    port = app.notification_port(queue)  # the port delivers on the app's queue
    try:
        box: dict[str, Any] = {}
        waiter = threading.Thread(target=lambda: box.update(v=app.wait_key(dk_user_client, port, 10)))
        waiter.start()
        if keyboard is not None:
            time.sleep(0.3)
            keyboard.press(bytes([0x02, 0, 0x0B, 0, 0, 0, 0, 0]))  # Left Shift + 'h'
            keyboard.press(bytes(8))  # all released
        waiter.join(15)
        assert box.get("v") is not None, "no key event reached the app"
        assert box["v"][0] == 0 and box["v"][1] == 7  # success, usage page Keyboard
        deadline = time.monotonic() + 10
        keys: list[tuple[int, int, int]] = [tuple(box["v"][1:])]
        while time.monotonic() < deadline and len(keys) < 4:
            keys += app.get_keys(dk_user_client)
            time.sleep(0.05)
        assert {(7, 0xE1, 1), (7, 0x0B, 1), (7, 0x0B, 0), (7, 0xE1, 0)} <= set(keys)
    finally:
        io_notification_port_destroy(port)
        queue.cancel()
