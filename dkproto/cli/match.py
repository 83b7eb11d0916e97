"""``dkproto match Info.plist [FILE|URL...] [--device URL]``: which personality matches which device, and why.

A thin command over :mod:`dkproto.iokit.matching`: it loads the bundle (and the
``.entitlements`` beside it, or ``--entitlements``), loads devices from descriptor files
(corpus JSON, device-dict JSON, raw sysfs ``descriptors``) or reads them through transport URLs
(``usb://``, ``sim://``, ``spy+...``: given among the files, or with ``--device``), and prints,
for every provider nub, each personality of that provider class with its score or the reason it
does not match.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from dkproto.errors import BadArgumentError
from dkproto.transport.url import is_url

if TYPE_CHECKING:
    from dkproto.iokit.matching import MatchReport, USBDeviceInfo

# The DriverKit mirror (dkproto.iokit) is imported when the command runs, not when
# ``dkproto --help`` lists it.


def _live_device(url: str) -> USBDeviceInfo:
    from dkproto.iokit.usb_host import device_info_from_url

    return device_info_from_url(url)


def format_report(report: MatchReport, verbose: int = 0) -> str:
    """The human-readable report."""
    lines: list[str] = []
    b = report.bundle
    lines.append(f"{b.path}: {b.bundle_identifier or '(no CFBundleIdentifier)'}, "
                 f"{len(b.personalities)} personalit{'y' if len(b.personalities) == 1 else 'ies'}")
    if b.entitlements is not None:
        lines.append(f"entitlements: {b.entitlements.path}")
    by_cand: dict[int, list[Any]] = {}
    order: list[Any] = []
    for r in report.results:
        key = id(r.candidate)
        if key not in by_cand:
            by_cand[key] = []
            order.append(r.candidate)
        by_cand[key].append(r)
    dev = None
    for c in order:
        if c.device is not dev:
            dev = c.device
            if dev is not None:
                lines.append("")
                lines.append(f"device {dev.label}  [{dev.source}]")
        rs = [r for r in by_cand[id(c)] if r.personality.io_provider_class == c.provider_class]
        if not rs and not verbose:
            continue
        lines.append(f"  {c.label}")
        if not rs:
            lines.append("    (no personality has this IOProviderClass)")
        for r in rs:
            if r.won:
                head = f"    * {r.personality.name}: MATCH, score {r.score} -- wins"
            elif r.matched:
                head = f"    + {r.personality.name}: matches, score {r.score}, does not win"
            else:
                head = f"    - {r.personality.name}: no match"
            lines.append(head)
            why = r.reasons if (r.matched or verbose) else [x for x in r.reasons if
                                                              ("!=" in x or "not" in x or "needs" in x)][:3] or r.reasons[-1:]
            for x in why:
                lines.append(f"        {x}")
            for w in r.warnings:
                lines.append(f"        warning: {w}")
    matched_names = {r.personality.name for r in report.results if r.matched}
    lonely = [p for p in b.personalities if p.name not in matched_names]
    if lonely:
        lines.append("")
        for p in lonely:
            lines.append(f"{p.name} ({p.io_provider_class}) matches nothing here")
    return "\n".join(lines)


@click.command("match")
@click.argument("info_plist", type=click.Path(dir_okay=False))
@click.argument("sources", metavar="[FILE|URL]...", nargs=-1)
@click.option("--device", "urls", multiple=True, metavar="URL", help="a device by transport URL (as a URL among "
              "the FILEs); repeatable")
@click.option("--entitlements", type=click.Path(dir_okay=False), default=None,
              help="the dext's .entitlements (default: the one beside Info.plist)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
def match_cmd(ctx: click.Context, info_plist: str, sources: tuple[str, ...], urls: tuple[str, ...],
              entitlements: str | None, as_json: bool) -> None:
    """Match INFO_PLIST's IOKitPersonalities against devices: descriptor FILEs (descriptors/*.json)
    and devices at transport URLs (usb://1209:0001, sim://loopback, spy+URL...), in the order given,
    then the --device URLs; with Apple's USB precedence tables, say why each personality matches
    or not."""
    if not sources and not urls:
        raise BadArgumentError("dkproto match: give descriptor files or device URLs")
    from dkproto.iokit.matching import load_devices, match
    from dkproto.iokit.personality import load_bundle

    bundle = load_bundle(info_plist, entitlements)
    devices: list[USBDeviceInfo] = []
    for source in sources:
        if is_url(source):
            devices.append(_live_device(source.strip()))
        else:
            devices.extend(load_devices(source))
    for u in urls:
        devices.append(_live_device(u))
    report = match(bundle, devices)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(format_report(report, (ctx.obj or {}).get("verbose", 0)))
