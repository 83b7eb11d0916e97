"""Personalities and matching against Apple's USB precedence tables (driverkit.md 3.4, QA1076)."""

from __future__ import annotations

import json
import plistlib
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from corpus_path import USB_DIR, USB_SETS, oracle_path

from dkproto.cli import cli
from dkproto.errors import DecodeError, NotFoundError
from dkproto.iokit.matching import (
    Candidate,
    candidates_for,
    device_from_descriptors,
    device_from_dict,
    load_devices,
    match,
    score_personality,
)
from dkproto.iokit.personality import DriverBundle, Entitlements, Personality, load_info_plist
from dkproto.iokit.usb_matching import DEVICE_TABLE, INTERFACE_TABLE, check_transport_entitlement

USB_ITEMS = USB_SETS


def P(provider: str, **keys: object) -> Personality:
    props = {"IOProviderClass": provider, "IOClass": "IOUserService", "IOUserClass": "X"}
    props.update(keys)
    return Personality(name="p", properties=props)


DEV = device_from_dict({"idVendor": 0x1209, "idProduct": 0x0001, "bcdDevice": 0x0100, "bDeviceClass": 0,
                        "interfaces": [{"bInterfaceNumber": 0, "bInterfaceClass": 0xFF, "bInterfaceSubClass": 1,
                                        "bInterfaceProtocol": 2},
                                       {"bInterfaceNumber": 1, "bInterfaceClass": 2, "bInterfaceSubClass": 2,
                                        "bInterfaceProtocol": 1}]})
DEVC, IF0, IF1 = candidates_for(DEV)


def score(p: Personality, c: Candidate) -> int | None:
    r = score_personality(p, c)
    return r.score if r.matched else None


def test_tables_are_the_reference_rows() -> None:
    assert [r.score for r in DEVICE_TABLE] == [100000, 90000, 80000, 70000, 60000, 50000]
    assert [r.score for r in INTERFACE_TABLE] == [100000, 90000, 80000, 70000, 60000, 50000]
    assert DEVICE_TABLE[0].required == {"idVendor", "idProduct", "bcdDevice"}
    assert INTERFACE_TABLE[1].required == {"idVendor", "idProduct", "bInterfaceNumber", "bConfigurationValue"}


def test_device_rows() -> None:
    d = "IOUSBHostDevice"
    assert score(P(d, idVendor=0x1209, idProduct=1, bcdDevice=0x100), DEVC) == 100000
    assert score(P(d, idVendor=0x1209, idProduct=1), DEVC) == 90000
    assert score(P(d, bDeviceClass=0, bDeviceSubClass=0, bDeviceProtocol=0), DEVC) == 60000
    assert score(P(d, bDeviceClass=0, bDeviceSubClass=0), DEVC) == 50000
    # vendor rows need bDeviceClass 0xFF
    r = score_personality(P(d, idVendor=0x1209, bDeviceSubClass=0, bDeviceProtocol=0), DEVC)
    assert not r.matched and any("needs bDeviceClass 0xFF" in x for x in r.reasons)
    vdev = candidates_for(device_from_dict({"idVendor": 5, "idProduct": 6, "bDeviceClass": 0xFF,
                                            "bDeviceSubClass": 1, "bDeviceProtocol": 2}))[0]
    assert score(P(d, idVendor=5, bDeviceSubClass=1, bDeviceProtocol=2), vdev) == 80000
    assert score(P(d, idVendor=5, bDeviceClass=0xFF, bDeviceSubClass=1), vdev) == 70000
    r = score_personality(P(d, bDeviceClass=0xFF, bDeviceSubClass=1), vdev)
    assert not r.matched and any("vendor-specific" in x for x in r.reasons)


