"""HID keyboard driver: decoded key input to an app, keyboard LEDs from it.

``KeyboardLEDDriver`` is an ``IOUserHIDEventDriver`` started on the keyboard's ``IOHIDInterface``
(``hid://1209:0002``: the boot keyboard of ``gadget.json``). Apple's event driver decodes the
input reports into ``dispatchKeyboardEvent`` calls (usage page 0x07, value 1 = down, 0 = up); this
driver overrides that call to also queue each event for its app, and sets the LEDs with
``SetLED(usage, on)`` (page 0x08: Num Lock 1, Caps Lock 2, Scroll Lock 3), one call per LED that
changes. Its user client:

========  =========================  ==============================================
selector  shape                      does
========  =========================  ==============================================
0 SetLEDs   scalar in: 1 (bitmask)   bit 0 Num Lock, 1 Caps Lock, 2 Scroll Lock
1 GetKeys   scalar out: up to 16     key events since the last call, each
                                     ``usage_page << 32 | usage << 16 | value``
2 WaitKey   completion               the next key event: AsyncCompletion [page, usage, value]
========  =========================  ==============================================
"""

from __future__ import annotations

import threading
from typing import Any

from dkproto.iokit import IOService, IOUserClient, IOUserClientMethodArguments, OSAction, external_method
from dkproto.iokit.hid import IOHIDInterface, IOUserHIDEventDriver
from dkproto.ioreturn import IOReturn

DEFAULT_DEVICE = "hid://1209:0002"
#: kHIDUsage_LED_NumLock, kHIDUsage_LED_CapsLock, kHIDUsage_LED_ScrollLock: bits 0, 1, 2 of the app's mask
LED_USAGES = (0x01, 0x02, 0x03)
MAX_KEYS = 64  # events kept for GetKeys; older ones are dropped

kSetLEDs, kGetKeys, kWaitKey = range(3)


class KeyboardLEDDriver(IOUserHIDEventDriver):
    """Keyboard events in, LEDs out."""

    def handle_start(self, provider: IOHIDInterface) -> bool:
        self.pending: list[tuple[int, int, int]] = []  # (usage page, usage, value) not fetched yet
        self.waiters: list[tuple[IOUserClient, OSAction]] = []  # WaitKey calls not answered yet
        self.lock = threading.Lock()  # the report queue and the user client's queue both come here
        self.led_mask = 0
        self.register_service()
        return True

    def dispatch_keyboard_event(self, timestamp: int, usage_page: int, usage: int, value: int, options: int = 0,
                                repeat: bool = True) -> int:
        """dispatchKeyboardEvent: to the system (super), then to the app (a waiting WaitKey, or the queue)."""
        kr = super().dispatch_keyboard_event(timestamp, usage_page, usage, value, options, repeat)
        event = (usage_page, usage, value)
        with self.lock:
            waiters, self.waiters = self.waiters, []
            if not waiters:
                self.pending = [*self.pending, event][-MAX_KEYS:]
        for client, app in waiters:
            client.async_completion(app, IOReturn.kIOReturnSuccess, list(event))
            app.release()
        return kr

    def set_leds(self, mask: int) -> None:
        """SetLED for each LED whose bit changed."""
        for bit, usage in enumerate(LED_USAGES):
            on = bool(mask >> bit & 1)
            if on != bool(self.led_mask >> bit & 1):
                self.set_led(usage, on)
        self.led_mask = mask

    def stop(self, provider: IOService | None) -> None:
        with self.lock:
            waiters, self.waiters = self.waiters, []
        for client, app in waiters:  # pending app calls end with kIOReturnAborted
            client.async_completion(app, IOReturn.kIOReturnAborted, [])
            app.release()
        super().stop(provider)

    def new_user_client(self, client_type: int) -> IOUserClient:
        """NewUserClient: Create(this, "UserClientProperties", &client)."""
        return self.create(self, "UserClientProperties")  # type: ignore[return-value]


class KeyboardUserClient(IOUserClient):
    """The app's door to the keyboard driver."""

    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        assert isinstance(provider, KeyboardLEDDriver)
        self.driver = provider

    def stop(self, provider: IOService | None) -> None:
        with self.driver.lock:  # this app's WaitKey calls end here
            mine = [w for w in self.driver.waiters if w[0] is self]
            self.driver.waiters = [w for w in self.driver.waiters if w[0] is not self]
        for _, app in mine:
            self.async_completion(app, IOReturn.kIOReturnAborted, [])
            app.release()
        super().stop(provider)

    @external_method(kSetLEDs, scalar_in=1, scalar_out=0)
    def set_leds(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """Scalar in: LED bitmask (bit 0 Num Lock, 1 Caps Lock, 2 Scroll Lock)."""
        mask = int(args.scalar_input[0])
        if mask > 7:
            return IOReturn.kIOReturnBadArgument
        self.driver.set_leds(mask)
        return IOReturn.kIOReturnSuccess

    @external_method(kGetKeys, scalar_in=0)
    def get_keys(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """Scalar out: up to the caller's count of queued key events."""
        with self.driver.lock:
            take = self.driver.pending[:args.scalar_output_count]
            del self.driver.pending[:len(take)]
        for i, (page, usage, value) in enumerate(take):
            args.scalar_output[i] = page << 32 | usage << 16 | value
        args.scalar_output_count = len(take)
        return IOReturn.kIOReturnSuccess

    @external_method(kWaitKey, completion=True, scalar_in=0)
    def wait_key(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """Completes with the next key event [usage page, usage, value] (at once if one is queued)."""
        app = args.completion
        app.retain()  # kept until an event answers it (or Stop aborts it)
        with self.driver.lock:
            event = self.driver.pending.pop(0) if self.driver.pending else None
            if event is None:
                self.driver.waiters.append((self, app))
        if event is not None:
            self.async_completion(app, IOReturn.kIOReturnSuccess, list(event))
            app.release()
        return IOReturn.kIOReturnSuccess
