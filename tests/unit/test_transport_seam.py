"""One seam: a Transport is the only way dkproto reaches a device.

* only the USB transport's modules import pyusb/libusb, only the HID transport's import hidapi
  (every module of ``dkproto/`` read with :mod:`ast`, dynamic imports included);
* one ``VID:PID[:serial]`` parser (:func:`dkproto.transport.url.parse_device_id`);
* enumeration of live devices lives with its transport (``find_devices``, ``enumerate_devices``);
* a HID device is a codec bound to any transport: :class:`~dkproto.hid.device.HidDevice` over
  ``sim://`` (GET_DESCRIPTOR(Report) and the HID class requests on the control pipe, the
  interrupt pipes), over ``spy+``, and over ``hid://`` on a stand-in hidapi module.

Live libusb and hidapi are proven in the lab (tests/lab/test_transport.py, tests/lab/test_hid.py).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from sim_hid import DEVICE, SimHid, config_for

import dkproto
from dkproto.errors import (
    DkError,
    DkTimeoutError,
    NoDeviceError,
    NotOpenError,
    UnsupportedError,
)
from dkproto.hid.codec import DescriptorCodec
from dkproto.hid.device import HidDevice, is_device_spec, parse_device_spec
from dkproto.hid.parser import parse
from dkproto.transport import HID_REPORT_FEATURE, open_transport, usb_enum
from dkproto.transport import hid as hid_transport
from dkproto.transport.descriptors import active_configuration, hid_interface, iter_descriptors
from dkproto.transport.sim import SimDevice, SimTransport
from dkproto.transport.spy import SpyTransport
from dkproto.transport.url import parse_device_id, parse_vid_pid
from dkproto.transport.usb import UsbDeviceInfo, find_devices

PACKAGE = Path(dkproto.__file__).resolve().parent

# ------------------------------------------------------------------------------------ the imports

#: Top-level module names of each back end. pyusb is ``usb``; ``libusb_package`` ships the libusb
#: binary; ``usb1`` is python-libusb1, ``libusb`` the ctypes ``libusb`` package. cython-hidapi is
#: ``hid`` (libusb flavour on Linux) and ``hidraw``.
BACKENDS = {
    "usb": {"usb", "libusb_package", "usb1", "libusb"},
    "hid": {"hid", "hidraw"},
}

#: Who may import each back end: the transport's module and its private ``<scheme>_*`` helpers.
OWNERS = {
    "usb": re.compile(r"transport/usb(_\w+)?\.py"),
    "hid": re.compile(r"transport/hid(_\w+)?\.py"),
}

#: dkproto/lab/* (the device side, some of it run inside the VM) is checked like the rest. Today
#: it needs no exception: it imports ``functionfs`` (``from functionfs import hid`` is
#: functionfs's own HID module, not hidapi) and pyserial, never pyusb, libusb1 or hidapi. Add an
#: entry ``"lab/FILE.py": {"usb1"}`` here, with its reason, if a device-side module ever must.
EXCEPTIONS: dict[str, set[str]] = {}

#: Imports whose module name is chosen at run time (``importlib.import_module(variable)``): the
#: checker cannot read them, so each is listed with what it imports.
DYNAMIC_IMPORTS = {
    "cli/__init__.py": "the CLI's own verb modules, from its COMMANDS table (dkproto.cli.*)",
    "transport/registry.py": "the transport class of a URL scheme: the built-in table (dkproto.transport.*) "
                             "or a dkproto.transports entry point",
    "transport/sim.py": "a sim://module:attr profile: the user's SimDevice factory",
    "lab/gadget.py": "a FunctionFS program named by a lab device definition (the device side)",
    "_lazy.py": "a lazy package's own submodules, named in its __init__ (dkproto.transport.*, dkproto.usb.*)",
}

#: Files of other areas whose switch to the transport API the lead applies; an entry must go
#: when its file is switched (the test says so).
PENDING: dict[str, set[str]] = {}


def imported_modules(source: str) -> tuple[set[str], bool]:
    """Top-level names of every module ``source`` imports (any depth: functions, ``try``), and
    whether it also imports a module named at run time."""
    names: set[str] = set()
    dynamic = False
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:  # relative imports stay inside dkproto
                names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name not in ("__import__", "import_module"):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value.split(".")[0])
            elif (isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant)
                  and str(arg.values[0].value).startswith("dkproto.")):
                names.add("dkproto")  # f"dkproto.schema.{name}": inside the package
            else:
                dynamic = True
    return names, dynamic


def violations(root: Path) -> list[str]:
    """Every import of a back end outside its transport, and every unlisted dynamic import."""
    out = []
    pending_seen: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        names, dynamic = imported_modules(path.read_text(encoding="utf-8"))
        for backend, modules in BACKENDS.items():
            bad = (names & modules) - EXCEPTIONS.get(rel, set())
            if bad and OWNERS[backend].fullmatch(rel) is None:
                if rel in PENDING and bad <= PENDING[rel]:
                    pending_seen.setdefault(rel, set()).update(bad)
                    continue
                out.append(f"{rel} imports {', '.join(sorted(bad))}: only the {backend} transport may")
        if dynamic and rel not in DYNAMIC_IMPORTS:
            out.append(f"{rel} imports a module named at run time: list it in DYNAMIC_IMPORTS with what it imports")
    for rel, modules in PENDING.items():
        if pending_seen.get(rel) != modules:
            out.append(f"{rel}: PENDING says it imports {sorted(modules)}, it imports "
                       f"{sorted(pending_seen.get(rel, set()))}: update PENDING")
    return out


def test_only_the_transports_import_their_back_ends() -> None:
    assert violations(PACKAGE) == []


def test_the_import_checker_reads_every_form() -> None:
    source = '''
import usb.core
from hidraw import device
import os, hid as h
def f():
    from libusb_package import find
    __import__("usb1")
    importlib.import_module("hid")
from functionfs import hid
from . import hid
from dkproto.transport import hid
importlib.import_module(f"dkproto.schema.{x}")
'''
    names, dynamic = imported_modules(source)
    assert names == {"usb", "hidraw", "os", "hid", "libusb_package", "usb1", "functionfs", "dkproto"}
    assert not dynamic
    assert imported_modules("importlib.import_module(name)")[1]
    assert imported_modules("__import__(name)")[1]


def test_the_usb_transport_is_split_by_job() -> None:
    """The async engine and enumeration live in their own modules; usb.py has the sync path."""
    source = (PACKAGE / "transport" / "usb.py").read_text()
    names, _ = imported_modules(source)
    assert "ctypes" not in names and "class _LibusbAsync" not in source and "def find_devices" not in source
    from dkproto.transport import usb, usb_async

    assert usb.find_devices is usb_enum.find_devices
    assert "LibusbAsync" in dir(usb_async)


# ------------------------------------------------------------------------------------- VID:PID


def test_one_vid_pid_parser() -> None:
    assert parse_device_id("1d6b:0104") == (0x1D6B, 0x0104, None)
    assert parse_device_id(" 0x1D50:0x6089 ") == (0x1D50, 0x6089, None)
    assert parse_device_id("1d50:") is None and parse_device_id("1d50:", pid_optional=True) == (0x1D50, None, None)
    assert parse_device_id("1d6b:0105:dklab-hid-mouse") is None
    assert parse_device_id("1d6b:0105:dklab-hid-mouse", serial=True) == (0x1D6B, 0x105, "dklab-hid-mouse")
    for bad in ("xyz", "1d50", "12345:1", "1d6b:0105:", "", ":1"):
        assert parse_device_id(bad, pid_optional=True, serial=True) is None, bad
    assert parse_vid_pid("1d6b:0104") == (0x1D6B, 0x104) and parse_vid_pid("1d6b:") is None
    # the HID specs are parsed by it
    assert parse_device_spec("hid:1d6b:0105:sn") == (None, 0x1D6B, 0x105, "sn")
    assert parse_device_spec("/dev/hidraw3") == ("/dev/hidraw3", 0, 0, None)
    assert is_device_spec("usb://1d6b:0105?interface=0") and is_device_spec("spy+sim://x")
    assert is_device_spec("0x046d:0xc077") and not is_device_spec("descriptors/mouse.json")


#: Modules that still have a VID:PID regex of their own, until the lead switches them to
#: parse_device_id (the entry must go then: the test says so).
VID_PID_PENDING: set[str] = set()


def test_no_second_vid_pid_regex() -> None:
    """A regex with two 1-to-4-digit hex groups around a colon is a VID:PID parser: url.py has THE one."""
    pattern = re.compile(r"\{1,4\}.*:.*\{1,4\}")
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.search(node.value):
                found.add(path.relative_to(PACKAGE).as_posix())
    assert found == {"transport/url.py", *VID_PID_PENDING}


# ----------------------------------------------------------------------------------- enumeration


def test_usb_enumeration_lives_with_the_usb_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    def dev(bus: int, address: int, ports: Any, vid: int, pid: int) -> SimpleNamespace:
        return SimpleNamespace(bus=bus, address=address, port_numbers=ports, idVendor=vid, idProduct=pid, speed=3,
                               bcdDevice=0x100, bDeviceClass=9 if not ports else 0, iManufacturer=1, iProduct=2,
                               iSerialNumber=0)

    devices = [dev(2, 5, [1, 4], 0x1D6B, 0x0104), dev(1, 1, None, 0x1D6B, 0x0002), dev(2, 3, [2], 0x046D, 0xC077)]
    monkeypatch.setattr(usb_enum, "pyusb_devices", lambda: devices)
    found = find_devices()
    assert [(d.bus, d.address) for d in found] == [(1, 1), (2, 3), (2, 5)]
    (one,) = find_devices(vid=0x1D6B, pid=0x0104)
    assert isinstance(one, UsbDeviceInfo)
    assert (one.url, one.port_path, one.vid_pid, one.speed_name) == ("usb://2/5", "2-1.4", "1d6b:0104", "high")
    assert one.sysfs_path == Path("/sys/bus/usb/devices/2-1.4")
    assert open_transport(one.url).info.bus == 2  # the URL names it
    assert find_devices(bus=1, address=1)[0].port_path == "usb1"

    def no_bus() -> list[Any]:
        raise OSError("no USB bus")

    monkeypatch.setattr(usb_enum, "pyusb_devices", no_bus)
    assert find_devices() == []


# ------------------------------------------------------------------------- HID over any transport

#: Mouse input report 1, output report 2 (Num/Caps Lock), feature report 3 (two vendor bytes).
RDESC = bytes.fromhex(
    "05010902a101"
    "8501 0509 19012903 15002501 75019503 8102 75059501 8101"
    "0501 0930 0931 1581257f 75089502 8106"
    "8502 0508 0901 0902 15002501 75019502 9102 75069501 9101"
    "8503 0600ff 0901 150026ff00 75089502 b102"
    "c0".replace(" ", ""))


CONFIG = config_for(RDESC)

class SimMouse(SimHid):
    """A HID mouse on ``sim://``."""

    RDESC = RDESC
    PRODUCT = "sim mouse"