def test_interface_rows() -> None:
    i = "IOUSBHostInterface"
    full = dict(idVendor=0x1209, idProduct=1, bInterfaceNumber=0, bConfigurationValue=1)
    assert score(P(i, bcdDevice=0x100, **full), IF0) == 100000
    assert score(P(i, **full), IF0) == 90000
    assert score(P(i, bInterfaceClass=0xFF, **full), IF0) == 90000  # class keys allowed beside the ids
    assert score(P(i, idVendor=0x1209, bInterfaceSubClass=1, bInterfaceProtocol=2), IF0) == 80000
    assert score(P(i, idVendor=0x1209, bInterfaceClass=0xFF, bInterfaceSubClass=1), IF0) == 70000
    assert score(P(i, bInterfaceClass=2, bInterfaceSubClass=2, bInterfaceProtocol=1), IF1) == 60000
    assert score(P(i, bInterfaceClass=2, bInterfaceSubClass=2), IF1) == 50000
    assert score(P(i, idVendor=0x1209, bInterfaceSubClass=2), IF1) is None  # class 2 is not vendor-specific
    assert score(P(i, bInterfaceClass=0xFF, bInterfaceSubClass=1), IF0) is None  # class 0xFF needs idVendor


def test_not_a_combination_explains_nearest_row() -> None:
    r = score_personality(P("IOUSBHostInterface", idVendor=0x1209, idProduct=1, bInterfaceNumber=0), IF0)
    assert not r.matched
    assert "nearest is row 90000" in r.reasons[-1] and "add bConfigurationValue" in r.reasons[-1]
    r = score_personality(P("IOUSBHostInterface", bInterfaceClass=0xFF), IF0)
    assert not r.matched and "not one of Apple's combinations" in r.reasons[-1]
    r = score_personality(P("IOUSBHostDevice", idVendor=0x1209), DEVC)
    assert not r.matched


def test_mismatch_names_field_and_values() -> None:
    r = score_personality(P("IOUSBHostDevice", idVendor=0x05AC, idProduct=1), DEVC)
    assert not r.matched and "idVendor 0x1209 != 0x05ac" in r.reasons
    r = score_personality(P("IOUSBHostDevice", idVendor=0x1209), IF0)
    assert "IOProviderClass IOUSBHostDevice is not IOUSBHostInterface" in r.reasons


def test_wildcards_cost_1000_each() -> None:
    assert score(P("IOUSBHostDevice", idVendor=0x1209, idProduct="*"), DEVC) == 89000
    assert score(P("IOUSBHostDevice", idVendor="*", idProduct="*", bcdDevice="*"), DEVC) == 97000
    i = P("IOUSBHostInterface", idVendor=0x1209, idProduct=1, bInterfaceNumber="*", bConfigurationValue=1)
    assert score(i, IF1) == 89000


def test_product_mask_and_array() -> None:
    dev = candidates_for(device_from_dict({"idVendor": 0x05AC, "idProduct": 0x1292}))[0]
    assert score(P("IOUSBHostDevice", idVendor=0x05AC, idProduct=0x1290, idProductMask=0xFFFC), dev) == 90000
    dev2 = candidates_for(device_from_dict({"idVendor": 0x05AC, "idProduct": 0x1294}))[0]
    assert score(P("IOUSBHostDevice", idVendor=0x05AC, idProduct=0x1290, idProductMask=0xFFFC), dev2) is None
    assert score(P("IOUSBHostDevice", idVendor=0x05AC, idProductArray=[0x1200, 0x1292]), dev) == 90000
    assert score(P("IOUSBHostDevice", idVendor=0x05AC, idProductArray=[0x1200]), dev) is None


def test_probe_score_added_with_warning() -> None:
    r = score_personality(P("IOUSBHostDevice", idVendor=0x1209, idProduct=1, IOProbeScore=5), DEVC)
    assert r.score == 90005 and any("never add it" in w for w in r.warnings)


