"""Lab device definitions: the shipped ones load, and bad ones fail with one precise line."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dkproto.errors import BadArgumentError, NotFoundError
from dkproto.lab.devices import attr_bytes, load_definition, load_definitions, parse_definition, select

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "devices" / "lab"

GADGET: dict[str, Any] = {
    "name": "t-hid",
    "kind": "gadget",
    "device": {"idVendor": "0x1d6b", "idProduct": "0x0104"},
    "strings": {"product": "t"},
    "functions": {"hid.0": {"attrs": {"report_length": 8, "report_desc": {"hex": "05 01 09 06"}}}},
    "configs": [{"functions": ["hid.0"], "MaxPower": 100}],
}


def test_every_shipped_definition_loads() -> None:
    defs = load_definitions([LAB])
    assert len(defs) >= len(list(LAB.glob("*.json")))  # plus devices/*/gadget.json
    kinds = {d.kind for d in defs.values()}
    assert {"qemu", "gadget"} <= kinds
    for name in ("qemu-usb-kbd", "qemu-usb-mouse", "qemu-usb-tablet", "hid-keyboard", "cdc-acm", "loopback",
                 "sourcesink", "composite-iad", "mass-storage", "ffs-vendor", "ffs-hid"):
        assert name in defs, name
    for d in defs.values():
        assert d.expect, f"{d.name} names no vvvv:pppp to wait for"


def test_hid_gadgets_carry_corpus_report_descriptors() -> None:
    defs = load_definitions([LAB])
    hids = [d for d in defs.values() if d.name.startswith("hid-")]
    assert len(hids) >= 4
    for d in hids:
        desc = attr_bytes(d.spec["functions"]["hid.0"]["attrs"]["report_desc"], d)
        assert desc[0] in (0x05, 0x06) and desc[-1] == 0xC0, d.name
        assert d.spec["source"]["corpus"].startswith("hid/")


def test_gadget_implies_function_modules_and_expect() -> None:
    d = parse_definition(GADGET)
    assert d.modules == ("usb_f_hid",)
    assert d.expect == ("1d6b:0104",)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda g: g.pop("kind"), "kind: None is not one of"),
        (lambda g: g.update(name="Bad Name"), "name: 'Bad Name'"),
        (lambda g: g["device"].pop("idProduct"), "device.idProduct: required"),
        (lambda g: g["device"].update(idVendor="0x10000"), "device.idVendor: 65536 is not in 0..0xffff"),
        (lambda g: g["device"].update(bDeviceSubclass=0), "device.bDeviceSubclass: unknown field"),
        (lambda g: g.update(functions={"nope.0": {}}), "functions.nope.0: name must be TYPE.INSTANCE"),
        (lambda g: g["configs"][0].update(functions=["acm.0"]), "configs[0].functions: 'acm.0' is not in"),
        (lambda g: g["functions"]["hid.0"]["attrs"].update(report_desc={"hex": "zz"}), "bad hex"),
        (lambda g: g["functions"]["hid.0"].update(steps=[{"symlink": "a"}]), "a symlink step needs 'to'"),
        (lambda g: g.update(functions={"ffs.x": {}}, configs=[{"functions": ["ffs.x"]}]), "needs 'program'"),
        (lambda g: g.update(expect=["1D6B:0104"]), "expect: a list of 'vvvv:pppp'"),
        (lambda g: g.update(colour="red"), "colour: unknown key"),
        (lambda g: g["configs"][0].update(MaxPower=900), "configs[0].MaxPower: 900 is not in 0..0x1f4"),
    ],
)
def test_bad_definitions_name_the_key_and_rule(mutate: Any, message: str) -> None:
    g = copy.deepcopy(GADGET)
    mutate(g)
    with pytest.raises(BadArgumentError) as exc:
        parse_definition(g, "my.json")
    assert str(exc.value).startswith("my.json: ")
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_qemu_and_capture_shapes() -> None:
    q = parse_definition({"name": "q", "kind": "qemu", "qemu": ["-device", "usb-kbd,bus={bus}"], "expect": ["0627:0001"]})
    assert q.qemu_args == ["-device", "usb-kbd,bus={bus}"]
    with pytest.raises(BadArgumentError, match="non-empty list of QEMU arguments"):
        parse_definition({"name": "q", "kind": "qemu"})
    c = parse_definition({"name": "c", "kind": "capture", "capture": "x.json"})
    assert "vhci_hcd" in c.modules
    with pytest.raises(BadArgumentError, match="capture: a capture device names"):
        parse_definition({"name": "c", "kind": "capture"})


def test_bad_json_file_names_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "broken.json"
    p.write_text('{"name": "x",\n "kind": }')
    with pytest.raises(BadArgumentError, match=r"broken.json: line 2 column"):
        load_definition(p)


def test_attr_values() -> None:
    assert attr_bytes(8) == b"8" and attr_bytes(True) == b"1" and attr_bytes("0x1d6b") == b"0x1d6b"
    assert attr_bytes({"hex": "05:01 09"}) == b"\x05\x01\x09"
    with pytest.raises(BadArgumentError):
        attr_bytes([1, 2])


def test_select_defaults_and_unknown_names(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({**GADGET, "name": "a", "default": True}))
    (tmp_path / "b.json").write_text(json.dumps({**GADGET, "name": "b"}))
    defs = load_definitions([tmp_path])
    assert [d.name for d in select(None, defs)] == ["a"]
    assert [d.name for d in select(["b", "a"], defs)] == ["b", "a"]
    with pytest.raises(NotFoundError, match="no lab device named 'c' and no such file \\(known: a, b\\)"):
        select(["c"], defs)


def test_first_folder_wins(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "x.json").write_text(json.dumps({**GADGET, "name": "same", "description": "first"}))
    (two / "x.json").write_text(json.dumps({**GADGET, "name": "same", "description": "second"}))
    assert load_definitions([one, two])["same"].description == "first"


# -- descriptor files as lab devices (dkproto lab run -d FILE) ------------------------------

def test_a_usb_descriptor_file_is_a_capture_with_its_own_identity() -> None:
    from dkproto.lab.devices import definition_from_file

    d = definition_from_file(ROOT / "descriptors" / "hackrf-one")  # the .json suffix is optional
    assert (d.kind, d.name, d.expect) == ("capture", "hackrf-one", ("1d50:6089",))
    assert d.spec["capture"] == str((ROOT / "descriptors" / "hackrf-one.json").resolve())
    assert "vhci_hcd" in d.modules
    (by_select,) = select([str(ROOT / "descriptors" / "hackrf-one.json")], load_definitions([LAB]))
    assert by_select.spec == d.spec


def test_a_hid_capture_is_a_hid_gadget_that_plays_its_reports() -> None:
    from dkproto.hid import sources
    from dkproto.lab.devices import definition_from_file

    path = ROOT / "descriptors" / "hid" / "wacom-penpartner.json"
    d = definition_from_file(path)
    src = sources.load(path)
    assert d.kind == "gadget" and d.expect == ("056a:0061",)
    attrs = d.spec["functions"]["hid.0"]["attrs"]
    assert bytes.fromhex(attrs["report_desc"]["hex"]) == src.descriptor
    assert 8 <= attrs["report_length"] <= 1024
    assert [bytes.fromhex(r) for r in d.spec["peer"]["reports"]] == [r for r in src.reports if r]
    assert set(d.modules) >= {"usbhid", "hid_generic", "usb_f_hid"}
    # no recorded reports: no peer
    quiet = definition_from_file(ROOT / "descriptors" / "hid" / "3m-multitouch-0596-0500.json")
    assert quiet.spec["peer"] == "none" and quiet.expect == ("0596:0500",)


def test_a_hex_report_descriptor_gets_the_lab_hid_capture_id(tmp_path: Path) -> None:
    from dkproto.lab.devices import HID_CAPTURE_ID, definition_from_file

    f = tmp_path / "Mouse Descriptor.txt"
    f.write_text("05 01 09 02 a1 01 09 01 a1 00 05 09 19 01 29 03 15 00 25 01 95 03 75 01 81 02 "
                 "95 01 75 05 81 01 c0 c0\n")
    d = definition_from_file(f)
    assert d.name == "mouse-descriptor"
    assert d.expect == (f"{HID_CAPTURE_ID[0]:04x}:{HID_CAPTURE_ID[1]:04x}",)


def test_a_file_that_is_no_descriptor_names_both_reasons(tmp_path: Path) -> None:
    from dkproto.errors import DecodeError
    from dkproto.lab.devices import definition_from_file

    f = tmp_path / "notes.md"
    f.write_text("# Not a descriptor\n\nPlain text.\n")
    with pytest.raises(DecodeError) as info:
        definition_from_file(f)
    msg = str(info.value)
    assert "neither a USB descriptor set (" in msg and "nor a HID report descriptor (" in msg
    assert msg.count(str(f)) == 1
    with pytest.raises(NotFoundError, match="no lab device named 'nope' and no such file"):
        select(["nope"], load_definitions([LAB]))
