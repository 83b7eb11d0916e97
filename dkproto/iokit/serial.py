"""SerialDriverKit mirror: ``IOUserSerial`` and its shared rings (driverkit.md section 6).

The driver sets the rings up with ``connect_queues`` (``ConnectQueues``: the base ``Start`` creates
none), then drives the hardware; the class and the system share the rings:

- the **system** (the tty layer; here a :class:`SerialPort` handle given to app code) writes
  into the TX ring and calls ``tx_data_available()``; reads the RX ring after
  ``rx_data_available()``; sets line coding and modem lines through the ``hw_*`` callbacks;
- the **driver** overrides ``hw_activate``/``hw_deactivate``/``hw_program_uart``/
  ``hw_program_baud_rate``/``hw_program_mcr``/``hw_program_flow_control``/``tx_data_available``
  ..., moves bytes between the rings and the device, and reports with ``rx_data_available()``,
  ``tx_free_space_available()``, ``set_modem_status()``, ``rx_error()``.

Rings: ``ConnectQueues`` returns three memory descriptors, ``ifmd`` (a
:class:`SerialPortInterface`: producer/consumer indices PI/CI, offsets, log2 sizes) and the RX/TX
buffers (power-of-two sizes, 16 KiB when the system creates them); a driver maps them and works
on the shared bytes, as a dext does. Index wrap is [unconfirmed] in Apple's docs; dkproto
uses free-running 32-bit indices taken modulo the size. The system's calls into the driver run
on the driver's default queue, as in DriverKit.

The module registers ``IOUserSerial`` as a driver-class family (:mod:`~dkproto.iokit.family`):
a personality with ``IOClass`` ``IOUserSerial`` needs ``family.serial`` (driverkit.md 6, 7.1).
Its provider is another family's nub (``IOUSBHostInterface`` for a USB serial adapter).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dkproto.errors import BadArgumentError, DkTimeoutError, NoDeviceError, NotOpenError
from dkproto.iokit.family import Family, register_family
from dkproto.iokit.memory import IOBufferMemoryDescriptor, IOMemoryDescriptor, kIOMemoryDirectionInOut
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
    "SerialQueues",
    "SerialRing",
    "kSerialQueueLogSizeDefault",
    "kSerialQueueLogSizeMax",
]

PD_RS232_PARITY_DEFAULT = 0
PD_RS232_PARITY_NONE = 1
PD_RS232_PARITY_ODD = 2
PD_RS232_PARITY_EVEN = 3
PD_RS232_PARITY_MARK = 4
PD_RS232_PARITY_SPACE = 5
PD_RS232_PARITY_ANY = 6
kSerialQueueLogSizeDefault = 14  # 16 KiB, what ConnectQueues creates for NULL inputs
#: ``driverkit::serial::kSerialQueueLogSizeMax`` exists (static const uint8_t); its value is
#: [unconfirmed]: dkproto accepts up to 2**24-byte rings.
kSerialQueueLogSizeMax = 24

ENT_FAMILY_SERIAL = "com.apple.developer.driverkit.family.serial"

_U32 = 0xFFFFFFFF


class SerialPortInterface(ctypes.Structure):
    """``driverkit::serial::SerialPortInterface``: the shared rings' indices, offsets and sizes.

    A dext reads it through a mapping of the ``ifmd`` that ``ConnectQueues`` returns:
    ``SerialPortInterface.from_address(ifmd.create_mapping().get_address())``, as C++ casts
    ``map->GetAddress()``. Field types are Apple's (``uint32_t rxPI, rxCI, txPI, txCI, rxqoffset,
    txqoffset; uint8_t rxqlogsz, txqlogsz``); their order in memory is [unconfirmed] (Apple's
    documentation lists the fields alphabetically; dkproto uses the order of driverkit.md 6.2).
    """

    _fields_ = [
        ("rxPI", ctypes.c_uint32),
        ("rxCI", ctypes.c_uint32),
        ("txPI", ctypes.c_uint32),
        ("txCI", ctypes.c_uint32),
        ("rxqoffset", ctypes.c_uint32),
        ("txqoffset", ctypes.c_uint32),
        ("rxqlogsz", ctypes.c_uint8),
        ("txqlogsz", ctypes.c_uint8),
    ]


class SerialRing:
    """One ring of ``SerialPortInterface``: ``size`` = 2**log_size bytes at ``buffer``, with its
    producer (PI) and consumer (CI) indices in the interface.

    dkproto convenience, not Apple's: a dext does this index arithmetic itself on the mapped
    memory. Indices are free-running 32-bit and taken modulo the size (wrap [unconfirmed]). One
    producer and one consumer, each writing only its own index, as the shared memory requires.
    Built alone (``SerialRing(log_size)``) it owns its memory.
    """

    def __init__(self, log_size: int = kSerialQueueLogSizeDefault, *, interface: SerialPortInterface | None = None,
                 buffer: memoryview | None = None, side: str = "rx") -> None:
        if not 1 <= log_size <= kSerialQueueLogSizeMax:
            raise BadArgumentError(f"ring log2 size {log_size} outside 1..{kSerialQueueLogSizeMax}")
        self.size = 1 << log_size
        self.interface = interface if interface is not None else SerialPortInterface()
        self.buf = buffer if buffer is not None else memoryview(bytearray(self.size))
        if len(self.buf) < self.size:
            raise BadArgumentError(f"ring buffer of {len(self.buf)} bytes is smaller than 2**{log_size}")
        self._pi, self._ci = f"{side}PI", f"{side}CI"
        self.lock = threading.Lock()  # serializes producers among themselves (and consumers), not the two sides

    @property
    def pi(self) -> int:
        """The producer index (``rxPI``/``txPI`` in the interface)."""
        return int(getattr(self.interface, self._pi))

    @pi.setter
    def pi(self, value: int) -> None:
        setattr(self.interface, self._pi, value & _U32)

    @property
    def ci(self) -> int:
        """The consumer index (``rxCI``/``txCI``)."""
        return int(getattr(self.interface, self._ci))

    @ci.setter
    def ci(self, value: int) -> None:
        setattr(self.interface, self._ci, value & _U32)

    def used(self) -> int:
        """Bytes waiting."""
        return (self.pi - self.ci) & _U32

    def free(self) -> int:
        """Room left."""
        return self.size - min(self.used(), self.size)

    def put(self, data: bytes) -> int:
        """Producer: copy as much of ``data`` as fits, then advance PI; returns the count."""
        with self.lock:
            n = min(len(data), self.free())
            start = self.pi & (self.size - 1)
            first = min(n, self.size - start)
            self.buf[start:start + first] = data[:first]
            self.buf[:n - first] = data[first:n]
            self.pi = self.pi + n  # publish after the bytes are in place
            return n

    def get(self, n: int | None = None) -> bytes:
        """Consumer: take up to ``n`` bytes (all by default), then advance CI."""
        with self.lock:
            k = self.used() if n is None else min(n, self.used())
            k = min(k, self.size)
            start = self.ci & (self.size - 1)
            first = min(k, self.size - start)
            out = bytes(self.buf[start:start + first]) + bytes(self.buf[:k - first])
            self.ci = self.ci + k
            return out


@dataclass(slots=True)
class SerialQueues:
    """What ``ConnectQueues`` set up, with the rings as :class:`SerialRing` objects.

    dkproto convenience, not Apple's (``IOUserSerial.queues``): a dext keeps the three
    descriptors and maps them.
    """

    interface: SerialPortInterface
    rx: SerialRing
    tx: SerialRing
    ifmd: IOBufferMemoryDescriptor
    rxqmd: IOMemoryDescriptor
    txqmd: IOMemoryDescriptor

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
    """``IOUserSerial``: subclass it, call ``connect_queues`` in ``start``, implement the ``hw_*`` callbacks."""

    def __init__(self) -> None:
        super().__init__()
        self.queues: SerialQueues | None = None
        self.modem_status = (False, False, False, False)
        self.rx_errors: list[tuple[bool, bool, bool, bool]] = []
        self._rx_cond = threading.Condition()
        self._tx_cond = threading.Condition()
        self._port: SerialPort | None = None
        self.line = {"baud": 9600, "data_bits": 8, "half_stop_bits": 2, "parity": PD_RS232_PARITY_NONE}

    def start(self, provider: IOService | None) -> None:
        """``Start``: super only. The base creates no queues: the driver calls ``connect_queues``
        (SerialDriverKit ``ConnectQueues``), usually in its ``start``; until then the port cannot
        be opened."""
        super().start(provider)

    def connect_queues(self, in_rxqmd: IOMemoryDescriptor | None = None, in_txqmd: IOMemoryDescriptor | None = None,
                       in_rxqoffset: int = 0, in_txqoffset: int = 0, in_rxqlogsz: int = 0, in_txqlogsz: int = 0
                       ) -> tuple[IOBufferMemoryDescriptor, IOMemoryDescriptor, IOMemoryDescriptor]:
        """``ConnectQueues(IOBufferMemoryDescriptor **ifmd, IOMemoryDescriptor **rxqmd, IOMemoryDescriptor **txqmd,
        IOMemoryDescriptor *in_rxqmd, IOMemoryDescriptor *in_txqmd, uint32_t in_rxqoffset,
        uint32_t in_txqoffset, uint8_t in_rxqlogsz, uint8_t in_txqlogsz)``: returns
        ``(ifmd, rxqmd, txqmd)``.

        As Apple's documentation (SerialDriverKit IOUserSerial ConnectQueues): a NULL (None)
        ``in_rxqmd``/``in_txqmd`` gets a system-created 16 KiB buffer whatever its log size; a
        buffer of the driver's is used from its offset for 2**logsz bytes (a power of two).
        ``ifmd`` holds the :class:`SerialPortInterface` with the indices at 0 and the offsets
        and sizes filled in. The rings are also kept as ``self.queues`` (dkproto convenience).

        Raises:
            BadArgumentError: a log size outside 1..kSerialQueueLogSizeMax, or a buffer too
                small for offset + 2**logsz.
        """
        ifmd = IOBufferMemoryDescriptor.create(kIOMemoryDirectionInOut, ctypes.sizeof(SerialPortInterface))
        spi = SerialPortInterface.from_address(ifmd.create_mapping().get_address())
        rings: list[tuple[IOMemoryDescriptor, SerialRing]] = []
        for side, md, offset, logsz in (("rx", in_rxqmd, in_rxqoffset, in_rxqlogsz),
                                        ("tx", in_txqmd, in_txqoffset, in_txqlogsz)):
            if md is None:
                md, offset, logsz = IOBufferMemoryDescriptor.create(
                    kIOMemoryDirectionInOut, 1 << kSerialQueueLogSizeDefault), 0, kSerialQueueLogSizeDefault
            elif not 1 <= logsz <= kSerialQueueLogSizeMax:
                raise BadArgumentError(f"ConnectQueues: in_{side}qlogsz {logsz} outside 1..{kSerialQueueLogSizeMax}")
            elif offset < 0 or offset + (1 << logsz) > md.get_length():
                raise BadArgumentError(f"ConnectQueues: in_{side}qmd holds {md.get_length()} bytes, less than "
                                       f"offset {offset} + 2**{logsz}")
            view = md.create_mapping(0, 0, offset, 1 << logsz).view()
            setattr(spi, f"{side}qoffset", offset)
            setattr(spi, f"{side}qlogsz", logsz)
            rings.append((md, SerialRing(logsz, interface=spi, buffer=view, side=side)))
        (rxqmd, rx), (txqmd, tx) = rings
        self.queues = SerialQueues(spi, rx, tx, ifmd, rxqmd, txqmd)
        return ifmd, rxqmd, txqmd

    def disconnect_queues(self) -> None:
        """``DisconnectQueues()``: release the queues; the port can no longer move data."""
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
        if self.queues is None:
            from dkproto.errors import DkError
            from dkproto.ioreturn import IOReturn

            raise DkError(f"{type(self).__name__}: no queues: the driver has not called connect_queues "
                          "(ConnectQueues)", ioreturn=IOReturn.kIOReturnNotReady)
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
