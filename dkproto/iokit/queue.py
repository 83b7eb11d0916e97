"""``IODispatchQueue``: a serial queue, one worker thread per queue.

DriverKit serializes a service's methods on its "Default" queue and delivers completions
asynchronously on the target's queue, never inside the submitting call (driverkit.md 3.2,
8.2, 10). dkproto uses **one daemon thread per queue**, not asyncio, because everything below
it blocks: pyusb/libusb, hidapi and pyserial calls are synchronous, and a synchronous
``IO()`` in DriverKit blocks only its own queue. A thread per queue gives exactly that, lets
an app script or an interactive console use the driver without running an event loop, and
maps one to one onto ``IODispatchQueue::Create`` when porting. The thread starts on the first
``dispatch_async``/``dispatch_sync``.

The rules of xnu's ``iokit/DriverKit/IODispatchQueue.iig`` that a prototype must not get
wrong, because the dext would hang or misbehave where the prototype passes:

- ``Cancel(handler)`` stops the queue from dequeuing: blocks still queued **never run** (a
  ``dispatch_sync`` caller whose block is dropped gets kIOReturnAborted), and ``handler``
  runs on the queue once the block in flight has returned.
- ``DispatchSync`` onto a queue the calling thread already runs on (directly, or through a
  chain of ``DispatchSync`` calls: ``OnQueue`` is true for every queue of the chain)
  deadlocks in a dext. Here it raises :class:`DispatchDeadlockError` (kIOReturnError)
  instead of running the block inline or hanging.
"""

from __future__ import annotations

import logging
import queue as _queue
import threading
from collections.abc import Callable
from typing import Any

from dkproto.errors import AbortedError, DkError, DkTimeoutError, StateError
from dkproto.ioreturn import IOReturn

__all__ = ["DispatchDeadlockError", "IODispatchQueue", "kIOServiceDefaultQueueName"]

kIOServiceDefaultQueueName = "Default"

_log = logging.getLogger(__name__)
_WAKE = object()  # put by cancel()/_release(): wakes a worker blocked on an empty queue
#: Per thread: the queues it is running blocks of, innermost last (``OnQueue`` is true for each).
_tls = threading.local()


class DispatchDeadlockError(DkError):
    """``DispatchSync`` onto a queue the caller is already running on: a dext would deadlock.

    Carries kIOReturnError (DriverKit returns nothing: the thread hangs; the closest code).
    """

    ioreturn = IOReturn.kIOReturnError


def _held() -> tuple[IODispatchQueue, ...]:
    held: tuple[IODispatchQueue, ...] = getattr(_tls, "held", ())
    return held


