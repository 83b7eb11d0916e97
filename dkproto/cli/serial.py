"""``dkproto serial list | term | send | expect``: serial ports by URL or path.

PORT is a ``serial://`` URL (``serial:///dev/ttyACM0?baudrate=115200``, ``serial://1d6b:0104``,
``serial+loop://``) or a plain path (``/dev/ttyACM0``). Line settings can also be given as options.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click

from dkproto.cli.poke import parse_data
from dkproto.errors import BadArgumentError
from dkproto.transport.base import DEFAULT_TIMEOUT_MS, Transport, TransportWrapper
from dkproto.transport.registry import open_transport
from dkproto.transport.serial import SerialTransport, expect, list_ports, terminal

__all__ = ["serial_group"]

_EOLS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "none": b""}


def _port(port: str, opts: dict[str, Any]) -> tuple[SerialTransport, Transport]:
    """Open PORT: (the serial port, the transport to move bytes through: a ``spy+`` wrapper if asked).

    The serial port is the first transport of the wrapper chain with the serial calls: a recorded
    or replayed port (``dkproto record``/``replay``) has them, so its line settings are recorded too.
    """
    url = port if "://" in port else f"serial://{port}"
    transport = open_transport(url)
    serial: Any = transport
    while isinstance(serial, TransportWrapper) and not hasattr(serial, "configure"):
        serial = serial.inner
    if not hasattr(serial, "configure"):
        raise click.BadParameter(f"{port} is not a serial port URL", param_hint="PORT")
    transport.open()
    settings = {k: v for k, v in opts.items() if v is not None}
    if settings:
        try:
            serial.configure(**settings)
        except BaseException:
            transport.close()
            raise
    return serial, transport


def _line_options(fn: Any) -> Any:
    for decorator in reversed([
        click.option("--baudrate", "-b", type=click.IntRange(1), default=None, help="Baud rate."),
        click.option("--bytesize", type=click.IntRange(5, 8), default=None, help="Data bits."),
        click.option("--parity", type=click.Choice(["N", "E", "O", "M", "S"], case_sensitive=False), default=None),
        click.option("--stopbits", type=click.Choice(["1", "1.5", "2"]), default=None),
        click.option("--rtscts/--no-rtscts", default=None, help="RTS/CTS flow control."),
        click.option("--xonxoff/--no-xonxoff", default=None, help="XON/XOFF flow control."),
    ]):
        fn = decorator(fn)
    return fn


def _settings(baudrate: int | None, bytesize: int | None, parity: str | None, stopbits: str | None,
              rtscts: bool | None, xonxoff: bool | None) -> dict[str, Any]:
    return {"baudrate": baudrate, "bytesize": bytesize, "parity": parity.upper() if parity else None,
            "stopbits": {"1": 1, "1.5": 1.5, "2": 2}[stopbits] if stopbits else None,
            "rtscts": rtscts, "xonxoff": xonxoff}


@click.group("serial")
def serial_group() -> None:
    """Serial ports: list them, talk to them, script them."""


@serial_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list.")
def list_cmd(as_json: bool) -> None:
    """List serial ports with their USB VID:PID, serial number and interface."""
    ports = list_ports()
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in ports], indent=2))
        return
    for p in ports:
        usb = f"{p.idVendor:04x}:{p.idProduct:04x}" if p.idVendor is not None else "    -    "
        extra = "  ".join(x for x in (f"serial={p.serial_number}" if p.serial_number else "",
                                      f"interface={p.interface}" if p.interface else "",
                                      p.description or "") if x)
        click.echo(f"{p.device:20s} {usb}  {extra}")


@serial_group.command("term")
@click.argument("port")
@_line_options
@click.option("--eol", type=click.Choice(list(_EOLS)), default="crlf", show_default=True,
              help="Line ending sent after each line.")
@click.option("--echo", is_flag=True, help="Echo what is sent.")
@click.option("--write-timeout", type=click.IntRange(1), default=DEFAULT_TIMEOUT_MS, show_default=True,
              metavar="MS", help="Fail (kIOReturnTimeout) when a line is not taken within this many ms.")
def term_cmd(port: str, eol: str, echo: bool, write_timeout: int, **line: Any) -> None:
    """A line-mode terminal: type lines, see what comes back.

    Ends at end of input: Ctrl-D at a terminal, the end of a pipe or file
    (printf 'AT\\n' | dkproto serial term PORT), or a 0x04 byte. A line the port does not take
    within --write-timeout (nothing reads the other end) ends it with kIOReturnTimeout, exit 1.
    """
    _, transport = _port(port, _settings(**line))
    with transport:
        terminal(transport, eol=_EOLS[eol], echo=echo, write_timeout=write_timeout)


@serial_group.command("send")
@click.argument("port")
@click.argument("data")
@_line_options
@click.option("--ascii", "-a", "as_ascii", is_flag=True, help="DATA is text (escapes \\n \\r \\xNN), not hex.")
@click.option("--read", "read_ms", type=click.IntRange(0), default=0,
              help="Then print what arrives within this many ms.")
@click.option("--json", "as_json", is_flag=True)
def send_cmd(port: str, data: str, as_ascii: bool, read_ms: int, as_json: bool, **line: Any) -> None:
    """Send DATA to PORT (optionally print the answer)."""
    payload = parse_data(data, as_ascii)
    received = b""
    _, transport = _port(port, _settings(**line))
    with transport:
        sent = transport.write(0x02, payload)
        if read_ms:
            from dkproto.errors import DkTimeoutError

            try:
                received = transport.read(0x81, 65536, read_ms)
            except DkTimeoutError:
                received = b""
    if as_json:
        click.echo(json.dumps({"port": port, "sent": sent, "received": received.hex()}))
    else:
        click.echo(f"sent {sent} byte(s)", err=bool(read_ms))
        if received:
            sys.stdout.buffer.write(received)
            sys.stdout.flush()


@serial_group.command("expect")
@click.argument("port")
@click.argument("pattern")
@_line_options
@click.option("--regex", is_flag=True, help="PATTERN is a regular expression.")
@click.option("--send", "send_data", default=None, help="Text to send first (escapes allowed).")
@click.option("--timeout", "-t", type=click.IntRange(0), default=5000, show_default=True, help="Milliseconds.")
@click.option("--json", "as_json", is_flag=True)
def expect_cmd(port: str, pattern: str, regex: bool, send_data: str | None, timeout: int, as_json: bool,
               **line: Any) -> None:
    """Wait until PATTERN arrives on PORT (exit 1 with kIOReturnTimeout if it does not)."""
    try:
        compiled = re.compile(pattern.encode() if regex else re.escape(pattern.encode()))
    except re.error as exc:
        raise BadArgumentError(f"PATTERN {pattern!r} is not a regular expression: {exc}") from None
    payload = parse_data(send_data, True) if send_data is not None else None
    _, transport = _port(port, _settings(**line))
    with transport:
        if payload is not None:
            transport.write(0x02, payload)
        seen = expect(transport, compiled, timeout)
    if as_json:
        click.echo(json.dumps({"port": port, "matched": True, "received": seen.hex()}))
    else:
        sys.stdout.buffer.write(seen)
        sys.stdout.flush()
