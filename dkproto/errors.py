"""dkproto's exception tree. Every error carries the IOReturn a DriverKit driver would see.

::

    DkError (kIOReturnError)
    ├── NoDeviceError (kIOReturnNoDevice)                      also ConnectionError
    ├── BadArgumentError (kIOReturnBadArgument)                also ValueError
    │   ├── DecodeError            bytes that do not parse (offset, descriptor, rule)
    │   ├── EncodeError            values that do not build (field, value, limits)
    │   └── URLError               a transport URL that does not follow its grammar
    ├── ExclusiveAccessError (kIOReturnExclusiveAccess)        busy: claimed by someone else
    ├── UnsupportedError (kIOReturnUnsupported)
    ├── NotOpenError (kIOReturnNotOpen)                        lifecycle guard
    │   └── StateError             a call out of its lifecycle state
    ├── DkTimeoutError (kIOReturnTimeout)                      also TimeoutError
    ├── NotPermittedError (kIOReturnNotPermitted)              also PermissionError
    ├── OverrunError (kIOReturnOverrun)
    ├── AbortedError (kIOReturnAborted)
    ├── PipeStalledError (kUSBHostReturnPipeStalled)
    ├── NotFoundError (kIOReturnNotFound)                      also LookupError
    ├── MissingToolError (kIOReturnNotReady)                   a tool or package is missing
    └── ReplayMismatchError (kIOReturnBadMessageID)            a replayed program asked what the recording did not

Back-end errors (libusb, hidapi, pyserial, construct) are translated at the transport or
parser boundary into the most specific class, chained with ``from exc``; the back end's own
code is kept in ``backend_code``.
"""

from __future__ import annotations

from typing import Any

from dkproto.ioreturn import IOReturn, ioreturn_name

__all__ = [
    "AbortedError",
    "BadArgumentError",
    "DecodeError",
    "DkError",
    "DkTimeoutError",
    "EncodeError",
    "ExclusiveAccessError",
    "MissingToolError",
    "NoDeviceError",
    "NotFoundError",
    "NotOpenError",
    "NotPermittedError",
    "OverrunError",
    "PipeStalledError",
    "ReplayMismatchError",
    "StateError",
    "URLError",
    "UnsupportedError",
    "error_for_ioreturn",
]


class DkError(Exception):
    """Root of dkproto's errors.

    Args:
        message: one line saying what went wrong and where.
        ioreturn: overrides the class's default IOReturn.
        backend_code: the back end's own error code (libusb errno, construct path...).
    """

    ioreturn: IOReturn = IOReturn.kIOReturnError

    def __init__(
        self,
        message: str = "",
        *,
        ioreturn: IOReturn | int | None = None,
        backend_code: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if ioreturn is not None:
            self.ioreturn = IOReturn.coerce(ioreturn)  # type: ignore[assignment]
        self.backend_code = backend_code

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """The message with the IOReturn name, as the CLI prints it."""
        return f"{self.message} [{ioreturn_name(self.ioreturn)}]"


class NoDeviceError(DkError, ConnectionError):
    """The device is gone or was never there (kIOReturnNoDevice)."""

    ioreturn = IOReturn.kIOReturnNoDevice


class BadArgumentError(DkError, ValueError):
    """A bad argument or a failed shape check (kIOReturnBadArgument)."""

    ioreturn = IOReturn.kIOReturnBadArgument


class DecodeError(BadArgumentError):
    """Bytes that do not parse.

    Args:
        message: what is wrong.
        offset: byte offset in the input where the problem is.
        descriptor: name of the descriptor or item being decoded.
        rule: the rule broken (``bLength``, ``wTotalLength``, ...).
        path: construct's path for failures inside a schema.
    """

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        descriptor: str | None = None,
        rule: str | None = None,
        path: str | None = None,
        **kw: Any,
    ) -> None:
        self.offset = offset
        self.descriptor = descriptor
        self.rule = rule
        self.path = path
        where = []
        if offset is not None:
            where.append(f"offset {offset}")
        if descriptor:
            where.append(descriptor)
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message, **kw)


