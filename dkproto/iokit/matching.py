"""Matching personalities against devices, with Apple's USB precedence tables (QA1076).

A device becomes provider *candidates* (nubs): one ``IOUSBHostDevice`` and one
``IOUSBHostInterface`` per interface (alternate setting 0) of the configuration macOS
selects (the first, index 0), plus an ``IOHIDInterface`` for a HID interface whose usages
are known, and the ``IOUserResources`` root. Each personality is compared with each
candidate of its ``IOProviderClass``:

1. every USB key present must match (``"*"`` matches anything; ``idProductMask`` is ANDed
   with the device's idProduct before comparing; ``idProductArray`` lists accepted products);
2. the set of keys present must be one of Apple's combinations (driverkit.md 3.4 table),
   which gives the score; the vendor rows need class 0xFF, the class rows need class != 0xFF;
3. score = row score - 1000 per wildcard + ``IOProbeScore`` (which a USB personality should
   not have: reported as a warning).

Per candidate and ``IOMatchCategory`` the highest score wins. Every result carries the
reasons, so ``dkproto match`` can say why each personality matches or not.

Where the reference is unconfirmed (driverkit.md 3.4, 9): ``idProductArray`` scores like
``idProduct``; IOUSBHost* keep QA1076's scores. Interfaces are taken from configuration
index 0 only, as macOS configures a device before interface matching.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkproto._paths import read_file
from dkproto.errors import BadArgumentError, DecodeError
from dkproto.iokit.personality import (
    DriverBundle,
    Entitlements,
    Personality,
    family_entitlement_for,
    matching_value_problem,
)

__all__ = [
    "DEVICE_TABLE",
    "INTERFACE_TABLE",
    "Candidate",
    "MatchReport",
    "MatchResult",
    "USBDeviceInfo",
    "USBInterfaceInfo",
    "candidates_for",
    "check_transport_entitlement",
    "device_from_descriptors",
    "device_from_dict",
    "load_devices",
    "match",
    "score_personality",
]

WILDCARD = "*"
#: A device JSON file larger than this (64 MiB) is refused unread.
MAX_DEVICE_FILE = 64 << 20
WILDCARD_COST = 1000


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a precedence table: required keys, keys also allowed, and the class rule."""

    score: int
    required: frozenset[str]
    allowed: frozenset[str]
    class_key: str
    vendor_specific: bool | None  # True: class must be 0xFF; False: must not; None: no rule
    text: str


_DCLS = frozenset({"bDeviceClass", "bDeviceSubClass", "bDeviceProtocol"})
_ICLS = frozenset({"bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol"})


def _r(score: int, req: str, allowed: frozenset[str], key: str, vs: bool | None, text: str) -> Row:
    return Row(score, frozenset(req.split()), allowed, key, vs, text)


#: QA1076 device personality rows (IOUSBDevice; DriverKit IOUSBHostDevice), best first.
DEVICE_TABLE: tuple[Row, ...] = (
    _r(100000, "idVendor idProduct bcdDevice", _DCLS, "bDeviceClass", None, "idVendor + idProduct + bcdDevice"),
    _r(90000, "idVendor idProduct", _DCLS, "bDeviceClass", None, "idVendor + idProduct"),
    _r(80000, "idVendor bDeviceSubClass bDeviceProtocol", frozenset({"bDeviceClass"}), "bDeviceClass", True,
       "idVendor + bDeviceSubClass + bDeviceProtocol (bDeviceClass 0xFF)"),
    _r(70000, "idVendor bDeviceSubClass", frozenset({"bDeviceClass"}), "bDeviceClass", True,
       "idVendor + bDeviceSubClass (bDeviceClass 0xFF)"),
    _r(60000, "bDeviceClass bDeviceSubClass bDeviceProtocol", frozenset(), "bDeviceClass", False,
       "bDeviceClass + bDeviceSubClass + bDeviceProtocol (bDeviceClass != 0xFF)"),
    _r(50000, "bDeviceClass bDeviceSubClass", frozenset(), "bDeviceClass", False,
       "bDeviceClass + bDeviceSubClass (bDeviceClass != 0xFF)"),
)