def test_descriptors_through_control_transfers() -> None:
    with SimTransport(SimMouse()) as t:
        config = active_configuration(t)
        assert config == CONFIG and [d[1] for d in iter_descriptors(config)] == [2, 4, 0x21, 5, 5]
        found = hid_interface(t, 0)
        assert (found.bInterfaceClass, found.report_descriptor_length) == (3, len(RDESC))
        assert (found.in_endpoint, found.out_endpoint) == (0x81, 0x02)
        assert t.report_descriptor() == RDESC


def test_hid_device_is_a_codec_on_any_transport() -> None:
    sim = SimMouse()
    codec = DescriptorCodec(parse(RDESC))
    log: list[str] = []
    transport = SpyTransport(SimTransport(sim, interface=0), sink=log.append)
    with HidDevice(transport) as dev:
        assert transport.is_open and dev.descriptor.data == RDESC
        assert any("report_descriptor" in line for line in log)  # through the spy, like every call
        report = codec.build({"Button 2": 1, "X": -3, "Y": 7}, report_id=1)
        sim.queue_in(0x81, b"")  # a zero-length packet is not a report
        sim.queue_in(0x81, report)
        assert dev.read(500) == report
        sim.queue_in(0x81, report)
        assert dev.read_values(500)["Y"] == 7
        with pytest.raises(DkTimeoutError):
            dev.read(50)
        sent = dev.write_values(2, {"Caps Lock": 1})
        assert sent == b"\x02\x02" and sim.outputs == [b"\x02\x02"]  # interrupt OUT
        assert dev.get_feature(3) == b"\x03\x10\x20"
        key = dev.codec.codec("feature", 3).keys[0]
        assert dev.get_feature_values(3)[key] == [0x10, 0x20]
        assert dev.set_feature_values(3, {key: [1, 2]}) == b"\x03\x01\x02"
        assert sim.features[3] == b"\x03\x01\x02"
    assert not transport.is_open  # opened here: closed here
    with pytest.raises(NotOpenError):
        dev.read(10)