def test_best_score_wins_per_category() -> None:
    b = DriverBundle(path="x", bundle_identifier="b", info={}, personalities=[
        Personality("class", {"IOProviderClass": "IOUSBHostInterface", "IOUserClass": "A",
                              "bInterfaceClass": 2, "bInterfaceSubClass": 2}),
        Personality("vendor", {"IOProviderClass": "IOUSBHostInterface", "IOUserClass": "B", "idVendor": 0x1209,
                               "idProduct": 1, "bInterfaceNumber": 1, "bConfigurationValue": 1}),
        Personality("other-category", {"IOProviderClass": "IOUSBHostInterface", "IOUserClass": "C",
                                       "bInterfaceClass": 2, "bInterfaceSubClass": 2, "IOMatchCategory": "x"}),
    ])
    rep = match(b, [DEV])
    won = {(r.personality.name, r.candidate.label.split()[1]) for r in rep.winners()}
    assert won == {("vendor", "#1"), ("other-category", "#1")}
    loser = next(r for r in rep.results if r.personality.name == "class" and r.matched)
    assert "outscored by vendor (90000 > 50000)" in loser.reasons


def test_hid_interface_and_user_resources() -> None:
    dev = device_from_dict({"idVendor": 1, "idProduct": 2, "interfaces": [
        {"bInterfaceNumber": 0, "bInterfaceClass": 3, "bInterfaceSubClass": 1, "bInterfaceProtocol": 1,
         "hid_usages": [[1, 6]]}]})
    hidc = [c for c in candidates_for(dev) if c.provider_class == "IOHIDInterface"][0]
    assert score(P("IOHIDInterface", PrimaryUsagePage=1, PrimaryUsage=6, IOProbeScore=200), hidc) == 200
    assert score(P("IOHIDInterface", DeviceUsagePairs=[{"DeviceUsagePage": 1, "DeviceUsage": 6}]), hidc) == 0
    assert score(P("IOHIDInterface", PrimaryUsagePage=1, PrimaryUsage=2), hidc) is None
    b = DriverBundle(path="x", bundle_identifier="b", info={}, personalities=[
        Personality("virt", {"IOProviderClass": "IOUserResources", "IOUserClass": "V", "IOResourceMatch": "IOKit"})])
    rep = match(b, [])
    assert [r.personality.name for r in rep.winners()] == ["virt"]


def test_entitlements_transport_usb() -> None:
    ok, _ = check_transport_entitlement(Entitlements({"com.apple.developer.driverkit.transport.usb": [
        {"idVendor": 0x1209}]}), DEVC)
    assert ok is True
    ok, why = check_transport_entitlement(Entitlements({"com.apple.developer.driverkit.transport.usb": [
        {"idVendor": 0x05AC}]}), DEVC)
    assert ok is False and "idVendor 0x1209" in why
    ok, why = check_transport_entitlement(Entitlements({"com.apple.developer.driverkit.transport.usb": [
        {"idVendor": "*"}]}), DEVC)
    assert ok is True and "development only" in why
    ok, why = check_transport_entitlement(Entitlements({}), DEVC)
    assert ok is False and "missing" in why
    ok, _ = check_transport_entitlement(Entitlements({"com.apple.developer.driverkit.transport.usb": [
        {"idVendor": 0x1209, "idProductArray": [7, 8]}]}), DEVC)
    assert ok is False


def test_entitlement_blocks_winner() -> None:
    b = DriverBundle(path="x", bundle_identifier="b", info={}, personalities=[
        Personality("v", {"IOProviderClass": "IOUSBHostDevice", "IOUserClass": "A", "idVendor": 0x1209,
                          "idProduct": 1})],
        entitlements=Entitlements({"com.apple.developer.driverkit": True,
                                   "com.apple.developer.driverkit.transport.usb": [{"idVendor": 0x0001}]}))
    rep = match(b, [DEV])
    r = next(r for r in rep.results if r.matched)
    assert r.entitled is False and not r.won


# ---- corpus: the precedence tables on real descriptor sets -----------------------------------

