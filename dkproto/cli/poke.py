"""``dkproto ctrl | read | write``: one control request or endpoint transfer on any transport URL.

Numbers take decimal or ``0x`` hex. DATA is hex (``"01 02 ff"``, ``0102ff``, ``01:02``) unless
``--ascii`` is given (then text, with ``\\n``, ``\\r``, ``\\xNN`` escapes). Output is a hex dump
with ASCII, or ``--hex`` (plain hex), ``--ascii`` (text) or ``--json``.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from collections.abc import Callable
from typing import Any

import click

from dkproto.errors import BadArgumentError
from dkproto.transport import Transport, open_transport
from dkproto.transport.spy import SpyTransport, hexdump

__all__ = ["ctrl_cmd", "parse_data", "parse_int", "read_cmd", "write_cmd"]

_HEX_RE = re.compile(r"^(?:0x)?[0-9A-Fa-f]{2}(?:[\s:,-]*(?:0x)?[0-9A-Fa-f]{2})*$")


def parse_int(text: str, name: str, lo: int = 0, hi: int = 0xFFFF) -> int:
    """Decimal or 0x-hex integer in ``lo..hi``; a BadArgumentError names the argument otherwise."""
    try:
        value = int(text, 0)
    except ValueError:
        raise BadArgumentError(f"{name}: {text!r} is not a number (decimal or 0x hex)") from None
    if not lo <= value <= hi:
        raise BadArgumentError(f"{name}: {value} is out of range {lo}..{hi} (0x{hi:x})")
    return value


def parse_data(text: str, ascii_mode: bool = False) -> bytes:
    """DATA as bytes: hex by default (spaces, colons, commas, ``0x`` allowed), or escaped text."""
    if ascii_mode:
        try:
            return codecs.escape_decode(text.encode("utf-8"))[0]
        except ValueError as exc:
            raise BadArgumentError(f"DATA: bad escape in {text!r} ({exc})") from None
    if text == "":
        return b""
    if not _HEX_RE.match(text.strip()):
        raise BadArgumentError(f"DATA: {text!r} is not hex bytes (like '01 02 ff'); use --ascii for text")
    return bytes(int(h, 16) for h in re.findall(r"(?:0x)?([0-9A-Fa-f]{2})", text.strip()))


def _open(url: str, spy: bool) -> Transport:
    transport = open_transport(url)
    if spy:
        transport = SpyTransport(transport, sink=lambda text: click.echo(text, err=True))
    return transport.open()


def _emit(data: bytes, fmt: str, meta: dict[str, Any]) -> None:
    if fmt == "json":
        click.echo(json.dumps({**meta, "length": len(data), "data": data.hex()}))
    elif fmt == "hex":
        click.echo(data.hex(" "))
    elif fmt == "ascii":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        click.echo(hexdump(data))


def _options(*, sends: bool = True, receives: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options every poke verb takes; ``--ascii`` and ``--hex`` are described by what the verb
    does: ``read`` sends no DATA, ``write`` prints no received bytes (then ``--hex`` is absent)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option("--spy", is_flag=True, help="Hex-dump every transfer to stderr.")(fn)
        fn = click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")(fn)
        if receives:
            fn = click.option("--hex", "as_hex", is_flag=True, help="Print received bytes as plain hex.")(fn)
        if sends and receives:
            ascii_help = "DATA is text (escapes \\n \\r \\xNN); received bytes are printed raw."
        elif sends:
            ascii_help = "DATA is text (escapes \\n \\r \\xNN)."
        else:
            ascii_help = "Print received bytes raw (as text)."
        fn = click.option("--ascii", "-a", "as_ascii", is_flag=True, help=ascii_help)(fn)
        fn = click.option("--timeout", "-t", default=1000, show_default=True, type=click.IntRange(0),
                          help="Milliseconds (0 = wait forever).")(fn)
        return fn

    return wrap


_common = _options()


def _fmt(as_json: bool, as_hex: bool, as_ascii: bool) -> str:
    return "json" if as_json else "hex" if as_hex else "ascii" if as_ascii else "dump"


@click.command("ctrl")
@click.argument("device")
@click.argument("bmrequesttype", metavar="bmRequestType")
@click.argument("brequest", metavar="bRequest")
@click.argument("wvalue", metavar="wValue")
@click.argument("windex", metavar="wIndex")
@click.argument("length_or_data", metavar="[wLength|DATA]", required=False, default=None)
@_common
def ctrl_cmd(device: str, bmrequesttype: str, brequest: str, wvalue: str, windex: str,
             length_or_data: str | None, timeout: int, as_ascii: bool, as_hex: bool, as_json: bool,
             spy: bool) -> None:
    """Send one control request to DEVICE (a transport URL).

    IN requests (bmRequestType bit 7 set) take wLength and print what came back; OUT
    requests take DATA. Example: dkproto ctrl usb://1d6b:0104 0xc0 0x02 0 0 64
    """
    rt = parse_int(bmrequesttype, "bmRequestType", 0, 0xFF)
    req = parse_int(brequest, "bRequest", 0, 0xFF)
    value = parse_int(wvalue, "wValue")
    index = parse_int(windex, "wIndex")
    meta: dict[str, Any] = {"device": device, "bmRequestType": rt, "bRequest": req, "wValue": value,
                            "wIndex": index}
    if rt & 0x80:
        arg: bytes | int = parse_int(length_or_data or "0", "wLength")
    else:
        arg = parse_data(length_or_data or "", as_ascii)
    with _open(device, spy) as transport:
        result = transport.control_transfer(rt, req, value, index, arg, timeout)
    if isinstance(result, int):
        if as_json:
            click.echo(json.dumps({**meta, "sent": result}))
        else:
            click.echo(f"sent {result} byte(s)")
        return
    _emit(bytes(result), _fmt(as_json, as_hex, as_ascii), meta)


@click.command("read")
@click.argument("device")
@click.argument("endpoint", metavar="EP")
@click.argument("length", metavar="[N]", required=False, default="512")
@click.option("--count", "-n", default=1, show_default=True, type=click.IntRange(1),
              help="How many reads to do.")
@_options(sends=False)
def read_cmd(device: str, endpoint: str, length: str, count: int, timeout: int, as_ascii: bool,
             as_hex: bool, as_json: bool, spy: bool) -> None:
    """Read up to N bytes (default 512) from IN endpoint EP (e.g. 0x81) of DEVICE."""
    ep = parse_int(endpoint, "EP", 0, 0xFF)
    if not ep & 0x80:
        raise BadArgumentError(f"EP: 0x{ep:02x} is an OUT endpoint; read needs an IN one (0x80 set, e.g. 0x{ep | 0x80:02x})")
    n = parse_int(length, "N", 0, 1 << 24)
    with _open(device, spy) as transport:
        for _ in range(count):
            data = transport.read(ep, n, timeout)
            _emit(data, _fmt(as_json, as_hex, as_ascii), {"device": device, "endpoint": ep})


@click.command("write")
@click.argument("device")
@click.argument("endpoint", metavar="EP")
@click.argument("data", metavar="DATA")
@_options(receives=False)
def write_cmd(device: str, endpoint: str, data: str, timeout: int, as_ascii: bool,
              as_json: bool, spy: bool) -> None:
    """Write DATA (hex, or text with --ascii) to OUT endpoint EP (e.g. 0x02) of DEVICE."""
    ep = parse_int(endpoint, "EP", 0, 0xFF)
    if ep & 0x80:
        raise BadArgumentError(f"EP: 0x{ep:02x} is an IN endpoint; write needs an OUT one (0x80 clear)")
    payload = parse_data(data, as_ascii)
    with _open(device, spy) as transport:
        sent = transport.write(ep, payload, timeout)
    if as_json:
        click.echo(json.dumps({"device": device, "endpoint": ep, "sent": sent}))
    else:
        click.echo(f"sent {sent} byte(s)")
