"""Vendor bulk device driver with a user client: synchronous and asynchronous reads and writes.

The device (``gadget.json``: the Linux kernel's Loopback function, or ``sim://loopback``) is a
vendor-specific interface with one bulk OUT and one bulk IN endpoint; what is written comes
back. The driver (``VendorBulkDriver``) opens the interface and copies both pipes; its user
client (``VendorBulkUserClient``) exposes them to apps through a checked dispatch table:

==========  =======================  ==================================================
selector    shape                    does
==========  =======================  ==================================================
0 Write     struct in (any size)     IO on bulk OUT; scalar out: bytes written
1 Read      scalar in: length        IO on bulk IN; struct out (variable): the bytes
2 AsyncWrite  completion, struct in  AsyncIO OUT; completion [status in result, bytes]
3 AsyncRead   completion, scalar in  AsyncIO IN (<= 120 bytes); completion [n, data as
                                     up to 15 little-endian uint64]
4 Stats     scalar out: 2            bytes written, bytes read so far
==========  =======================  ==================================================

Ports to C++ line by line: see docs/porting.md.
"""

from __future__ import annotations

from typing import Any

from dkproto.errors import BadArgumentError
from dkproto.iokit import (
    IOBufferMemoryDescriptor,
    IOService,
    IOUserClient,
    IOUserClientMethodArguments,
    OSAction,
    create_action,
    external_method,
)
from dkproto.iokit.usb_host import IOUSBHostInterface, IOUSBHostPipe, kIOUSBAbortSynchronous
from dkproto.ioreturn import IOReturn

DEFAULT_DEVICE = "usb://1209:0001"
TIMEOUT_MS = 2000
ASYNC_READ_MAX = 120  # 15 uint64 of data + the count = 16 async arguments

kWrite, kRead, kAsyncWrite, kAsyncRead, kStats = range(5)


class VendorBulkDriver(IOService):
    """Started on the vendor interface; owns the pipes."""

    def start(self, provider: IOService | None) -> None:
        super().start(provider)  # Start(provider, SUPERDISPATCH) first
        assert isinstance(provider, IOUSBHostInterface)
        self.interface = provider
        provider.open(self, 0, None)
        self.pipe_in: IOUSBHostPipe | None = None
        self.pipe_out: IOUSBHostPipe | None = None
        for ep in provider.endpoint_descriptors():
            address, kind = int(ep["bEndpointAddress"]), int(ep["bmAttributes"]) & 3
            if kind == 2 and address & 0x80 and self.pipe_in is None:
                self.pipe_in = provider.copy_pipe(address)
            elif kind == 2 and not address & 0x80 and self.pipe_out is None:
                self.pipe_out = provider.copy_pipe(address)
        if self.pipe_in is None or self.pipe_out is None:
            raise BadArgumentError("VendorBulkDriver: the interface has no bulk IN/OUT pair")
        self.bytes_written = 0
        self.bytes_read = 0
        self.register_service()

    def stop(self, provider: IOService | None) -> None:
        for pipe in (self.pipe_in, self.pipe_out):
            if pipe is not None:
                pipe.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)
        self.interface.close(self)
        super().stop(provider)  # Stop(provider, SUPERDISPATCH) last

    def new_user_client(self, client_type: int) -> IOUserClient:
        """NewUserClient: Create(this, "UserClientProperties", &client)."""
        return self.create(self, "UserClientProperties")  # type: ignore[return-value]


class VendorBulkUserClient(IOUserClient):
    """The app's door to the driver."""

    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        assert isinstance(provider, VendorBulkDriver)
        self.driver = provider

    @external_method(kWrite, scalar_out=1)
    def write(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """Write the input structure to bulk OUT; scalar out: bytes written."""
        data = args.structure_input_bytes()
        buf = IOBufferMemoryDescriptor.with_bytes(data)
        n = self.driver.pipe_out.io(buf, len(data), TIMEOUT_MS)
        self.driver.bytes_written += n
        args.scalar_output[0] = n
        return IOReturn.kIOReturnSuccess

    @external_method(kRead, scalar_in=1, struct_out=None)
    def read(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """Read up to scalar_input[0] bytes from bulk IN; struct out: the bytes."""
        length = int(args.scalar_input[0])
        buf = IOBufferMemoryDescriptor.create(0, length)
        n = self.driver.pipe_in.io(buf, length, TIMEOUT_MS)
        self.driver.bytes_read += n
        data = buf.read_bytes(0, n)
        if args.structure_output_descriptor is not None:
            args.structure_output_descriptor.write_bytes(0, data)
        else:
            args.structure_output = data
        return IOReturn.kIOReturnSuccess

    @external_method(kAsyncWrite, completion=True)
    def async_write(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """AsyncIO on bulk OUT; AsyncCompletion(status, [bytes written])."""
        data = args.structure_input_bytes()
        app = args.completion
        app.retain()  # keep the app's completion beyond this call
        action = create_action(self, "write_done")
        action.context = app
        self.driver.pipe_out.async_io(IOBufferMemoryDescriptor.with_bytes(data), len(data), action, TIMEOUT_MS)
        return IOReturn.kIOReturnSuccess

    def write_done(self, action: OSAction, status: int, actual: int, timestamp: int) -> None:
        """CompleteAsyncIO for async_write."""
        self.driver.bytes_written += actual
        self.async_completion(action.context, status, [actual])
        action.context.release()

    @external_method(kAsyncRead, completion=True, scalar_in=1)
    def async_read(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """AsyncIO on bulk IN (<= 120 bytes); AsyncCompletion(status, [n, data as uint64 LE...])."""
        length = int(args.scalar_input[0])
        if not 0 < length <= ASYNC_READ_MAX:
            return IOReturn.kIOReturnBadArgument
        app = args.completion
        app.retain()
        action = create_action(self, "read_done")
        action.context = (app, IOBufferMemoryDescriptor.create(0, length))
        self.driver.pipe_in.async_io(action.context[1], length, action, TIMEOUT_MS)
        return IOReturn.kIOReturnSuccess

    def read_done(self, action: OSAction, status: int, actual: int, timestamp: int) -> None:
        """CompleteAsyncIO for async_read: pack the bytes into the async arguments."""
        app, buf = action.context
        self.driver.bytes_read += actual
        data = buf.read_bytes(0, actual)
        words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8)]
        self.async_completion(app, status, [actual, *words])
        app.release()

    @external_method(kStats, scalar_in=0, scalar_out=2)
    def stats(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """Scalar out: bytes written, bytes read."""
        args.scalar_output[0] = self.driver.bytes_written
        args.scalar_output[1] = self.driver.bytes_read
        return IOReturn.kIOReturnSuccess
