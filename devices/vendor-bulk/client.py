"""App-side library for the vendor bulk driver: what a Swift/C app writes with IOKitLib.

Find the driver by matching, open it, give the connection a notification port on the app's own
dispatch queue (IOKitLib delivers nothing before that), then call the driver's selectors: every
transfer is an async call whose result comes back to a callback on that queue.
"""

from __future__ import annotations

import threading
from typing import Any

from dkproto.errors import DkTimeoutError, NotFoundError
from dkproto.iokit import (
    IOConnect,
    IODispatchQueue,
    async_reference,
    io_connect_call_async_method,
    io_connect_call_method,
    io_connect_call_scalar_method,
    io_iterator_next,
    io_notification_port_create,
    io_notification_port_destroy,
    io_notification_port_set_dispatch_queue,
    io_object_release,
    io_service_get_matching_services,
    io_service_name_matching,
    io_service_open,
    kIOConnectMethodVarOutputSize,
    kIOMainPortDefault,
)

kWrite, kRead, kCopyReadData, kStats = range(4)
#: What the kernel reads from the app's code signature (``app.entitlements``).
APP_ENTITLEMENTS = {"com.apple.developer.driverkit.userclient-access": ["org.dkproto.example.vendor-bulk"]}


def open_driver() -> IOConnect:
    """IOServiceGetMatchingServices(kIOMainPortDefault, IOServiceNameMatching("VendorBulkDriver"), &it),
    IOIteratorNext, IOServiceOpen; the iterator and the service are released."""
    iterator = io_service_get_matching_services(kIOMainPortDefault, io_service_name_matching("VendorBulkDriver"))
    service = io_iterator_next(iterator)
    io_object_release(iterator)
    if service is None:
        raise NotFoundError("no VendorBulkDriver is running (IOServiceGetMatchingServices found none)")
    try:
        return io_service_open(service, 0, app_entitlements=APP_ENTITLEMENTS)
    finally:
        io_object_release(service)


class Pending:
    """One async call: ``done`` is set when its callback ran, with ``result`` and ``args``."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: int | None = None
        self.args: list[int] = []

    def callback(self, refcon: Any, result: int, *args: Any) -> None:
        """The IOAsyncCallback: 1 async argument -> (refcon, result, arg0)."""
        self.result, self.args = int(result), list(args)
        self.done.set()

    def wait(self, timeout: float) -> list[int]:
        """The completion's arguments once it came (raise if it failed or did not come)."""
        if not self.done.wait(timeout):
            raise DkTimeoutError(f"no completion after {timeout} s")
        if self.result:
            from dkproto.errors import error_for_ioreturn

            raise error_for_ioreturn(self.result, "vendor-bulk: the transfer failed")
        return self.args


class VendorBulk:
    """An open connection with its notification port, delivering on the app's queue."""

    def __init__(self, conn: IOConnect) -> None:
        self.conn = conn
        self.port = io_notification_port_create(kIOMainPortDefault)
        self.queue = IODispatchQueue("vendor-bulk app")  # dispatch_queue_create
        io_notification_port_set_dispatch_queue(self.port, self.queue)  # before any async call

    def write_async(self, data: bytes) -> Pending:
        """Selector 0: start a write; the completion's argument is the bytes written."""
        p = Pending()
        io_connect_call_async_method(self.conn, kWrite, self.port, async_reference(p.callback), [], data)
        return p

    def read_async(self, length: int) -> Pending:
        """Selector 1: start a read of up to ``length`` bytes; then :meth:`copy_read_data`."""
        p = Pending()
        io_connect_call_async_method(self.conn, kRead, self.port, async_reference(p.callback), [length])
        return p

    def copy_read_data(self) -> bytes:
        """Selector 2: the bytes of the last completed read."""
        return io_connect_call_method(self.conn, kCopyReadData, output_struct_cnt=kIOConnectMethodVarOutputSize
                                      ).struct_output

    def write(self, data: bytes, timeout: float = 10.0) -> int:
        """Write and wait for the completion: bytes written."""
        return self.write_async(data).wait(timeout)[0]

    def read(self, length: int, timeout: float = 10.0) -> bytes:
        """Read up to ``length`` bytes and wait for them."""
        self.read_async(length).wait(timeout)
        return self.copy_read_data()

    def stats(self) -> tuple[int, int]:
        """Selector 3: (bytes written, bytes read)."""
        return stats(self.conn)

    def close(self) -> None:
        """IONotificationPortDestroy, then end the app's queue (the connection is the caller's)."""
        io_notification_port_destroy(self.port)
        self.queue.cancel()

    def __enter__(self) -> VendorBulk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# One-call forms, for a caller that holds only the connection: each makes a VendorBulk (a port on a
# queue of its own) for the one call.
def write(conn: IOConnect, data: bytes, timeout: float = 10.0) -> int:
    """Write ``data`` and wait: bytes written."""
    with VendorBulk(conn) as vb:
        return vb.write(data, timeout)


def read(conn: IOConnect, length: int, timeout: float = 10.0) -> bytes:
    """Read up to ``length`` bytes and wait for them."""
    with VendorBulk(conn) as vb:
        return vb.read(length, timeout)


def stats(conn: IOConnect) -> tuple[int, int]:
    """Selector 3: (bytes written, bytes read)."""
    w, r = io_connect_call_scalar_method(conn, kStats, [], 2)
    return w, r