class _SyncBlock:
    """A ``dispatch_sync`` block: runs ``fn`` with the caller's queues still held, keeps the result."""

    __slots__ = ("args", "done", "error", "fn", "held", "result")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], held: tuple[IODispatchQueue, ...]) -> None:
        self.fn = fn
        self.args = args
        self.held = held
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def __call__(self) -> None:
        outer = _held()
        _tls.held = outer + tuple(q for q in self.held if q not in outer)
        try:
            self.result = self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            self.error = exc
        finally:
            _tls.held = outer
            self.done.set()

    def abort(self, why: str) -> None:
        """The queue dropped the block (Cancel): the caller gets kIOReturnAborted."""
        self.error = AbortedError(why)
        self.done.set()


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
        self._released = False  # dkproto: the owner is gone; queued blocks still run, then the thread ends
        self._cancel_handler: Callable[[], Any] | None = None
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
        _tls.held = (self,)
        get = self._q.get
        while True:
            item = get()
            if self._cancelled:  # Cancel: stop dequeuing; what is still queued never runs
                self._finish_cancel(item)
                return
            if item is _WAKE:
                if self._released and self._q.empty():
                    return
                continue
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

    def _finish_cancel(self, item: Any) -> None:
        """Drop ``item`` and every block still queued, then run the cancel handler on this thread."""
        dropped = 0
        why = f"IODispatchQueue({self.name}) was cancelled before the block ran"
        while True:
            if item is not _WAKE:
                dropped += 1
                fn = item[0]
                if isinstance(fn, _SyncBlock):
                    fn.abort(why)
            try:
                item = self._q.get_nowait()
            except _queue.Empty:
                break
        if dropped:
            _log.debug("IODispatchQueue(%s): Cancel dropped %d queued block(s)", self.name, dropped)
        try:
            if self._cancel_handler is not None:
                self._cancel_handler()
        except BaseException as exc:  # noqa: BLE001 - kept like a block's
            self.errors.append(exc)
            _log.error("IODispatchQueue(%s): the cancel handler raised %s: %s", self.name, type(exc).__name__, exc)
        finally:
            with self._lock:
                self._pending -= dropped + 1  # the dropped blocks and the handler
                self._idle.notify_all()

    def on_queue(self) -> bool:
        """``OnQueue()``: true when the calling thread runs a block of this queue, directly or
        through a chain of ``dispatch_sync`` calls (IODispatchQueue.iig: true for more than one
        queue in a given context)."""
        return self in _held()

    def dispatch_async(self, fn: Callable[..., Any], *args: Any) -> None:
        """``DispatchAsync(block)``: run ``fn(*args)`` later on this queue, in submission order."""
        with self._lock:
            if self._cancelled or self._released:
                raise StateError(f"IODispatchQueue({self.name}).dispatch_async: queue is cancelled")
            self._pending += 1
            if self._thread is None:
                self._ensure_thread()
            self._q.put((fn, args))  # under the lock: nothing is queued after Cancel's wake-up

    def dispatch_sync(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """``DispatchSync(block)``: run ``fn(*args)`` on the queue and wait for it.

        Exceptions raised by ``fn`` are re-raised in the caller.

        Raises:
            DispatchDeadlockError: the calling thread already runs on this queue (a dext deadlocks).
            AbortedError: the queue was cancelled before the block ran (kIOReturnAborted).
            StateError: the queue is cancelled.
            DkTimeoutError: ``timeout`` (dkproto's) passed without a result.
        """
        held = _held()
        if self in held:
            raise DispatchDeadlockError(
                f"IODispatchQueue({self.name}).dispatch_sync from a block already running on this queue: "
                "a dext deadlocks here (DispatchSync onto the current queue). Call the function directly, "
                "or use dispatch_async")
        block = _SyncBlock(fn, args, held)
        self.dispatch_async(block)
        if not block.done.wait(timeout):
            raise DkTimeoutError(f"IODispatchQueue({self.name}).dispatch_sync: no result within {timeout} s")
        if block.error is not None:
            raise block.error
        return block.result

    def drain(self, timeout: float | None = 5.0) -> None:
        """Wait until every block submitted so far has run (a test helper; no DriverKit counterpart)."""
        if self.on_queue():
            return
        with self._lock:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise DkTimeoutError(f"IODispatchQueue({self.name}).drain: still busy after {timeout} s")

    def cancel(self, handler: Callable[[], Any] | None = None) -> None:
        """``Cancel(handler)``: stop dequeuing; blocks still queued never run; ``handler`` runs on the
        queue after the block in flight (IODispatchQueue.iig ``Cancel``). Asynchronous: returns at once."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            self._cancel_handler = handler
            self._pending += 1  # the handler
            self._ensure_thread()
            self._q.put(_WAKE)

    def _release(self) -> None:
        """dkproto: the queue's owner is freed. Blocks already queued still run (each retains the
        queue, IODispatchQueue.iig ``DispatchAsync``), then the worker thread ends; nothing new is
        accepted. Not Apple's ``Cancel``, which drops them."""
        with self._lock:
            if self._cancelled or self._released:
                return
            self._released = True
            if self._thread is not None:
                self._q.put(_WAKE)

    @property
    def is_cancelled(self) -> bool:
        """True once ``cancel`` was called (or the owner freed the queue)."""
        return self._cancelled or self._released

    def __repr__(self) -> str:
        return f"IODispatchQueue({self.name!r}{', cancelled' if self.is_cancelled else ''})"
