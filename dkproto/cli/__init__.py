"""dkproto's command line: one click group, one module per command, loaded lazily.

Every command only parses options, calls the library and formats the result. A
:class:`~dkproto.errors.DkError` becomes one line on stderr (what, where, the IOReturn) and a
non-zero exit status; ``-v`` shows the traceback too.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from dkproto.errors import DkError

# command name -> "module:attribute"; each module owns its command.
COMMANDS: dict[str, str] = {
    "list": "dkproto.cli.ls:list_cmd",
    "dump": "dkproto.cli.dump:dump_cmd",
    "lab": "dkproto.cli.lab:lab_group",
    "hid": "dkproto.cli.hid:hid_group",
    "ctrl": "dkproto.cli.poke:ctrl_cmd",
    "read": "dkproto.cli.poke:read_cmd",
    "write": "dkproto.cli.poke:write_cmd",
    "serial": "dkproto.cli.serial:serial_group",
    "match": "dkproto.cli.match:match_cmd",
    "capture": "dkproto.cli.capture:capture_group",
    "run": "dkproto.cli.run:run_cmd",
    "record": "dkproto.cli.record:record_cmd",
    "replay": "dkproto.cli.record:replay_cmd",
}

EXIT_ERROR = 1
EXIT_USAGE = 2


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when used (fast start-up)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        for name, target in COMMANDS.items():
            if _importable(target):
                names.add(name)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        return getattr(module, attr)  # type: ignore[no-any-return]


def _importable(target: str) -> bool:
    module_name = target.split(":")[0]
    return importlib.util.find_spec(module_name) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More output; -v also shows tracebacks on errors.")
@click.option("--traceback", "traceback_", is_flag=True, help="Show the traceback of an error (as -v does).")
@click.version_option(package_name="dkproto")
@click.pass_context
def cli(ctx: click.Context, verbose: int, traceback_: bool) -> None:
    """Prototype DriverKit drivers against real USB, HID and serial devices."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = max(verbose, 1 if traceback_ else 0)


def _wants_traceback(argv: list[str]) -> bool:
    """-v, -vv..., --verbose or --traceback among the global options (before the command)."""
    for a in argv:
        if a in ("-v", "--verbose", "--traceback") or (a.startswith("-v") and set(a[1:]) == {"v"}):
            return True
        if not a.startswith("-"):
            return False  # the command: its own -v (if any) is not the global one
    return False


def internal_error_line(exc: BaseException) -> str:
    """One line for an exception that is not a :class:`DkError`: type, message, where it was raised.

    The place is the innermost frame of the traceback (``file:line in function``), so that a
    failure inside a user's driver or app points at the user's code.
    """
    from dkproto.ioreturn import IOReturn, ioreturn_name

    where = ""
    tb = exc.__traceback__
    if tb is not None:
        while tb.tb_next is not None:
            tb = tb.tb_next
        code = tb.tb_frame.f_code
        where = f" at {code.co_filename}:{tb.tb_lineno} in {code.co_name}"
    msg = " ".join(str(exc).split())
    if len(msg) > 300:
        msg = msg[:300] + "..."
    what = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return (f"internal error: {what}{where} (a bug in dkproto or in the code it ran; --traceback shows it) "
            f"[{ioreturn_name(IOReturn.kIOReturnError)}]")


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: run the CLI and turn errors into one line and an exit status.

    A :class:`DkError` prints its message and IOReturn; any other exception (a bug, or a user's
    driver raising) prints one ``internal error`` line with where it was raised; either exits 1.
    ``-v`` or ``--traceback`` before the command adds the traceback.
    """
    args = argv if argv is not None else sys.argv[1:]
    verbose = _wants_traceback(args)
    try:
        return cli.main(args=args, prog_name="dkproto", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("dkproto: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DkError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        click.echo(f"dkproto: {exc.one_line()}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("dkproto: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the last resort: never a bare traceback
        if verbose:
            import traceback

            traceback.print_exc()
        import contextlib

        with contextlib.suppress(BaseException):  # stderr itself may be gone (closed pipe)
            click.echo(f"dkproto: {internal_error_line(exc)}", err=True)
        sys.exit(EXIT_ERROR)