#: QA1076 interface personality rows (IOUSBInterface; DriverKit IOUSBHostInterface), best first.
INTERFACE_TABLE: tuple[Row, ...] = (
    _r(100000, "idVendor idProduct bInterfaceNumber bConfigurationValue bcdDevice", _ICLS, "bInterfaceClass", None,
       "idVendor + idProduct + bInterfaceNumber + bConfigurationValue + bcdDevice"),
    _r(90000, "idVendor idProduct bInterfaceNumber bConfigurationValue", _ICLS, "bInterfaceClass", None,
       "idVendor + idProduct + bInterfaceNumber + bConfigurationValue"),
    _r(80000, "idVendor bInterfaceSubClass bInterfaceProtocol", frozenset({"bInterfaceClass"}), "bInterfaceClass",
       True, "idVendor + bInterfaceSubClass + bInterfaceProtocol (bInterfaceClass 0xFF)"),
    _r(70000, "idVendor bInterfaceSubClass", frozenset({"bInterfaceClass"}), "bInterfaceClass", True,
       "idVendor + bInterfaceSubClass (bInterfaceClass 0xFF)"),
    _r(60000, "bInterfaceClass bInterfaceSubClass bInterfaceProtocol", frozenset(), "bInterfaceClass", False,
       "bInterfaceClass + bInterfaceSubClass + bInterfaceProtocol (bInterfaceClass != 0xFF)"),
    _r(50000, "bInterfaceClass bInterfaceSubClass", frozenset(), "bInterfaceClass", False,
       "bInterfaceClass + bInterfaceSubClass (bInterfaceClass != 0xFF)"),
)

#: Keys that decide the row (idProductMask/idProductArray count as idProduct).
_DEVICE_SCORING = frozenset({"idVendor", "idProduct", "bcdDevice"}) | _DCLS
_INTERFACE_SCORING = frozenset({"idVendor", "idProduct", "bcdDevice", "bInterfaceNumber",
                                "bConfigurationValue"}) | _ICLS
#: Keys that only constrain (must match if present) without changing the row.
_CONSTRAINTS = frozenset({"locationID", "USBSpeed", "USBPortType", "bAlternateSetting"})
_HID_KEYS = frozenset({"VendorID", "ProductID", "PrimaryUsagePage", "PrimaryUsage", "Transport",
                       "DeviceUsagePage", "DeviceUsage", "LocationID", "VersionNumber", "CountryCode"})


@dataclass(slots=True)
class USBInterfaceInfo:
    """One interface (alternate setting) as a matching nub sees it."""

    bConfigurationValue: int
    bInterfaceNumber: int
    bAlternateSetting: int
    bInterfaceClass: int
    bInterfaceSubClass: int
    bInterfaceProtocol: int
    endpoints: list[dict[str, int]] = field(default_factory=list)
    hid_usages: list[tuple[int, int]] | None = None  # (usage page, usage) of top-level collections


@dataclass(slots=True)
class USBDeviceInfo:
    """A device's matching-relevant fields, from a descriptor set, a capture or a live device."""

    idVendor: int
    idProduct: int
    bcdDevice: int
    bDeviceClass: int
    bDeviceSubClass: int
    bDeviceProtocol: int
    configurations: dict[int, list[USBInterfaceInfo]] = field(default_factory=dict)  # by bConfigurationValue
    config_order: list[int] = field(default_factory=list)  # bConfigurationValue by index
    name: str = ""
    source: str = ""
    speed: int | None = None
    locationID: int | None = None

    @property
    def label(self) -> str:
        """``VVVV:PPPP name``."""
        return f"{self.idVendor:04x}:{self.idProduct:04x}" + (f" {self.name}" if self.name else "")