class EncodeError(BadArgumentError):
    """Values that do not build (out of range, unknown name)."""


class URLError(BadArgumentError):
    """A transport URL that does not follow its scheme's grammar."""


class ExclusiveAccessError(DkError):
    """Busy: the device or interface is held by someone else (kIOReturnExclusiveAccess)."""

    ioreturn = IOReturn.kIOReturnExclusiveAccess


class UnsupportedError(DkError):
    """Not supported here (kIOReturnUnsupported)."""

    ioreturn = IOReturn.kIOReturnUnsupported


class NotOpenError(DkError):
    """The object is not open (kIOReturnNotOpen)."""

    ioreturn = IOReturn.kIOReturnNotOpen


class StateError(NotOpenError):
    """A call made out of its lifecycle state; the message names the method and state."""


class DkTimeoutError(DkError, TimeoutError):
    """The operation timed out (kIOReturnTimeout)."""

    ioreturn = IOReturn.kIOReturnTimeout


class NotPermittedError(DkError, PermissionError):
    """Access denied (kIOReturnNotPermitted)."""

    ioreturn = IOReturn.kIOReturnNotPermitted


class OverrunError(DkError):
    """More data came than was asked for (kIOReturnOverrun)."""

    ioreturn = IOReturn.kIOReturnOverrun


class AbortedError(DkError):
    """The request was aborted or cancelled (kIOReturnAborted)."""

    ioreturn = IOReturn.kIOReturnAborted


class PipeStalledError(DkError):
    """The endpoint stalled (kUSBHostReturnPipeStalled; legacy kIOUSBPipeStalled)."""

    ioreturn = IOReturn.kUSBHostReturnPipeStalled


class NotFoundError(DkError, LookupError):
    """No such device, file, usage or selector (kIOReturnNotFound)."""

    ioreturn = IOReturn.kIOReturnNotFound


class MissingToolError(DkError):
    """A program or package dkproto needs is not installed (kIOReturnNotReady).

    The message says what is missing and how to install it.
    """

    ioreturn = IOReturn.kIOReturnNotReady


class ReplayMismatchError(DkError):
    """A replayed program made a request the recording does not have there (kIOReturnBadMessageID:
    the message sent is not the one the session holds). The message names the session file, its
    line, what was recorded and what came."""

    ioreturn = IOReturn.kIOReturnBadMessageID


_BY_IORETURN: dict[int, type[DkError]] = {
    IOReturn.kIOReturnNoDevice: NoDeviceError,
    IOReturn.kIOReturnNotAttached: NoDeviceError,
    IOReturn.kIOReturnBadArgument: BadArgumentError,
    IOReturn.kIOReturnExclusiveAccess: ExclusiveAccessError,
    IOReturn.kIOReturnBusy: ExclusiveAccessError,
    IOReturn.kIOReturnUnsupported: UnsupportedError,
    IOReturn.kIOReturnNotOpen: NotOpenError,
    IOReturn.kIOReturnTimeout: DkTimeoutError,
    IOReturn.kIOUSBTransactionTimeout: DkTimeoutError,
    IOReturn.kIOReturnNotPermitted: NotPermittedError,
    IOReturn.kIOReturnNotPrivileged: NotPermittedError,
    IOReturn.kIOReturnOverrun: OverrunError,
    IOReturn.kIOReturnAborted: AbortedError,
    IOReturn.kIOUSBTransactionReturned: AbortedError,
    IOReturn.kUSBHostReturnPipeStalled: PipeStalledError,
    IOReturn.kIOUSBPipeStalled: PipeStalledError,
    IOReturn.kIOReturnNotFound: NotFoundError,
    IOReturn.kIOReturnNotReady: MissingToolError,
}


def error_for_ioreturn(code: int, message: str = "") -> DkError:
    """The most specific DkError for an IOReturn code, carrying exactly that code."""
    cls = _BY_IORETURN.get(code & 0xFFFFFFFF, DkError)
    return cls(message or ioreturn_name(code), ioreturn=code)
