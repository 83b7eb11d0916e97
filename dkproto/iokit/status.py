"""IOReturn <-> exception tree, the parts ``dkproto.errors.error_for_ioreturn`` does not cover.

- :func:`ioreturn_of` exception -> the IOReturn a dext would see (DkError: its ``ioreturn``;
  builtins by kind; anything else ``kIOReturnError``).
- :func:`check_ioreturn` raise the DkError for a non-success code (what ported C++ does with
  ``if (kr != kIOReturnSuccess) return kr;``).
- :func:`is_stall` / :func:`is_timeout`: both stall codes and both timeout codes count
  (driverkit.md 1.4, 8.1 item 1).
- :func:`user_code_error`: a failure in the user's own driver or app (any exception, a
  SyntaxError, a ``sys.exit``) -> one-line DkError naming the user's file and line.
"""

from __future__ import annotations

from dkproto._usercode import user_code_error
from dkproto.errors import DkError, error_for_ioreturn
from dkproto.ioreturn import IOReturn

__all__ = ["check_ioreturn", "ioreturn_of", "is_stall", "is_timeout", "user_code_error"]

_STALLS = frozenset({int(IOReturn.kUSBHostReturnPipeStalled), int(IOReturn.kIOUSBPipeStalled)})
_TIMEOUTS = frozenset({int(IOReturn.kIOReturnTimeout), int(IOReturn.kIOUSBTransactionTimeout)})


def ioreturn_of(exc: BaseException) -> int:
    """The IOReturn for an exception (unsigned 32-bit)."""
    if isinstance(exc, DkError):
        return int(exc.ioreturn) & 0xFFFFFFFF
    if isinstance(exc, TimeoutError):
        return int(IOReturn.kIOReturnTimeout)
    if isinstance(exc, PermissionError):
        return int(IOReturn.kIOReturnNotPermitted)
    if isinstance(exc, (ValueError, TypeError)):
        return int(IOReturn.kIOReturnBadArgument)
    if isinstance(exc, MemoryError):
        return int(IOReturn.kIOReturnNoMemory)
    if isinstance(exc, NotImplementedError):
        return int(IOReturn.kIOReturnUnsupported)
    if isinstance(exc, (ConnectionError, FileNotFoundError)):
        return int(IOReturn.kIOReturnNoDevice)
    if isinstance(exc, OSError):
        return int(IOReturn.kIOReturnIOError)
    return int(IOReturn.kIOReturnError)


def check_ioreturn(code: int, message: str = "") -> None:
    """Raise the most specific DkError carrying ``code`` unless it is ``kIOReturnSuccess``."""
    if code & 0xFFFFFFFF:
        raise error_for_ioreturn(code, message)


def is_stall(code: int) -> bool:
    """True for ``kUSBHostReturnPipeStalled`` and legacy ``kIOUSBPipeStalled``."""
    return (code & 0xFFFFFFFF) in _STALLS


def is_timeout(code: int) -> bool:
    """True for ``kIOReturnTimeout`` and ``kIOUSBTransactionTimeout``."""
    return (code & 0xFFFFFFFF) in _TIMEOUTS