_LSUSB_DEV = re.compile(r"^\s{2}(idVendor|idProduct|bDeviceClass|bDeviceSubClass|bDeviceProtocol)\s+(\S+)", re.MULTILINE)
_LSUSB_IF = re.compile(r"^\s+(bConfigurationValue|bInterfaceNumber|bAlternateSetting|bInterfaceClass|"
                       r"bInterfaceSubClass|bInterfaceProtocol)\s+(\S+)", re.MULTILINE)


@pytest.mark.parametrize("path", USB_ITEMS, ids=lambda p: p.stem)
def test_corpus_fields_agree_with_lsusb(path: Path) -> None:
    dev = load_devices(path)[0]
    oracle = oracle_path(path, "usb", "lsusb")
    text = oracle.read_text()
    top = dict(_LSUSB_DEV.findall(text))
    assert int(top["idVendor"], 16) == dev.idVendor and int(top["idProduct"], 16) == dev.idProduct
    assert int(top["bDeviceClass"]) == dev.bDeviceClass
    seen = []
    cur: dict[str, int] = {}
    for key, value in _LSUSB_IF.findall(text):
        if key == "bConfigurationValue":
            cfg = int(value)
            continue
        cur[key] = int(value)
        if key == "bInterfaceProtocol":
            seen.append((cfg, cur["bInterfaceNumber"], cur["bAlternateSetting"], cur["bInterfaceClass"],
                         cur["bInterfaceSubClass"], cur["bInterfaceProtocol"]))
            cur = {}
    mine = [(i.bConfigurationValue, i.bInterfaceNumber, i.bAlternateSetting, i.bInterfaceClass,
             i.bInterfaceSubClass, i.bInterfaceProtocol) for cv in dev.config_order for i in dev.configurations[cv]]
    assert mine == seen


@pytest.mark.parametrize("path", USB_ITEMS, ids=lambda p: p.stem)
def test_corpus_precedence(path: Path) -> None:
    """Every table row built from a corpus device's own fields scores exactly that row, or is refused by the
    class rule; and with all rows present the best applicable one wins."""
    dev = load_devices(path)[0]
    for c in candidates_for(dev):
        if c.provider_class == "IOHIDInterface":
            continue
        table = DEVICE_TABLE if c.provider_class == "IOUSBHostDevice" else INTERFACE_TABLE
        cls = c.properties["bDeviceClass" if table is DEVICE_TABLE else "bInterfaceClass"]
        pers = []
        for row in table:
            keys = {k: c.properties[k] for k in row.required}
            r = score_personality(P(c.provider_class, **keys), c)
            applicable = row.vendor_specific is None or row.vendor_specific == (cls == 0xFF)
            assert r.matched is applicable, (row.score, r.reasons)
            if applicable:
                assert r.score == row.score
            pers.append(Personality(f"row{row.score}", dict(P(c.provider_class, **keys).properties)))
            wrong = dict(keys)
            k0 = sorted(row.required)[0]
            wrong[k0] = (c.properties[k0] + 1) & 0xFF
            assert not score_personality(P(c.provider_class, **wrong), c).matched
        b = DriverBundle(path="x", bundle_identifier="b", info={}, personalities=pers)
        rep = match(b, [dev])
        winners = [r for r in rep.winners() if r.candidate.label == c.label]
        assert len(winners) == 1 and winners[0].personality.name == "row100000"


# ---- plists and the CLI ------------------------------------------------------------------------

def write_plist(tmp_path: Path, personalities: dict, name: str = "Info.plist") -> Path:
    p = tmp_path / name
    p.write_bytes(plistlib.dumps({"CFBundleIdentifier": "com.example.t", "IOKitPersonalities": personalities}))
    return p


