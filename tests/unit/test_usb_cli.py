"""``dkproto dump`` and ``dkproto list`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from usb_corpus import REPO, corpus_bytes

from dkproto.cli import cli, main
from dkproto.cli.dump import parse_device_selector, parse_slot_selector
from dkproto.errors import BadArgumentError

LIB = REPO / "descriptors"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    # what the console script does: sys.exit(main())
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(list(args)))
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def test_dump_text_from_library_without_extension() -> None:
    res = run("dump", str(LIB / "hackrf-one"))
    assert res.exit_code == 0, res.output
    assert "idVendor               0x1d50  OpenMoko, Inc." in res.output
    assert "bEndpointAddress         0x81  EP 1 IN" in res.output
    assert "wMaxPacketSize         0x0200  1x 512 bytes" in res.output


def test_dump_json_and_reload(tmp_path: Path) -> None:
    res = run("dump", str(LIB / "ksoloti-core-uac2-midi.json"), "--format", "json")
    assert res.exit_code == 0
    obj = json.loads(res.output)
    assert obj["format"] == "dkproto-descriptors"
    cfg = obj["descriptors"][1]
    assert cfg["descriptor"] == "configuration"
    assert cfg["children"][0]["descriptor"] == "interface_association"
    assert cfg["children"][0]["children"][0]["fields"]["bInterfaceClass"] == 1
    saved = tmp_path / "k.json"
    saved.write_text(res.output)
    again = run("dump", str(saved), "--format", "hex")
    assert again.exit_code == 0
    data, _ = corpus_bytes("ksoloti-core-uac2-midi")
    hexed = "".join(line.split("#")[0] for line in again.output.splitlines() if not line.startswith(("[", "#")))
    assert bytes.fromhex(hexed) == data


def test_dump_hex_one_descriptor_a_line() -> None:
    res = run("dump", str(LIB / "hackrf-one"), "--format", "hex")
    assert res.exit_code == 0
    assert "  09 04 00 00 02 ff ff ff 00" in res.output
    assert "# @001b Interface Descriptor 0.0" in res.output


def test_missing_file_one_line_nonzero(capsys) -> None:
    code, _out, err = run_main(capsys, "dump", "descriptors/no-such-device")
    assert code == 1
    assert err.strip().splitlines() == [
        ("dkproto: descriptors/no-such-device: no such file (also tried no-such-device.json) "
        "[kIOReturnNotFound (0xe00002f0)]")]


def test_bad_format_file_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _out, err = run_main(capsys, "dump", str(bad))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "not valid JSON" in err


def test_malformed_input_prints_what_parsed_then_errors(tmp_path: Path, capsys) -> None:
    data, _ = corpus_bytes("hackrf-one")
    broken = bytearray(data)
    broken[27] = 7  # interface bLength 9 -> 7
    path = tmp_path / "broken.bin"
    path.write_bytes(bytes(broken))
    code, out, err = run_main(capsys, "dump", str(path))
    assert code == 1
    assert "Device Descriptor:" in out and "Configuration Descriptor:" in out
    lines = err.strip().splitlines()
    assert lines and all(line.startswith(f"dkproto: error: {path}: offset ") for line in lines)
    assert any("bLength 7 < 9 required by Interface Descriptor" in line for line in lines)


def test_quirky_device_warns_but_exits_zero(capsys) -> None:
    code, _out, err = run_main(capsys, "dump", str(LIB / "espressif-tinyusb-msc-esp32s3"))
    assert code == 0
    assert "dkproto: warning:" in err and "has no Interface Association Descriptor" in err


def test_no_device_dumps_embedded_example(monkeypatch, capsys) -> None:
    import dkproto.cli.dump as dump_mod

    monkeypatch.setattr(dump_mod, "iter_live", lambda *a: iter(()))
    code, out, err = run_main(capsys, "dump")
    assert code == 0
    assert err.strip().splitlines() == [
        ("dkproto: no USB device attached; showing the embedded example (real captures: dkproto dump "
        "descriptors/<name>)")]
    assert out.splitlines()[0].startswith("# embedded example (no device attached): Ksoloti Core")
    assert "Interface Association Descriptor:" in out


def test_selectors_that_match_nothing(monkeypatch, capsys) -> None:
    import dkproto.cli.dump as dump_mod

    monkeypatch.setattr(dump_mod, "iter_live", lambda *a: iter(()))
    code, _out, err = run_main(capsys, "dump", "-d", "1d50:6089")
    assert code == 1 and "no USB device matches -d 1d50:6089" in err


def test_selector_grammar() -> None:
    assert parse_device_selector("1d50:6089") == (0x1D50, 0x6089)
    assert parse_device_selector("1d50:") == (0x1D50, None)
    assert parse_slot_selector("1:4") == (1, 4)
    assert parse_slot_selector("1:") == (1, None)
    assert parse_slot_selector("4") == (None, 4)
    for bad in ("xyz", "1d50", "12345:1"):
        with pytest.raises(BadArgumentError):
            parse_device_selector(bad)
    with pytest.raises(BadArgumentError):
        parse_slot_selector("a:b")


def test_list_json_runs_without_devices() -> None:
    res = run("list", "--json")
    assert res.exit_code == 0
    assert isinstance(json.loads(res.output), list)


def test_several_live_devices_dump_as_a_json_array(monkeypatch, capsys) -> None:
    import dkproto.cli.dump as dump_mod
    from dkproto.usb import load

    sets = [load(LIB / "hackrf-one"), load(LIB / "silabs-cp210x")]
    monkeypatch.setattr(dump_mod, "iter_live", lambda *a: iter(sets))
    code, out, _err = run_main(capsys, "dump", "--format", "json")
    assert code == 0
    objs = json.loads(out)
    assert [o["descriptors"][0]["fields"]["idVendor"] for o in objs] == [0x1D50, 0x10C4]
    code, out, _err = run_main(capsys, "dump")
    assert out.count("Device Descriptor:") == 2
