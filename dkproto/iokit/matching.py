"""Matching personalities against devices: the nubs a device publishes, and each personality
scored against each nub of its ``IOProviderClass``, with the reasons.

Nothing here names a family: the candidates (nubs) and the rules come from the registered
families (:mod:`~dkproto.iokit.family`). A described device (:class:`USBDeviceInfo`, from a
descriptor set, a capture or a live device) publishes the nubs of the families with a ``nubs``
hook (the USB device and its interfaces, :mod:`~dkproto.iokit.usb_matching`), each followed by
the nubs published on it (an ``IOHIDInterface`` on a HID interface); families without a device
(``IOUserResources``) add theirs when a personality names them.

Each personality is compared with each candidate of its ``IOProviderClass``: ``IOPropertyMatch``
first (every family), then the family's scorer (QA1076 for USB, the HID keys, ``IOResourceMatch``).
Per candidate and ``IOMatchCategory`` the highest score wins. Every result carries the
reasons, so ``dkproto match`` can say why each personality matches or not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dkproto._paths import read_file
from dkproto.errors import BadArgumentError, DecodeError
from dkproto.iokit.family import families, family_entitlement_for, family_for
from dkproto.iokit.personality import ENT_DRIVERKIT, DriverBundle, Personality

if TYPE_CHECKING:
    from dkproto.iokit.usb_matching import Row

__all__ = [
    "Candidate",
    "MatchReport",
    "MatchResult",
    "USBDeviceInfo",
    "USBInterfaceInfo",
    "candidates_for",
    "compare_properties",
    "device_from_descriptors",
    "device_from_dict",
    "format_value",
    "load_devices",
    "match",
    "score_personality",
]

#: A device JSON file larger than this (64 MiB) is refused unread.
MAX_DEVICE_FILE = 64 << 20


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
    """The nubs a device publishes (configuration index ``config_index``), in publication order:
    each family's ``nubs``, each followed by the nubs other families publish on it."""
    out: list[Candidate] = []

    def publish(c: Candidate) -> None:
        out.append(c)
        for fam in families():
            if fam.children is not None and c.provider_class in fam.published_on:
                for child in fam.children(c):
                    publish(child)

    for fam in families():
        if fam.nubs is not None:
            for c in fam.nubs(dev, config_index):
                publish(c)
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


def format_value(v: Any, key: str = "") -> str:
    """How reasons show a value: ``0x..`` (two digits for ``b*`` keys, four otherwise), else ``repr``."""
    if isinstance(v, int) and not isinstance(v, bool):
        return f"0x{v:02x}" if key.startswith("b") and not key.startswith("bcd") else f"0x{v:04x}"
    return repr(v)


def compare_properties(keys: dict[str, Any], props: dict[str, Any], reasons: list[str]) -> bool:
    """Each key equals the provider's property (``DeviceUsagePairs``, ``DeviceUsagePage``/``DeviceUsage``:
    found among the provider's usage pairs); appends a reason per key. ``IOPropertyMatch`` and HID keys."""
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
            found = "found" if hit else "not found"
            reasons.append(f"{key} {format_value(want)} {found} in the device's usage pairs")
            ok &= hit
            continue
        if key not in props:
            reasons.append(f"{key} is not a property of this provider")
            ok = False
        elif props[key] == want:
            reasons.append(f"{key} {format_value(want, key)} matches")
        else:
            reasons.append(f"{key} {format_value(props[key], key)} != {format_value(want, key)}")
            ok = False
    return ok


def score_personality(p: Personality, c: Candidate) -> MatchResult:
    """Compare one personality with one candidate and explain the outcome."""
    res = MatchResult(personality=p, candidate=c, matched=False)
    if p.io_provider_class != c.provider_class:
        res.reasons.append(f"IOProviderClass {p.io_provider_class} is not {c.provider_class}")
        return res
    fam = family_for(c.provider_class)
    if fam is None or fam.score is None:
        res.reasons.append(f"no DriverKit family is registered for IOProviderClass {c.provider_class}")
        return res
    pm = p.properties.get("IOPropertyMatch")
    if isinstance(pm, dict) and not compare_properties(pm, c.properties, res.reasons):
        return res
    score = fam.score(p, c, p.matching_keys(), res)
    if score is not None:
        res.score, res.matched = score, True
    return res


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


def match(bundle: DriverBundle, devices: list[USBDeviceInfo], *, standalone: bool = True) -> MatchReport:
    """Match every personality of ``bundle`` against every device's candidates.

    ``standalone``: also the nubs that exist without a device (``IOUserResources``), for the
    classes the personalities name. Winner per candidate and ``IOMatchCategory``: the highest
    score (ties keep plist order). Entitlements, when the bundle has them, mark each result
    allowed or not (the provider family's transport entitlement) and note a missing family
    entitlement.
    """
    results: list[MatchResult] = []
    cands: list[Candidate] = []
    for dev in devices:
        cands.extend(candidates_for(dev))
    if standalone:
        named = {p.io_provider_class for p in bundle.personalities}
        for fam in families():
            if fam.standalone is not None and fam.name in named:
                cands.extend(fam.standalone())
    for c in cands:
        rs = [score_personality(p, c) for p in bundle.personalities]
        provider = family_for(c.provider_class)
        by_cat: dict[str, MatchResult] = {}
        for r in rs:
            if not r.matched:
                continue
            if bundle.entitlements is not None:
                if provider is not None and provider.check_entitlement is not None:
                    r.entitled, why = provider.check_entitlement(bundle.entitlements, c)
                    r.reasons.append(why)
                ent = family_entitlement_for(r.personality.io_class)
                if ent and bundle.entitlements.get(ent) is not True:
                    r.warnings.append(f"IOClass {r.personality.io_class} needs entitlement {ent}")
                if bundle.entitlements.get(ENT_DRIVERKIT) is not True:
                    r.warnings.append(f"{ENT_DRIVERKIT} is not true")
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
