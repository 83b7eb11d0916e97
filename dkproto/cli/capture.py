"""``dkproto capture export | import | info``: dkproto sessions as Wireshark (usbmon pcapng) captures.

Thin: parses options, calls :mod:`dkproto.capture`, prints. Errors are one line with their
IOReturn (the top-level handler), exit status 1.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from dkproto.errors import BadArgumentError, DkError, NotPermittedError

if TYPE_CHECKING:
    from dkproto.capture.importer import CaptureInfo

# dkproto.capture and dkproto.session are imported when a command runs, not when
# ``dkproto --help`` lists the group.

__all__ = ["capture_group"]


@click.group("capture")
def capture_group() -> None:
    """Wireshark captures: export a session as usbmon pcapng, import a usbmon capture as a session."""


@capture_group.command("export")
@click.argument("session", metavar="SESSION.jsonl")
@click.argument("out", metavar="OUT.pcapng")
@click.option("--ns", "nanoseconds", is_flag=True, help="Nanosecond timestamps (default microseconds, as usbmon).")
def export_cmd(session: str, out: str, nanoseconds: bool) -> None:
    """Write SESSION (a dkproto session file) as a usbmon capture OUT that Wireshark opens.

    Each call that moves bytes becomes a Submit and a Complete record, as the kernel's usbmon
    would have shown it (docs/capture.md has the mapping).
    """
    from dkproto.capture import export_pcapng

    summary = export_pcapng(session, out, nanoseconds=nanoseconds)
    click.echo(f"{out}: {summary.packets} usbmon records from {summary.events} events")
    for why, n in sorted(summary.skipped.items()):
        click.echo(f"  {n} event{'s' if n != 1 else ''} without records: {why}")


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        key, sep, url = v.partition("=")
        if not sep or not key or not url:
            raise BadArgumentError(f"--{what} {v!r}: expected BUS.DEVICE=URL, e.g. 1.4=usb://1d6b:0104")
        out[key] = url
    return out


@capture_group.command("import")
@click.argument("capture", metavar="IN.pcapng")
@click.argument("out", metavar="OUT.jsonl")
@click.option("-d", "--device", "devices", multiple=True, metavar="BUS.DEVICE",
              help="Only this device (repeatable), e.g. -d 1.4 (decimal, as lsusb's Bus/Device).")
@click.option("--url", "urls", multiple=True, metavar="BUS.DEVICE=URL",
              help="Record the device's open with this URL (default usbmon://BUS.DEVICE), so `dkproto replay` "
                   "serves it to a program that opens URL.")
def import_cmd(capture: str, out: str, devices: tuple[str, ...], urls: tuple[str, ...]) -> None:
    """Read a usbmon capture (tshark -i usbmon1 -w IN.pcapng, or dkproto capture export) into a session OUT.

    Submits are paired with their Completes; each device (bus, address) gets its own control,
    read, write (or submit/complete when its transfers overlapped) events.
    """
    from dkproto.capture import import_pcapng
    from dkproto.session import dumps_session

    session = import_pcapng(capture, devices=devices or None, urls=_pairs(urls, "url"),
                            argv=["dkproto", "capture", "import", capture, out])
    text = dumps_session(session)
    try:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    except PermissionError as exc:
        raise NotPermittedError(f"{out}: cannot write the session ({exc.strerror})") from exc
    except OSError as exc:
        raise DkError(f"{out}: cannot write the session: {exc.strerror or exc}", backend_code=exc.errno) from exc
    click.echo(f"{out}: {len(session.events)} events on {len(session.devices)} device"
               f"{'s' if len(session.devices) != 1 else ''}")
    for d in session.devices:
        info = d.info or {}
        ids = (f" {info['idVendor']:04x}:{info['idProduct']:04x}" if isinstance(info.get("idVendor"), int)
               and isinstance(info.get("idProduct"), int) else "")
        click.echo(f"  dev {d.index}: {d.url}{ids}, {len(d.events)} events")
    for c in session.complaints:
        click.echo(f"dkproto: warning: {capture}: {c}", err=True)


def _when(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _as_json(info: CaptureInfo) -> dict[str, Any]:
    return {
        "sections": info.sections, "packets": info.packets,
        "linktypes": {str(k): v for k, v in info.linktypes.items()},
        "first_ns": info.first_ns, "last_ns": info.last_ns, "skipped_blocks": info.skipped_blocks,
        "devices": [vars(d) for d in info.devices], "complaints": info.complaints,
    }


@capture_group.command("info")
@click.argument("capture", metavar="FILE.pcapng")
@click.option("--json", "as_json", is_flag=True, help="The summary as JSON.")
def info_cmd(capture: str, as_json: bool) -> None:
    """Summarize a pcapng capture: link types, time span, and per usbmon device its transfers."""
    if os.path.isdir(capture):
        raise BadArgumentError(f"{capture}: is a directory, not a pcapng file")
    from dkproto.capture import capture_info

    info = capture_info(capture)
    if as_json:
        click.echo(json.dumps(_as_json(info), indent=2))
        return
    kinds = ", ".join(f"{n} of link type {lt}" for lt, n in sorted(info.linktypes.items())) or "none"
    click.echo(f"{capture}: {info.packets} packets ({kinds}) in {info.sections} section"
               f"{'s' if info.sections != 1 else ''}")
    if info.first_ns is not None and info.last_ns is not None:
        click.echo(f"  from {_when(info.first_ns)} to {_when(info.last_ns)} "
                   f"({(info.last_ns - info.first_ns) / 1e9:.6f} s)")
    for name, n in sorted(info.skipped_blocks.items()):
        click.echo(f"  {n} {name}{'s' if n != 1 else ''} passed over")
    for d in info.devices:
        ids = f" {d.idVendor:04x}:{d.idProduct:04x}" if d.idVendor is not None and d.idProduct is not None else ""
        click.echo(f"  bus {d.bus} device {d.address}{ids}: {d.records} records, "
                   f"{d.bytes_in} bytes in, {d.bytes_out} bytes out")
        for kind, n in sorted(d.transfers.items()):
            click.echo(f"    {kind}: {n}")
        if d.errors:
            click.echo("    URB errors: " + ", ".join(f"{k} x{n}" for k, n in sorted(d.errors.items())))
    for c in info.complaints:
        click.echo(f"dkproto: warning: {capture}: {c}", err=True)
