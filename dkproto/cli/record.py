"""``dkproto record OUT -- CMD...`` and ``dkproto replay FILE -- CMD... | --info``: sessions on the command line.

``record`` runs CMD with ``DKPROTO_RECORD=OUT``: every transport CMD opens through
``open_transport`` is recorded (``docs/session-format.md``); it exits with CMD's status and ends
with one line on stderr. ``replay`` runs CMD with ``DKPROTO_REPLAY=FILE``: the recorded devices
answer, with the devices gone; ``--info`` summarizes FILE instead.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from typing import Any

import click

from dkproto.errors import BadArgumentError, DkError, NotFoundError
from dkproto.session import Session, SessionWriter, load_session

__all__ = ["record_cmd", "replay_cmd", "session_summary"]


def _run(cmd: tuple[str, ...], env: dict[str, str]) -> int:
    if not cmd:
        raise BadArgumentError("no command to run: give it after '--' (dkproto record OUT -- dkproto dump URL)")
    try:
        proc = subprocess.Popen(list(cmd), env=env)
    except FileNotFoundError as exc:
        raise NotFoundError(f"{cmd[0]}: no such command") from exc
    except PermissionError as exc:
        raise DkError(f"{cmd[0]}: cannot run it ({exc.strerror})") from exc
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.wait()
        raise


@click.command("record", context_settings={"ignore_unknown_options": True})
@click.argument("out", metavar="OUT")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED, metavar="-- CMD...")
@click.pass_context
def record_cmd(ctx: click.Context, out: str, cmd: tuple[str, ...]) -> None:
    """Run CMD and record every transfer it makes to OUT (a session, JSON Lines; or, when OUT
    ends in .pcapng, a usbmon capture for Wireshark).

    Any CMD that opens devices through dkproto's transports is recorded: the dkproto command,
    pytest with the dkproto plugin, your scripts. Example:
    dkproto record kbd.jsonl -- dkproto hid watch sim://hid-keyboard -n 3
    """
    path = os.path.abspath(out)
    if os.path.isdir(path):
        raise BadArgumentError(f"{out}: is a directory; give the session file to write")
    try:
        os.unlink(path)  # a stale session must not pass for this one
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DkError(f"{out}: cannot replace it ({exc.strerror})") from exc
    env = dict(os.environ, DKPROTO_RECORD=path)
    env.pop("DKPROTO_RECORD_PID", None)
    status = _run(cmd, env)
    pcapng = path.lower().endswith(".pcapng")
    if not os.path.exists(path):  # CMD opened no transport: an empty session, so replay and --info work
        if pcapng:
            from dkproto.capture import PcapngSessionSink

            PcapngSessionSink(path).close()
        else:
            SessionWriter(path, list(cmd)).close()
    if pcapng:  # recorded straight to a capture (docs/capture.md)
        from dkproto.capture import capture_info

        try:
            cap = capture_info(path)
        except DkError as exc:
            click.echo(f"dkproto: recorded to {out}, which does not load: {exc.one_line()}", err=True)
            ctx.exit(status or 1)
        click.echo(f"dkproto: recorded {cap.packets} usbmon packet{'s' if cap.packets != 1 else ''} from "
                   f"{len(cap.devices)} device{'s' if len(cap.devices) != 1 else ''} to {out}", err=True)
        ctx.exit(status)
    try:
        session = load_session(path)
    except DkError as exc:
        click.echo(f"dkproto: recorded to {out}, which does not load: {exc.one_line()}", err=True)
        ctx.exit(status or 1)
    n, d = len(session.events), len(session.devices)
    click.echo(f"dkproto: recorded {n} event{'s' if n != 1 else ''} from {d} device{'s' if d != 1 else ''} "
               f"to {out}", err=True)
    ctx.exit(status)


def session_summary(session: Session) -> dict[str, Any]:
    """What ``replay --info`` shows: header, devices, event counts per op and endpoint, duration, complaints."""
    devices = []
    for d in session.devices:
        info = d.info or {}
        ops: collections.Counter[str] = collections.Counter(e.op for e in d.events)
        endpoints: collections.Counter[str] = collections.Counter(
            f"0x{e.fields['endpoint']:02x}" for e in d.events if isinstance(e.fields.get("endpoint"), int))
        failed = sum(1 for e in d.events if not e.ok)
        ids = (f"{info['idVendor']:04x}:{info['idProduct']:04x}"
               if isinstance(info.get("idVendor"), int) and isinstance(info.get("idProduct"), int) else None)
        devices.append({"index": d.index, "url": d.url, "scheme": d.scheme, "ids": ids,
                        "product": info.get("product"), "events": len(d.events), "failed": failed,
                        "ops": dict(sorted(ops.items())), "endpoints": dict(sorted(endpoints.items()))})
    ends = [e.t + e.dt for e in session.events]
    starts = [e.t for e in session.events]
    duration = round(max(ends) - min(starts), 6) if session.events else 0.0
    return {"file": session.source, "header": session.header, "events": len(session.events),
            "duration": duration, "devices": devices, "complaints": list(session.complaints)}


def _print_summary(s: dict[str, Any]) -> None:
    h = s["header"]
    click.echo(f"{s['file']}: dkproto session v{h.get('version')}, created {h.get('created')} by dkproto "
               f"{h.get('dkproto')}")
    click.echo(f"command: {' '.join(h.get('argv') or []) or '(none)'}")
    n, d = s["events"], len(s["devices"])
    click.echo(f"{n} event{'s' if n != 1 else ''}, {d} device{'s' if d != 1 else ''}, {s['duration']:.6f} s")
    for d in s["devices"]:
        what = " ".join(x for x in (d["ids"], repr(d["product"]) if d["product"] else None) if x)
        click.echo(f"device {d['index']}: {d['url']} ({d['scheme']}){'  ' + what if what else ''}: "
                   f"{d['events']} events, {d['failed']} failed")
        click.echo("  ops: " + ", ".join(f"{op} {n}" for op, n in d["ops"].items()))
        if d["endpoints"]:
            click.echo("  endpoints: " + ", ".join(f"{ep} {n}" for ep, n in d["endpoints"].items()))
    for c in s["complaints"]:
        click.echo(f"complaint: {c}")


@click.command("replay", context_settings={"ignore_unknown_options": True})
@click.argument("file", metavar="FILE")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED, metavar="-- CMD...")
@click.option("--strict", type=click.Choice(["exact", "order", "endpoints"]), default="order", show_default=True,
              help="exact: same calls, arguments and timeouts, paced as recorded; order: same calls in order "
                   "per device; endpoints: order kept per endpoint only.")
@click.option("--info", "info", is_flag=True, help="Summarize FILE instead of running a command.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="For --info.")
@click.pass_context
def replay_cmd(ctx: click.Context, file: str, cmd: tuple[str, ...], strict: str, info: bool, fmt: str) -> None:
    """Run CMD with the devices recorded in FILE answering (the devices may be gone), or summarize
    FILE with --info.

    A request that differs from the recording ends CMD with kIOReturnBadMessageID and a message
    naming the line of FILE. Example: dkproto replay kbd.jsonl -- dkproto hid watch sim://hid-keyboard -n 3
    """
    session = load_session(file)
    if info:
        if cmd:
            raise BadArgumentError("--info summarizes FILE; give no command with it")
        summary = session_summary(session)
        if fmt == "json":
            click.echo(json.dumps(summary, indent=2))
        else:
            _print_summary(summary)
        return
    for complaint in session.complaints:
        click.echo(f"dkproto: warning: {complaint}", err=True)
    env = dict(os.environ, DKPROTO_REPLAY=os.path.abspath(file), DKPROTO_REPLAY_STRICT=strict)
    if env.get("DKPROTO_RECORD") and os.path.abspath(env["DKPROTO_RECORD"]) == os.path.abspath(file):
        raise BadArgumentError(f"{file}: DKPROTO_RECORD names the file being replayed; record to another file")
    sys.stdout.flush()
    ctx.exit(_run(cmd, env))
