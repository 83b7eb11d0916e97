"""``dkproto run devices/<driver>/driver.py [--device URL] [--app app.py]``: a prototype driver on a device.

Matches the driver's ``Info.plist`` personalities against the device, starts the winning class,
then gives its service to an app script (``main(service)`` in-process, or ``--process``: a
separate Python process that reaches the user client over a Unix socket, as a real app would),
or to an interactive console. Stops cleanly: on unplug (the nub terminates, then the driver
stops), at the end of the app, and on Ctrl-C (terminate, then stop).
"""

from __future__ import annotations

import code
import os
import runpy
import signal
import subprocess
import sys
import threading
from typing import Any

import click

from dkproto.errors import DkError


def _console(running: Any) -> None:
    from dkproto import iokit

    ns = {name: getattr(iokit, name) for name in iokit.__all__}
    ns.update(service=running.driver, driver=running.driver, provider=running.provider, running=running)
    banner = (f"dkproto run: {type(running.driver).__name__} started on {running.provider.get_name()}\n"
              "names: service, provider, io_service_open, io_connect_call_method, ... (Ctrl-D to stop)")
    code.interact(banner=banner, local=ns, exitmsg="")


@click.command("run")
@click.argument("driver", type=click.Path(dir_okay=False, exists=True))
@click.option("--device", metavar="URL", help="the device (usb://, hid://, sim://...); default from the driver")
@click.option("--app", "app", type=click.Path(dir_okay=False, exists=True), help="app script defining main(service)")
@click.option("--process", is_flag=True, help="run the app in another process, over a Unix socket")
@click.option("--plist", type=click.Path(dir_okay=False), help="Info.plist (default: beside the driver)")
@click.option("--entitlements", type=click.Path(dir_okay=False), help="the dext's .entitlements")
@click.pass_context
def run_cmd(ctx: click.Context, driver: str, device: str | None, app: str | None, process: bool,
            plist: str | None, entitlements: str | None) -> None:
    """Match DRIVER's personalities, start it on the device and run an app (or a console) against it."""
    from dkproto.iokit.connect import UserClientServer
    from dkproto.iokit.runner import run_driver

    running = run_driver(driver, device, info_plist=plist, entitlements=entitlements)
    click.echo(f"dkproto run: {running.personality.name} matched {running.provider.get_name()} "
               f"(score {running.match.score}); {type(running.driver).__name__} started", err=True)
    unplugged = threading.Event()

    def watch_unplug() -> None:
        running.driver.wait_terminated(None)
        unplugged.set()

    threading.Thread(target=watch_unplug, daemon=True).start()
    status = 0
    try:
        if app and process:
            server = UserClientServer(running.driver)
            env = dict(os.environ, DKPROTO_UC_ADDRESS=server.address, DKPROTO_UC_KEY=server.authkey.hex())
            proc = subprocess.Popen([sys.executable, app], env=env)
            try:
                while proc.poll() is None:
                    if unplugged.wait(0.1):
                        proc.wait(10)
                        break
                status = proc.returncode or 0
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                    proc.wait(5)
                server.close()
        elif app:
            ns = runpy.run_path(app, run_name="dkproto_app")
            main = ns.get("main")
            if not callable(main):
                raise click.UsageError(f"{app} defines no main(service)")
            result = main(running.driver)
            status = int(result) if isinstance(result, int) else 0
        else:
            _console(running)
    except KeyboardInterrupt:
        click.echo("dkproto run: interrupted; stopping the driver", err=True)
        status = 130
    except DkError:
        if unplugged.is_set() or running.nub.is_inactive:
            click.echo("dkproto run: the device was unplugged; the driver stopped", err=True)
            status = 1
        else:
            raise
    finally:
        running.stop()
    click.echo(f"dkproto run: {type(running.driver).__name__} {running.driver.state.value}", err=True)
    if status:
        sys.exit(status)  # not ctx.exit: dkproto's main runs click with standalone_mode=False