def test_hid_device_by_sim_url_keeps_a_given_open_transport() -> None:
    with HidDevice(f"sim://{__name__}:SimMouse?interface=0") as dev:
        assert dev.path.startswith("sim://") and dev.interface == 0
        assert dev.report_descriptor_bytes() == RDESC
    t = open_transport(f"sim://{__name__}:SimMouse", open=True)
    with HidDevice(t) as dev:
        assert dev.codec.codec("input", 1).keys
    assert t.is_open  # given open: left open
    with pytest.raises(UnsupportedError):  # interface 0 is HID; a non-HID interface is refused
        SimTransport(SimDevice(DEVICE, [CONFIG.replace(bytes([9, 4, 0, 0, 2, 3]), bytes([9, 4, 0, 0, 2, 0xFF]))],
                               report_descriptors={0: RDESC}), interface=0).open().report_descriptor()
    t.close()


# -------------------------------------------------------------------- hid:// on a stand-in hidapi


class FakeHidapiDevice:
    """What cython-hidapi's ``device`` offers, over in-memory devices."""

    def __init__(self, devices: dict[str, dict[str, Any]]) -> None:
        self.devices = devices
        self.state: dict[str, Any] | None = None

    def open_path(self, path: bytes) -> None:
        if path.decode() not in self.devices:
            raise OSError("open failed")
        self.state = self.devices[path.decode()]

    def read(self, n: int, timeout_ms: int) -> list[int]:
        assert self.state is not None
        return list(self.state["inputs"].pop(0)[:n]) if self.state["inputs"] else []

    def write(self, buf: bytes) -> int:
        assert self.state is not None
        self.state["written"].append(bytes(buf))
        return len(buf)

    def get_feature_report(self, report_id: int, n: int) -> list[int]:
        assert self.state is not None
        return list(self.state["features"][report_id][:n])

    def send_feature_report(self, buf: bytes) -> int:
        assert self.state is not None
        self.state["features"][buf[0]] = bytes(buf)
        return len(buf)

    def get_report_descriptor(self) -> list[int]:
        assert self.state is not None
        return list(self.state["rdesc"])

    def error(self) -> str:
        return ""

    def close(self) -> None:
        self.state = None


