"""``dkproto hid``: list, parse, decode, watch, feature reports, output reports, usages, lint.

Thin: every command parses its options, calls :mod:`dkproto.hid` and prints the result. DEVICE
is what :class:`dkproto.hid.device.HidDevice` binds to: a transport URL (``hid://...``,
``usb://VID:PID?interface=N``, ``sim://...`` serving a HID interface, ``spy+`` around any of
them, which shows every transfer on stderr), a hidapi path (``/dev/hidraw0``) or
``VID:PID[:serial]`` (both through ``hid://``).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from dkproto.errors import BadArgumentError, DkError, DkTimeoutError

__all__ = ["hid_group"]


def _load_descriptor(src: str) -> tuple[Any, list[bytes]]:
    """A parsed descriptor (and recorded reports) from a device spec or a file/hex."""
    from dkproto.hid.device import HidDevice, is_device_spec
    from dkproto.hid.parser import parse
    from dkproto.hid.sources import load

    if is_device_spec(src):
        with HidDevice(src) as dev:
            return parse(dev.report_descriptor_bytes()), []
    s = load(src)
    return parse(s.descriptor), s.reports


def _jsonable(v: Any) -> Any:
    """Values for json.dumps: ints too wide for JSON text become hex strings."""
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, int) and not isinstance(v, bool) and not -(1 << 64) < v < (1 << 64):
        return f"{v:#x}"
    return v


@click.group("hid")
def hid_group() -> None:
    """HID devices and report descriptors (hidapi; hidraw on Linux)."""


@hid_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per device.")
def list_cmd(as_json: bool) -> None:
    """List HID devices: path, VID:PID, usage page/usage, interface, bus, strings."""
    from dataclasses import asdict

    from dkproto.hid.device import enumerate_devices
    from dkproto.hid.usages import page_name, usage_name

    devs = enumerate_devices()
    if as_json:
        click.echo(json.dumps([asdict(d) for d in devs], indent=2))
        return
    if not devs:
        click.echo("no HID devices")
        return
    for d in devs:
        u = f"{page_name(d.usage_page)} / {usage_name(d.usage, d.usage_page)}" if d.usage_page else "-"
        click.echo(
            f"{d.path}  {d.vid_pid}  if {d.interface_number}  {d.bus_type}  {u}  "
            f"{d.manufacturer_string!r} {d.product_string!r} serial {d.serial_number!r}"
        )


@hid_group.command("parse")
@click.argument("source")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def parse_cmd(source: str, fmt: str) -> None:
    """Parse the report descriptor of a DEVICE (URL, hidapi path or VID:PID) or FILE (JSON,
    hid-recorder, rdesc, hex, binary, sysfs report_descriptor; or a hex string)."""
    from dkproto.hid.lint import lint_descriptor
    from dkproto.hid.render import format_items, format_layouts

    rd, _ = _load_descriptor(source)
    if fmt == "json":
        out = rd.to_json()
        out["findings"] = [
            {"rule": x.rule, "name": x.name, "offset": x.offset, "severity": x.severity, "message": x.message}
            for x in lint_descriptor(rd)
        ]
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"# {len(rd.data)} bytes, {len(rd.items)} items")
    for line in format_items(rd):
        click.echo(line)
    click.echo("")
    for line in format_layouts(rd):
        click.echo(line)
    findings = lint_descriptor(rd)
    if findings:
        click.echo("")
        for f in findings:
            click.echo(str(f))


@hid_group.command("decode")
@click.option("--descriptor", "-d", "descriptor", required=True,
              help="Descriptor file, hex, or a device (URL, hidapi path, VID:PID).")
@click.option("--type", "report_type", type=click.Choice(["input", "output", "feature"]), default="input")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per report.")
@click.option("--physical", is_flag=True, help="Also show physical values with units.")
@click.argument("reports", nargs=-1)
def decode_cmd(descriptor: str, report_type: str, as_json: bool, physical: bool, reports: tuple[str, ...]) -> None:
    """Decode REPORTS (hex, report ID byte included when used); with none, the reports recorded
    in the descriptor file (corpus JSON input_reports_hex, hid-recorder E: lines)."""
    from dkproto.hid.codec import DescriptorCodec
    from dkproto.hid.render import format_values
    from dkproto.hid.sources import parse_hex

    rd, recorded = _load_descriptor(descriptor)
    warn = rd.kernel_error is not None  # said once, before the first report decoded
    codec = DescriptorCodec(rd)
    if reports and len(reports) > 1 and all(len(r) <= 2 for r in reports):
        reports = (" ".join(reports),)  # one report given as separate bytes: 01 05 ff ...
    data = [parse_hex(r, f"report {i + 1}") for i, r in enumerate(reports)] if reports else recorded
    if not data:
        raise BadArgumentError("no report to decode: give hex reports, or a file with recorded reports")
    prev: dict[int, Any] = {}
    for raw in data:
        v = codec.decode(raw, report_type, strict=False)
        if warn:
            click.echo(f"dkproto: warning: the Linux kernel refuses this descriptor ({rd.kernel_error}); "
                       "decoded with dkproto's lenient layout", err=True)
            warn = False
        if as_json:
            click.echo(json.dumps({"report_type": v.report_type, "report_id": v.report_id, "values": _jsonable(dict(v)),
                                   "trailing": v.trailing.hex(), "missing": v.missing}))
            continue
        phys = codec.codec(report_type, v.report_id).physical(v) if physical else None
        head = f"{report_type} {v.report_id}:" if v.report_id else f"{report_type}:"
        note = ""
        if v.missing:
            note = f"  ({v.missing} byte(s) short: decoded as zeros, as the kernel does)"
        elif v.trailing:
            note = f"  ({len(v.trailing)} byte(s) after the declared length: {v.trailing.hex()})"
        click.echo(f"{head} {format_values(v, prev.get(v.report_id), phys)}{note}")
        prev[v.report_id] = v


@hid_group.command("watch")
@click.argument("device")
@click.option("--count", "-n", type=int, default=0, help="Stop after N reports (0: until Ctrl-C).")
@click.option("--timeout", type=float, default=0.0, help="Stop after this many seconds without a report.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per report.")
@click.option("--physical", is_flag=True, help="Also show physical values with units.")
def watch_cmd(device: str, count: int, timeout: float, as_json: bool, physical: bool) -> None:
    """Watch a DEVICE's input reports live (a URL such as hid://046d:c52b, usb://VID:PID?interface=N,
    sim://..., spy+URL; a hidapi path; VID:PID[:serial]): decoded, changed values marked with *,
    timestamps, report rate."""
    from dkproto.hid.device import HidDevice
    from dkproto.hid.render import format_values

    with HidDevice(device) as dev:
        codec = dev.codec
        prev: dict[int, Any] = {}
        t0 = time.monotonic()
        n = 0
        window: list[float] = []
        wait_ms = int(timeout * 1000) if timeout else 1000
        try:
            while not count or n < count:
                try:
                    raw = dev.read(wait_ms)
                except DkTimeoutError:
                    if timeout:
                        break
                    continue
                now = time.monotonic() - t0
                n += 1
                window.append(now)
                window = [t for t in window if now - t <= 1.0]
                rate = len(window) / max(now - window[0], 1e-6) if len(window) > 1 else 0.0
                try:
                    v = codec.decode(raw, "input", strict=False)
                except DkError as exc:
                    click.echo(f"{now:12.6f} {raw.hex()}  ! {exc}")
                    continue
                if as_json:
                    click.echo(json.dumps({"t": round(now, 6), "report_id": v.report_id, "values": _jsonable(dict(v)),
                                           "changed": sorted(k for k in v if prev.get(v.report_id, {}).get(k) != v[k]),
                                           "rate": round(rate, 1)}))
                else:
                    phys = codec.codec("input", v.report_id).physical(v) if physical else None
                    rid = f"[{v.report_id}] " if v.report_id else ""
                    click.echo(f"{now:12.6f} {rid}{format_values(v, prev.get(v.report_id), phys)}  "
                               f"({rate:.1f} reports/s)")
                sys.stdout.flush()
                prev[v.report_id] = v
        except KeyboardInterrupt:
            pass
        if not as_json:
            click.echo(f"# {n} reports in {time.monotonic() - t0:.3f} s")


@hid_group.command("get-feature")
@click.argument("device")
@click.argument("report_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def get_feature_cmd(device: str, report_id: int, as_json: bool) -> None:
    """GET_REPORT(Feature) REPORT_ID from DEVICE (URL, hidapi path or VID:PID), decoded with its descriptor."""
    from dkproto.hid.device import HidDevice
    from dkproto.hid.render import format_values

    with HidDevice(device) as dev:
        raw = dev.get_feature(report_id)
        try:
            v = dev.decode_feature(raw, report_id)
        except DkError as exc:
            click.echo(f"{raw.hex()}  ! {exc}")
            return
        if as_json:
            click.echo(json.dumps({"report_id": report_id, "raw": raw.hex(), "values": _jsonable(dict(v))}))
        else:
            click.echo(f"{raw.hex()}  {format_values(v)}")


def _send(device: str, report_id: int, assignments: tuple[str, ...], kind: str) -> None:
    from dkproto.hid.codec import parse_assignments
    from dkproto.hid.device import HidDevice

    values = parse_assignments(assignments)
    with HidDevice(device) as dev:
        sent = dev.set_feature_values(report_id, values) if kind == "feature" else dev.write_values(report_id, values)
    click.echo(f"sent {kind} report {report_id}: {sent.hex()}")


@hid_group.command("set-feature")
@click.argument("device")
@click.argument("report_id", type=int)
@click.argument("assignments", nargs=-1)
def set_feature_cmd(device: str, report_id: int, assignments: tuple[str, ...]) -> None:
    """SET_REPORT(Feature) REPORT_ID on DEVICE (URL, hidapi path or VID:PID), built from name=value
    ASSIGNMENTS (others 0)."""
    _send(device, report_id, assignments, "feature")


@hid_group.command("write")
@click.argument("device")
@click.argument("report_id", type=int)
@click.argument("assignments", nargs=-1)
def write_cmd(device: str, report_id: int, assignments: tuple[str, ...]) -> None:
    """Send output report REPORT_ID to DEVICE (URL, hidapi path or VID:PID), built from name=value
    ASSIGNMENTS (e.g. "Caps Lock"=1)."""
    _send(device, report_id, assignments, "output")


@hid_group.command("usages")
@click.argument("page", required=False)
def usages_cmd(page: str | None) -> None:
    """List the usages of PAGE (number or name); without PAGE, list the pages."""
    from dkproto.hid import usages as hut

    if page is None:
        for p in hut.pages():
            click.echo(f"0x{p.id:04x}  {p.name}")
        click.echo("0xff00-0xffff  Vendor-defined")
        return
    pid = hut.find_page(page)
    match = [p for p in hut.pages() if p.id == pid]
    if not match:
        click.echo(f"0x{pid:04x} {hut.page_name(pid)}: no usages defined in the HID Usage Tables")
        return
    p = match[0]
    click.echo(f"# 0x{p.id:04x} {p.name}")
    for uid, (name, kinds) in sorted(p.usages.items()):
        click.echo(f"0x{uid:04x}  {name}  {','.join(kinds)}")
    if p.generator:
        g = p.generator
        click.echo(f"0x{g['StartUsageId']:04x}-0x{g['EndUsageId']:04x}  {g['NamePrefix']} N (generated)")


@hid_group.command("lint")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def lint_cmd(ctx: click.Context, source: str, as_json: bool) -> None:
    """Lint a report descriptor; exit status 1 when a finding is an error."""
    from dkproto.hid.lint import lint_descriptor

    rd, _ = _load_descriptor(source)
    findings = lint_descriptor(rd)
    if as_json:
        click.echo(json.dumps([
            {"rule": x.rule, "name": x.name, "offset": x.offset, "severity": x.severity, "message": x.message,
             "kernel_fatal": x.kernel_fatal}
            for x in findings
        ], indent=2))
    else:
        for f in findings:
            click.echo(str(f))
        if not findings:
            click.echo("no findings")
    if any(f.severity == "error" for f in findings):
        ctx.exit(1)
