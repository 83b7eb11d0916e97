"""``dkproto lab``: prepare the QEMU lab, run a command in it, open a shell, list its devices."""

from __future__ import annotations

import json
import logging
import sys

import click

from dkproto.errors import DkError

__all__ = ["lab_group"]


def _show_tail(exc: DkError) -> None:
    tail = getattr(exc, "console_tail", "")
    if tail:
        click.echo("--- lab console (last lines) ---", err=True)
        click.echo(tail.rstrip("\n"), err=True)
        click.echo("---", err=True)


@click.group("lab")
def lab_group() -> None:
    """A real Linux USB bus in a QEMU VM: emulated and gadget devices (see docs/lab.md)."""


@lab_group.command("prepare")
@click.option("--refresh", is_flag=True, help="Download the kernel again even if one is cached.")
@click.option("--json", "as_json", is_flag=True, help="Print what was prepared as JSON.")
@click.option("--install", is_flag=True,
              help="Install the missing Debian packages (QEMU, busybox-static, kmod, cpio, usbutils, usbip) "
                   "with apt-get first (root).")
@click.pass_context
def prepare_cmd(ctx: click.Context, refresh: bool, as_json: bool, install: bool) -> None:
    """Find (or with --install, install) QEMU and busybox, fetch the Debian kernel, build and cache the initramfs."""
    from dkproto.lab.kernel import cached_versions, install_packages, missing_packages, prepare

    if ctx.obj and ctx.obj.get("verbose"):
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    if install:
        missing = missing_packages()
        if missing:
            click.echo(f"installing {' '.join(missing)} (apt-get)", err=True)
            install_packages(missing)
        elif not cached_versions() or refresh:
            install_packages([], update_only=True)  # the kernel download asks apt, whose lists may be empty
    image = prepare(refresh=refresh)
    if as_json:
        click.echo(json.dumps({"kernel_version": image.kernel_version, "vmlinuz": str(image.vmlinuz),
                               "initrd": str(image.initrd), "modules": list(image.modules)}, indent=1))
    else:
        size = image.initrd.stat().st_size / 1e6
        click.echo(f"lab ready: kernel {image.kernel_version}, initramfs {image.initrd} "
                   f"({len(image.modules)} modules, {size:.1f} MB)")


def _image() -> object:
    from dkproto.lab.kernel import prepare

    return prepare()


@lab_group.command("run", context_settings={"ignore_unknown_options": True})
@click.option("-d", "--device", "devices", multiple=True, metavar="NAME|FILE",
              help="A lab device to provide (repeatable; default: the default set, see 'dkproto lab devices'). "
                   "A descriptor file plays that device: a USB descriptor set is served over USB/IP, a HID "
                   "report descriptor becomes a HID gadget that plays its recorded input reports.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds before the VM is killed.")
@click.option("--udcs", type=int, default=4, show_default=True, help="dummy_hcd controllers (gadgets at once).")
@click.option("--timing", is_flag=True, help="Print boot and total time on stderr.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_cmd(devices: tuple[str, ...], timeout: float, udcs: int, timing: bool, command: tuple[str, ...]) -> None:
    """Boot the lab and run COMMAND in it (host's Python environment, same directory).

    Exits with the command's exit status. Example: dkproto lab run -- dkproto list
    """
    from dkproto.lab.vm import run

    image = _image()
    try:
        result = run(list(command), devices=list(devices) or None, timeout=timeout, udcs=udcs,
                     image=image, echo=sys.stdout.buffer)  # type: ignore[arg-type]
    except DkError as exc:
        _show_tail(exc)
        raise
    for w in result.warnings:
        click.echo(f"dkproto lab: warning: {w}", err=True)
    if timing:
        click.echo(f"dkproto lab: boot {result.boot_seconds:.1f} s, total {result.seconds:.1f} s", err=True)
    sys.exit(result.returncode)


@lab_group.command("shell")
@click.option("-d", "--device", "devices", multiple=True, metavar="NAME|FILE",
              help="A lab device to provide (repeatable): a definition name or a descriptor file (see 'lab run').")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds before the VM is killed.")
def shell_cmd(devices: tuple[str, ...], timeout: float) -> None:
    """An interactive shell in the lab (exit the shell to power off; Ctrl-A x kills QEMU)."""
    from dkproto.lab.vm import run

    image = _image()
    click.echo("dkproto lab: booting (about 15 s); 'exit' powers off, Ctrl-A x kills QEMU", err=True)
    result = run(["/bin/bash", "-i"], devices=list(devices) or None, timeout=timeout, shell=True,
                 image=image)  # type: ignore[arg-type]
    sys.exit(result.returncode)


@lab_group.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print the definitions as JSON.")
def devices_cmd(as_json: bool) -> None:
    """List the devices the lab offers (definitions from devices/lab and DKPROTO_LAB_DEVICES)."""
    from dkproto.lab.devices import load_definitions

    defs = load_definitions()
    if as_json:
        click.echo(json.dumps([{"name": d.name, "kind": d.kind, "default": d.default, "expect": list(d.expect),
                                "description": d.description, "path": str(d.path)} for d in defs.values()],
                              indent=1))
        return
    if not defs:
        click.echo("no lab device definitions found (looked in ./devices/lab and DKPROTO_LAB_DEVICES)")
        return
    width = max(len(n) for n in defs)
    for d in sorted(defs.values(), key=lambda d: (d.kind, d.name)):
        star = "*" if d.default else " "
        ids = ",".join(d.expect)
        click.echo(f"{star} {d.name:<{width}}  {d.kind:<7}  {ids:<9}  {d.description}")
    click.echo("(* = provided when 'dkproto lab run' gets no --device)")
