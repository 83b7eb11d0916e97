"""``dkproto dump``: every descriptor of a device or a file, as text, JSON or annotated hex.

TARGET is a descriptor file or a transport URL (``usb://``, ``sim://``, ``spy+...``: the set is
read with :func:`dkproto.usb.read.read_descriptor_set`, through control transfers only). The
lsusb selectors ``-d VID:[PID]`` and ``-s [[BUS]:][DEVNUM]`` (and no TARGET at all) pick devices
on the bus; each is read through its ``usb://BUS/ADDRESS`` URL, as ``dkproto dump
usb://BUS/ADDRESS`` reads it. A dump names where it came from: the file's path or the URL.

Thin: parses options, calls :mod:`dkproto.usb`, prints. Exit status 0 when the input had no
errors, 1 when it had (the errors follow the output, one line each, on stderr).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from dkproto.errors import BadArgumentError, DkError, NoDeviceError, UnsupportedError
from dkproto.transport.url import is_url, parse_device_id

if TYPE_CHECKING:
    from dkproto.usb.model import DescriptorSet
    from dkproto.usb.read import iter_live

# Start-up: a dump of a FILE needs the loader and the renderer only, imported when the command
# runs; the live reader (transports, the device side) only when the bus is read. ``iter_live``
# stays a module attribute (module ``__getattr__`` below), so it can be patched here.

__all__ = ["dump_cmd", "iter_live", "parse_device_selector", "parse_slot_selector", "read_url"]


def __getattr__(name: str) -> Any:
    if name == "iter_live":
        from dkproto.usb.read import iter_live

        globals()["iter_live"] = iter_live
        return iter_live
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _live_reader() -> Callable[..., Iterator[DescriptorSet]]:
    """``iter_live``: the module attribute when one is set (a test's stand-in), else the reader's."""
    found = globals().get("iter_live")
    return found if found is not None else __getattr__("iter_live")  # type: ignore[no-any-return]


def parse_device_selector(text: str) -> tuple[int, int | None]:
    """``-d VID:[PID]`` (hex, as lsusb) to ``(vid, pid or None)``, with THE VID:PID parser."""
    found = parse_device_id(text, pid_optional=True)
    if found is None:
        raise BadArgumentError(f"-d {text!r}: expected VID:[PID] in hex, e.g. 1d50:6089 or 1d50:")
    return found[0], found[1]


def parse_slot_selector(text: str) -> tuple[int | None, int | None]:
    """``-s [[BUS]:][DEVNUM]`` (decimal, as lsusb) to ``(bus, devnum)``."""
    m = re.fullmatch(r"(?:(\d*):)?(\d+)?", text.strip())
    if not m or not text.strip():
        raise BadArgumentError(f"-s {text!r}: expected [[BUS]:][DEVNUM] in decimal, e.g. 1:4, 1:, 4")
    bus = int(m.group(1)) if m.group(1) else None
    dev = int(m.group(2)) if m.group(2) else None
    return bus, dev


def read_url(url: str) -> DescriptorSet:
    """The descriptor set of the device behind transport ``url``, read through its control transfers.

    The set's ``source`` is the device's URL (the transport's ``info.url``: the URL as given,
    without a ``spy+`` wrapper, which only watches); ``meta`` has the device's ``bus`` and
    ``address`` when the transport knows them (``usb://``), so the text dump shows ``Bus 001
    Device 004:`` as it does for ``-s``.

    Raises:
        URLError: a malformed URL.
        UnsupportedError: the transport has no control transfers (``hid://``, ``serial://``).
        DkError: the transport's own errors (no device, no permission, a STALL on the device or
            a configuration descriptor).
    """
    from dkproto.transport import open_transport
    from dkproto.usb.read import read_descriptor_set

    transport = open_transport(url)
    with transport:
        info = transport.info
        meta: dict[str, Any] = {}
        if info.bus is not None and info.address is not None:
            meta = {"bus": info.bus, "address": info.address}
        try:
            return read_descriptor_set(transport, meta=meta)
        except UnsupportedError as exc:
            if info.scheme == "usb":  # libusb's LIBUSB_ERROR_NOT_SUPPORTED: its own message says why
                raise
            raise UnsupportedError(f"{url}: dump reads descriptors with control transfers, which "
                                   f"{info.scheme}:// does not offer; use a usb:// or sim:// URL") from exc


def _emit(ds: DescriptorSet, fmt: str, end: str = "") -> None:
    """Write the rendering piece by piece (a lazy set is walked as it is written), then ``end``."""
    from dkproto.usb.render import iter_render

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


def _from_bus(device: str | None, slot: str | None) -> list[DescriptorSet]:
    """The sets of the devices the selectors pick (every device without selectors; the embedded
    example when there is none)."""
    vid = pid = bus = addr = None
    if device:
        vid, pid = parse_device_selector(device)
    if slot:
        bus, addr = parse_slot_selector(slot)
    try:
        sets = list(_live_reader()(vid, pid, bus, addr))
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
        from dkproto.usb.sources import load_embedded_example

        sets = [load_embedded_example()]
    return sets


@click.command("dump")
@click.argument("target", metavar="[FILE|URL]", required=False)
@click.option("-d", "device", metavar="VID:[PID]", help="Only devices with this vendor (and product) ID, hex.")
@click.option("-s", "slot", metavar="[[BUS]:][DEVNUM]", help="Only the device at this bus / device number.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "hex"]), default="text", show_default=True,
              help="text: lsusb -v like tree; json: docs/json-format.md; hex: annotated, one descriptor a line.")
@click.pass_context
def dump_cmd(ctx: click.Context, target: str | None, device: str | None, slot: str | None, fmt: str) -> None:
    """Dump every descriptor of a FILE (e.g. descriptors/hackrf-one), of the device at a transport
    URL (usb://1d50:6089, usb://1/4, sim://descriptors/hackrf-one.json; spy+URL shows each request),
    or of attached devices.

    Without FILE or URL, reads the devices on the bus (filtered by -d/-s), each through its
    usb://BUS/ADDRESS URL. When none is attached, says so in one line and dumps the embedded
    example capture.
    """
    if target is not None and (device or slot):
        raise BadArgumentError("give either a FILE or URL, or -d/-s selectors, not both")
    if target is None:
        sets = _from_bus(device, slot)
    elif is_url(target):
        sets = [read_url(target.strip())]
    else:
        from dkproto.usb.sources import load

        sets = [load(target, lazy=True)]  # one configuration in memory at a time
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
    what = " ".join(x for x in (f"-d {device}" if device else "", f"-s {slot}" if slot else "") if x)
    return NoDeviceError(f"no USB device matches {what} (see dkproto list)")
