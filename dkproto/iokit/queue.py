"""``IODispatchQueue``: a serial queue, one worker thread per queue.

DriverKit serializes a service's methods on its "Default" queue and delivers completions
asynchronously on the target's queue, never inside the submitting call (driverkit.md 3.2,
8.2). dkproto uses **one daemon thread per queue**, not asyncio, because everything below
it blocks: pyusb/libusb, hidapi and pyserial calls are synchronous, and a synchronous
``IO()`` in DriverKit blocks only its own queue. A thread per queue gives exactly that, lets
an app script or an interactive console use the driver without running an event loop, and
maps one to one onto ``IODispatchQueue::Create`` when porting. The thread starts on the first
``dispatch_async``/``dispatch_sync``.
"""

from __future__ import annotations

import logging
import queue as _queue
import threading
from collections.abc import Callable
from typing import Any

from dkproto.errors import DkTimeoutError, StateError

__all__ = ["IODispatchQueue", "kIOServiceDefaultQueueName"]

kIOServiceDefaultQueueName = "Default"

_log = logging.getLogger(__name__)
_STOP = object()


class IODispatchQueue:
    """A serial dispatch queue (``IODispatchQueue``).

    Args:
        name: the queue name (``kIOServiceDefaultQueueName`` = "Default" for a service's queue).
        options: ``IODispatchQueue::Create`` options (kept, unused).
        priority: kept, unused.
    """

    def __init__(self, name: str = kIOServiceDefaultQueueName, options: int = 0, priority: int = 0) -> None:
        self.name = name
        self.options = options
        self.priority = priority
        self._q: _queue.SimpleQueue[Any] = _queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cancelled = False
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self.errors: list[BaseException] = []

    @classmethod
    def create(cls, name: str, options: int = 0, priority: int = 0) -> IODispatchQueue:
        """``IODispatchQueue::Create(name, options, priority, &queue)``."""
        return cls(name, options, priority)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"IODispatchQueue({self.name})", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            fn, args = item
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - a block must not kill the queue
                self.errors.append(exc)
                from dkproto.iokit.status import user_code_error

                what = f"a block on IODispatchQueue({self.name})"
                _log.error("%s", user_code_error(exc, what).one_line())  # one line; -v logging: the traceback
                _log.debug("the block's traceback", exc_info=exc)
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.notify_all()

    def on_queue(self) -> bool:
        """True when called from this queue's own thread (``OnQueue()``)."""
        return self._thread is not None and threading.current_thread() is self._thread

    def dispatch_async(self, fn: Callable[..., Any], *args: Any) -> None:
        """``DispatchAsync(block)``: run ``fn(*args)`` later on this queue, in submission order."""
        with self._lock:
            if self._cancelled:
                raise StateError(f"IODispatchQueue({self.name}).dispatch_async: queue is cancelled")
            self._pending += 1
            self._ensure_thread()
        self._q.put((fn, args))

    def dispatch_sync(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """``DispatchSync(block)``: run ``fn(*args)`` on the queue and wait; inline if already on it.

        Exceptions raised by ``fn`` are re-raised in the caller.
        """
        if self.on_queue():
            return fn(*args)
        done = threading.Event()
        box: list[Any] = [None, None]

        def block() -> None:
            try:
                box[0] = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                box[1] = exc
            finally:
                done.set()

        self.dispatch_async(block)
        if not done.wait(timeout):
            raise DkTimeoutError(f"IODispatchQueue({self.name}).dispatch_sync: no result within {timeout} s")
        if box[1] is not None:
            raise box[1]
        return box[0]

    def drain(self, timeout: float | None = 5.0) -> None:
        """Wait until every block submitted so far has run (a test helper; no DriverKit counterpart)."""
        if self.on_queue():
            return
        with self._lock:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise DkTimeoutError(f"IODispatchQueue({self.name}).drain: still busy after {timeout} s")

    def cancel(self, handler: Callable[[], Any] | None = None) -> None:
        """``Cancel(handler)``: accept no new blocks; ``handler`` runs on the queue after the queued ones."""
        with self._lock:
            if self._cancelled:
                return
            self._pending += 1
            self._ensure_thread()
            self._cancelled = True

        def last() -> None:
            if handler is not None:
                handler()

        self._q.put((last, ()))
        self._q.put(_STOP)

    @property
    def is_cancelled(self) -> bool:
        """True once ``cancel`` was called."""
        return self._cancelled

    def __repr__(self) -> str:
        return f"IODispatchQueue({self.name!r}{', cancelled' if self._cancelled else ''})"