def device_from_descriptors(blob: bytes, *, name: str = "", source: str = "") -> USBDeviceInfo:
    """Read the matching fields from a device descriptor followed by configuration sets.

    This is the sysfs ``descriptors`` layout (the corpus format). Only what matching needs
    is read (device, configuration, interface and endpoint headers); full decoding is
    ``dkproto.usb``'s job.

    Raises:
        DecodeError: offset, descriptor and rule of the first structural problem.
    """
    if len(blob) < 18 or blob[1] != 1 or blob[0] < 18:
        raise DecodeError("no 18-byte device descriptor at the start", offset=0, descriptor="device descriptor",
                          rule="bLength/bDescriptorType")
    dev = USBDeviceInfo(
        idVendor=int.from_bytes(blob[8:10], "little"), idProduct=int.from_bytes(blob[10:12], "little"),
        bcdDevice=int.from_bytes(blob[12:14], "little"), bDeviceClass=blob[4], bDeviceSubClass=blob[5],
        bDeviceProtocol=blob[6], name=name, source=source)
    off = blob[0]
    config: list[USBInterfaceInfo] | None = None
    cur_if: USBInterfaceInfo | None = None
    while off < len(blob):
        if off + 2 > len(blob):
            raise DecodeError("truncated descriptor header", offset=off, descriptor="configuration set",
                              rule="bLength")
        length, dtype = blob[off], blob[off + 1]
        if length < 2 or off + length > len(blob):
            raise DecodeError(f"bLength {length} runs outside the data", offset=off,
                              descriptor=f"descriptor type 0x{dtype:02x}", rule="bLength")
        d = blob[off:off + length]
        if dtype == 2 and length >= 9:
            value = d[5]
            config = dev.configurations.setdefault(value, [])
            dev.config_order.append(value)
            cur_if = None
        elif dtype == 4 and length >= 9:
            if config is None:
                raise DecodeError("interface descriptor before any configuration", offset=off,
                                  descriptor="interface descriptor", rule="order")
            cur_if = USBInterfaceInfo(bConfigurationValue=dev.config_order[-1], bInterfaceNumber=d[2],
                                      bAlternateSetting=d[3], bInterfaceClass=d[5], bInterfaceSubClass=d[6],
                                      bInterfaceProtocol=d[7])
            config.append(cur_if)
        elif dtype == 5 and length >= 7 and cur_if is not None:
            cur_if.endpoints.append({"bEndpointAddress": d[2], "bmAttributes": d[3],
                                     "wMaxPacketSize": int.from_bytes(d[4:6], "little"), "bInterval": d[6]})
        off += length
    return dev


def _field(d: Any, key: str, hi: int, default: int | None = None, where: str = "device dict") -> int:
    """An integer field 0..hi of a device dict; a missing one takes ``default``; nothing is converted."""
    if key not in d:
        if default is None:
            raise BadArgumentError(f"{where}: {key} is missing")
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
        raise BadArgumentError(f"{where}: {key} is {v!r}, must be an integer 0..0x{hi:X}")
    return v


