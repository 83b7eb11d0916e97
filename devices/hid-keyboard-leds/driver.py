"""HID keyboard driver: decoded key input and keyboard LEDs through output reports.

``KeyboardLEDDriver`` is an ``IOUserHIDEventDriver`` started on the keyboard's
``IOHIDInterface`` (``hid://1209:0002``: the boot keyboard of ``gadget.json``). Input reports
are decoded by the base class into ``dispatchKeyboardEvent`` calls (usage page 0x07, value
1 = down, 0 = up); LEDs are set with an output report (Num Lock bit 0, Caps Lock bit 1,
Scroll Lock bit 2, built with dkproto.hid's codec by usage name). Its user client:

========  =========================  ==============================================
selector  shape                      does
========  =========================  ==============================================
0 SetLEDs   scalar in: 1 (bitmask)   output report to the keyboard
1 GetKeys   scalar out: up to 16     key events since the last call, each
                                     ``usage_page << 32 | usage << 16 | value``
2 WaitKey   completion               the next key event: AsyncCompletion [page, usage, value]
========  =========================  ==============================================
"""

from __future__ import annotations

import threading
from typing import Any

from dkproto.hid.codec import DescriptorCodec
from dkproto.iokit import IOService, IOUserClient, IOUserClientMethodArguments, OSAction, external_method
from dkproto.iokit.hid import HIDEvent, IOHIDInterface, IOHIDReportType, IOUserHIDEventDriver
from dkproto.ioreturn import IOReturn

DEFAULT_DEVICE = "hid://1209:0002"
LEDS = ("Num Lock", "Caps Lock", "Scroll Lock")

kSetLEDs, kGetKeys, kWaitKey = range(3)


class KeyboardLEDDriver(IOUserHIDEventDriver):
    """Keyboard events in, LED output reports out."""

    def handle_start(self, provider: IOHIDInterface) -> bool:
        self.codec = DescriptorCodec(provider.descriptor)
        self.pending: list[HIDEvent] = []
        self.waiters: list[OSAction] = []
        self.lock = threading.Lock()
        self.event_sink = self.on_event
        self.register_service()
        return True

    def on_event(self, event: HIDEvent) -> None:
        """Every dispatched keyboard event: queue it, or complete a waiting app call."""
        if event.kind != "keyboard":
            return
        with self.lock:
            waiters, self.waiters = self.waiters, []
            if not waiters:
                self.pending.append(event)
        for action in waiters:
            self.user_client_complete(action, event)

    def user_client_complete(self, action: OSAction, event: HIDEvent) -> None:
        client = action.context
        client.async_completion(action, IOReturn.kIOReturnSuccess, [event.usage_page, event.usage, event.value])
        action.release()

    def set_leds(self, mask: int) -> None:
        """Send the LED output report (bits: Num, Caps, Scroll)."""
        report = self.codec.build({name: (mask >> i) & 1 for i, name in enumerate(LEDS)}, report_type="output")
        self.set_report(report, IOHIDReportType.kIOHIDReportTypeOutput, 0)

    def stop(self, provider: IOService | None) -> None:
        with self.lock:
            waiters, self.waiters = self.waiters, []
        for action in waiters:  # pending app calls end with kIOReturnAborted
            action.context.async_completion(action, IOReturn.kIOReturnAborted, [])
        super().stop(provider)

    def new_user_client(self, client_type: int) -> IOUserClient:
        return self.create(self, "UserClientProperties")  # type: ignore[return-value]


class KeyboardUserClient(IOUserClient):
    """The app's door to the keyboard driver."""

    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        assert isinstance(provider, KeyboardLEDDriver)
        self.driver = provider

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
        for i, e in enumerate(take):
            args.scalar_output[i] = e.usage_page << 32 | e.usage << 16 | e.value
        args.scalar_output_count = len(take)
        return IOReturn.kIOReturnSuccess

    @external_method(kWaitKey, completion=True, scalar_in=0)
    def wait_key(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """Completes with the next key event [usage page, usage, value]."""
        action = args.completion
        action.retain()
        action.context = self
        with self.driver.lock:
            event = self.driver.pending.pop(0) if self.driver.pending else None
            if event is None:
                self.driver.waiters.append(action)
        if event is not None:
            self.driver.user_client_complete(action, event)
        return IOReturn.kIOReturnSuccess
