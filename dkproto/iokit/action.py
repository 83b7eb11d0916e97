"""``OSAction``: a callback object delivered on its target's dispatch queue.

In DriverKit an ``OSAction`` is what iig's ``CreateAction<Method>`` builds for a method
declared ``TYPE(Class::Callback)``: it names the target and method, owns ``referenceSize``
bytes of zero-filled storage (``GetReference``), and can be cancelled (driverkit.md 2.7).
Here an action is a Python callable plus its reference storage plus the queue it is
delivered on; ``invoke`` never runs the callback inside the caller, it dispatches it
asynchronously, as the kernel does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from dkproto.errors import BadArgumentError
from dkproto.iokit.queue import IODispatchQueue

__all__ = ["OSAction", "create_action"]

_log = logging.getLogger(__name__)


class OSAction:
    """``OSAction``.

    Args:
        target: the object the callback belongs to (the ``TARGET``).
        function: called as ``function(action, *args)`` (iig passes the action first).
        reference_size: bytes of zero-filled owner storage for ``get_reference``.
        queue: where the callback runs; defaults to the target's default queue, else a private one.
        name: the method name, for logs and docs (``CompleteAsyncIO``...).
    """

    def __init__(self, target: Any, function: Callable[..., Any], reference_size: int = 0,
                 queue: IODispatchQueue | None = None, name: str = "") -> None:
        if reference_size < 0:
            raise BadArgumentError(f"OSAction: negative referenceSize {reference_size}")
        self.target = target
        self.function = function
        self.name = name or getattr(function, "__name__", "action")
        self._reference = bytearray(reference_size) if reference_size else None
        if queue is None:
            get_queue = getattr(target, "copy_dispatch_queue", None)
            queue = get_queue() if callable(get_queue) else IODispatchQueue(f"OSAction({self.name})")
        self.queue = queue
        self._cancelled = False
        self._aborted_handler: Callable[[], Any] | None = None
        self._lock = threading.Lock()
        self._retain = 1
        self.context: Any = None  # a Python object slot beside the byte reference

    def get_reference(self) -> bytearray | None:
        """``GetReference()``: the owner storage, ``None`` if referenceSize was 0."""
        return self._reference

    def invoke(self, *args: Any) -> None:
        """Deliver the callback asynchronously on the action's queue (what the kernel does).

        Does nothing once the action is cancelled.
        """
        if self._cancelled:
            _log.debug("OSAction(%s): dropped a callback after Cancel", self.name)
            return
        self.queue.dispatch_async(self._deliver, args)

    def _deliver(self, args: tuple[Any, ...]) -> None:
        self.function(self, *args)

    def cancel(self, handler: Callable[[], Any] | None = None) -> None:
        """``Cancel(handler)``: no more callbacks; ``handler`` runs after in-flight ones finish."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
        if handler is not None:
            if self.queue.is_cancelled:
                handler()
            else:
                self.queue.dispatch_async(handler)

    def set_aborted_handler(self, handler: Callable[[], Any]) -> None:
        """``SetAbortedHandler(handler)``: runs when no other process references the action."""
        self._aborted_handler = handler

    def aborted(self) -> None:
        """Called by dkproto when the other side (an app) went away: runs the aborted handler."""
        if self._aborted_handler is not None:
            self._aborted_handler()

    @property
    def is_cancelled(self) -> bool:
        """True once ``cancel`` was called."""
        return self._cancelled

    def retain(self) -> None:
        """``retain()``: counted, otherwise a no-op."""
        self._retain += 1

    def release(self) -> None:
        """``release()``: counted, otherwise a no-op."""
        self._retain -= 1

    def __repr__(self) -> str:
        return f"OSAction({self.name}{', cancelled' if self._cancelled else ''})"


def create_action(target: Any, method: str | Callable[..., Any], reference_size: int = 0,
                  queue: IODispatchQueue | None = None) -> OSAction:
    """``CreateAction<Method>(referenceSize, &action)``: an action calling ``target.<method>``.

    The bound method is called as ``method(action, *args)``, the shape iig generates for a
    ``TYPE(...)`` callback (e.g. ``CompleteAsyncIO(action, status, actualByteCount, timestamp)``).
    """
    if isinstance(method, str):
        fn = getattr(target, method, None)
        if not callable(fn):
            raise BadArgumentError(f"CreateAction{method}: {type(target).__name__} has no method {method!r}")
        name = method
    else:
        fn = method
        name = getattr(method, "__name__", "action")
    return OSAction(target, fn, reference_size, queue, name)