def device_from_dict(d: dict[str, Any]) -> USBDeviceInfo:
    """A device from plain fields: ``idVendor``... and ``interfaces`` (list of dicts with
    ``bInterfaceNumber``, ``bInterfaceClass``..., optional ``bConfigurationValue`` (1),
    ``bAlternateSetting`` (0), ``hid_usages`` [[page, usage], ...]).

    Raises:
        BadArgumentError: a field missing, not an integer, or out of range (named).
    """
    if not isinstance(d, dict):
        raise BadArgumentError(f"device dict: is {type(d).__name__}, must be an object")
    b, w = 0xFF, 0xFFFF
    loc = _field(d, "locationID", 0xFFFFFFFF) if d.get("locationID") is not None else None
    dev = USBDeviceInfo(idVendor=_field(d, "idVendor", w), idProduct=_field(d, "idProduct", w),
                        bcdDevice=_field(d, "bcdDevice", w, 0), bDeviceClass=_field(d, "bDeviceClass", b, 0),
                        bDeviceSubClass=_field(d, "bDeviceSubClass", b, 0),
                        bDeviceProtocol=_field(d, "bDeviceProtocol", b, 0), name=str(d.get("name", "")),
                        source=str(d.get("source", "")), speed=d.get("speed"), locationID=loc)
    interfaces = d.get("interfaces", [])
    if not isinstance(interfaces, list):
        raise BadArgumentError(f"device dict: interfaces is {type(interfaces).__name__}, must be a list")
    for n, i in enumerate(interfaces):
        where = f"device dict: interfaces[{n}]"
        if not isinstance(i, dict):
            raise BadArgumentError(f"{where}: is {type(i).__name__}, must be an object")
        cv = _field(i, "bConfigurationValue", b, 1, where)
        if cv not in dev.configurations:
            dev.configurations[cv] = []
            dev.config_order.append(cv)
        usages = i.get("hid_usages")
        pairs: list[tuple[int, int]] | None = None
        if usages:
            if not isinstance(usages, list) or not all(
                    isinstance(u, list) and len(u) == 2 and all(type(x) is int and 0 <= x <= 0xFFFFFFFF for x in u)
                    for u in usages):
                raise BadArgumentError(f"{where}: hid_usages must be a list of [usage page, usage] integer pairs")
            pairs = [(p, u) for p, u in usages]
        dev.configurations[cv].append(USBInterfaceInfo(
            bConfigurationValue=cv, bInterfaceNumber=_field(i, "bInterfaceNumber", b, None, where),
            bAlternateSetting=_field(i, "bAlternateSetting", b, 0, where),
            bInterfaceClass=_field(i, "bInterfaceClass", b, None, where),
            bInterfaceSubClass=_field(i, "bInterfaceSubClass", b, 0, where),
            bInterfaceProtocol=_field(i, "bInterfaceProtocol", b, 0, where), hid_usages=pairs))
    return dev


def load_devices(path: str | Path) -> list[USBDeviceInfo]:
    """Devices from a file.

    A JSON device dict (or a list of them, see :func:`device_from_dict`) is read here; every
    descriptor format goes through ``dkproto.usb.load`` (engineer H1's loader: corpus/library
    JSON, dkproto JSON, raw sysfs ``descriptors`` bytes, annotated hex, ``descriptors/<name>``
    without ``.json``), whose bytes feed :func:`device_from_descriptors`.
    """
    p = Path(path)
    if p.suffix == ".json" and p.is_file():
        try:
            obj = json.loads(read_file(p, max_bytes=MAX_DEVICE_FILE))
        except ValueError as exc:
            raise DecodeError(f"not JSON ({exc})", descriptor=str(p), rule="json") from exc
        items = obj if isinstance(obj, list) else [obj]
        if items and all(isinstance(i, dict) and "idVendor" in i and "descriptors_hex" not in i for i in items):
            out = []
            for item in items:
                try:
                    dev = device_from_dict(item)
                except BadArgumentError as exc:
                    raise BadArgumentError(f"{p}: {exc}") from exc
                dev.source = dev.source or str(p)
                out.append(dev)
            return out
    from dkproto.usb import load

    ds = load(p)
    name = str((ds.meta or {}).get("name") or p.stem)
    return [device_from_descriptors(ds.to_bytes(), name=name, source=str(p))]


@dataclass(slots=True)
class Candidate:
    """A provider nub that personalities are matched against."""

    provider_class: str
    properties: dict[str, Any]
    label: str
    device: USBDeviceInfo | None = None
    interface: USBInterfaceInfo | None = None


