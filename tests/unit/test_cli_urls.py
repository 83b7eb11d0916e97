"""URLs everywhere: every CLI verb that takes a device takes a transport URL, ``spy+`` included.

* ``dkproto dump sim://FILE`` prints what ``dkproto dump FILE`` prints, in every format, for every
  set in ``descriptors/``: the only difference is how the dump names where it came from (the
  header line of text and hex; JSON's ``source`` and the keys that describe the origin);
* ``-d``/``-s`` are sugar for the devices' ``usb://BUS/ADDRESS`` URLs, with the one VID:PID parser;
* ``spy+`` shows the transfers of dump, ctrl, read, write, serial, hid, match and run on stderr.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sim_hid import DEVICE, SimHid, config_for
from usb_corpus import REPO

from dkproto.cli import cli, main
from dkproto.cli.dump import parse_device_selector
from dkproto.errors import BadArgumentError
from dkproto.hid.codec import DescriptorCodec
from dkproto.hid.parser import parse
from dkproto.transport.base import TransportInfo
from dkproto.transport.sim import SimDevice, SimTransport, loopback_device

LIB = REPO / "descriptors"
SETS = sorted(p.name for p in LIB.glob("*.json"))
FORMATS = ("text", "json", "hex")

#: The JSON keys that say where a dump came from. A file's are its provenance, kept from the
#: corpus file (docs/json-format.md); a read through a URL has ``source`` (the URL) and ``meta``
#: (notes on the pieces the device did not give: a STALLed string 0, BOS, hub or report descriptor).
FILE_ORIGIN_KEYS = {"source", "name", "vid", "pid", "kind", "notes", "quirky", "provenance", "meta"}
URL_ORIGIN_KEYS = {"source", "meta"}
READ_NOTES = {"bos_error", "hub_descriptor_error", "device_qualifier_error", "other_speed_error", "strings_error",
              "hid_report_errors"}


def invoke(*args: str) -> tuple[int, str, str]:
    """The CLI through click's runner, as ``main`` would end (a DkError: one line, exit 1)."""
    result = CliRunner().invoke(cli, list(args), obj={})
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        one_line = getattr(exc, "one_line", None)
        if one_line is None:
            raise exc
        return 1, result.stdout, result.stderr + f"dkproto: {one_line()}\n"
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository, so that ``descriptors/NAME`` and ``sim://descriptors/NAME`` resolve."""
    monkeypatch.chdir(REPO)
    return REPO


# ------------------------------------------------------------------ dump sim://FILE == dump FILE


def _split_header(out: str) -> tuple[str, str]:
    """(the header line naming the source, everything after it)."""
    head, _, rest = out.partition("\n")
    return head, rest


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", SETS)
def test_dump_sim_url_is_dump_file(in_repo: Path, name: str, fmt: str) -> None:
    path = f"descriptors/{name}"
    url = f"sim://{path}"
    file_code, file_out, file_err = invoke("dump", path, "--format", fmt)
    url_code, url_out, url_err = invoke("dump", url, "--format", fmt)
    assert file_out and (url_code, url_err.replace(url, path)) == (file_code, file_err)
    corpus = json.loads((LIB / name).read_text())
    if fmt == "json":
        from_file, from_url = json.loads(file_out), json.loads(url_out)
        assert from_file["source"] == path and from_url["source"] == url
        for key in FILE_ORIGIN_KEYS & set(from_file) - {"source", "meta"}:  # the corpus file's own keys
            assert from_file[key] == corpus["source" if key == "provenance" else key], key
        assert set(from_url.get("meta", {})) <= READ_NOTES
        file_rest = [(k, v) for k, v in from_file.items() if k not in FILE_ORIGIN_KEYS]
        url_rest = [(k, v) for k, v in from_url.items() if k not in URL_ORIGIN_KEYS]
        assert url_rest == file_rest  # bytes, extras, strings, report descriptors, the decoded tree, in order
        return
    file_head, file_rest_text = _split_header(file_out)
    url_head, url_rest_text = _split_header(url_out)
    if fmt == "text":
        assert file_head == f"# {path}" + (f": {corpus['name']}" if corpus.get("name") else "")
        assert url_head == f"# {url}"
    else:
        assert (file_head, url_head) == (f"# dkproto descriptors: {path}", f"# dkproto descriptors: {url}")
    assert url_rest_text == file_rest_text


