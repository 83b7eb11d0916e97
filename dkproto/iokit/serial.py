"""SerialDriverKit mirror: ``IOUserSerial`` and its shared rings (driverkit.md section 6).

The class owns the rings, the driver drives the hardware, exactly the DriverKit split:

- the **system** (the tty layer; here a :class:`SerialPort` handle given to app code) writes
  into the TX ring and calls ``tx_data_available()``; reads the RX ring after
  ``rx_data_available()``; sets line coding and modem lines through the ``hw_*`` callbacks;
- the **driver** overrides ``hw_activate``/``hw_deactivate``/``hw_program_uart``/
  ``hw_program_baud_rate``/``hw_program_mcr``/``hw_program_flow_control``/``tx_data_available``
  ..., moves bytes between the rings and the device, and reports with ``rx_data_available()``,
  ``tx_free_space_available()``, ``set_modem_status()``, ``rx_error()``.

Rings (``SerialPortInterface``): power-of-two sizes given as log2 (default 14 = 16 KiB),
producer index PI and consumer index CI. Index wrap is [unconfirmed] in Apple's docs; dkproto
uses free-running 32-bit indices taken modulo the size. The system's calls into the driver run
on the driver's default queue, as in DriverKit.

The module registers ``IOUserSerial`` as a driver-class family (:mod:`~dkproto.iokit.family`):
a personality with ``IOClass`` ``IOUserSerial`` needs ``family.serial`` (driverkit.md 6, 7.1).
Its provider is another family's nub (``IOUSBHostInterface`` for a USB serial adapter).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dkproto.errors import BadArgumentError, DkTimeoutError, NoDeviceError, NotOpenError
from dkproto.iokit.family import Family, register_family
from dkproto.iokit.service import IOService, ServiceState

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "ENT_FAMILY_SERIAL",
    "PD_RS232_PARITY_ANY",
    "PD_RS232_PARITY_DEFAULT",
    "PD_RS232_PARITY_EVEN",
    "PD_RS232_PARITY_MARK",
    "PD_RS232_PARITY_NONE",
    "PD_RS232_PARITY_ODD",
    "PD_RS232_PARITY_SPACE",
    "IOUserSerial",
    "SerialPort",
    "SerialPortInterface",
    "SerialRing",
    "kSerialQueueLogSizeDefault",
]

PD_RS232_PARITY_DEFAULT = 0
PD_RS232_PARITY_NONE = 1
PD_RS232_PARITY_ODD = 2
PD_RS232_PARITY_EVEN = 3
PD_RS232_PARITY_MARK = 4
PD_RS232_PARITY_SPACE = 5
PD_RS232_PARITY_ANY = 6
kSerialQueueLogSizeDefault = 14  # 16 KiB, what ConnectQueues creates for NULL inputs

ENT_FAMILY_SERIAL = "com.apple.developer.driverkit.family.serial"

_U32 = 0xFFFFFFFF


class SerialRing:
    """One ring: ``size`` = 2**log_size bytes, free-running producer/consumer indices."""

    def __init__(self, log_size: int = kSerialQueueLogSizeDefault) -> None:
        if not 1 <= log_size <= 24:
            raise BadArgumentError(f"ring log2 size {log_size} outside 1..24")
        self.size = 1 << log_size
        self.buf = bytearray(self.size)
        self.pi = 0
        self.ci = 0
        self.lock = threading.Lock()

    def used(self) -> int:
        """Bytes waiting."""
        return (self.pi - self.ci) & _U32

    def free(self) -> int:
        """Room left."""
        return self.size - self.used()

    def put(self, data: bytes) -> int:
        """Producer: copy as much of ``data`` as fits; returns the count."""
        with self.lock:
            n = min(len(data), self.free())
            for i in range(n):  # byte loop keeps the wrap obvious; rings are small
                self.buf[(self.pi + i) & (self.size - 1)] = data[i]
            self.pi = (self.pi + n) & _U32
            return n

    def get(self, n: int | None = None) -> bytes:
        """Consumer: take up to ``n`` bytes (all by default)."""
        with self.lock:
            k = self.used() if n is None else min(n, self.used())
            start = self.ci & (self.size - 1)
            first = min(k, self.size - start)
            out = bytes(self.buf[start:start + first]) + bytes(self.buf[:k - first])
            self.ci = (self.ci + k) & _U32
            return out


@dataclass(slots=True)
class SerialPortInterface:
    """``driverkit::serial::SerialPortInterface``: the rings' indices and sizes."""

    rx: SerialRing
    tx: SerialRing

    @property
    def rxPI(self) -> int:
        return self.rx.pi

    @property
    def rxCI(self) -> int:
        return self.rx.ci

    @property
    def txPI(self) -> int:
        return self.tx.pi

    @property
    def txCI(self) -> int:
        return self.tx.ci


