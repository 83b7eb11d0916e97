"""The lsusb -v parser and comparison, and the pure parts of ``dkproto list``."""

from __future__ import annotations

from usb_corpus import oracle_text, set_path

from dkproto.usb import load
from dkproto.usb.enumerate import DeviceInfo, InterfaceInfo, render_list, render_tree
from dkproto.usb.lsusb import compare_with_lsusb, parse_lsusb

HACKRF = set_path("hackrf-one")


def test_parse_lsusb_reads_the_standard_sections() -> None:
    (dev,) = parse_lsusb(oracle_text("hackrf-one"))
    assert dev["id"] == (0x1D50, 0x6089) and dev["bus"] == 1
    assert dev["fields"]["bcdUSB"] == 0x0200 and dev["fields"]["iSerialNumber"] == 4
    (cfg,) = dev["configurations"]
    assert cfg["fields"]["MaxPower"] == 500 and cfg["fields"]["bmAttributes"] == 0x80
    (iface,) = cfg["interfaces"]
    assert [ep["bEndpointAddress"] for ep in iface["endpoints"]] == [0x81, 0x02]
    assert iface["endpoints"][0]["wMaxPacketSize"] == 0x200


def test_compare_reports_each_disagreement() -> None:
    ds = load(HACKRF)
    text = oracle_text("hackrf-one")
    assert compare_with_lsusb(ds, text) == []
    edited = text.replace("wMaxPacketSize     0x0200", "wMaxPacketSize     0x0040", 1)
    edited = edited.replace("MaxPower              500mA", "MaxPower              100mA")
    assert compare_with_lsusb(ds, edited) == [
        "configuration 1: bMaxPower dkproto 250 (500mA) lsusb MaxPower 100mA",
        "configuration 1 interface 0.0 endpoint 0x81: wMaxPacketSize dkproto 512 lsusb 64",
    ]
    assert compare_with_lsusb(ds, "") == ["lsusb output has no device"]


def test_compare_picks_the_device_by_id() -> None:
    ds = load(HACKRF)
    both = oracle_text("silabs-cp210x") + oracle_text("hackrf-one")
    assert len(parse_lsusb(both)) == 2
    assert compare_with_lsusb(ds, both) == []


def test_class_descriptors_in_lsusb_are_not_mistaken_for_standard_ones() -> None:
    ds = load(set_path("logitech-c270-webcam"))
    (dev,) = parse_lsusb(oracle_text("logitech-c270-webcam"))
    n_ifaces = sum(len(c["interfaces"]) for c in dev["configurations"])
    assert n_ifaces == len(ds.configurations[0].interfaces)
    assert compare_with_lsusb(ds, oracle_text("logitech-c270-webcam")) == []


def _info(bus: int, addr: int, ports: tuple[int, ...], cls: int, ifaces: list[InterfaceInfo]) -> DeviceInfo:
    return DeviceInfo(bus=bus, address=addr, port_path=f"{bus}-" + ".".join(map(str, ports)) if ports else f"usb{bus}",
                      port_numbers=ports, idVendor=0x1D6B, idProduct=0x0104, speed=3, manufacturer="dkproto lab",
                      product="hid-keyboard", names_from="device", bDeviceClass=cls, driver=None, interfaces=ifaces)


def test_list_rendering() -> None:
    root = _info(1, 1, (), 9, [InterfaceInfo(0, 9, "hub")])
    kbd = _info(1, 2, (1,), 0, [InterfaceInfo(0, 3, "usbhid")])
    table = render_list([root, kbd])
    assert "Bus 001 Device 002 Port 1-1" in table
    assert "ID 1d6b:0104   480M  dkproto lab hid-keyboard  [Human Interface Device]  driver=usbhid" in table
    tree = render_tree([root, kbd])
    assert tree.splitlines()[0].startswith("/:  Bus 001: Dev 001")
    assert "    |__ Port 001: Dev 002, If 0, Class=Human Interface Device, Driver=usbhid, 480M" in tree
    assert kbd.to_json()["interfaces"] == [
        {"bInterfaceNumber": 0, "bInterfaceClass": 3, "class": "Human Interface Device", "driver": "usbhid"}]
