"""libusb's asynchronous API for ``usb://`` (private to the USB transport): ``IOUSBHostPipe::AsyncIO``.

:class:`LibusbAsync` submits each ``libusb_transfer`` on the **same** libusb library, context and
device handle that pyusb opened for :class:`~dkproto.transport.usb.USBTransport`, through the
ctypes prototypes pyusb's libusb1 back end already declares, and runs one event thread per
transport. See ``docs/transports.md`` ("Why asynchronous transfers use libusb's async API").
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from usb.backend import libusb1 as be

from dkproto.errors import AbortedError, DkError
from dkproto.ioreturn import IOReturn
from dkproto.transport.base import Transfer
from dkproto.transport.usb_backend import TRANSFER_STATUS_TO_ERROR, probe_gone, usb_error

if TYPE_CHECKING:
    from dkproto.transport.usb import USBTransport

__all__ = ["LibusbAsync"]

log = logging.getLogger("dkproto.transport.usb")

_ABANDONED: list[Any] = []  # transfers libusb may still own at shutdown: never freed
_ENGINES: weakref.WeakSet[LibusbAsync] = weakref.WeakSet()
_ATEXIT_REGISTERED = False


def _shutdown_engines() -> None:
    """Stop event threads before pyusb's finalizers call ``libusb_exit`` at interpreter exit
    (an event thread still inside ``libusb_handle_events`` would make libusb abort)."""
    for engine in list(_ENGINES):
        with contextlib.suppress(Exception):  # exiting anyway
            engine.shutdown()


# a pooled libusb transfer: (pointer, struct, address, buffer, capacity, memoryview of the
# buffer, cancel function, the endpoint's free list it goes back to)
_PoolEntry = tuple[Any, Any, int, Any, int, memoryview, Callable[[], None], list[Any]]
_SUCCESS = IOReturn.kIOReturnSuccess
_monotonic_ns = time.monotonic_ns


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class LibusbAsync:
    """libusb asynchronous transfers on pyusb's own context and handle, one event thread.

    libusb transfer structs and their buffers are pooled per endpoint and reused, so a
    resubmission from a callback costs a few ctypes field writes and ``libusb_submit_transfer``.
    """

    def __init__(self, transport: USBTransport) -> None:
        self.transport = transport
        backend = transport.device._ctx.backend
        self.lib = backend.lib
        self.ctx = backend.ctx
        self.handle = transport.device._ctx.handle.handle
        lib = self.lib
        lib.libusb_cancel_transfer.argtypes = [be._libusb_transfer_p]
        lib.libusb_cancel_transfer.restype = ctypes.c_int
        lib.libusb_submit_transfer.restype = ctypes.c_int
        lib.libusb_handle_events_timeout_completed.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Timeval),
                                                               ctypes.POINTER(ctypes.c_int)]
        lib.libusb_handle_events_timeout_completed.restype = ctypes.c_int
        # The callback takes the transfer's address as a plain integer (the key of _inflight), so a
        # completion needs no ctypes Structure object; cast to the field's function-pointer type.
        self._submit_transfer = lib.libusb_submit_transfer
        self._raw_cb = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(self._on_complete)
        self._cb = ctypes.cast(self._raw_cb, be._libusb_transfer_cb_fn_p)
        self._lock = threading.Lock()
        # address of the libusb_transfer -> (Transfer, pool entry)
        self._inflight: dict[int, tuple[Transfer, _PoolEntry]] = {}
        self._pool: dict[int, list[_PoolEntry]] = {}
        self._stop = False
        self._idle = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._events, name="dkproto-libusb-events", daemon=True)
        self._thread.start()
        _ENGINES.add(self)
        global _ATEXIT_REGISTERED
        if not _ATEXIT_REGISTERED:
            # registered now, after pyusb's back end exists, so that it runs BEFORE pyusb's
            # finalizers (atexit is last-in, first-out)
            atexit.register(_shutdown_engines)
            _ATEXIT_REGISTERED = True

    def _take(self, endpoint: int, ep_type: int, length: int) -> _PoolEntry:
        """A pooled entry for ``endpoint`` with room for ``length`` bytes, or a new one."""
        free = self._pool.get(endpoint)
        if free is None:
            free = self._pool.setdefault(endpoint, [])
        while free:
            try:
                entry = free.pop()
            except IndexError:
                break
            if entry[4] >= length:
                return entry
            self.lib.libusb_free_transfer(entry[0])
        ptr = self.lib.libusb_alloc_transfer(0)
        if not ptr:
            raise DkError("libusb_alloc_transfer failed", ioreturn=IOReturn.kIOReturnNoMemory)
        cap = max(length, 1)
        buf = (ctypes.c_ubyte * cap)()
        t = ptr.contents
        t.dev_handle = self.handle
        t.flags = 0
        t.endpoint = endpoint
        t.type = ep_type  # LIBUSB_TRANSFER_TYPE_BULK 2 / INTERRUPT 3: the bmAttributes values
        t.callback = self._cb
        t.buffer = ctypes.cast(buf, ctypes.c_void_p)
        t.num_iso_packets = 0
        key = ctypes.addressof(t)
        # made once per pooled struct: the buffer as a memoryview (copies in and out without a
        # ctypes call), the cancel function for Transfer.cancel(), and the free list the entry
        # returns to on completion (no dictionary lookup per completion)
        view = memoryview(buf).cast("B")
        return ptr, t, key, buf, cap, view, functools.partial(self._cancel, key), free

    def submit(self, transfer: Transfer, ep_type: int) -> None:
        length = transfer.length
        endpoint = transfer.endpoint
        free = self._pool.get(endpoint)
        entry = None
        if free:  # the common case: a resubmission reuses a struct
            try:
                entry = free.pop()
            except IndexError:  # another thread took the last one
                pass
        if entry is None or entry[4] < length:
            if entry is not None:
                self.lib.libusb_free_transfer(entry[0])
            entry = self._take(endpoint, ep_type, length)
        t = entry[1]
        if length and not endpoint & 0x80:
            entry[5][:length] = transfer.data
        t.timeout = transfer.timeout
        t.length = length
        transfer._cancel = entry[6]
        key = entry[2]
        self._inflight[key] = (transfer, entry)
        rc = self._submit_transfer(entry[0])
        if self._idle:  # the event thread sleeps: wake it (see _events)
            with self._wake:
                self._wake.notify()
        if rc < 0:
            self._inflight.pop(key, None)
            self.lib.libusb_free_transfer(entry[0])
            raise usb_error(rc, f"submitting a transfer on endpoint 0x{transfer.endpoint:02x}",
                            idVendor=self.transport.idVendor, idProduct=self.transport.idProduct)

    def _on_complete(self, key: int) -> None:
        """libusb's completion callback (on the event thread, inside ``libusb_handle_events``).

        This runs once per completion and is most of the Python work per transfer
        (docs/performance.md, Transports): a success takes the short path below, with
        ``Transfer.complete()`` inlined; anything else goes through the error mapper.
        """
        item = self._inflight.pop(key, None)
        if item is None:
            return
        transfer, entry = item
        t = entry[1]
        status = t.status
        actual = t.actual_length
        endpoint = transfer.endpoint
        data = entry[5][:actual].tobytes() if endpoint & 0x80 else b""
        if self._stop:
            self.lib.libusb_free_transfer(entry[0])
        else:
            entry[7].append(entry)  # back to the endpoint's free list (the data is copied)
        if status == 0:
            if transfer._finished:
                return
            transfer.status = _SUCCESS
            if endpoint & 0x80:
                transfer.data = data
            transfer.actual_length = actual
            transfer.timestamp_ns = _monotonic_ns()
            transfer._finished = True
            event = transfer._event
            if event is not None:
                event.set()
            callback = transfer.callback
            if callback is not None:
                try:
                    callback(transfer)
                except Exception:  # a callback's bug must not kill the completion thread
                    log.exception("completion callback for endpoint 0x%02x raised", endpoint)
            return
        code = TRANSFER_STATUS_TO_ERROR.get(status, -99)
        if code == -1 and probe_gone(self.lib, self.handle, 0.3):
            code = -4  # an unplug often surfaces as LIBUSB_TRANSFER_ERROR first
        err = usb_error(code, f"asynchronous transfer on endpoint 0x{endpoint:02x}",
                        idVendor=self.transport.idVendor, idProduct=self.transport.idProduct)
        transfer.complete(err.ioreturn, data, actual, error=err)

    def _events(self) -> None:
        """Handle libusb events while asynchronous transfers are in flight; sleep otherwise.

        Sleeping matters: an event thread polling beside pyusb's synchronous calls on the same
        context makes every synchronous transfer wait for libusb's event lock and the GIL
        (measured in the lab: 4x slower synchronous I/O after the first asynchronous transfer).
        """
        tv = _Timeval(0, 100_000)
        handle_events = self.lib.libusb_handle_events_timeout_completed
        wake = self._wake
        while True:
            if not self._inflight:
                with wake:
                    self._idle = True  # set before looking, so a submit either is seen or notifies
                    while not self._inflight and not self._stop:
                        wake.wait(1.0)
                    self._idle = False
                    if self._stop and not self._inflight:
                        return
            rc = handle_events(self.ctx, ctypes.byref(tv), None)
            if rc < 0 and rc != -10:
                log.debug("libusb_handle_events: %d", rc)

    def _cancel(self, key: int) -> None:
        item = self._inflight.get(key)
        if item is not None:
            self.lib.libusb_cancel_transfer(item[1][0])

    def abort(self, endpoint: int | None, wait_s: float = 5.0) -> None:
        keys = [k for k, item in list(self._inflight.items()) if endpoint is None or item[0].endpoint == endpoint]
        for key in keys:
            self._cancel(key)
        deadline = time.monotonic() + wait_s
        while any(k in self._inflight for k in keys) and time.monotonic() < deadline:
            time.sleep(0.002)

    def shutdown(self) -> None:
        if self._stop:
            return
        self.abort(None)
        self._stop = True
        with self._wake:
            self._wake.notify()
        self._thread.join(timeout=2)
        leftover = list(self._inflight.values())
        _ABANDONED.extend(leftover)  # libusb may still own these buffers: never free them
        for transfer, _entry in leftover:  # never leave a caller waiting forever
            transfer.complete(IOReturn.kIOReturnAborted, error=AbortedError(
                f"transfer on endpoint 0x{transfer.endpoint:02x} abandoned at close"))
        for free in self._pool.values():
            for entry in free:
                self.lib.libusb_free_transfer(entry[0])
        self._pool.clear()
