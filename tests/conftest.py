"""Session-wide guard: the test run leaves nothing behind.

No ``dkproto-*`` file or folder in the temp directory (user-client sockets, lab shares, kernel
downloads) and no child process of the test process (a QEMU, a ``--process`` app, a fuzzer)
may outlive the session. The check runs when the session's fixtures are torn down, so a leak
fails the run with an error that names what was left.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _ours() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("dkproto-*")}


def _children() -> dict[int, str]:
    """Live (or unreaped) child processes of this process: pid -> command name and state."""
    me = os.getpid()
    out: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name_end = text.rfind(")")
        fields = text[name_end + 2:].split()
        if len(fields) > 1 and int(fields[1]) == me:
            out[int(stat.parent.name)] = f"{text[text.find('(') + 1:name_end]} ({fields[0]})"
    return out


@pytest.fixture(scope="session", autouse=True)
def _leaves_nothing_behind() -> Iterator[None]:
    before_files, before_children = _ours(), set(_children())
    yield
    left_files = sorted(_ours() - before_files)
    left_children = {pid: what for pid, what in _children().items() if pid not in before_children}
    problems = [f"{tempfile.gettempdir()}/{n}" for n in left_files]
    problems += [f"child process {pid}: {what}" for pid, what in sorted(left_children.items())]
    assert not problems, "the test session left these behind: " + ", ".join(problems)
