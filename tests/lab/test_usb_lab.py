"""``dkproto dump`` and ``dkproto list`` against real devices on the lab's bus, next to ``lsusb``.

Runs inside the QEMU lab (``python -m pytest --lab tests/lab/test_usb_lab.py``): the CLI end
to end in every format, strings in every LANGID, the device qualifier, the sysfs fallback
when libusb cannot read a device, and ``dkproto list`` (table, ``-t`` tree, ``--json``).
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
from click.testing import CliRunner

from dkproto.cli import cli
from dkproto.transport.usb import find_devices
from dkproto.usb import from_bytes
from dkproto.usb.lsusb import compare_with_lsusb
from dkproto.usb.read import read_device

pytestmark = pytest.mark.lab


def lsusb(bus: int, address: int) -> str:
    res = subprocess.run(["lsusb", "-v", "-s", f"{bus}:{address}"], capture_output=True, text=True, timeout=60, check=False)
    assert res.stdout, res.stderr
    return res.stdout


def dump(*args: str) -> str:
    res = CliRunner().invoke(cli, ["dump", *args])
    assert res.exit_code == 0, res.output
    return res.output


def test_dump_cli_in_every_format_agrees_with_lsusb(lab_gadget: Any) -> None:
    g = lab_gadget("composite-iad")
    bus, address = g.host_address()
    truth = lsusb(bus, address)
    as_json = dump("-s", f"{bus}:{address}", "--format", "json")
    ds = from_bytes(as_json.encode())
    assert ds.errors == []
    assert compare_with_lsusb(ds, truth) == []
    text = dump("-s", f"{bus}:{address}")
    assert f"Bus {bus:03d} Device {address:03d}: ID 1d6b:0113" in text
    # the IAD is drawn over the interfaces it spans (CDC ACM: interfaces 0 and 1)
    iad = ds.configurations[0].find_all("interface_association")[0]
    assert [n["bInterfaceNumber"] for n in iad.children if n.role == "interface"] == [0, 1]
    hexed = dump("-d", "1d6b:0113", "--format", "hex")
    assert from_bytes(hexed.encode()).to_bytes() == ds.to_bytes()


def test_strings_in_every_langid_match_lsusb(lab_gadget: Any) -> None:
    g = lab_gadget("hid-keyboard")
    bus, address = g.host_address()
    (live,) = find_devices(bus=bus, address=address)
    ds = read_device(live)
    assert ds.errors == [] and ds.meta["read_from"] == "libusb"
    assert ds.langids() == [0x0409]
    dev = ds.device
    assert ds.string(dev["iManufacturer"]) == "dkproto lab"
    assert ds.string(dev["iProduct"]) == "hid-keyboard"
    truth = lsusb(bus, address)
    assert re.search(r"iManufacturer\s+\d+ dkproto lab", truth)
    # every string index any descriptor names was read
    for node in ds.nodes():
        for name, value in node.field_items():
            if name.startswith("i") and not name.startswith("id") and isinstance(value, int) and value:
                assert ds.string(value) is not None, (node, name)


def test_device_qualifier_of_a_high_speed_device(lab_gadget: Any) -> None:
    g = lab_gadget("cdc-acm")
    bus, address = g.host_address()
    (live,) = find_devices(bus=bus, address=address)
    if live.speed != 3:
        pytest.skip(f"gadget enumerated at libusb speed {live.speed}, not high speed")
    ds = read_device(live)
    qual = ds.device_qualifier
    assert qual is not None and qual.decoded
    assert qual["bNumConfigurations"] == ds.device["bNumConfigurations"]
    assert "Device Qualifier Descriptor:" in dump("-s", f"{bus}:{address}")


def test_sysfs_fallback_when_libusb_cannot_read(lab_gadget: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from dkproto.errors import NotPermittedError
    from dkproto.usb import read

    g = lab_gadget("hid-mouse")
    bus, address = g.host_address()
    (live,) = find_devices(bus=bus, address=address)
    direct = read_device(live)

    def refused(*_a: Any, **_k: Any) -> Any:
        raise NotPermittedError("opening usb://: LIBUSB_ERROR_ACCESS (Access denied (insufficient permissions))",
                                backend_code=-3)

    monkeypatch.setattr(read, "read_descriptor_set", refused)  # the read through usb://BUS/ADDRESS is refused
    fallback = read_device(live)
    assert fallback.meta["read_from"].startswith("sysfs ")
    assert fallback.errors == []
    assert fallback.to_bytes() == direct.to_bytes()
    assert compare_with_lsusb(fallback, lsusb(bus, address)) == []


def test_list_table_tree_and_json(lab_gadget: Any) -> None:
    g = lab_gadget("hid-keyboard")
    bus, address = g.host_address()
    res = CliRunner().invoke(cli, ["list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    (row,) = [r for r in rows if (r["bus"], r["device"]) == (bus, address)]
    assert (row["idVendor"], row["manufacturer"], row["product"]) == ("0x1d6b", "dkproto lab", "hid-keyboard")
    assert row["names_from"] == "sysfs"  # what the kernel read at enumeration: no device I/O
    assert row["port_path"].startswith(f"{bus}-")
    assert [i["driver"] for i in row["interfaces"]] == ["usbhid"]
    table = CliRunner().invoke(cli, ["list"]).output
    assert f"Bus {bus:03d} Device {address:03d}" in table and "ID 1d6b:0104" in table
    tree = CliRunner().invoke(cli, ["list", "-t"]).output
    assert "Driver=usbhid" in tree and f"Dev {address:03d}" in tree


def test_root_hub_class_descriptor_matches_lsusb() -> None:
    hubs = find_devices(vid=0x1D6B)
    assert hubs, "no root hub on the lab bus"
    checked = 0
    for live in hubs:
        ds = read_device(live)
        assert ds.errors == []
        (hub,) = [n for n in ds.extras if n.key in ("hub", "superspeed_hub")]
        truth = lsusb(live.bus, live.address)
        m = re.search(r"nNbrPorts\s+(\d+)", truth)  # lsusb's spelling of bNbrPorts
        if m is None:
            continue  # lsusb could not read it either
        assert hub["bNbrPorts"] == int(m.group(1))
        assert hub.to_bytes() == hub.raw
        assert ("SuperSpeed Hub Descriptor:" if hub.key == "superspeed_hub" else "Hub Descriptor:") in dump(
            "-s", f"{live.bus}:{live.address}")
        checked += 1
    assert checked
