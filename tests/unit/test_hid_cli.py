"""dkproto hid ... through click's CliRunner (pure commands; device commands are lab tests)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from hid_corpus import HID_DIR

from dkproto.cli import cli, main

MOUSE_JSON = str(HID_DIR / "sunplus-usb-optical-mouse.json")
FOOTSWITCH = str(HID_DIR / "pcsensor-footswitch.json")
JSON_KEYS = {"report_type", "report_id", "bit_offset", "report_size", "report_count", "logical_minimum",
             "logical_maximum", "physical_minimum", "physical_maximum", "unit", "unit_exponent", "flags",
             "usages", "collection"}


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["hid", *args])
    return r.exit_code, r.output


def test_parse_text_lists_items_with_bytes_then_layouts() -> None:
    code, out = run("parse", MOUSE_JSON)
    assert code == 0
    assert "   46: 09 30               Usage (X)" in out
    assert "input report 1: 7 bytes" in out
    assert "bit     8   12x2    Var X, Y  [Data,Var,Rel]  logical -2047..2047" in out


def test_parse_json_has_exactly_the_issue_keys() -> None:
    code, out = run("parse", MOUSE_JSON, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    fields = [f for r in doc["reports"] for f in r["fields"]]
    assert all(set(f) == JSON_KEYS for f in fields)
    x = fields[2]
    assert (x["report_id"], x["bit_offset"], x["report_size"], x["report_count"]) == (1, 8, 12, 2)
    assert [u["name"] for u in x["usages"]] == ["Generic Desktop / X", "Generic Desktop / Y"]
    assert x["flags"][:3] == ["Data", "Variable", "Relative"]
    assert x["collection"] == ["Application(Generic Desktop / Mouse)", "Physical(Generic Desktop / Pointer)"]


def test_decode_recorded_and_given_reports() -> None:
    code, out = run("decode", "-d", FOOTSWITCH)
    assert code == 0 and "Keyboard/Keypad=[Keyboard B]" in out
    code, out = run("decode", "-d", MOUSE_JSON, "01 05 ff 0f 00 01 ff", "--physical")
    assert code == 0 and "Button 1=1" in out and "X=-1" in out and "AC Pan=-1" in out
    code, out = run("decode", "-d", MOUSE_JSON, "--json", "0105ff0f0001ff")
    assert json.loads(out)["values"]["Wheel"] == 1


def test_lint_exit_status(tmp_path: Path) -> None:
    code, out = run("lint", str(HID_DIR / "mistel-md770-keyboard.json"))
    assert code == 0 and "HID026" in out
    bad = tmp_path / "bad.hex"
    bad.write_text("05 01 09 02 a1 01 c0 c0")
    code, out = run("lint", str(bad))
    assert code == 1 and "offset 7: error HID001" in out


def test_usages_page() -> None:
    code, out = run("usages", "generic desktop")
    assert code == 0 and "0x0030  X" in out
    code, out = run("usages", "0x09")
    assert "Button N (generated)" in out


def test_user_errors_are_one_line(capsys) -> None:
    import pytest

    with pytest.raises(SystemExit) as ei:
        main(["hid", "decode", "-d", MOUSE_JSON, "0902"])  # no input report 9
    err = capsys.readouterr().err
    assert ei.value.code == 1
    assert err.count("\n") == 1 and "no input report with ID 9" in err and "Traceback" not in err
    code, out = run("decode", "-d", MOUSE_JSON, "0105")
    assert code == 0 and "5 byte(s) short" in out
