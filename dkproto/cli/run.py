"""``dkproto run devices/<driver>/driver.py [--device URL] [--app app.py]``: a prototype driver on a device.

Matches the driver's ``Info.plist`` personalities against the device, starts the winning class,
then gives its service to an app script (``main(service)`` in-process, or ``--process``: a
separate Python process that reaches the user client over a Unix socket, as a real app would),
or to an interactive console. Stops cleanly: on unplug (the nub terminates, then the driver
stops), at the end of the app, and on Ctrl-C (terminate, then stop).

A failure of the user's own code (the driver or the app raising, not importing, a SyntaxError, a
``sys.exit``) ends the command with one line naming the file and line, its IOReturn and a
non-zero exit status; ``--traceback`` (or ``dkproto -v run ...``) shows the traceback too.
"""

from __future__ import annotations

import code
import os
import runpy
import signal
import subprocess
import sys
import threading
import traceback
from typing import Any

import click

from dkproto.errors import BadArgumentError, DkError, NotFoundError

#: Seconds an app process gets to end after SIGINT before it is killed.
APP_GRACE_S = 5.0


def _console(running: Any) -> None:
    from dkproto import iokit

    ns = {name: getattr(iokit, name) for name in iokit.__all__}
    ns.update(service=running.driver, driver=running.driver, provider=running.provider, running=running)
    banner = (f"dkproto run: {type(running.driver).__name__} started on {running.provider.get_name()}\n"
              "names: service, provider, io_service_open, io_connect_call_method, ... (Ctrl-D to stop)")
    code.interact(banner=banner, local=ns, exitmsg="")


def _run_app_in_process(app: str, service: Any) -> int:
    """Import ``app`` and call its ``main(service)``; its failures become one-line DkErrors."""
    from dkproto.iokit.status import user_code_error

    try:
        ns = runpy.run_path(app, run_name="dkproto_app")
    except (KeyboardInterrupt, DkError):
        raise
    except BaseException as exc:  # SyntaxError, ImportError, sys.exit at import...
        raise user_code_error(exc, "importing the app", app) from exc
    main = ns.get("main")
    if not callable(main):
        raise BadArgumentError(f"{app}: defines no main(service)")
    try:
        result = main(service)
    except (KeyboardInterrupt, DkError):
        raise
    except SystemExit as exc:  # main() ending the app early: its status, said if not 0
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if status:
            _say(user_code_error(exc, "running the app", app).one_line())
        return status
    except BaseException as exc:
        raise user_code_error(exc, "running the app", app) from exc
    return int(result) if isinstance(result, int) else 0


def _run_app_process(app: str, running: Any, unplugged: threading.Event) -> int:
    """Run ``app`` as its own Python process reaching the driver over a Unix socket; its exit status.

    The socket, its folder and the process are gone when this returns, whatever happened.
    """
    from dkproto.iokit.connect import UserClientServer

    server = UserClientServer(running.driver)
    try:
        env = dict(os.environ, DKPROTO_UC_ADDRESS=server.address, DKPROTO_UC_KEY=server.authkey.hex())
        try:
            proc = subprocess.Popen([sys.executable, app], env=env)
        except OSError as exc:
            raise NotFoundError(f"{app}: cannot start the app process: {exc.strerror or exc}") from exc
        try:
            while proc.poll() is None:
                if unplugged.wait(0.1):
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        pass
                    break
        finally:
            _end_process(proc)
        code_ = proc.returncode
        status = 128 - code_ if code_ < 0 else code_  # killed by signal N: 128+N, as a shell says
        if status and not unplugged.is_set():
            what = f"killed by signal {-code_}" if code_ < 0 else f"exited with status {code_}"
            _say(DkError(f"{app}: the app process {what}").one_line())
        return status
    finally:
        server.close()


def _end_process(proc: subprocess.Popen[Any]) -> None:
    """SIGINT, then SIGKILL after :data:`APP_GRACE_S`; always reaped."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(APP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


def _say(line: str) -> None:
    click.echo(f"dkproto: {line}", err=True)


@click.command("run")
@click.argument("driver", type=click.Path(dir_okay=False, exists=True))
@click.option("--device", metavar="URL", help="the device's transport URL (usb://, hid://, sim://...; spy+URL shows "
              "every transfer); default from the driver")
@click.option("--app", "app", type=click.Path(dir_okay=False, exists=True), help="app script defining main(service)")
@click.option("--process", is_flag=True, help="run the app in another process, over a Unix socket")
@click.option("--plist", type=click.Path(dir_okay=False), help="Info.plist (default: beside the driver)")
@click.option("--entitlements", type=click.Path(dir_okay=False), help="the dext's .entitlements")
@click.option("--traceback", "show_traceback", is_flag=True,
              help="on a failure, show the traceback too (as dkproto -v run does)")
@click.pass_context
def run_cmd(ctx: click.Context, driver: str, device: str | None, app: str | None, process: bool,
            plist: str | None, entitlements: str | None, show_traceback: bool) -> None:
    """Match DRIVER's personalities, start it on the device and run an app (or a console) against it."""
    try:
        status = _run(driver, device, app, process, plist, entitlements)
    except DkError:
        if show_traceback and not (ctx.obj or {}).get("verbose"):  # -v: the top level shows it
            traceback.print_exc()
        raise
    if status:
        sys.exit(status)  # not ctx.exit: dkproto's main runs click with standalone_mode=False


def _run(driver: str, device: str | None, app: str | None, process: bool, plist: str | None,
         entitlements: str | None) -> int:
    from dkproto.iokit.runner import run_driver

    running = run_driver(driver, device, info_plist=plist, entitlements=entitlements)
    click.echo(f"dkproto run: {running.personality.name} matched {running.provider.get_name()} "
               f"(score {running.match.score}); {type(running.driver).__name__} started", err=True)
    unplugged = threading.Event()

    def watch_unplug() -> None:
        running.wait_stopped(None)  # a Reset() brings the driver back on the new device: not an unplug
        unplugged.set()

    threading.Thread(target=watch_unplug, daemon=True).start()
    status = 0
    failure: DkError | None = None
    try:
        if app and process:
            status = _run_app_process(app, running, unplugged)
        elif app:
            status = _run_app_in_process(app, running.driver)
        else:
            _console(running)
    except KeyboardInterrupt:
        click.echo("dkproto run: interrupted; stopping the driver", err=True)
        status = 130
    except DkError as exc:
        if unplugged.is_set() or running.nub.is_inactive:
            click.echo("dkproto run: the device was unplugged; the driver stopped", err=True)
            status = 1
        else:
            failure = exc
    finally:
        try:
            running.stop()
        except DkError as exc:  # the driver's stop() failed: said after the app's failure, if any
            if failure is not None:
                _say(failure.one_line())
            failure = exc
    if failure is not None:
        raise failure
    click.echo(f"dkproto run: {type(running.driver).__name__} {running.driver.state.value}", err=True)
    return status