def candidates_for(dev: USBDeviceInfo, *, config_index: int = 0) -> list[Candidate]:
    """The nubs a device publishes: the device, its interfaces (alt 0 of config index 0) and
    IOHIDInterface nubs for HID interfaces whose top-level usages are known."""
    dprops = {"idVendor": dev.idVendor, "idProduct": dev.idProduct, "bcdDevice": dev.bcdDevice,
              "bDeviceClass": dev.bDeviceClass, "bDeviceSubClass": dev.bDeviceSubClass,
              "bDeviceProtocol": dev.bDeviceProtocol}
    if dev.speed is not None:
        dprops["USBSpeed"] = dev.speed
    if dev.locationID is not None:
        dprops["locationID"] = dev.locationID
    out = [Candidate("IOUSBHostDevice", dprops, f"IOUSBHostDevice {dev.label}", dev)]
    if dev.config_order and config_index < len(dev.config_order):
        cv = dev.config_order[config_index]
        for intf in dev.configurations[cv]:
            if intf.bAlternateSetting != 0:
                continue
            props = dict(dprops)
            for k in ("bDeviceClass", "bDeviceSubClass", "bDeviceProtocol"):
                props.pop(k)
            props.update(bConfigurationValue=intf.bConfigurationValue, bInterfaceNumber=intf.bInterfaceNumber,
                         bAlternateSetting=0, bInterfaceClass=intf.bInterfaceClass,
                         bInterfaceSubClass=intf.bInterfaceSubClass, bInterfaceProtocol=intf.bInterfaceProtocol)
            out.append(Candidate("IOUSBHostInterface", props,
                                 f"IOUSBHostInterface #{intf.bInterfaceNumber} (class 0x{intf.bInterfaceClass:02x}/"
                                 f"0x{intf.bInterfaceSubClass:02x}/0x{intf.bInterfaceProtocol:02x})", dev, intf))
            if intf.bInterfaceClass == 3 and intf.hid_usages:
                page, usage = intf.hid_usages[0]
                hprops = {"VendorID": dev.idVendor, "ProductID": dev.idProduct, "Transport": "USB",
                          "PrimaryUsagePage": page, "PrimaryUsage": usage,
                          "DeviceUsagePairs": [{"DeviceUsagePage": p, "DeviceUsage": u} for p, u in intf.hid_usages]}
                out.append(Candidate("IOHIDInterface", hprops,
                                     f"IOHIDInterface #{intf.bInterfaceNumber} (usage 0x{page:02x}:0x{usage:02x})",
                                     dev, intf))
    return out


@dataclass(slots=True)
class MatchResult:
    """One personality against one candidate."""

    personality: Personality
    candidate: Candidate
    matched: bool
    score: int | None = None
    row: Row | None = None
    wildcards: int = 0
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    won: bool = False
    entitled: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"personality": self.personality.name, "provider": self.candidate.label, "matched": self.matched,
                "score": self.score, "row": self.row.score if self.row else None, "wildcards": self.wildcards,
                "won": self.won, "entitled": self.entitled, "reasons": self.reasons, "warnings": self.warnings}


def _fmt(v: Any, key: str = "") -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"0x{v:02x}" if key.startswith("b") and not key.startswith("bcd") else f"0x{v:04x}"
    return repr(v)


def _as_int(key: str, v: Any) -> int | str:
    """A USB matching value as given: an integer in range or ``'*'``; never a string converted."""
    problem = matching_value_problem(key, v)
    if problem:
        raise BadArgumentError(f"matching key {problem}")
    if not (v == WILDCARD or (isinstance(v, int) and not isinstance(v, bool))):
        raise BadArgumentError(f"matching key {key} is {v!r}, must be an integer or '*'")
    return v  # type: ignore[no-any-return]


