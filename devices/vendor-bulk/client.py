"""App-side library for the vendor bulk driver: what a Swift/C app would write with IOKitLib."""

from __future__ import annotations

import threading
from typing import Any

from dkproto.iokit import (
    IOConnect,
    IODispatchQueue,
    async_reference,
    io_connect_call_async_method,
    io_connect_call_method,
    io_connect_call_scalar_method,
    io_notification_port_create,
    io_notification_port_set_dispatch_queue,
    kIOConnectMethodVarOutputSize,
)

kWrite, kRead, kAsyncWrite, kAsyncRead, kStats = range(5)


def write(conn: IOConnect, data: bytes) -> int:
    """Selector 0: synchronous write; bytes written."""
    return io_connect_call_method(conn, kWrite, input_struct=data, output_cnt=1).scalar_output[0]


def read(conn: IOConnect, length: int) -> bytes:
    """Selector 1: synchronous read of up to ``length`` bytes."""
    return io_connect_call_method(conn, kRead, [length], output_struct_cnt=kIOConnectMethodVarOutputSize
                                  ).struct_output


def stats(conn: IOConnect) -> tuple[int, int]:
    """Selector 4: (bytes written, bytes read)."""
    w, r = io_connect_call_scalar_method(conn, kStats, [], 2)
    return w, r


class AsyncCalls:
    """Selectors 2 and 3 with an IONotificationPort; each call returns a waitable result."""

    def __init__(self, conn: IOConnect) -> None:
        self.conn = conn
        self.port = io_notification_port_create()
        # IOKitLib delivers nothing until the port has a queue (or a run-loop source)
        self.queue = IODispatchQueue("vendor-bulk app")
        io_notification_port_set_dispatch_queue(self.port, self.queue)

    def _call(self, selector: int, scalars: list[int], data: bytes) -> dict[str, Any]:
        box: dict[str, Any] = {"done": threading.Event()}

        def callback(refcon: Any, result: int, *rest: Any) -> None:
            if len(rest) == 2 and isinstance(rest[0], list):
                args = rest[0]
            else:
                args = list(rest)
            box.update(result=int(result), args=args)
            box["done"].set()

        io_connect_call_async_method(self.conn, selector, self.port, async_reference(callback, box), scalars, data)
        return box

    def write(self, data: bytes) -> dict[str, Any]:
        """Selector 2: asynchronous write; box["args"] == [bytes written] when box["done"] is set."""
        return self._call(kAsyncWrite, [], data)

    def read(self, length: int) -> dict[str, Any]:
        """Selector 3: asynchronous read; use :func:`unpack_read` on the finished box."""
        return self._call(kAsyncRead, [length], b"")

    def close(self) -> None:
        """Destroy the notification port, then end the app's queue."""
        self.port.destroy()
        self.queue.cancel()


def unpack_read(box: dict[str, Any]) -> bytes:
    """The bytes of an async read completion: [n, uint64 LE words...]."""
    n, *words = box["args"]
    return b"".join(w.to_bytes(8, "little") for w in words)[:n]
