"""Vendor bulk device driver with a user client: asynchronous writes and reads through buffers
allocated once.

The device (``gadget.json``: the Linux kernel's Loopback function, or ``sim://loopback``) is a
vendor-specific interface with one bulk OUT and one bulk IN endpoint; what is written comes
back. The driver (``VendorBulkDriver``) opens the interface, finds the two bulk endpoints by
walking its configuration descriptor and copies their pipes. Its user client
(``VendorBulkUserClient``) allocates one OUT and one IN buffer in ``Start`` and serves apps
through a checked dispatch table. Every transfer is an ``AsyncIO`` whose completion reaches the
app through the async reference it passed (``AsyncCompletion``): ``ExternalMethod`` never waits
for the device, so the queue stays free.

================  ==============================  =============================================
selector          shape                           does
================  ==============================  =============================================
0 kWrite          completion, struct in           AsyncIO on bulk OUT; completion [bytes written]
1 kRead           completion, scalar in: length   AsyncIO on bulk IN; completion [bytes read]
2 kCopyReadData   struct out (variable size)      the bytes of the last completed read (no I/O)
3 kStats          scalar out: 2                   bytes written, bytes read so far
================  ==============================  =============================================

At most ``BUFFER_SIZE`` bytes per transfer; one write and one read in flight per connection (a
second one gets kIOReturnBusy). Ports to C++ line by line: see docs/porting.md.
"""

from __future__ import annotations

import ctypes
from typing import Any

from dkproto.errors import DkError, NotFoundError
from dkproto.iokit import (
    IOBufferMemoryDescriptor,
    IOService,
    IOUserClient,
    IOUserClientMethodArguments,
    OSAction,
    create_action,
    external_method,
)
from dkproto.iokit.memory import kIOMemoryDirectionIn, kIOMemoryDirectionOut, kIOMemoryMapReadOnly
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

DEFAULT_DEVICE = "usb://1209:0001"
TIMEOUT_MS = 2000
BUFFER_SIZE = 64 * 1024

kWrite, kRead, kCopyReadData, kStats = range(4)


class VendorBulkDriver(IOService):
    """Started on the vendor interface; owns the pipes."""

    def start(self, provider: IOService | None) -> None:
        super().start(provider)  # Start(provider, SUPERDISPATCH) first
        assert isinstance(provider, IOUSBHostInterface)
        self.interface = provider
        self.pipe_in: IOUSBHostPipe | None = None
        self.pipe_out: IOUSBHostPipe | None = None
        self.bytes_written = 0
        self.bytes_read = 0
        provider.open(self, 0, None)
        config = provider.copy_configuration_descriptor()  # CopyConfigurationDescriptor()
        intf = provider.get_interface_offset()  # GetInterfaceDescriptor(config), as an offset into config
        ep = IOUSBGetNextEndpointDescriptor(config, intf, None)
        while ep is not None:
            desc = config[ep:ep + 7]
            if IOUSBGetEndpointType(desc) == kIOUSBEndpointTypeBulk:
                if IOUSBGetEndpointDirection(desc) == kIOUSBEndpointDirectionIn and self.pipe_in is None:
                    self.pipe_in = provider.copy_pipe(IOUSBGetEndpointAddress(desc))
                elif IOUSBGetEndpointDirection(desc) != kIOUSBEndpointDirectionIn and self.pipe_out is None:
                    self.pipe_out = provider.copy_pipe(IOUSBGetEndpointAddress(desc))
            ep = IOUSBGetNextEndpointDescriptor(config, intf, ep)
        if self.pipe_in is None or self.pipe_out is None:
            provider.close(self, 0)
            raise NotFoundError("VendorBulkDriver: the interface has no bulk IN/OUT pair")
        self.register_service()

    def stop(self, provider: IOService | None) -> None:
        for pipe in (self.pipe_in, self.pipe_out):
            if pipe is not None:
                pipe.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)
        self.interface.close(self, 0)
        super().stop(provider)  # Stop(provider, SUPERDISPATCH) last

    def new_user_client(self, client_type: int) -> IOUserClient:
        """NewUserClient: Create(this, "UserClientProperties", &client)."""
        return self.create(self, "UserClientProperties")  # type: ignore[return-value]