def _compare_usb(keys: dict[str, Any], props: dict[str, Any], reasons: list[str]) -> tuple[bool, int, set[str]]:
    """Rule 1: every present key matches. Returns (ok, wildcards, scoring keys present)."""
    wild = 0
    present: set[str] = set()
    ok = True
    for key in ("idProductMask", "idProductArray"):
        problem = matching_value_problem(key, keys[key]) if key in keys else None
        if problem:
            raise BadArgumentError(f"matching key {problem}")
    for key, want in keys.items():
        if key in ("idProductMask", "idProductArray"):
            continue
        want = _as_int(key, want)
        have = props.get(key)
        if key == "idProduct":
            present.add(key)
            if want == WILDCARD:
                wild += 1
                reasons.append("idProduct '*' (wildcard, -1000)")
                continue
            mask = keys.get("idProductMask")
            if mask is not None and have is not None:
                if (have & int(mask)) == (int(want) & int(mask)):
                    reasons.append(f"idProduct {_fmt(have)} & mask {_fmt(int(mask))} == {_fmt(int(want) & int(mask))}")
                    continue
            elif have == want:
                reasons.append(f"idProduct {_fmt(have)} matches")
                continue
            arr = keys.get("idProductArray")
            if isinstance(arr, list) and have in arr:
                reasons.append(f"idProduct {_fmt(have)} is in idProductArray")
                continue
            reasons.append(f"idProduct {_fmt(have)} != {_fmt(want)}" + (f" under mask {_fmt(int(mask))}" if mask else ""))
            ok = False
            continue
        if key not in props:
            reasons.append(f"{key} is not a property of this provider")
            ok = False
            continue
        present.add(key)
        if want == WILDCARD:
            wild += 1
            reasons.append(f"{key} '*' (wildcard, -1000)")
        elif have == want:
            reasons.append(f"{key} {_fmt(have, key)} matches")
        else:
            reasons.append(f"{key} {_fmt(have, key)} != {_fmt(want, key)}")
            ok = False
    if "idProduct" not in keys and "idProductArray" in keys:
        present.add("idProduct")
        arr = keys["idProductArray"]
        have = props.get("idProduct")
        if isinstance(arr, list) and have in arr:
            reasons.append(f"idProduct {_fmt(have)} is in idProductArray (scored like idProduct: [unconfirmed])")
        else:
            reasons.append(f"idProduct {_fmt(have)} not in idProductArray {[_fmt(a) for a in arr or []]}")
            ok = False
    if "idProductMask" in keys and "idProduct" not in keys:
        reasons.append("idProductMask without idProduct is ignored")
    return ok, wild, present


def _pick_row(table: tuple[Row, ...], present: set[str], scoring: frozenset[str], cls_value: int,
              reasons: list[str]) -> Row | None:
    keys = present & scoring
    for row in table:
        if not row.required <= keys or not keys <= row.required | row.allowed:
            continue
        if row.vendor_specific is True and cls_value != 0xFF:
            reasons.append(f"row {row.score} ({row.text}) needs {row.class_key} 0xFF; the provider has "
                           f"0x{cls_value:02x}")
            continue
        if row.vendor_specific is False and cls_value == 0xFF:
            reasons.append(f"row {row.score} ({row.text}) needs {row.class_key} != 0xFF; the provider has 0xFF "
                           "(vendor-specific: match with idVendor)")
            continue
        return row
    # Not a table combination: say which row is nearest.
    best = min(table, key=lambda r: (len(r.required - keys) + len(keys - r.required - r.allowed), -r.score))
    missing = sorted(best.required - keys)
    extra = sorted(keys - best.required - best.allowed)
    hint = []
    if missing:
        hint.append(f"add {', '.join(missing)}")
    if extra:
        hint.append(f"drop {', '.join(extra)}")
    reasons.append(f"keys {{{', '.join(sorted(keys)) or 'none'}}} are not one of Apple's combinations; nearest is "
                   f"row {best.score} ({best.text})" + (f": {' and '.join(hint)}" if hint else ""))
    return None


