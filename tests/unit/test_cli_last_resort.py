"""The CLI's last resort: an exception that is not a DkError still ends in one line and exit 1."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from cli_in_process import cli

from dkproto.cli import cli as cli_group
from dkproto.cli import internal_error_line


@pytest.fixture
def boom_cmd() -> Iterator[str]:
    @click.command("boom-test")
    @click.argument("kind")
    def boom(kind: str) -> None:
        if kind == "runtime":
            raise RuntimeError("the driver fell over\nsecond line")
        if kind == "memory":
            raise MemoryError
        if kind == "recursion":
            raise RecursionError("maximum recursion depth exceeded")
        if kind == "exit":
            raise SystemExit(3)

    cli_group.add_command(boom)
    try:
        yield "boom-test"
    finally:
        cli_group.commands.pop("boom-test", None)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return cli(list(argv), capsys)


@pytest.mark.parametrize("kind", ["runtime", "memory", "recursion"])
def test_any_exception_is_one_line_with_an_ioreturn(boom_cmd: str, kind: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(capsys, boom_cmd, kind)
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dkproto: internal error: ")
    assert lines[0].endswith("[kIOReturnError (0xe00002bc)]")
    assert "test_cli_last_resort.py:" in lines[0]  # where it was raised
    assert "Traceback" not in err


def test_the_message_keeps_one_line(boom_cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = _run(capsys, boom_cmd, "runtime")
    assert "RuntimeError: the driver fell over second line at " in err


@pytest.mark.parametrize("flag", ["-v", "--traceback"])
def test_traceback_on_request(boom_cmd: str, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, flag, boom_cmd, "runtime")
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1].startswith("dkproto: internal error: RuntimeError")


def test_a_verb_argument_spelt_like_v_is_not_the_global_flag(boom_cmd: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, boom_cmd, "runtime")
    assert "Traceback" not in err and code == 1


def test_system_exit_passes_through(boom_cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, boom_cmd, "exit")
    assert code == 3 and err == ""


def test_internal_error_line_shortens_long_messages() -> None:
    try:
        raise ValueError("x" * 5000)
    except ValueError as exc:
        line = internal_error_line(exc)
    assert len(line) < 600 and "..." in line
