"""Writing a session file: one line per event, each written whole with one ``write`` on an ``O_APPEND`` file.

An interrupted run leaves a valid file up to its last complete line (the loader reports a cut
last line as a complaint). :class:`SessionWriter` is thread-safe: completion threads append
while the caller's thread does.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dkproto.errors import DkError, NotPermittedError
from dkproto.ioreturn import IOReturn
from dkproto.session.format import (
    FORMAT,
    MAX_SECONDS,
    VERSION,
    Event,
    SessionError,
    check_fields,
    event_line,
    header_line,
    status_name,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["SessionWriter", "make_header"]


def make_header(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """A v1 header: now (UTC), this dkproto's version, ``argv`` (default ``sys.argv``), the monotonic clock."""
    from dkproto import __version__

    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"format": FORMAT, "version": VERSION, "created": created, "dkproto": __version__,
            "argv": [str(a) for a in (sys.argv if argv is None else argv)], "clock": "monotonic"}


class SessionWriter:
    """Writes a session file: the header at once, then :meth:`append` one event per line.

    The file is created (or emptied) and opened ``O_APPEND``; every line goes out with one
    ``os.write`` (no buffering), so it is on disk, whole, when :meth:`append` returns.

    Args:
        path: the file to write.
        argv: the command line recorded in the header (default ``sys.argv``).
        header: a whole header instead (written as given; ``argv`` is then ignored).

    Raises:
        NotPermittedError, DkError: the file cannot be created.
    """

    def __init__(self, path: str | os.PathLike[str], argv: Sequence[str] | None = None, *,
                 header: Mapping[str, Any] | None = None) -> None:
        self.path = os.fspath(path)
        #: ``time.monotonic()`` when the session started: ``t`` counts from here.
        self.start = time.monotonic()
        self.header = dict(header) if header is not None else make_header(argv)
        self._lock = threading.Lock()
        self._seq = 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        try:
            self._fd: int | None = os.open(self.path, flags, 0o644)
        except PermissionError as exc:
            raise NotPermittedError(f"{self.path}: cannot create the session file ({exc.strerror})") from exc
        except OSError as exc:
            raise DkError(f"{self.path}: cannot create the session file: {exc.strerror or exc}",
                          backend_code=exc.errno) from exc
        self._write(header_line(self.header))

    @property
    def events(self) -> int:
        """How many events were appended."""
        return self._seq

    def now(self) -> float:
        """Seconds since the session started (what ``t`` holds)."""
        return time.monotonic() - self.start

    def _write(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        fd = self._fd
        if fd is None:
            raise SessionError("the session file is closed", source=self.path, rule="closed")
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def append(self, event: Mapping[str, Any] | Event) -> Event:
        """Write one event; returns it with its ``seq``.

        ``event`` is an :class:`~dkproto.session.format.Event` (its ``seq`` is replaced), or a dict
        with ``t``, ``dt``, ``dev``, ``op``, the op's fields (bytes values are written as hex),
        ``status`` (a name or an IOReturn; default success) and ``error``.

        Raises:
            SessionError: the event breaks a rule of the format (nothing is written).
        """
        if isinstance(event, Event):
            e = Event(0, event.t, event.dt, event.dev, event.op, dict(event.fields), event.status, event.error)
        else:
            e = _from_dict(event, self.path)
        problem = check_fields(e.op, e.fields, e.ok)
        if problem is not None:
            raise SessionError(problem.partition(": ")[2], source=self.path, rule=problem.partition(": ")[0])
        with self._lock:
            e.seq = self._seq
            self._write(event_line(e))
            self._seq += 1
            e.line = self._seq + 1
        return e

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _from_dict(d: Mapping[str, Any], path: str) -> Event:
    status = d.get("status", "kIOReturnSuccess")
    if isinstance(status, int):
        status = status_name(status)
    if not isinstance(status, str):
        raise SessionError(f"'status' must be an IOReturn name or code, not {type(status).__name__}", source=path,
                           rule="status")
    fields: dict[str, Any] = {}
    for key, value in d.items():
        if key in ("seq", "t", "dt", "dev", "op", "status", "error"):
            continue
        fields[key] = bytes(value).hex() if isinstance(value, (bytes, bytearray, memoryview)) else value
    t = min(max(float(d.get("t", 0.0)), 0.0), MAX_SECONDS)
    dt = min(max(float(d.get("dt", 0.0)), 0.0), MAX_SECONDS)
    error = d.get("error")
    if status == IOReturn.kIOReturnSuccess.name:
        error = None
    return Event(0, t, dt, int(d["dev"]), str(d["op"]), fields, status,
                 None if error is None else " ".join(str(error).split()))