def _compare_generic(keys: dict[str, Any], props: dict[str, Any], reasons: list[str]) -> bool:
    ok = True
    for key, want in keys.items():
        if key == "DeviceUsagePairs":
            pairs = props.get("DeviceUsagePairs") or []
            wanted = [w for w in (want if isinstance(want, list) else [want]) if isinstance(w, dict)]
            hit = any(all(p.get(k) == v for k, v in w.items()) for w in wanted for p in pairs)
            reasons.append(f"DeviceUsagePairs {'match' if hit else 'do not match'} {pairs}")
            ok &= hit
            continue
        if key in ("DeviceUsagePage", "DeviceUsage"):
            pairs = props.get("DeviceUsagePairs") or []
            hit = any(p.get(key) == want for p in pairs)
            reasons.append(f"{key} {_fmt(want)} {'found' if hit else 'not found'} in the device's usage pairs")
            ok &= hit
            continue
        if key not in props:
            reasons.append(f"{key} is not a property of this provider")
            ok = False
        elif props[key] == want:
            reasons.append(f"{key} {_fmt(want, key)} matches")
        else:
            reasons.append(f"{key} {_fmt(props[key], key)} != {_fmt(want, key)}")
            ok = False
    return ok


def score_personality(p: Personality, c: Candidate) -> MatchResult:
    """Compare one personality with one candidate and explain the outcome."""
    res = MatchResult(personality=p, candidate=c, matched=False)
    if p.io_provider_class != c.provider_class:
        res.reasons.append(f"IOProviderClass {p.io_provider_class} is not {c.provider_class}")
        return res
    keys = p.matching_keys()
    pm = p.properties.get("IOPropertyMatch")
    if isinstance(pm, dict) and not _compare_generic(pm, c.properties, res.reasons):
        return res
    if c.provider_class in ("IOUSBHostDevice", "IOUSBHostInterface"):
        device = c.provider_class == "IOUSBHostDevice"
        scoring = _DEVICE_SCORING if device else _INTERFACE_SCORING
        usb_keys = {}
        for k, v in keys.items():
            if k in scoring or k in _CONSTRAINTS or k in ("idProductMask", "idProductArray"):
                usb_keys[k] = v
            else:
                res.warnings.append(f"{k} is not a {c.provider_class} matching key: ignored")
        try:
            ok, wild, present = _compare_usb(usb_keys, c.properties, res.reasons)
        except BadArgumentError as exc:
            res.reasons.append(str(exc))
            return res
        if not ok:
            return res
        cls_value = c.properties["bDeviceClass" if device else "bInterfaceClass"]
        row = _pick_row(DEVICE_TABLE if device else INTERFACE_TABLE, present, scoring, cls_value, res.reasons)
        if row is None:
            return res
        res.row, res.wildcards = row, wild
        res.score = row.score - WILDCARD_COST * wild + p.io_probe_score
        res.reasons.append(f"QA1076 row {row.score}: {row.text}" + (f", {wild} wildcard(s)" if wild else ""))
        if "IOProbeScore" in p.properties:
            res.warnings.append(f"IOProbeScore {p.io_probe_score} on a USB personality: Apple says never add it "
                                "(driverkit.md 3.4); it was added to the score")
        res.matched = True
        return res
    if c.provider_class == "IOUserResources":
        want = p.properties.get("IOResourceMatch")
        if want is not None and want != "IOKit":
            res.reasons.append(f"IOResourceMatch {want!r}: only 'IOKit' is published here")
            return res
        res.reasons.append("IOUserResources always matches (IOResourceMatch IOKit)")
    else:
        hid = {k: v for k, v in keys.items() if k in _HID_KEYS or k == "DeviceUsagePairs"}
        for k in keys:
            if k not in hid:
                res.warnings.append(f"{k} is not a {c.provider_class} matching key: ignored")
        if not _compare_generic(hid, c.properties, res.reasons):
            return res
    res.score = p.io_probe_score
    res.matched = True
    return res


