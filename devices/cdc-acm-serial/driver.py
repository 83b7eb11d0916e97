"""CDC-ACM serial driver: an ``IOUserSerial`` doing the USB itself (what an ``IOUserUSBSerial`` does).

Matched on the communication interface (class 2, subclass 2 = ACM) of ``usb://1209:0003``
(``gadget.json``: the Linux ``acm`` gadget function, whose device end is ``/dev/ttyGSn``).
It opens that interface and its data interface (class 0x0A), then:

- ``hw_activate``: keeps one ``AsyncIO`` pending on bulk IN; each completion copies the bytes
  into the RX ring and calls ``rx_data_available()``, then resubmits;
- ``tx_data_available``: drains the TX ring to bulk OUT, then ``tx_free_space_available()``;
- ``hw_program_uart`` / ``hw_program_baud_rate``: CDC SET_LINE_CODING (class request 0x20);
- ``hw_program_mcr``: CDC SET_CONTROL_LINE_STATE (0x22; DTR bit 0, RTS bit 1);
- ``hw_deactivate``: aborts the pending read, drops DTR/RTS.

An app gets the port with ``service.open_port()`` (a tty in macOS).
"""

from __future__ import annotations

import struct

from dkproto.errors import BadArgumentError, DkError, NotFoundError
from dkproto.iokit import IOBufferMemoryDescriptor, IOService, OSAction, create_action
from dkproto.iokit.serial import (
    PD_RS232_PARITY_EVEN,
    PD_RS232_PARITY_MARK,
    PD_RS232_PARITY_NONE,
    PD_RS232_PARITY_ODD,
    PD_RS232_PARITY_SPACE,
    IOUserSerial,
)
from dkproto.iokit.usb_host import IOUSBHostInterface, IOUSBHostPipe, kIOUSBAbortSynchronous
from dkproto.ioreturn import IOReturn

DEFAULT_DEVICE = "usb://1209:0003"
SET_LINE_CODING, GET_LINE_CODING, SET_CONTROL_LINE_STATE = 0x20, 0x21, 0x22
_CDC_PARITY = {PD_RS232_PARITY_NONE: 0, PD_RS232_PARITY_ODD: 1, PD_RS232_PARITY_EVEN: 2, PD_RS232_PARITY_MARK: 3,
               PD_RS232_PARITY_SPACE: 4}
_CDC_STOP = {2: 0, 3: 1, 4: 2}  # half stop bits -> bCharFormat
READ_SIZE = 512


class CDCACMSerial(IOUserSerial):
    """CDC-ACM over USBDriverKit-style pipes."""

    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        # ConnectQueues(&ifmd, &rxqmd, &txqmd, NULL, NULL, 0, 0, 0, 0): system-created 16 KiB rings
        self.ifmd, self.rxqmd, self.txqmd = self.connect_queues(None, None, 0, 0, 0, 0)
        assert isinstance(provider, IOUSBHostInterface)
        self.comm = provider
        provider.open(self)
        device = provider.copy_device()
        data = [i for i in device.copy_interfaces() if i.properties["bInterfaceClass"] == 0x0A]
        if not data:
            raise NotFoundError("CDCACMSerial: no CDC data interface (class 0x0A)")
        self.data = data[0]
        self.data.open(self)
        self.pipe_in: IOUSBHostPipe | None = None
        self.pipe_out: IOUSBHostPipe | None = None
        for ep in self.data.endpoint_descriptors():
            address = int(ep["bEndpointAddress"])
            if int(ep["bmAttributes"]) & 3 == 2:
                if address & 0x80:
                    self.pipe_in = self.data.copy_pipe(address)
                else:
                    self.pipe_out = self.data.copy_pipe(address)
        if self.pipe_in is None or self.pipe_out is None:
            raise NotFoundError("CDCACMSerial: the data interface has no bulk IN/OUT pair")
        self.active = False
        self.read_action = create_action(self, "read_done")
        self.read_buffer = IOBufferMemoryDescriptor.create(0, READ_SIZE)
        self.register_service()

    def stop(self, provider: IOService | None) -> None:
        self.active = False
        self.read_action.cancel()
        for pipe in (self.pipe_in, self.pipe_out):
            if pipe is not None:
                pipe.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)
        self.data.close(self)
        self.comm.close(self)
        super().stop(provider)

    # -- control requests on the communication interface
    def _class_out(self, request: int, value: int, payload: bytes = b"") -> int:
        buf = IOBufferMemoryDescriptor.with_bytes(payload) if payload else None
        try:
            self.comm.device_request(0x21, request, value, self.comm.bInterfaceNumber, len(payload), buf, 1000)
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
        """GET_LINE_CODING: (dwDTERate, bCharFormat, bParityType, bDataBits)."""
        buf = IOBufferMemoryDescriptor.create(0, 7)
        self.comm.device_request(0xA1, GET_LINE_CODING, 0, self.comm.bInterfaceNumber, 7, buf, 1000)
        return struct.unpack("<IBBB", buf.read_bytes(0, 7))

    # -- data
    def hw_activate(self) -> int:
        self.active = True
        self.hw_program_mcr(True, True)
        self._submit_read()
        return 0

    def hw_deactivate(self) -> int:
        self.active = False
        assert self.pipe_in is not None
        self.pipe_in.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)
        self.hw_program_mcr(False, False)
        return 0

    def _submit_read(self) -> None:
        assert self.pipe_in is not None
        self.pipe_in.async_io(self.read_buffer, READ_SIZE, self.read_action, 0)

    def read_done(self, action: OSAction, status: int, actual: int, timestamp: int) -> None:
        """CompleteAsyncIO of bulk IN: bytes go to the RX ring."""
        if status == IOReturn.kIOReturnSuccess and actual and self.queues is not None:
            n = self.queues.rx.put(self.read_buffer.read_bytes(0, actual))
            if n < actual:
                self.rx_error(True, False, False, False)  # RX ring overrun
            self.rx_data_available()
        if self.active and status in (IOReturn.kIOReturnSuccess, IOReturn.kIOReturnTimeout):
            self._submit_read()

    def tx_data_available(self) -> None:
        """Drain the TX ring to bulk OUT (synchronous IO on this queue)."""
        assert self.queues is not None and self.pipe_out is not None
        while True:
            chunk = self.queues.tx.get(READ_SIZE)
            if not chunk:
                break
            try:
                self.pipe_out.io(IOBufferMemoryDescriptor.with_bytes(chunk), len(chunk), 2000)
            except DkError as exc:
                self.log.warning("tx: %s", exc)
                break
        self.tx_free_space_available()


def check_line(driver: CDCACMSerial) -> None:
    """Raise unless the device's line coding equals what the driver last programmed."""
    rate, _fmt, _parity, bits = driver.get_line_coding()
    want = driver.line
    if (rate, bits) != (want["baud"], want["data_bits"]):
        raise BadArgumentError(f"line coding {rate} {bits} != {want}")
