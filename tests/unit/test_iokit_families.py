"""DriverKit families as data (dkproto/iokit/family.py): each family module registers itself, matching and
the runner only iterate the registry, and a new family is one registration."""

from __future__ import annotations

import ast
import dataclasses
import plistlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dkproto import iokit
from dkproto.cli.match import format_report
from dkproto.errors import BadArgumentError, DecodeError, NotFoundError, NotPermittedError
from dkproto.iokit import IOService, ServiceState, start_service
from dkproto.iokit.family import (
    ANY_SCHEME,
    Family,
    families,
    family_entitlement_for,
    family_for,
    family_of,
    publisher_for,
    register_family,
    unregister_family,
)
from dkproto.iokit.matching import (
    Candidate,
    MatchResult,
    candidates_for,
    device_from_dict,
    match,
    score_personality,
)
from dkproto.iokit.personality import DriverBundle, Entitlements, Personality, load_bundle
from dkproto.iokit.runner import _default_url, load_driver_module, run_driver

IOKIT = Path(iokit.__file__).parent
ENT = "com.apple.developer.driverkit"

#: name -> (the module that registers it, provider family?, entitlement, kernel IOClass values)
BUILTIN = {
    "IOUSBHostDevice": ("usb_host", True, f"{ENT}.transport.usb", ()),
    "IOUSBHostInterface": ("usb_host", True, f"{ENT}.transport.usb", ()),
    "IOHIDInterface": ("hid", True, f"{ENT}.transport.hid", ()),
    "IOUserHIDEventService": ("hid", False, f"{ENT}.family.hid.eventservice", ("AppleUserHIDEventService",)),
    "IOUserHIDDevice": ("hid", False, f"{ENT}.family.hid.device",
                        ("AppleUserHIDDevice", "AppleUserUSBHostHIDDevice")),
    "IOUserSerial": ("serial", False, f"{ENT}.family.serial", ("IOUserSerial",)),
    "IOUserResources": ("resources", True, None, ()),
}


def test_builtin_families_register_themselves() -> None:
    got = {f.name: (f.cls.__module__.rsplit(".", 1)[1], f.is_provider, f.entitlement, f.io_classes)
           for f in families()}
    assert got == BUILTIN
    for f in families():
        assert getattr(iokit, f.name) is f.cls  # every family class is exported by dkproto.iokit
        assert (family_for(f.name) is f) is f.is_provider
    with pytest.raises(dataclasses.FrozenInstanceError):
        families()[0].entitlement = "x"  # type: ignore[misc]


def test_family_entitlements_and_publishers() -> None:
    for name, (_, _, ent, io_classes) in BUILTIN.items():
        for io_class in io_classes:
            assert family_entitlement_for(io_class) == ent, name
    assert family_entitlement_for("IOUserService") is None and family_entitlement_for(None) is None
    assert publisher_for("hid") is family_for("IOHIDInterface")
    for scheme in ("usb", "sim", "spy", "mock", "anything"):
        assert publisher_for(scheme) is family_for("IOUSBHostDevice")


FAMILY_WORDS = ("IOUSBHost", "IOHIDInterface", "IOUserResources", "IOUserSerial", "IOUserHID", "AppleUser",
                "transport.usb", "transport.hid", "family.hid", "family.serial", "usb_host", "hid://", "usb://")