def test_load_info_plist_and_errors(tmp_path: Path) -> None:
    p = write_plist(tmp_path, {"A": {"IOProviderClass": "IOUSBHostDevice", "IOUserClass": "A",
                                     "CFBundleIdentifier": "$(PRODUCT_BUNDLE_IDENTIFIER)",
                                     "UserClientProperties": {"IOClass": "IOUserUserClient", "IOUserClass": "UC"},
                                     "idVendor": 1, "idProduct": 2}})
    b = load_info_plist(p)
    a = b.personality("A")
    assert a.properties["CFBundleIdentifier"] == "com.example.t"
    assert a.user_client_properties == {"IOClass": "IOUserUserClient", "IOUserClass": "UC"}
    assert a.matching_keys() == {"idVendor": 1, "idProduct": 2}
    with pytest.raises(NotFoundError):
        b.personality("B")
    bad = write_plist(tmp_path, {"A": {"IOUserClass": "A"}}, "bad.plist")
    with pytest.raises(DecodeError, match="IOProviderClass missing"):
        load_info_plist(bad)
    junk = tmp_path / "junk.plist"
    junk.write_bytes(b"not a plist")
    with pytest.raises(DecodeError):
        load_info_plist(junk)
    with pytest.raises(NotFoundError):
        load_info_plist(tmp_path / "missing.plist")


def test_descriptor_reader_errors() -> None:
    with pytest.raises(DecodeError) as e:
        device_from_descriptors(b"\x12\x01")
    assert e.value.offset == 0
    blob = bytes.fromhex("12010002000000401209010000010102030109022000010100800032") + b"\x09\x04"
    with pytest.raises(DecodeError) as e:
        device_from_descriptors(blob)
    assert e.value.offset == 27


def test_cli_match(tmp_path: Path) -> None:
    p = write_plist(tmp_path, {
        "ACM": {"IOProviderClass": "IOUSBHostInterface", "IOClass": "IOUserSerial", "IOUserClass": "S",
                "bInterfaceClass": 2, "bInterfaceSubClass": 2},
        "STM": {"IOProviderClass": "IOUSBHostInterface", "IOUserClass": "Y", "idVendor": 0x0483,
                "idProduct": 0x5740, "bInterfaceNumber": 0, "bConfigurationValue": 1},
        "Never": {"IOProviderClass": "IOUSBHostDevice", "IOUserClass": "Z", "idVendor": 0x05AC, "idProduct": 1}})
    f = str(USB_DIR / "stm32-virtual-com-port.json")
    r = CliRunner().invoke(cli, ["match", str(p), f], obj={})
    assert r.exit_code == 0, r.output
    assert "* STM: MATCH, score 90000 -- wins" in r.output
    assert "+ ACM: matches, score 50000, does not win" in r.output
    assert "idVendor 0x0483 != 0x05ac" in r.output
    assert "Never (IOUSBHostDevice) matches nothing here" in r.output
    r = CliRunner().invoke(cli, ["match", "--json", str(p), f], obj={})
    data = json.loads(r.output)
    assert [x["personality"] for x in data["results"] if x["won"]] == ["STM"]


def test_cli_match_errors(tmp_path: Path) -> None:
    from dkproto.cli import main

    p = write_plist(tmp_path, {"A": {"IOProviderClass": "IOUSBHostDevice", "IOUserClass": "A"}})
    with pytest.raises(SystemExit) as e:
        main(["match", str(p)])
    assert e.value.code == 1
    with pytest.raises(SystemExit) as e:
        main(["match", str(p), str(tmp_path / "nope.json")])
    assert e.value.code == 1


def test_cli_match_live_device_and_example_plist() -> None:
    root = Path(__file__).resolve().parents[2]
    r = CliRunner().invoke(cli, ["match", str(root / "devices/vendor-bulk/Info.plist"), "--device", "sim://loopback"],
                           obj={})
    assert r.exit_code == 0, r.output
    assert "* VendorBulkDriver: MATCH, score 90000 -- wins" in r.output
    assert "transport.usb[0] allows it" in r.output
