"""CDC-ACM serial driver: an ``IOUserSerial`` doing the USB itself (what an ``IOUserUSBSerial`` does).

Matched on the communication interface (class 2, subclass 2 = ACM) of ``usb://1209:0003``
(``gadget.json``: the Linux ``acm`` gadget function, whose device end is ``/dev/ttyGSn``).
In ``Start`` it calls ``ConnectQueues`` (nine arguments: the system creates the 16 KiB rings) and
maps what it returns, opens the communication interface and the data interface (class 0x0A,
found with the device's interface iterator), finds the bulk pair by walking the configuration,
and allocates its transfer buffers. Then:

- ``hw_activate``: raises DTR/RTS and keeps one ``AsyncIO`` pending on bulk IN; each completion
  copies the bytes into the RX ring (advancing ``rxPI``), calls ``rx_data_available()``, resubmits;
- ``tx_data_available``: moves what the TX ring holds (up to ``txPI``) into the OUT buffer,
  advances ``txCI``, calls ``tx_free_space_available()`` and sends it with ``AsyncIO``; the
  completion sends the next chunk, if any;
- ``hw_program_uart`` / ``hw_program_baud_rate``: CDC SET_LINE_CODING (class request 0x20);
- ``hw_program_mcr``: CDC SET_CONTROL_LINE_STATE (0x22; DTR bit 0, RTS bit 1);
- ``hw_deactivate``: aborts the pending read, drops DTR/RTS.

The rings are worked through mappings of ``ifmd``/``rxqmd``/``txqmd`` with the
``SerialPortInterface`` indices, as a dext does (free-running 32-bit indices taken modulo the
ring size). An app gets the port with ``service.open_port()`` (a tty in macOS).
"""

from __future__ import annotations

import ctypes
import struct

from dkproto.errors import BadArgumentError, DkError, NotFoundError
from dkproto.iokit import IOBufferMemoryDescriptor, IOService, OSAction, create_action
from dkproto.iokit.memory import (
    IOMemoryMap,
    kIOMemoryDirectionIn,
    kIOMemoryDirectionInOut,
    kIOMemoryDirectionOut,
)
from dkproto.iokit.serial import (
    PD_RS232_PARITY_EVEN,
    PD_RS232_PARITY_MARK,
    PD_RS232_PARITY_NONE,
    PD_RS232_PARITY_ODD,
    PD_RS232_PARITY_SPACE,
    IOUserSerial,
    SerialPortInterface,
)
from dkproto.iokit.usb_host import (
    IOUSBGetEndpointAddress,
    IOUSBGetEndpointDirection,
    IOUSBGetEndpointType,
    IOUSBGetNextEndpointDescriptor,
    IOUSBHostInterface,
    IOUSBHostPipe,
    kIOUSBAbortSynchronous,
    kIOUSBEndpointDirectionIn,
    kIOUSBEndpointTypeBulk,
)
from dkproto.ioreturn import IOReturn

DEFAULT_DEVICE = "usb://1209:0003"
SET_LINE_CODING, GET_LINE_CODING, SET_CONTROL_LINE_STATE = 0x20, 0x21, 0x22
_CDC_PARITY = {PD_RS232_PARITY_NONE: 0, PD_RS232_PARITY_ODD: 1, PD_RS232_PARITY_EVEN: 2, PD_RS232_PARITY_MARK: 3,
               PD_RS232_PARITY_SPACE: 4}
_CDC_STOP = {2: 0, 3: 1, 4: 2}  # half stop bits -> bCharFormat
TRANSFER_SIZE = 512
U32 = 0xFFFFFFFF