class IOUserSerial(IOService):
    """``IOUserSerial``: subclass it and implement the ``hw_*`` callbacks."""

    def __init__(self) -> None:
        super().__init__()
        self.queues: SerialPortInterface | None = None
        self.modem_status = (False, False, False, False)
        self.rx_errors: list[tuple[bool, bool, bool, bool]] = []
        self._rx_cond = threading.Condition()
        self._tx_cond = threading.Condition()
        self._port: SerialPort | None = None
        self.line = {"baud": 9600, "data_bits": 8, "half_stop_bits": 2, "parity": PD_RS232_PARITY_NONE}

    def start(self, provider: IOService | None) -> None:
        """``Start``: super, then ``connect_queues`` with the default sizes."""
        super().start(provider)
        self.connect_queues()

    def connect_queues(self, rx_log_size: int = kSerialQueueLogSizeDefault,
                       tx_log_size: int = kSerialQueueLogSizeDefault) -> SerialPortInterface:
        """``ConnectQueues(...)``: create the rings (log2 sizes; 14 = 16 KiB)."""
        self.queues = SerialPortInterface(rx=SerialRing(rx_log_size), tx=SerialRing(tx_log_size))
        return self.queues

    def disconnect_queues(self) -> None:
        """``DisconnectQueues()``."""
        self.queues = None

    # ---- system -> driver (override) ----
    def hw_activate(self) -> int:
        """``HwActivate()``: open the hardware channel."""
        return 0

    def hw_deactivate(self) -> int:
        """``HwDeactivate()``: close it."""
        return 0

    def hw_reset_fifo(self, tx: bool, rx: bool) -> int:
        """``HwResetFIFO(tx, rx)``."""
        return 0

    def hw_send_break(self, send_break: bool) -> int:
        """``HwSendBreak(sendBreak)``."""
        return 0

    def hw_program_uart(self, baud_rate: int, n_data_bits: int, n_half_stop_bits: int, parity: int) -> int:
        """``HwProgramUART(baudRate, nDataBits, nHalfStopBits, parity)``; half stop bits 2 = 1 stop bit."""
        return 0

    def hw_program_baud_rate(self, baud_rate: int) -> int:
        """``HwProgramBaudRate(baudRate)``."""
        return 0

    def hw_program_mcr(self, dtr: bool, rts: bool) -> int:
        """``HwProgramMCR(dtr, rts)``."""
        return 0

    def hw_get_modem_status(self) -> tuple[bool, bool, bool, bool]:
        """``HwGetModemStatus(&cts, &dsr, &ri, &dcd)``."""
        return self.modem_status

    def hw_program_latency_timer(self, latency: int) -> int:
        """``HwProgramLatencyTimer(latency)``."""
        return 0

    def hw_program_flow_control(self, arg: int, xon: int, xoff: int) -> int:
        """``HwProgramFlowControl(arg, xon, xoff)`` (only the signature is documented)."""
        return 0

    def tx_data_available(self) -> None:
        """``TxDataAvailable()``: the TX ring has data; default does nothing."""

    def rx_free_space_available(self) -> None:
        """``RxFreeSpaceAvailable()``: the RX ring has room again."""

    # ---- driver -> system ----
    def rx_data_available(self) -> None:
        """``RxDataAvailable()``: call after writing device data into the RX ring."""
        with self._rx_cond:
            self._rx_cond.notify_all()

    def tx_free_space_available(self) -> None:
        """``TxFreeSpaceAvailable()``: call after consuming TX data."""
        with self._tx_cond:
            self._tx_cond.notify_all()

    def set_modem_status(self, cts: bool, dsr: bool, ri: bool, dcd: bool) -> None:
        """``SetModemStatus(cts, dsr, ri, dcd)``."""
        self.modem_status = (cts, dsr, ri, dcd)

    def rx_error(self, overrun: bool, got_break: bool, framing_error: bool, parity_error: bool) -> None:
        """``RxError(overrun, gotBreak, framingError, parityError)``."""
        self.rx_errors.append((overrun, got_break, framing_error, parity_error))

    # ---- the system side for apps ----
    def open_port(self) -> SerialPort:
        """Open the port as the tty layer would (``HwActivate`` on the driver's queue)."""
        if self.state is not ServiceState.STARTED:
            raise NoDeviceError(f"{type(self).__name__}: the serial port is {self.state.value}")
        if self._port is not None and not self._port.closed:
            from dkproto.errors import ExclusiveAccessError

            raise ExclusiveAccessError(f"{type(self).__name__}: the port is already open")
        self._port = SerialPort(self)
        return self._port

    def stop(self, provider: IOService | None) -> None:
        """``Stop``: close the port if open, then super."""
        if self._port is not None and not self._port.closed:
            self._port._gone()
        with self._rx_cond:
            self._rx_cond.notify_all()
        super().stop(provider)