def test_dump_spy_shows_the_get_descriptor_requests(in_repo: Path) -> None:
    code, out, err = invoke("dump", "spy+sim://descriptors/hackrf-one.json")
    assert code == 0
    plain = invoke("dump", "sim://descriptors/hackrf-one.json")[1]
    assert out == plain  # spy+ only watches: the dump names the device, not the wrapper
    requests = re.findall(r"> control_transfer bmRequestType=(0x\w+) bRequest=(0x\w+) wValue=(0x\w+) "
                          r"wIndex=(0x\w+) data_or_wLength=(\d+)", err)
    assert requests[:3] == [("0x80", "0x06", "0x100", "0x00", "18"),       # device
                            ("0x80", "0x06", "0x200", "0x00", "9"),        # configuration 0, head
                            ("0x80", "0x06", "0x200", "0x00", "32")]       # then wTotalLength
    assert ("0x80", "0x06", "0x300", "0x00", "255") in requests           # string 0 (STALLs: no strings)
    assert "< control_transfer 18 bytes" in err and "0000  12 01 00 02" in err
    assert "! control_transfer" in err and "kUSBHostReturnPipeStalled" in err


def test_dump_url_errors_are_one_line(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args, words in ((["serial+loop://"], "dump reads descriptors with control transfers, which serial://"),
                        (["sim://descriptors/no-such.json"], "no profile, module or file"),
                        (["usb://nope"], "expected usb://VID:PID"),
                        (["sim://loopback", "-d", "1d50:6089"], "give either a FILE or URL, or -d/-s")):
        with pytest.raises(SystemExit) as exc:
            main(["dump", *args])
        err = capsys.readouterr().err
        assert exc.value.code == 1 and err.count("\n") == 1 and words in err, err


def test_dump_loopback_profile_and_json_source() -> None:
    code, out, _ = invoke("dump", "sim://loopback", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["source"] == "sim://loopback" and doc["descriptors"][0]["fields"]["idVendor"] == 0x1209
    assert doc["strings"]  # the profile has strings: read in every LANGID
    code, out, _ = invoke("dump", "sim://loopback")
    assert "iProduct                    2  sim loopback" in out and "'sim loopback'" in out


# --------------------------------------------------------------- -d / -s: sugar for usb://BUS/ADDRESS


def _usb_like(path: Path, bus: int, address: int) -> SimTransport:
    """A sim device that says it is ``usb://BUS/ADDRESS`` (what the USB transport's info says)."""

    class UsbLike(SimTransport):
        @property
        def info(self) -> TransportInfo:
            return dataclasses.replace(super().info, url=f"usb://{bus}/{address}", scheme="usb", bus=bus,
                                       address=address)

    return UsbLike(SimDevice.from_file(path))


def test_selectors_are_sugar_for_the_usb_url(monkeypatch: pytest.MonkeyPatch) -> None:
    import dkproto.transport
    import dkproto.transport.usb
    from dkproto.transport.usb import UsbDeviceInfo

    opened: list[str] = []

    def fake_open(url: str, **_: Any) -> SimTransport:
        opened.append(url)
        return _usb_like(LIB / "hackrf-one.json", 1, 7)

    found = [UsbDeviceInfo(bus=1, address=7, port_numbers=(2,), idVendor=0x1D50, idProduct=0x6089, speed=3)]
    asked: list[dict[str, Any]] = []

    def fake_find(**kw: Any) -> list[UsbDeviceInfo]:
        asked.append(kw)
        return found

    monkeypatch.setattr(dkproto.transport, "open_transport", fake_open)
    monkeypatch.setattr(dkproto.transport.usb, "find_devices", fake_find)
    by_slot = invoke("dump", "-s", "1:7")
    by_id = invoke("dump", "-d", "0x1D50:6089")
    by_url = invoke("dump", "usb://1/7")
    assert asked == [{"vid": None, "pid": None, "bus": 1, "address": 7},
                     {"vid": 0x1D50, "pid": 0x6089, "bus": None, "address": None}]
    assert opened == ["usb://1/7"] * 3
    assert by_slot == by_id == by_url
    header = "Bus 001 Device 007: ID 1d50:6089 OpenMoko, Inc. Great Scott Gadgets HackRF One SDR"
    assert by_url[1].splitlines()[:2] == ["# usb://1/7", header]
    slot_json = json.loads(invoke("dump", "-s", "1:7", "--format", "json")[1])
    url_json = json.loads(invoke("dump", "usb://1/7", "--format", "json")[1])
    assert slot_json["source"] == url_json["source"] == "usb://1/7"
    # what the bus enumeration adds to the read: the port path, libusb's speed code, how it was read
    assert slot_json.pop("meta") == {**url_json.pop("meta"), "port_path": "1-2", "speed": 3, "read_from": "libusb"}
    assert slot_json == url_json


def test_one_vid_pid_parser_for_selectors(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_device_selector(" 0x1D50:0x6089 ") == (0x1D50, 0x6089)
    assert parse_device_selector("1d50:") == (0x1D50, None)
    for bad in ("1d50:6089:serial", ":6089", "1d50"):
        with pytest.raises(BadArgumentError):
            parse_device_selector(bad)
    with pytest.raises(SystemExit) as exc:
        main(["list", "-d", "nope"])
    assert exc.value.code == 1 and "-d 'nope': expected VID:[PID] in hex" in capsys.readouterr().err


def test_cli_has_no_vid_pid_regex_of_its_own() -> None:
    pattern = re.compile(r"\{1,4\}.*:.*\{1,4\}")
    for path in sorted((REPO / "dkproto" / "cli").glob("*.py")):
        assert not pattern.search(path.read_text()), path


# ----------------------------------------------------------------- ctrl, read, write, serial with spy+


LOOP_URL = f"sim://{__name__}:LOOP"
LOOP = loopback_device()


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> SimDevice:
    device = loopback_device()
    monkeypatch.setattr(sys.modules[__name__], "LOOP", device)
    return device


def test_spy_in_ctrl_read_write(loop: SimDevice) -> None:
    code, out, err = invoke("ctrl", f"spy+{LOOP_URL}", "0x80", "6", "0x100", "0", "18", "--hex")
    assert code == 0 and out.startswith("12 01 00 02")
    assert "> control_transfer bmRequestType=0x80 bRequest=0x06 wValue=0x100" in err
    code, out, err = invoke("write", f"spy+{LOOP_URL}", "0x02", "41 42")
    assert code == 0 and "> write endpoint=0x02" in err and "|AB|" in err
    code, out, err = invoke("read", f"spy+{LOOP_URL}", "0x81", "16", "--hex")
    assert code == 0 and out.strip() == "41 42" and "< read 2 bytes" in err


def test_spy_in_serial() -> None:
    code, out, err = invoke("serial", "send", "spy+serial+loop://", "hi", "--ascii", "--read", "200", "--json")
    assert code == 0 and json.loads(out)["received"] == b"hi".hex()
    assert "> write" in err and "< read 2 bytes" in err and "|hi|" in err


# ---------------------------------------------------------------------------------------- hid


#: A keyboard: input report 1 (8 modifier bits, one key), output report 2 (Num and Caps Lock LEDs),
#: feature report 3 (two vendor bytes).
RDESC = bytes.fromhex(
    "05010906a101"
    "8501 0507 19e029e7 15002501 75019508 8102 95017508 150026ff00 19002aff00 8100"  # input 1
    "8502 0508 09010902 15002501 75019502 9102 75069501 9101"                         # output 2
    "8503 0600ff 0901 150026ff00 75089502 b102"                                      # feature 3
    "c0".replace(" ", ""))


CONFIG = config_for(RDESC)

class Keyboard(SimHid):
    """A HID keyboard on ``sim://``."""

    RDESC = RDESC
    PRODUCT = "sim keyboard"


KEYBOARD = Keyboard()
KEYBOARD_URL = f"sim://{__name__}:KEYBOARD"


@pytest.fixture
def keyboard(monkeypatch: pytest.MonkeyPatch) -> Keyboard:
    device = Keyboard()
    monkeypatch.setattr(sys.modules[__name__], "KEYBOARD", device)
    return device


def test_the_keyboard_is_a_valid_hid_device() -> None:
    assert len(DEVICE) == 18 and DEVICE[1] == 1
    codec = DescriptorCodec(parse(RDESC))
    assert codec.codec("input", 1).keys and codec.codec("output", 2).keys and codec.codec("feature", 3).keys


@pytest.mark.parametrize("wrap", ["", "spy+"])
def test_hid_verbs_take_urls(keyboard: Keyboard, wrap: str) -> None:
    url = wrap + KEYBOARD_URL
    keyboard.queue_in(0x81, b"\x01\x00\x04")  # report 1: no modifier, key 0x04 (a)
    keyboard.queue_in(0x81, b"\x01\x02\x04")  # Left Shift too
    code, out, err = invoke("hid", "watch", url, "-n", "2", "--json")
    assert code == 0, err
    reports = [json.loads(line) for line in out.splitlines()]
    assert [r["report_id"] for r in reports] == [1, 1] and reports[1]["changed"]
    assert not wrap or "> read endpoint=0x81" in err
    code, out, err = invoke("hid", "get-feature", url, "3", "--json")
    assert code == 0 and json.loads(out)["raw"] == "031020"
    assert not wrap or "> get_report report_type=2 report_id=3" in err
    key = DescriptorCodec(parse(RDESC)).codec("feature", 3).keys[0]
    code, out, err = invoke("hid", "set-feature", url, "3", f"{key}=1,2")
    assert code == 0 and out.strip() == "sent feature report 3: 030102" and keyboard.features[3] == b"\x03\x01\x02"
    assert not wrap or "> set_report report_type=2 report_id=3" in err
    code, out, err = invoke("hid", "write", url, "2", "Caps Lock=1")
    assert code == 0 and keyboard.outputs == [b"\x02\x02"]
    assert not wrap or "> write endpoint=0x02" in err
    code, out, err = invoke("hid", "parse", url, "--format", "json")
    assert code == 0 and len(json.loads(out)["reports"]) == 3
    assert not wrap or "> report_descriptor" in err


VB = REPO / "devices" / "vendor-bulk"


def _verdicts(out: str) -> list[str]:
    """The report without the lines naming a device."""
    return [line for line in out.splitlines() if not line.startswith("device ")]


def test_match_takes_urls_among_the_files(in_repo: Path) -> None:
    plist = str(VB / "Info.plist")
    code, by_file, _ = invoke("match", plist, "descriptors/hackrf-one.json")
    assert code == 0
    code, by_url, err = invoke("match", plist, "spy+sim://descriptors/hackrf-one.json")
    assert code == 0 and _verdicts(by_url) == _verdicts(by_file)
    assert "> control_transfer bmRequestType=0x80 bRequest=0x06 wValue=0x100" in err
    code, out, _ = invoke("match", plist, "sim://loopback", "descriptors/hackrf-one.json", "--json")
    doc = json.loads(out)
    assert code == 0 and json.dumps(doc).count("sim://loopback") >= 1
    code, out, _ = invoke("match", plist, "sim://loopback", "--device", "sim://loopback")
    assert out.count("VendorBulkDriver: MATCH") == 2


def test_run_device_url_with_spy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "app.py"
    app.write_text("def main(service):\n    return 0\n")
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(["run", str(VB / "driver.py"), "--device", "spy+sim://loopback", "--app", str(app)]))
    err = capsys.readouterr().err
    assert not exc.value.code, err
    assert "matched IOUSBHostInterface #0" in err
    assert "sim://loopback > claim_interface bInterfaceNumber=0" in err
    assert "sim://loopback > control_transfer bmRequestType=0x80 bRequest=0x06 wValue=0x100" in err
