"""IOUserSerial rings and the system side, pure."""

from __future__ import annotations

import pytest

from dkproto.errors import BadArgumentError, ExclusiveAccessError, NoDeviceError, NotOpenError
from dkproto.iokit import start_service
from dkproto.iokit.serial import (
    PD_RS232_PARITY_ANY,
    PD_RS232_PARITY_DEFAULT,
    PD_RS232_PARITY_EVEN,
    PD_RS232_PARITY_NONE,
    IOUserSerial,
    SerialRing,
)


def test_ring_wraps_and_limits() -> None:
    r = SerialRing(4)  # 16 bytes
    assert r.size == 16 and r.free() == 16
    assert r.put(b"x" * 20) == 16 and r.free() == 0
    assert r.get(10) == b"x" * 10
    assert r.put(b"0123456789") == 10  # wraps
    assert r.get() == b"x" * 6 + b"0123456789"
    r.pi = r.ci = 0xFFFFFFF8  # free-running indices wrap at 32 bits
    assert r.put(b"abcdefghij") == 10 and r.used() == 10 and r.get() == b"abcdefghij"
    with pytest.raises(BadArgumentError):
        SerialRing(0)


def test_default_queue_size_is_16k() -> None:
    """ConnectQueues with NULL buffers creates 16 KiB rings (SerialDriverKit ConnectQueues docs);
    the base Start creates none (issue 12 item 10: the driver calls ConnectQueues)."""
    s = start_service(IOUserSerial(), None)
    assert s.queues is None
    s.connect_queues(None, None, 0, 0, 0, 0)
    assert s.queues is not None and s.queues.rx.size == 16384 and s.queues.tx.size == 16384


def test_parity_values() -> None:
    assert (PD_RS232_PARITY_DEFAULT, PD_RS232_PARITY_NONE, PD_RS232_PARITY_EVEN, PD_RS232_PARITY_ANY) == (0, 1, 3, 6)


class Echo(IOUserSerial):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def start(self, provider: object) -> None:
        super().start(provider)  # type: ignore[arg-type]
        self.connect_queues(None, None, 0, 0, 0, 0)

    def hw_activate(self) -> int:
        self.calls.append(("activate",))
        return 0

    def hw_deactivate(self) -> int:
        self.calls.append(("deactivate",))
        return 0

    def hw_program_uart(self, baud_rate: int, n_data_bits: int, n_half_stop_bits: int, parity: int) -> int:
        self.calls.append(("uart", baud_rate, n_data_bits, n_half_stop_bits, parity))
        return 0

    def hw_program_flow_control(self, arg: int, xon: int, xoff: int) -> int:
        self.calls.append(("flow", arg, xon, xoff))
        return 0xE00002C7  # refuse: kIOReturnUnsupported

    def tx_data_available(self) -> None:
        assert self.queues is not None
        self.queues.rx.put(self.queues.tx.get())
        self.tx_free_space_available()
        self.rx_data_available()


def test_port_calls_hardware_on_the_driver_queue() -> None:
    s = start_service(Echo(), None)
    port = s.open_port()
    with pytest.raises(ExclusiveAccessError):
        s.open_port()
    port.set_line(115200, 8, 1.5, PD_RS232_PARITY_EVEN)
    assert s.calls[:2] == [("activate",), ("uart", 115200, 8, 3, PD_RS232_PARITY_EVEN)]
    with pytest.raises(BadArgumentError):
        port.set_line(9600, 8, 3)
    from dkproto.errors import UnsupportedError

    with pytest.raises(UnsupportedError):
        port.set_flow_control(1)
    port.write(b"ping")
    assert port.read_exactly(4, 2) == b"ping"
    assert port.read(4, 0.05) == b""
    port.close()
    assert s.calls[-1] == ("deactivate",)
    with pytest.raises(NotOpenError):
        port.set_baud_rate(9600)
    port2 = s.open_port()
    s.terminate()
    assert s.wait_terminated(5)
    with pytest.raises((NoDeviceError, NotOpenError)):
        port2.write(b"x")
    with pytest.raises(NoDeviceError):
        s.open_port()