class CDCACMSerial(IOUserSerial):
    """CDC-ACM over USBDriverKit pipes, with the serial rings in shared memory."""

    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        assert isinstance(provider, IOUSBHostInterface)
        # ConnectQueues(&ifmd, &rxqmd, &txqmd, NULL, NULL, 0, 0, 0, 0): system-created rings
        ifmd, rxqmd, txqmd = self.connect_queues(None, None, 0, 0, 0, 0)
        self.spi = SerialPortInterface.from_address(ifmd.create_mapping(0, 0, 0, 0, 0).get_address())
        self.rx_ring = rxqmd.create_mapping(0, 0, self.spi.rxqoffset, 1 << self.spi.rxqlogsz, 0)
        self.tx_ring = txqmd.create_mapping(0, 0, self.spi.txqoffset, 1 << self.spi.txqlogsz, 0)
        self.queue_memory = (ifmd, rxqmd, txqmd)  # kept (retained) for as long as the rings are used
        self.comm = provider
        self.comm.open(self, 0, None)
        self.data = self._open_data_interface(provider)
        self.pipe_in, self.pipe_out = self._bulk_pipes(self.data)
        self.read_buffer = IOBufferMemoryDescriptor.create(kIOMemoryDirectionIn, TRANSFER_SIZE, 0)
        self.write_buffer = IOBufferMemoryDescriptor.create(kIOMemoryDirectionOut, TRANSFER_SIZE, 0)
        self.control_buffer = IOBufferMemoryDescriptor.create(kIOMemoryDirectionInOut, 7, 0)  # line coding
        self.read_map = self.read_buffer.create_mapping(0, 0, 0, 0, 0)
        self.write_map = self.write_buffer.create_mapping(0, 0, 0, 0, 0)
        self.control_map = self.control_buffer.create_mapping(0, 0, 0, 0, 0)
        self.read_action = create_action(self, "read_done")  # CreateActionReadDone
        self.write_action = create_action(self, "write_done")
        self.active = False
        self.writing = False
        self.register_service()

    def _open_data_interface(self, comm: IOUSBHostInterface) -> IOUSBHostInterface:
        """The device's first CDC data interface (class 0x0A), opened: CreateInterfaceIterator /
        CopyInterface until NULL / DestroyInterfaceIterator."""
        device = comm.copy_device()
        ref = device.create_interface_iterator()
        try:
            intf = device.copy_interface(ref)
            while intf is not None:
                if int(intf.get_interface_descriptor()["bInterfaceClass"]) == 0x0A:
                    intf.open(self, 0, None)
                    return intf
                intf = device.copy_interface(ref)
        finally:
            device.destroy_interface_iterator(ref)
        raise NotFoundError("CDCACMSerial: no CDC data interface (class 0x0A)")

    @staticmethod
    def _bulk_pipes(intf: IOUSBHostInterface) -> tuple[IOUSBHostPipe, IOUSBHostPipe]:
        """(bulk IN, bulk OUT) of an open interface, by walking its configuration descriptor."""
        config, at = intf.copy_configuration_descriptor(), intf.get_interface_offset()
        pipes: dict[int, IOUSBHostPipe] = {}
        ep = IOUSBGetNextEndpointDescriptor(config, at, None)
        while ep is not None:
            desc = config[ep:ep + 7]
            if IOUSBGetEndpointType(desc) == kIOUSBEndpointTypeBulk:
                pipes.setdefault(IOUSBGetEndpointDirection(desc), intf.copy_pipe(IOUSBGetEndpointAddress(desc)))
            ep = IOUSBGetNextEndpointDescriptor(config, at, ep)
        if len(pipes) < 2:
            raise NotFoundError("CDCACMSerial: the data interface has no bulk IN/OUT pair")
        return pipes[kIOUSBEndpointDirectionIn], pipes[1 - kIOUSBEndpointDirectionIn]

    def stop(self, provider: IOService | None) -> None:
        self.active = False
        for pipe in (self.pipe_in, self.pipe_out):
            pipe.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)
        for action in (self.read_action, self.write_action):
            action.cancel()
            action.release()
        self.data.close(self, 0)
        self.comm.close(self, 0)
        super().stop(provider)

    # -- control requests on the communication interface (synchronous: the hw_* calls return their result)
    def _class_out(self, request: int, value: int, payload: bytes = b"") -> int:
        ctypes.memmove(self.control_map.get_address(), payload, len(payload))
        try:
            self.comm.device_request(0x21, request, value, self.comm.bInterfaceNumber, len(payload),
                                     self.control_buffer if payload else None, 1000)
        except DkError as exc:
            return int(exc.ioreturn)
        return 0

    def hw_program_uart(self, baud_rate: int, n_data_bits: int, n_half_stop_bits: int, parity: int) -> int:
        if n_half_stop_bits not in _CDC_STOP or parity not in _CDC_PARITY or n_data_bits not in (5, 6, 7, 8, 16):
            return int(IOReturn.kIOReturnBadArgument)
        coding = struct.pack("<IBBB", baud_rate, _CDC_STOP[n_half_stop_bits], _CDC_PARITY[parity], n_data_bits)
        return self._class_out(SET_LINE_CODING, 0, coding)

    def hw_program_baud_rate(self, baud_rate: int) -> int:
        line = self.line
        return self.hw_program_uart(baud_rate, line["data_bits"], line["half_stop_bits"], line["parity"])

    def hw_program_mcr(self, dtr: bool, rts: bool) -> int:
        return self._class_out(SET_CONTROL_LINE_STATE, int(dtr) | int(rts) << 1)

    def get_line_coding(self) -> tuple[int, int, int, int]:
        """GET_LINE_CODING: (dwDTERate, bCharFormat, bParityType, bDataBits), on the driver's queue
        (it shares the control buffer with the hw_* calls)."""

        def request() -> tuple[int, int, int, int]:
            self.comm.device_request(0xA1, GET_LINE_CODING, 0, self.comm.bInterfaceNumber, 7, self.control_buffer,
                                     1000)
            return struct.unpack("<IBBB", ctypes.string_at(self.control_map.get_address(), 7))

        return self.copy_dispatch_queue().dispatch_sync(request)  # type: ignore[no-any-return]

    # -- data: device -> RX ring
    def hw_activate(self) -> int:
        self.active = True
        self.hw_program_mcr(True, True)
        self.pipe_in.async_io(self.read_buffer, TRANSFER_SIZE, self.read_action, 0)
        return 0

    def hw_deactivate(self) -> int:
        self.active = False
        self.pipe_in.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)
        self.hw_program_mcr(False, False)
        return 0

    def read_done(self, action: OSAction, status: int, actual: int, timestamp: int) -> None:
        """CompleteAsyncIO of bulk IN: copy into the RX ring, tell the system, read again."""
        if status == IOReturn.kIOReturnSuccess and actual:
            n = ring_put(self.rx_ring, self.spi, "rx", self.read_map.get_address(), actual)
            if n < actual:
                self.rx_error(True, False, False, False)  # RX ring overrun: the rest is dropped
            self.rx_data_available()
        if self.active and status in (IOReturn.kIOReturnSuccess, IOReturn.kIOReturnTimeout):
            self.pipe_in.async_io(self.read_buffer, TRANSFER_SIZE, self.read_action, 0)

    # -- data: TX ring -> device
    def tx_data_available(self) -> None:
        """The system put bytes in the TX ring: send them unless a write is in flight."""
        if not self.writing:
            self._send_next()

    def _send_next(self) -> None:
        n = ring_get(self.tx_ring, self.spi, "tx", self.write_map.get_address(), TRANSFER_SIZE)
        if not n:
            return
        self.tx_free_space_available()  # the bytes are in the OUT buffer: the ring has room again
        self.writing = True
        try:
            self.pipe_out.async_io(self.write_buffer, n, self.write_action, 2000)
        except DkError as exc:
            self.writing = False
            self.log.warning("tx: %s", exc)

    def write_done(self, action: OSAction, status: int, actual: int, timestamp: int) -> None:
        """CompleteAsyncIO of bulk OUT: send the next chunk, if any."""
        self.writing = False
        if status != IOReturn.kIOReturnSuccess:
            self.log.warning("tx: bulk OUT completed with 0x%08x", status)
        if status != IOReturn.kIOReturnNoDevice:
            self._send_next()


