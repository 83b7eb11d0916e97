"""Test helper: run ``dkproto ARGS`` in this process, through the real top-level error handler."""

from __future__ import annotations

import pytest

from dkproto.cli import main


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``dkproto ARGS``; a command that returns normally is 0."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err
