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

import os
from pathlib import Path

from dkproto.errors import DkError, error_for_ioreturn
from dkproto.ioreturn import IOReturn

__all__ = ["check_ioreturn", "ioreturn_of", "is_stall", "is_timeout", "user_code_error"]

_DKPROTO_DIR = str(Path(__file__).resolve().parents[1]) + os.sep

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


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it is below it, else as given."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel


def _user_frame(exc: BaseException, path: Path | None) -> tuple[str, int | None, str | None]:
    """(file, line, function) of the innermost frame of the user's code in ``exc``'s traceback.

    Preference: a frame in ``path`` itself, then one in ``path``'s folder, then any frame outside
    dkproto and Python's own modules (``<frozen ...>``); else ``path`` with no line.
    """
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        full = name if name.startswith("<") else str(Path(name).resolve())
        frames.append((name, full, tb.tb_lineno, tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    prefer: list[str] = []
    if path is not None:
        target = path.resolve()
        prefer = [str(target), str(target.parent) + os.sep]
    for want in prefer:
        for name, full, line, func in reversed(frames):
            if full == want or (want.endswith(os.sep) and full.startswith(want)):
                return name, line, func
    for name, full, line, func in reversed(frames):
        if not name.startswith("<") and not full.startswith(_DKPROTO_DIR):
            return name, line, func
    return (str(path) if path is not None else "<unknown>"), None, None


def user_code_error(exc: BaseException, what: str, path: str | os.PathLike[str] | None = None) -> DkError:
    """One-line :class:`~dkproto.errors.DkError` for a failure of the user's own code.

    ``what`` says what dkproto was doing (``"importing the driver"``, ``"stopping MyDriver"``);
    ``path`` is the user's file. The message starts with the user's ``file:line`` (the innermost
    frame in that file, else in its folder, else outside dkproto), then the function and the
    exception: ``devices/x/driver.py:12: start() raised RuntimeError: boom (starting X)``. A
    SyntaxError points at the line it names; a ``sys.exit(n)`` says so. A DkError keeps its
    IOReturn; anything else is kIOReturnError. Chain it: ``raise user_code_error(...) from exc``.
    """
    p = Path(path) if path is not None else None
    if isinstance(exc, SyntaxError) and exc.filename:
        name, line, func = exc.filename, exc.lineno, None
        text = exc.msg
    else:
        name, line, func = _user_frame(exc, p)
        text = " ".join(str(exc).split())
        if len(text) > 300:
            text = text[:300] + "..."
    where = _shown(name) + (f":{line}" if line else "")
    who = f"{func}()" if func and func != "<module>" else what
    if isinstance(exc, SystemExit):
        message = f"{where}: {who} called sys.exit({exc.code!r})"
    else:
        message = f"{where}: {who} raised {type(exc).__name__}" + (f": {text}" if text else "")
    if who != what:
        message += f" ({what})"
    if isinstance(exc, DkError):
        return error_for_ioreturn(int(exc.ioreturn), message)
    return DkError(message)