def _code_words(path: Path) -> list[str]:
    """Every identifier and string constant of a module except docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings:
            out.append(n.value)
        elif isinstance(n, ast.Name):
            out.append(n.id)
        elif isinstance(n, ast.Attribute):
            out.append(n.attr)
        elif isinstance(n, ast.alias):
            out.append(n.name)
        elif isinstance(n, ast.ImportFrom) and n.module:
            out.append(n.module)
    return out


@pytest.mark.parametrize("module", ["matching.py", "runner.py", "personality.py", "family.py"])
def test_matching_and_runner_name_no_family(module: str) -> None:
    words = _code_words(IOKIT / module)
    assert [w for w in words if any(f in w for f in FAMILY_WORDS)] == []


def test_nubs_published_on_an_interface_follow_it() -> None:
    dev = device_from_dict({"idVendor": 1, "idProduct": 2, "interfaces": [
        {"bInterfaceNumber": 0, "bInterfaceClass": 3, "hid_usages": [[1, 6]]},
        {"bInterfaceNumber": 1, "bInterfaceClass": 0xFF},
        {"bInterfaceNumber": 2, "bInterfaceClass": 3, "bInterfaceSubClass": 1,
         "hid_usages": [[1, 2], [0xC, 1]]},
        {"bInterfaceNumber": 3, "bInterfaceClass": 3}]})  # usages unknown: no IOHIDInterface
    assert [c.label.split(" (")[0] for c in candidates_for(dev)] == [
        "IOUSBHostDevice 0001:0002", "IOUSBHostInterface #0", "IOHIDInterface #0", "IOUSBHostInterface #1",
        "IOUSBHostInterface #2", "IOHIDInterface #2", "IOUSBHostInterface #3"]
    hid2 = candidates_for(dev)[5]
    assert hid2.properties["DeviceUsagePairs"] == [{"DeviceUsagePage": 1, "DeviceUsage": 2},
                                                   {"DeviceUsagePage": 0xC, "DeviceUsage": 1}]


def test_unregistered_provider_class_does_not_match() -> None:
    p = Personality("p", {"IOProviderClass": "IOPCIDevice", "IOUserClass": "X"})
    r = score_personality(p, Candidate("IOPCIDevice", {}, "IOPCIDevice"))
    assert not r.matched
    assert r.reasons == ["no DriverKit family is registered for IOProviderClass IOPCIDevice"]


# ---- a new family: one registration -------------------------------------------------------------

TOY_ENT = "org.dkproto.test.transport.toy"


class IOUserToyNub(IOService):
    """A provider nub of a family the tests make up."""


def _toy_score(p: Personality, c: Candidate, keys: dict[str, Any], res: MatchResult) -> int | None:
    if keys.get("ToyKey") != c.properties.get("ToyKey"):
        res.reasons.append(f"ToyKey {keys.get('ToyKey')!r} != {c.properties.get('ToyKey')!r}")
        return None
    res.reasons.append("ToyKey matches")
    return 1234 + p.io_probe_score


def _toy_children(parent: Candidate) -> list[Candidate]:
    intf = parent.interface
    if intf is None or intf.bInterfaceClass != 0xFF:
        return []
    n = intf.bInterfaceNumber
    return [Candidate("IOUserToyNub", {"ToyKey": n}, f"IOUserToyNub #{n}", parent.device, intf)]


def _toy_publish(transport: Any, watch: float | None) -> tuple[IOService, list[IOService]]:
    nub = IOUserToyNub()
    nub.properties["ToyKey"] = transport.toy_key
    start_service(nub, None)
    nub.register_service()
    return nub, [nub]


def _toy_validate(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise DecodeError(f"{TOY_ENT} must be a boolean", descriptor=where, rule=TOY_ENT)


def _toy_check(ents: Entitlements, c: Candidate) -> tuple[bool | None, str]:
    return (True, "toy allowed") if ents.get(TOY_ENT) is True else (False, f"{TOY_ENT} is missing")


TOY = Family(IOUserToyNub, entitlement=TOY_ENT, validate_entitlement=_toy_validate,
             check_entitlement=_toy_check, score=_toy_score, published_on=("IOUSBHostInterface",),
             children=_toy_children, schemes=("toy",), publish=_toy_publish,
             default_url=lambda p: f"toy://{p.properties['ToyKey']}")


@pytest.fixture()
def toy() -> Iterator[Family]:
    register_family(TOY)
    yield TOY
    unregister_family("IOUserToyNub")


class ToyTransport:
    scheme = "toy"
    toy_key = 7

    def __str__(self) -> str:
        return "toy://7"


def test_a_new_family_takes_part_in_matching(toy: Family) -> None:
    dev = device_from_dict({"idVendor": 0x1209, "idProduct": 1, "interfaces": [
        {"bInterfaceNumber": 0, "bInterfaceClass": 2}, {"bInterfaceNumber": 1, "bInterfaceClass": 0xFF}]})
    assert [c.label for c in candidates_for(dev)][-2:] == [
        "IOUSBHostInterface #1 (class 0xff/0x00/0x00)", "IOUserToyNub #1"]
    pers = [Personality("Toy", {"IOProviderClass": "IOUserToyNub", "IOUserClass": "T", "ToyKey": 1}),
            Personality("Other", {"IOProviderClass": "IOUserToyNub", "IOUserClass": "T", "ToyKey": 5})]
    rep = match(DriverBundle(path="x", bundle_identifier="b", info={}, personalities=pers), [dev])
    won = rep.winners()
    assert [(r.personality.name, r.score, r.candidate.label) for r in won] == [
        ("Toy", 1234, "IOUserToyNub #1")]
    text = format_report(rep)
    assert "* Toy: MATCH, score 1234 -- wins" in text and "ToyKey 5 != 1" in text
    ents = Entitlements({ENT: True}, path="t.entitlements")
    bundle = DriverBundle(path="x", bundle_identifier="b", info={}, personalities=pers, entitlements=ents)
    rep = match(bundle, [dev])
    r = next(r for r in rep.results if r.matched)
    assert r.entitled is False and not r.won and f"{TOY_ENT} is missing" in r.reasons


def _driver_dir(tmp_path: Path, personality: dict[str, Any], ents: dict[str, Any] | None,
                source: str) -> Path:
    (tmp_path / "driver.py").write_text(source)
    info = {"CFBundleIdentifier": "org.dkproto.test", "IOKitPersonalities": {"P": personality}}
    (tmp_path / "Info.plist").write_bytes(plistlib.dumps(info))
    if ents is not None:
        (tmp_path / "T.entitlements").write_bytes(plistlib.dumps(ents))
    return tmp_path / "driver.py"


DRIVER = "from dkproto.iokit import IOService\n\nclass Drv(IOService):\n    pass\n"


def test_a_new_family_takes_part_in_run(toy: Family, tmp_path: Path) -> None:
    pers = {"IOProviderClass": "IOUserToyNub", "IOUserClass": "Drv", "ToyKey": 7}
    path = _driver_dir(tmp_path, pers, {ENT: True, TOY_ENT: True}, DRIVER)
    running = run_driver(path, ToyTransport())
    try:
        assert isinstance(running.provider, IOUserToyNub) and running.match.score == 1234
        assert [c.provider_class for c in running.candidates] == ["IOUserToyNub"]
        assert family_of(running.provider) is toy
    finally:
        running.stop()
    assert running.driver.state is ServiceState.FREED and running.nub.state is ServiceState.FREED
    assert _default_url(load_driver_module(path), load_bundle(tmp_path / "Info.plist")) == "toy://7"
    (tmp_path / "T.entitlements").write_bytes(plistlib.dumps({ENT: True}))
    with pytest.raises(NotPermittedError, match=f"{TOY_ENT} is missing"):
        run_driver(path, ToyTransport())
    (tmp_path / "T.entitlements").write_bytes(plistlib.dumps({ENT: True, TOY_ENT: "yes"}))
    with pytest.raises(DecodeError, match="must be a boolean"):
        run_driver(path, ToyTransport())


def test_family_of_a_subclass_nub(toy: Family) -> None:
    class SubToy(IOUserToyNub):
        pass

    assert family_of(SubToy()) is toy
    assert family_of(IOService()) is None


def test_standalone_family_runs_without_a_device(tmp_path: Path) -> None:
    pers = {"IOProviderClass": "IOUserResources", "IOResourceMatch": "IOKit", "IOUserClass": "Drv"}
    path = _driver_dir(tmp_path, pers, None, DRIVER)
    running = run_driver(path)
    try:
        assert type(running.provider) is iokit.IOUserResources and running.running
        assert running.match.reasons == ["IOUserResources always matches (IOResourceMatch IOKit)"]
    finally:
        running.stop()
    assert running.driver.state is ServiceState.FREED
    (tmp_path / "usb").mkdir()
    other = _driver_dir(tmp_path / "usb", {"IOProviderClass": "IOUSBHostInterface", "IOUserClass": "Drv",
                                           "bInterfaceClass": 2, "bInterfaceSubClass": 2}, None, DRIVER)
    with pytest.raises(BadArgumentError, match="no device: pass --device URL"):
        run_driver(other)


def test_register_family_refuses_inconsistent_families() -> None:
    def refused(f: Family, why: str) -> None:
        with pytest.raises(BadArgumentError, match=why):
            register_family(f)

    refused(Family(iokit.IOUserSerial), "already registered")
    refused(Family(IOUserToyNub, score=_toy_score, schemes=("hid",), publish=_toy_publish),
            "scheme 'hid' is already published by IOHIDInterface")
    refused(Family(IOUserToyNub, score=_toy_score, schemes=(ANY_SCHEME,), publish=_toy_publish),
            r"scheme '\*' is already published by IOUSBHostDevice")
    refused(Family(IOUserToyNub, score=_toy_score, children=_toy_children),
            "children and published_on go together")
    refused(Family(IOUserToyNub, score=_toy_score, children=_toy_children, published_on=("IOUserToyNub",)),
            "cannot be published on its own nubs")
    refused(Family(IOUserToyNub, publish=_toy_publish, schemes=("toy",)), "schemes needs score")
    refused(Family(IOUserToyNub, score=_toy_score, publish=_toy_publish), "publish needs schemes")
    refused(Family(IOUserToyNub, entitlement="e", io_classes=("IOUserSerial",)),
            "IOClass 'IOUserSerial' already belongs to IOUserSerial")
    refused(Family(IOUserToyNub, io_classes=("AppleUserToy",)), "need entitlement")
    refused(Family(int), "is not an IOService subclass")  # type: ignore[arg-type]
    assert "IOUserToyNub" not in {f.name for f in families()}
    with pytest.raises(NotFoundError, match="no family 'IOUserToyNub'"):
        unregister_family("IOUserToyNub")
    before = families()
    serial = next(f for f in before if f.name == "IOUserSerial")
    assert register_family(serial, replace=True) is serial and families() == before