def ring_put(ring: IOMemoryMap, spi: SerialPortInterface, side: str, source: int, length: int) -> int:
    """Producer side of a ring (``rx``): copy up to ``length`` bytes from address ``source`` in at PI,
    wrapping at the end, then publish the new PI; returns the count copied."""
    size = ring.get_length()
    pi, ci = getattr(spi, f"{side}PI"), getattr(spi, f"{side}CI")
    n = min(length, size - ((pi - ci) & U32))
    start = pi % size
    first = min(n, size - start)
    ctypes.memmove(ring.get_address() + start, source, first)
    ctypes.memmove(ring.get_address(), source + first, n - first)
    setattr(spi, f"{side}PI", (pi + n) & U32)  # after the bytes are in place
    return n


def ring_get(ring: IOMemoryMap, spi: SerialPortInterface, side: str, dest: int, length: int) -> int:
    """Consumer side of a ring (``tx``): copy up to ``length`` bytes out at CI to address ``dest``,
    then publish the new CI; returns the count copied."""
    size = ring.get_length()
    pi, ci = getattr(spi, f"{side}PI"), getattr(spi, f"{side}CI")
    n = min(length, (pi - ci) & U32)
    start = ci % size
    first = min(n, size - start)
    ctypes.memmove(dest, ring.get_address() + start, first)
    ctypes.memmove(dest + first, ring.get_address(), n - first)
    setattr(spi, f"{side}CI", (ci + n) & U32)
    return n


def check_line(driver: CDCACMSerial) -> None:
    """Raise unless the device's line coding equals what the driver last programmed."""
    rate, _fmt, _parity, bits = driver.get_line_coding()
    want = driver.line
    if (rate, bits) != (want["baud"], want["data_bits"]):
        raise BadArgumentError(f"line coding {rate} {bits} != {want}")