class SerialPort:
    """What an app holds after opening the tty (``/dev/cu.*``): bytes in and out, line settings."""

    def __init__(self, driver: IOUserSerial) -> None:
        self.driver = driver
        self.closed = False
        self._q = driver.copy_dispatch_queue()
        self._call(driver.hw_activate)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.closed:
            raise NotOpenError("serial port is closed")
        if self.driver.state is not ServiceState.STARTED:
            raise NoDeviceError(f"{type(self.driver).__name__}: the device is gone")
        kr = self._q.dispatch_sync(fn, *args, timeout=10.0)
        if isinstance(kr, int) and kr:
            from dkproto.errors import error_for_ioreturn

            raise error_for_ioreturn(kr, f"{type(self.driver).__name__}.{fn.__name__} failed")
        return kr

    def write(self, data: bytes, timeout: float = 5.0) -> int:
        """Put ``data`` in the TX ring (waiting for room) and tell the driver; returns bytes queued."""
        q = self.driver.queues
        if q is None:
            raise NotOpenError("no queues (ConnectQueues was not called)")
        sent = 0
        while sent < len(data):
            n = q.tx.put(data[sent:])
            if n:
                sent += n
                self._q.dispatch_async(self.driver.tx_data_available)
                continue
            with self.driver._tx_cond:
                if q.tx.free() == 0 and not self.driver._tx_cond.wait(timeout):
                    raise DkTimeoutError(f"serial write: TX ring still full after {timeout} s")
            if self.driver.state is not ServiceState.STARTED:
                raise NoDeviceError("serial write: the device is gone")
        return sent

    def read(self, n: int, timeout: float = 1.0) -> bytes:
        """Up to ``n`` bytes from the RX ring, waiting up to ``timeout`` s for the first."""
        q = self.driver.queues
        if q is None:
            raise NotOpenError("no queues (ConnectQueues was not called)")
        with self.driver._rx_cond:
            if q.rx.used() == 0:
                if self.driver.state is not ServiceState.STARTED:
                    raise NoDeviceError("serial read: the device is gone")
                self.driver._rx_cond.wait(timeout)
        data = q.rx.get(n)
        if data:
            self._q.dispatch_async(self.driver.rx_free_space_available)
        elif self.driver.state is not ServiceState.STARTED:
            raise NoDeviceError("serial read: the device is gone")
        return data

    def read_exactly(self, n: int, timeout: float = 5.0) -> bytes:
        """Exactly ``n`` bytes or DkTimeoutError."""
        import time

        out = b""
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DkTimeoutError(f"serial read: {len(out)} of {n} bytes after {timeout} s")
            out += self.read(n - len(out), left)
        return out

    def set_line(self, baud_rate: int, data_bits: int = 8, stop_bits: float = 1,
                 parity: int = PD_RS232_PARITY_NONE) -> None:
        """termios-like: ``HwProgramUART`` with half stop bits (1 -> 2, 1.5 -> 3, 2 -> 4)."""
        half = {1: 2, 1.5: 3, 2: 4}.get(stop_bits)
        if half is None:
            raise BadArgumentError(f"stop bits must be 1, 1.5 or 2, not {stop_bits}")
        self._call(self.driver.hw_program_uart, baud_rate, data_bits, half, parity)
        self.driver.line = {"baud": baud_rate, "data_bits": data_bits, "half_stop_bits": half, "parity": parity}

    def set_baud_rate(self, baud_rate: int) -> None:
        """``HwProgramBaudRate``."""
        self._call(self.driver.hw_program_baud_rate, baud_rate)
        self.driver.line["baud"] = baud_rate

    def set_modem_lines(self, dtr: bool, rts: bool) -> None:
        """``HwProgramMCR(dtr, rts)``."""
        self._call(self.driver.hw_program_mcr, dtr, rts)

    def set_flow_control(self, arg: int, xon: int = 0x11, xoff: int = 0x13) -> None:
        """``HwProgramFlowControl(arg, xon, xoff)``."""
        self._call(self.driver.hw_program_flow_control, arg, xon, xoff)

    def modem_status(self) -> tuple[bool, bool, bool, bool]:
        """``HwGetModemStatus``: (cts, dsr, ri, dcd)."""
        return self._q.dispatch_sync(self.driver.hw_get_modem_status)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the tty: ``HwDeactivate``."""
        if self.closed:
            return
        try:
            if self.driver.state is ServiceState.STARTED:
                self._call(self.driver.hw_deactivate)
        finally:
            self.closed = True

    def _gone(self) -> None:
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


register_family(Family(IOUserSerial, entitlement=ENT_FAMILY_SERIAL, io_classes=("IOUserSerial",)))
