"""A failure of the user's own code (a driver, an app, a sim device factory) as one line.

:func:`user_code_error` turns any exception, a SyntaxError or a ``sys.exit`` raised by code the
user wrote into a one-line :class:`~dkproto.errors.DkError` that names the user's file and line.
It sits in the foundation layer so that every layer (``sim://``, the DriverKit runner, the CLI)
reports user code the same way; :mod:`dkproto.iokit.status` re-exports it.
"""

from __future__ import annotations

import os
from pathlib import Path

from dkproto.errors import DkError, error_for_ioreturn

__all__ = ["user_code_error"]

_DKPROTO_DIR = str(Path(__file__).resolve().parent) + os.sep


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