def check_transport_entitlement(ents: Entitlements | None, c: Candidate) -> tuple[bool | None, str]:
    """Do the dext's ``transport.usb`` dictionaries allow this device (driverkit.md 7.1)?

    A dictionary allows the device when each of its keys present matches (``idVendor`` "*"
    is the development-only variant); the exact comparison Apple uses is [unconfirmed].
    Returns ``(None, why)`` when there is nothing to check.
    """
    if ents is None or c.device is None:
        return None, "no entitlements to check"
    dicts = ents.transport_usb
    if not dicts:
        return False, "com.apple.developer.driverkit.transport.usb is missing: the dext may not drive USB devices"
    props = dict(c.properties)
    dev = c.device
    props.update(idVendor=dev.idVendor, idProduct=dev.idProduct, bcdDevice=dev.bcdDevice,
                 bDeviceClass=dev.bDeviceClass, bDeviceSubClass=dev.bDeviceSubClass,
                 bDeviceProtocol=dev.bDeviceProtocol)
    for i, d in enumerate(dicts):
        reasons: list[str] = []
        try:
            ok, _, _ = _compare_usb(d, props, reasons)
        except BadArgumentError as exc:
            reasons.append(str(exc))
            ok = False
        if ok:
            dev_only = " (idVendor '*': development only)" if d.get("idVendor") == WILDCARD else ""
            return True, f"transport.usb[{i}] allows it: {'; '.join(reasons)}{dev_only}"
    return False, f"no transport.usb dictionary allows idVendor 0x{dev.idVendor:04x} idProduct 0x{dev.idProduct:04x}"


@dataclass(slots=True)
class MatchReport:
    """Every personality against every candidate of every device."""

    bundle: DriverBundle
    devices: list[USBDeviceInfo]
    results: list[MatchResult]

    def winners(self) -> list[MatchResult]:
        """The results that won their candidate."""
        return [r for r in self.results if r.won]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"bundle": self.bundle.bundle_identifier, "plist": self.bundle.path,
                "devices": [{"label": d.label, "source": d.source} for d in self.devices],
                "results": [r.as_dict() for r in self.results]}


def match(bundle: DriverBundle, devices: list[USBDeviceInfo], *, user_resources: bool = True) -> MatchReport:
    """Match every personality of ``bundle`` against every device's candidates.

    Winner per candidate and ``IOMatchCategory``: the highest score (ties keep plist order).
    Entitlements, when the bundle has them, mark each USB result allowed or not
    (``transport.usb``) and note a missing family entitlement.
    """
    results: list[MatchResult] = []
    cands: list[Candidate] = []
    for dev in devices:
        cands.extend(candidates_for(dev))
    if user_resources and any(p.io_provider_class == "IOUserResources" for p in bundle.personalities):
        cands.append(Candidate("IOUserResources", {"IOResourceMatch": "IOKit"}, "IOUserResources"))
    for c in cands:
        rs = [score_personality(p, c) for p in bundle.personalities]
        by_cat: dict[str, MatchResult] = {}
        for r in rs:
            if not r.matched:
                continue
            if bundle.entitlements is not None:
                if c.provider_class.startswith("IOUSBHost"):
                    r.entitled, why = check_transport_entitlement(bundle.entitlements, c)
                    r.reasons.append(why)
                fam = family_entitlement_for(r.personality.io_class)
                if fam and bundle.entitlements.get(fam) is not True:
                    r.warnings.append(f"IOClass {r.personality.io_class} needs entitlement {fam}")
                if bundle.entitlements.get("com.apple.developer.driverkit") is not True:
                    r.warnings.append("com.apple.developer.driverkit is not true")
            cat = r.personality.io_match_category
            best = by_cat.get(cat)
            if best is None or (r.score or 0) > (best.score or 0):
                by_cat[cat] = r
        for r in by_cat.values():
            if r.entitled is False:
                r.reasons.append("would win, but the entitlements do not allow the device: the kernel refuses it")
                continue
            r.won = True
        for r in rs:
            if r.matched and not r.won and by_cat.get(r.personality.io_match_category) is not r:
                w = by_cat[r.personality.io_match_category]
                r.reasons.append(f"outscored by {w.personality.name} ({w.score} > {r.score})"
                                 if (w.score or 0) > (r.score or 0) else f"tie with {w.personality.name} "
                                 f"({w.score}); the earlier personality is kept")
        results.extend(rs)
    return MatchReport(bundle=bundle, devices=devices, results=results)