class VendorBulkUserClient(IOUserClient):
    """The app's door to the driver: its buffers, its completion actions, its pending app calls."""

    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        assert isinstance(provider, VendorBulkDriver)
        self.driver = provider
        # Allocated once; the bytes are reached through mappings, as a dext does.
        self.out_buffer = IOBufferMemoryDescriptor.create(kIOMemoryDirectionOut, BUFFER_SIZE, 0)
        self.in_buffer = IOBufferMemoryDescriptor.create(kIOMemoryDirectionIn, BUFFER_SIZE, 0)
        self.out_map = self.out_buffer.create_mapping(0, 0, 0, 0, 0)
        self.in_map = self.in_buffer.create_mapping(0, 0, 0, 0, 0)
        # CreateActionWriteDone / CreateActionReadDone: one action per direction, reused
        self.write_action = create_action(self, "write_done")
        self.read_action = create_action(self, "read_done")
        self.write_app: OSAction | None = None  # the app's completion of the write in flight
        self.read_app: OSAction | None = None
        self.read_length = 0  # bytes of the last completed read, in in_buffer

    def stop(self, provider: IOService | None) -> None:
        # Abort what is in flight; its app calls end with kIOReturnAborted here (a completion
        # already queued finds nothing pending and does nothing), then the actions are cancelled.
        if self.write_app is not None:
            self.driver.pipe_out.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)
        if self.read_app is not None:
            self.driver.pipe_in.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)
        for app in (self.write_app, self.read_app):
            if app is not None:
                self.async_completion(app, IOReturn.kIOReturnAborted, [0])
                app.release()
        self.write_app = self.read_app = None
        for action in (self.write_action, self.read_action):
            action.cancel()
            action.release()
        super().stop(provider)

    @external_method(kWrite, completion=True, scalar_in=0)
    def write(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """Copy the input structure into the OUT buffer and start an AsyncIO on bulk OUT."""
        if args.structure_input is not None:  # inline (<= 4096 bytes): the OSData's bytes
            source: Any = args.structure_input
            length = len(args.structure_input)
        elif args.structure_input_descriptor is not None:  # larger: map the app's memory, read-only
            in_map = args.structure_input_descriptor.create_mapping(kIOMemoryMapReadOnly, 0, 0, 0, 0)
            source, length = in_map.get_address(), in_map.get_length()
        else:
            return IOReturn.kIOReturnBadArgument
        if not 0 < length <= BUFFER_SIZE:
            return IOReturn.kIOReturnBadArgument
        if self.write_app is not None:
            return IOReturn.kIOReturnBusy
        ctypes.memmove(self.out_map.get_address(), source, length)  # memcpy
        args.completion.retain()  # kept until write_done answers the app
        self.write_app = args.completion
        try:
            self.driver.pipe_out.async_io(self.out_buffer, length, self.write_action, TIMEOUT_MS)
        except DkError as exc:  # not submitted: no completion will come, let go of the app's action
            self.write_app = None
            args.completion.release()
            return exc.ioreturn
        return IOReturn.kIOReturnSuccess

    def write_done(self, action: OSAction, status: int, actual: int, timestamp: int) -> None:
        """CompleteAsyncIO of bulk OUT: AsyncCompletion(app, status, [bytes written])."""
        app, self.write_app = self.write_app, None
        if app is None:  # the app's call already ended (Stop)
            return
        self.driver.bytes_written += actual
        self.async_completion(app, status, [actual])
        app.release()

    @external_method(kRead, completion=True, scalar_in=1)
    def read(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """Start an AsyncIO of up to scalar_input[0] bytes on bulk IN, into the IN buffer."""
        length = int(args.scalar_input[0])
        if not 0 < length <= BUFFER_SIZE:
            return IOReturn.kIOReturnBadArgument
        if self.read_app is not None:
            return IOReturn.kIOReturnBusy
        args.completion.retain()
        self.read_app = args.completion
        try:
            self.driver.pipe_in.async_io(self.in_buffer, length, self.read_action, TIMEOUT_MS)
        except DkError as exc:
            self.read_app = None
            args.completion.release()
            return exc.ioreturn
        return IOReturn.kIOReturnSuccess

    def read_done(self, action: OSAction, status: int, actual: int, timestamp: int) -> None:
        """CompleteAsyncIO of bulk IN: AsyncCompletion(app, status, [bytes read]); the bytes wait in
        the IN buffer for kCopyReadData."""
        app, self.read_app = self.read_app, None
        if app is None:
            return
        self.read_length = actual if status == IOReturn.kIOReturnSuccess else 0
        self.driver.bytes_read += actual
        self.async_completion(app, status, [actual])
        app.release()

    @external_method(kCopyReadData, scalar_in=0, struct_in=0, struct_out=None)
    def copy_read_data(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """Struct out: the bytes of the last completed read (OSData::withBytes(address, length))."""
        if self.read_app is not None:
            return IOReturn.kIOReturnNotReady  # a read is filling the buffer
        args.structure_output = ctypes.string_at(self.in_map.get_address(), self.read_length)
        return IOReturn.kIOReturnSuccess

    @external_method(kStats, scalar_in=0, scalar_out=2)
    def stats(self, reference: Any, args: IOUserClientMethodArguments) -> int:
        """Scalar out: bytes written, bytes read."""
        args.scalar_output[0] = self.driver.bytes_written
        args.scalar_output[1] = self.driver.bytes_read
        return IOReturn.kIOReturnSuccess
