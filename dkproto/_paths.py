"""Finding the file a command-line target names (``descriptors/<name>`` without its extension), and
reading it safely (regular files only, bounded size)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dkproto.errors import BadArgumentError, DkError, NotFoundError, NotPermittedError

#: Extensions tried, in order, when a target is not a file as given.
SUFFIXES = (".json", ".bin", ".hex", ".txt")


def find_file(target: str | os.PathLike[str]) -> Path | None:
    """``target`` if it is a file, else the first of ``target`` + :data:`SUFFIXES` that is; else None."""
    path = Path(target)
    try:
        if path.is_file():
            return path
        for suffix in SUFFIXES:
            cand = path.with_name(path.name + suffix)
            if cand.is_file():
                return cand
    except (OSError, ValueError):  # a hex string too long for a file name, an empty name
        return None
    return None


def _kind(mode: int) -> str:
    """What a non-regular file is, as ``ls -l`` would tell."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


@contextmanager
def os_errors(name: str, *, what: str = "file", directory: type[DkError] = BadArgumentError,
              is_directory: str = "is a directory", verb: str = "read") -> Iterator[None]:
    """Turn the OSError of opening or reading file ``name`` into the DkError a user sees: no such
    ``what`` (kIOReturnNotFound), permission denied (kIOReturnNotPermitted), a directory
    (``directory`` with ``is_directory``), anything else (kIOReturnError, the errno kept)."""
    try:
        yield
    except FileNotFoundError as exc:
        raise NotFoundError(f"{name}: no such {what}") from exc
    except PermissionError as exc:
        raise NotPermittedError(f"{name}: permission denied ({exc.strerror})") from exc
    except IsADirectoryError as exc:
        raise directory(f"{name}: {is_directory}") from exc
    except OSError as exc:
        raise DkError(f"{name}: cannot {verb}: {exc.strerror or exc}", backend_code=exc.errno) from exc


def read_file(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    A FIFO, a device, a socket or a directory is refused before it is opened (so reading never
    blocks on a FIFO nor touches a device), and the opened file is checked again.

    Raises:
        NotFoundError: no such file.
        NotPermittedError: the file (or a folder on its path) may not be read.
        BadArgumentError: a directory, FIFO, device or socket; or a file longer than ``max_bytes``.
    """
    name = os.fspath(path)

    def check(st: os.stat_result) -> int:
        if not stat.S_ISREG(st.st_mode):
            kind = _kind(st.st_mode)
            rule = "" if kind == "a directory" else ", not a regular file"
            raise BadArgumentError(f"{name}: is {kind}{rule}")
        if st.st_size > max_bytes:
            raise BadArgumentError(f"{name}: is {st.st_size:,} bytes, more than the {max_bytes:,} accepted")
        return st.st_size

    with os_errors(name):
        check(os.stat(name))
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            size = check(os.fstat(f.fileno()))
            data = f.read(size + 1)  # no buffer of max_bytes for a small file
            if len(data) > size:  # it grew, or says 0 (procfs)
                data += f.read(max_bytes + 1 - len(data))
    if len(data) > max_bytes:
        raise BadArgumentError(f"{name}: more than the {max_bytes:,} bytes accepted (it grew while read)")
    return data


def package_data(name: str) -> bytes:
    """The bytes of ``dkproto/data/NAME`` (package data).

    Read straight from the package's folder when it is one (every ordinary install), which keeps
    :mod:`importlib.resources` (``tempfile``, ``shutil``, ``zipfile``...) off the start-up path
    of ``dkproto dump``; any other loader (a zip archive...) goes through
    ``importlib.resources``, which knows them all.

    Raises:
        OSError: the file cannot be read (as ``importlib.resources`` raises it).
    """
    import dkproto.data

    spec = dkproto.data.__spec__
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                return fh.read()
    from importlib import resources

    return resources.files("dkproto.data").joinpath(name).read_bytes()
