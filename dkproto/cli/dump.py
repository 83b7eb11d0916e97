"""``dkproto dump``: every descriptor of a device or a file, as text, JSON or annotated hex.

Thin: parses options, calls :mod:`dkproto.usb`, prints. Exit status 0 when the input had no
errors, 1 when it had (the errors follow the output, one line each, on stderr).
"""

from __future__ import annotations

import re
import sys

import click

from dkproto.errors import BadArgumentError, DkError
from dkproto.usb.render import iter_render
from dkproto.usb.sources import iter_live, load, load_embedded_example
from dkproto.usb.tree import DescriptorSet

__all__ = ["dump_cmd", "parse_device_selector", "parse_slot_selector"]


def parse_device_selector(text: str) -> tuple[int, int | None]:
    """``-d VID:[PID]`` (hex, as lsusb) to ``(vid, pid or None)``."""
    m = re.fullmatch(r"\s*(?:0x)?([0-9a-fA-F]{1,4})\s*:\s*(?:(?:0x)?([0-9a-fA-F]{1,4}))?\s*", text)
    if not m:
        raise BadArgumentError(f"-d {text!r}: expected VID:[PID] in hex, e.g. 1d50:6089 or 1d50:")
    return int(m.group(1), 16), int(m.group(2), 16) if m.group(2) else None


def parse_slot_selector(text: str) -> tuple[int | None, int | None]:
    """``-s [[BUS]:][DEVNUM]`` (decimal, as lsusb) to ``(bus, devnum)``."""
    m = re.fullmatch(r"(?:(\d*):)?(\d+)?", text.strip())
    if not m or not text.strip():
        raise BadArgumentError(f"-s {text!r}: expected [[BUS]:][DEVNUM] in decimal, e.g. 1:4, 1:, 4")
    bus = int(m.group(1)) if m.group(1) else None
    dev = int(m.group(2)) if m.group(2) else None
    return bus, dev


def _emit(ds: DescriptorSet, fmt: str, end: str = "") -> None:
    """Write the rendering piece by piece (a lazy set is walked as it is written), then ``end``."""
    last = ""
    for piece in iter_render(ds, fmt):
        if last:
            click.echo(last, nl=False)
        last = piece
    click.echo(last.rstrip("\n") + end if end else last, nl=False)


def _report(sets: list[DescriptorSet]) -> int:
    """Print warnings and errors (one line each, after the output); the exit status."""
    status = 0
    for ds in sets:
        label = ds.source or "input"
        for warn in ds.warnings:
            click.echo(f"dkproto: warning: {label}: {warn}", err=True)
        for err in ds.errors:
            click.echo(f"dkproto: error: {label}: {err}", err=True)
        if ds.errors:
            status = 1
    return status


@click.command("dump")
@click.argument("target", required=False)
@click.option("-d", "device", metavar="VID:[PID]", help="Only devices with this vendor (and product) ID, hex.")
@click.option("-s", "slot", metavar="[[BUS]:][DEVNUM]", help="Only the device at this bus / device number.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "hex"]), default="text", show_default=True,
              help="text: lsusb -v like tree; json: docs/json-format.md; hex: annotated, one descriptor a line.")
@click.pass_context
def dump_cmd(ctx: click.Context, target: str | None, device: str | None, slot: str | None, fmt: str) -> None:
    """Dump every descriptor of TARGET (a file, e.g. descriptors/hackrf-one) or of attached devices.

    Without TARGET, reads the devices on the bus (filtered by -d/-s). When none is attached,
    says so in one line and dumps the embedded example capture.
    """
    if target is not None and (device or slot):
        raise BadArgumentError("give either a FILE or -d/-s selectors, not both")
    sets: list[DescriptorSet] = []
    if target is not None:
        sets.append(load(target, lazy=True))  # one configuration in memory at a time
    else:
        vid = pid = bus = addr = None
        if device:
            vid, pid = parse_device_selector(device)
        if slot:
            bus, addr = parse_slot_selector(slot)
        try:
            sets = list(iter_live(vid, pid, bus, addr))
        except DkError as exc:
            if device or slot:
                raise
            click.echo(f"dkproto: cannot reach USB devices ({exc}); showing the embedded example", err=True)
            sets = []
        if not sets:
            if device or slot:
                raise _no_match_error(device, slot)
            click.echo("dkproto: no USB device attached; showing the embedded example "
                       "(real captures: dkproto dump descriptors/<name>)", err=True)
            sets = [load_embedded_example()]
    for i, ds in enumerate(sets):
        if i and fmt != "json":
            click.echo("")
        if fmt == "json" and len(sets) > 1:
            if i == 0:
                click.echo("[")
            _emit(ds, fmt, ("," if i < len(sets) - 1 else "") + "\n")
            if i == len(sets) - 1:
                click.echo("]")
        else:
            _emit(ds, fmt)
    sys.stdout.flush()
    ctx.exit(_report(sets))


def _no_match_error(device: str | None, slot: str | None) -> DkError:
    """The error for selectors that match nothing."""
    from dkproto.errors import NoDeviceError

    what = " ".join(x for x in (f"-d {device}" if device else "", f"-s {slot}" if slot else "") if x)
    return NoDeviceError(f"no USB device matches {what} (see dkproto list)")
