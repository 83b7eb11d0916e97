"""``dkproto list``: the USB devices on the bus (bus, device, port path, VID:PID, speed, names,
class, bound driver); ``-t`` draws the tree like ``lsusb -t``; ``--json`` for programs.
"""

from __future__ import annotations

import json

import click

# The bus reader (libusb through pyusb) is imported when the command runs, not when
# ``dkproto --help`` lists it.

__all__ = ["list_cmd"]


@click.command("list")
@click.option("-t", "tree", is_flag=True, help="Draw the bus as a tree (like lsusb -t).")
@click.option("-d", "device", metavar="VID:[PID]", help="Only devices with this vendor (and product) ID, hex.")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object per device.")
def list_cmd(tree: bool, device: str | None, as_json: bool) -> None:
    """List the USB devices on the bus."""
    from dkproto.usb.enumerate import list_devices, render_list, render_tree

    vid = pid = None
    if device:
        from dkproto.cli.dump import parse_device_selector

        vid, pid = parse_device_selector(device)
    devices = list_devices(vid, pid)
    if as_json:
        click.echo(json.dumps([d.to_json() for d in devices], indent=2))
        return
    if not devices:
        click.echo("dkproto: no USB devices found (none attached, or no USB bus reachable here)", err=True)
        return
    click.echo(render_tree(devices) if tree else render_list(devices), nl=False)