@pytest.fixture
def fake_hidapi(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    devices: dict[str, dict[str, Any]] = {}
    for n, serial in enumerate(("one", "two")):
        devices[f"/dev/hidraw{n}"] = {"rdesc": RDESC, "inputs": [], "written": [], "features": {3: b"\x03\x05\x06"},
                                      "entry": {"path": f"/dev/hidraw{n}".encode(), "vendor_id": 0x1209,
                                                "product_id": 0x7001, "serial_number": serial,
                                                "manufacturer_string": "dkproto", "product_string": "mouse",
                                                "usage_page": 1, "usage": 2, "interface_number": 0,
                                                "release_number": 0x100, "bus_type": 1}}

    def hid_enumerate(vid: int = 0, pid: int = 0) -> list[dict[str, Any]]:
        return [d["entry"] for d in devices.values()
                if vid in (0, d["entry"]["vendor_id"]) and pid in (0, d["entry"]["product_id"])]

    module = SimpleNamespace(enumerate=hid_enumerate, device=lambda: FakeHidapiDevice(devices))
    monkeypatch.setattr(hid_transport, "hidapi_module", lambda: module)
    return devices


def test_hid_device_over_hidapi(fake_hidapi: dict[str, dict[str, Any]]) -> None:
    with HidDevice("1209:7001:two") as dev:
        assert dev.path == "/dev/hidraw1" and dev.transport.info.serial_number == "two"
        assert dev.descriptor.data == RDESC
        fake_hidapi["/dev/hidraw1"]["inputs"].append(b"\x01\x02\xfd\x07")
        assert dev.read(100) == b"\x01\x02\xfd\x07"
        with pytest.raises(DkTimeoutError):
            dev.read(10)
        assert dev.write_values(2, {"Num Lock": 1}) == b"\x02\x01"
        assert fake_hidapi["/dev/hidraw1"]["written"] == [b"\x02\x01"]  # hid_write, ID byte first
        assert dev.get_feature(3) == b"\x03\x05\x06"
        assert dev.set_feature(b"\x03\x09\x09") == 3
        assert fake_hidapi["/dev/hidraw1"]["features"][3] == b"\x03\x09\x09"
    with open_transport("hid:///dev/hidraw0") as t:
        assert t.get_report(HID_REPORT_FEATURE, 3, 2) == b"\x05\x06"  # payload without the ID byte
        assert t.report_descriptor() == RDESC
        with pytest.raises(UnsupportedError):
            t.control_transfer(0x80, 6, 0x100, 0, 18)
    with pytest.raises(NoDeviceError):
        HidDevice("/dev/hidraw9")
    with pytest.raises(NoDeviceError, match="no HID device matches"):
        HidDevice("1209:7001:three")


def test_hid_report_descriptor_falls_back_to_sysfs_in_the_transport_only(
        fake_hidapi: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """hid:// reads the hidraw node's sysfs report_descriptor when hidapi's call fails; IOHIDInterface
    has no fallback of its own (it calls Transport.report_descriptor)."""
    from dkproto.iokit.hid import IOHIDInterface

    def broken() -> list[int]:
        raise OSError("get_report_descriptor failed")

    with open_transport("hid:///dev/hidraw0") as t:
        monkeypatch.setattr(t.dev, "get_report_descriptor", broken)  # type: ignore[attr-defined]
        monkeypatch.setattr(hid_transport, "SYSFS_HIDRAW", tmp_path)
        with pytest.raises(DkError, match="get_report_descriptor failed"):
            t.report_descriptor()  # no sysfs file: hidapi's error
        (tmp_path / "hidraw0" / "device").mkdir(parents=True)
        (tmp_path / "hidraw0" / "device" / "report_descriptor").write_bytes(RDESC)
        assert t.report_descriptor() == RDESC
        monkeypatch.setattr(t.dev, "get_report_descriptor", lambda size: [])  # type: ignore[attr-defined]
        assert t.report_descriptor() == RDESC  # another signature: TypeError, sysfs too
        nub = IOHIDInterface.from_transport(t)
        try:
            assert nub.report_descriptor == RDESC
        finally:
            nub.stop(None)


def test_hid_cli_through_the_transport(fake_hidapi: dict[str, dict[str, Any]]) -> None:
    from dkproto.cli import cli

    r = CliRunner().invoke(cli, ["hid", "list", "--json"])
    assert r.exit_code == 0, r.output
    listed = json.loads(r.output)
    assert [d["path"] for d in listed] == ["/dev/hidraw0", "/dev/hidraw1"] and listed[0]["bus_type"] == "usb"
    r = CliRunner().invoke(cli, ["hid", "get-feature", "/dev/hidraw0", "3", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["raw"] == "030506"
    r = CliRunner().invoke(cli, ["hid", "parse", "1209:7001", "--format", "json"])
    assert r.exit_code == 0 and len(json.loads(r.output)["reports"]) == 3
    r = CliRunner().invoke(cli, ["hid", "parse", f"sim://{__name__}:SimMouse", "--format", "json"])
    assert r.exit_code == 0 and len(json.loads(r.output)["reports"]) == 3
