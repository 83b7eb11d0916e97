"""Driver bundles: ``Info.plist`` ``IOKitPersonalities`` and ``.entitlements`` plists (plistlib).

A personality is the matching dictionary the kernel compares with providers
(driverkit.md 3.3): ``IOProviderClass``, ``IOClass`` (the kernel class) and ``IOUserClass``
(your class), the USB or HID matching keys, optional ``IOProbeScore``, ``IOMatchCategory``,
``IOPropertyMatch``, ``IOResourceMatch``, and any dictionaries such as
``UserClientProperties`` that ``Create`` reads. Entitlements (driverkit.md 7.1) decide whether
the dext may drive a device (each provider family's transport entitlement) and which
family classes it may use (:mod:`~dkproto.iokit.family`).
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkproto._paths import read_file
from dkproto.errors import BadArgumentError, DecodeError, DkError, NotFoundError

__all__ = [
    "ENT_DRIVERKIT",
    "DriverBundle",
    "Entitlements",
    "Personality",
    "load_bundle",
    "load_entitlements",
    "load_info_plist",
    "matching_value_problem",
    "value_kind",
]

ENT_DRIVERKIT = "com.apple.developer.driverkit"

#: Personality keys that are not matching keys (IOKit bookkeeping and driver properties).
NON_MATCHING_KEYS = frozenset({
    "CFBundleIdentifier", "CFBundleIdentifierKernel", "IOClass", "IOUserClass", "IOProviderClass",
    "IOUserServerName", "IOProbeScore", "IOMatchCategory", "IOPropertyMatch", "IOResourceMatch",
    "IOKitDebug", "IOUserServerOneProcess", "UserClientProperties", "IOTTYBaseName", "IOTTYSuffix",
    "IOServiceDEXTEntitlements", "IOMatchDefer",
})

#: An Info.plist or .entitlements larger than this (16 MiB) is refused unread.
MAX_PLIST_BYTES = 16 << 20

_U8, _U16, _U32 = 0xFF, 0xFFFF, 0xFFFFFFFF
#: Integer personality keys dkproto reads -> (largest value, whether the "*" wildcard is allowed).
INT_KEYS: dict[str, tuple[int, bool]] = {
    **dict.fromkeys(("idVendor", "idProduct", "bcdDevice"), (_U16, True)),
    **dict.fromkeys(("idProductMask", "bcdDeviceLow", "bcdDeviceHigh"), (_U16, False)),
    **dict.fromkeys(("bDeviceClass", "bDeviceSubClass", "bDeviceProtocol", "bInterfaceNumber", "bInterfaceClass",
                     "bInterfaceSubClass", "bInterfaceProtocol", "bConfigurationValue", "bAlternateSetting"),
                    (_U8, True)),
    **dict.fromkeys(("locationID", "USBSpeed", "USBPortType"), (_U32, False)),
    **dict.fromkeys(("VendorID", "ProductID", "LocationID", "VersionNumber", "CountryCode"), (_U32, False)),
    **dict.fromkeys(("PrimaryUsagePage", "PrimaryUsage", "DeviceUsagePage", "DeviceUsage"), (_U32, False)),
}
#: String personality keys dkproto reads.
STR_KEYS = frozenset({"IOProviderClass", "IOClass", "IOUserClass", "IOMatchCategory", "IOUserServerName",
                      "IOResourceMatch", "Transport", "IOTTYBaseName", "IOTTYSuffix"})


def value_kind(v: Any) -> str:
    """A plist value as error messages name it: ``a string ('0xff00')``, ``an array``..."""
    names = {bool: "a boolean", str: "a string", int: "an integer", float: "a real", dict: "a dictionary",
             list: "an array", bytes: "data"}
    return f"{names.get(type(v), type(v).__name__)} ({v!r})" if not isinstance(v, (dict, list)) else names[type(v)]


def matching_value_problem(key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the integer matching key ``key`` (None: fine or not such a key).

    Integers must be plist ``<integer>``s in range, never strings to be converted; ``"*"`` is
    accepted where QA1076 allows a wildcard; ``idProductArray`` is an array of 16-bit integers.
    """
    if key == "idProductArray":
        if not isinstance(value, list):
            return f"idProductArray is {value_kind(value)}, must be an array of integers 0..0xFFFF"
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _U16:
                return f"idProductArray[{i}] is {value_kind(v)}, must be an integer 0..0xFFFF"
        return None
    spec = INT_KEYS.get(key)
    if spec is None:
        return None
    hi, wildcard = spec
    if wildcard and value == "*":
        return None
    allowed = f"an integer 0..0x{hi:X}" + (" or '*'" if wildcard else "")
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{key} is {value_kind(value)}, must be {allowed}"
    if not 0 <= value <= hi:
        return f"{key} {value} is out of range, must be {allowed}"
    return None


def _check_personality(props: dict[str, Any], where: str) -> None:
    """Refuse (DecodeError naming the key) any key dkproto reads that has the wrong type or range."""
    def bad(problem: str, key: str) -> DecodeError:
        return DecodeError(problem, descriptor=where, rule=key)

    for key, value in props.items():
        problem = matching_value_problem(key, value)
        if problem:
            raise bad(problem, key)
        if key in STR_KEYS and not isinstance(value, str):
            raise bad(f"{key} is {value_kind(value)}, must be a string", key)
    score = props.get("IOProbeScore")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int)
                              or not -(1 << 31) <= score < 1 << 31):
        raise bad(f"IOProbeScore is {value_kind(score)}, must be a 32-bit integer", "IOProbeScore")
    for key in ("IOPropertyMatch", "UserClientProperties"):
        if key in props and not isinstance(props[key], dict):
            raise bad(f"{key} is {value_kind(props[key])}, must be a dictionary", key)
    ucp = props.get("UserClientProperties") or {}
    for key in ("IOClass", "IOUserClass"):
        if key in ucp and not isinstance(ucp[key], str):
            raise bad(f"UserClientProperties/{key} is {value_kind(ucp[key])}, must be a string", key)
    ents = ucp.get("IOServiceDEXTEntitlements")
    if ents is not None and not (isinstance(ents, str) or (isinstance(ents, list) and all(
            isinstance(g, str) or (isinstance(g, list) and all(isinstance(n, str) for n in g)) for g in ents))):
        raise bad("UserClientProperties/IOServiceDEXTEntitlements must be a string, an array of strings or an "
                  "array of arrays of strings", "IOServiceDEXTEntitlements")
    pairs = props.get("DeviceUsagePairs")
    if pairs is not None:
        items = pairs if isinstance(pairs, list) else [pairs]
        for i, pair in enumerate(items):
            if not isinstance(pair, dict):
                raise bad(f"DeviceUsagePairs[{i}] is {value_kind(pair)}, must be a dictionary",
                          "DeviceUsagePairs")
            for k, v in pair.items():
                problem = matching_value_problem(k, v) if k in INT_KEYS else f"unknown key {k}"
                if problem:
                    raise bad(f"DeviceUsagePairs[{i}]: {problem}", "DeviceUsagePairs")


@dataclass(slots=True)
class Personality:
    """One ``IOKitPersonalities`` entry.

    Attributes:
        name: its key in ``IOKitPersonalities``.
        properties: the whole dictionary as plistlib read it.
    """

    name: str
    properties: dict[str, Any]

    @property
    def io_provider_class(self) -> str:
        """``IOProviderClass``."""
        return str(self.properties.get("IOProviderClass", ""))

    @property
    def io_class(self) -> str | None:
        """``IOClass`` (the kernel class backing the dext's class)."""
        return self.properties.get("IOClass")

    @property
    def io_user_class(self) -> str | None:
        """``IOUserClass`` (your DriverKit class)."""
        return self.properties.get("IOUserClass")

    @property
    def io_probe_score(self) -> int:
        """``IOProbeScore`` (0 when absent)."""
        v = self.properties.get("IOProbeScore", 0)
        return int(v) if isinstance(v, int) else 0

    @property
    def io_match_category(self) -> str:
        """``IOMatchCategory`` (IOKit's default category when absent)."""
        return str(self.properties.get("IOMatchCategory", "IODefaultMatchCategory"))

    @property
    def user_client_properties(self) -> dict[str, Any] | None:
        """``UserClientProperties`` (``IOClass`` IOUserUserClient, ``IOUserClass``...)."""
        v = self.properties.get("UserClientProperties")
        return v if isinstance(v, dict) else None

    def matching_keys(self) -> dict[str, Any]:
        """The keys the provider's family compares (everything but IOKit bookkeeping)."""
        return {k: v for k, v in self.properties.items() if k not in NON_MATCHING_KEYS}


@dataclass(slots=True)
class Entitlements:
    """A ``.entitlements`` plist."""

    values: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        """The value of entitlement ``key``."""
        return self.values.get(key, default)

    def dictionaries(self, key: str) -> list[dict[str, Any]]:
        """An entitlement holding a dictionary or an array of them (``transport.usb``), as a list;
        entries that are not dictionaries are left out."""
        v = self.values.get(key)
        if isinstance(v, dict):
            return [v]
        return [d for d in v if isinstance(d, dict)] if isinstance(v, list) else []


@dataclass(slots=True)
class DriverBundle:
    """An ``Info.plist`` (and optionally its entitlements) as dkproto uses them."""

    path: str
    bundle_identifier: str
    personalities: list[Personality]
    info: dict[str, Any]
    entitlements: Entitlements | None = None

    def personality(self, name: str) -> Personality:
        """The personality called ``name``."""
        for p in self.personalities:
            if p.name == name:
                return p
        raise NotFoundError(f"{self.path}: no personality {name!r} (have: "
                            f"{', '.join(p.name for p in self.personalities)})")


def _read_plist(path: str | Path, what: str) -> dict[str, Any]:
    p = Path(path)
    try:
        data = read_file(p, max_bytes=MAX_PLIST_BYTES)
    except DkError as exc:
        raise type(exc)(f"{what} {exc}", ioreturn=exc.ioreturn) from exc
    try:
        obj = plistlib.loads(data)
    except Exception as exc:  # plistlib raises InvalidFileException, ExpatError, ValueError...
        raise DecodeError(f"not a property list ({exc})", descriptor=f"{what} {p}", rule="plist") from exc
    if not isinstance(obj, dict):
        raise DecodeError("top level is not a dictionary", descriptor=f"{what} {p}", rule="plist")
    return obj


def load_info_plist(path: str | Path) -> DriverBundle:
    """Read ``IOKitPersonalities`` from an ``Info.plist``.

    ``$(PRODUCT_BUNDLE_IDENTIFIER)``-style variables in a personality's
    ``CFBundleIdentifier`` are replaced by the bundle's ``CFBundleIdentifier`` (Xcode does this
    at build time).

    Raises:
        NotFoundError: no such file.
        DecodeError: not a plist, or a personality without ``IOProviderClass``/``IOUserClass``.
    """
    info = _read_plist(path, "Info.plist")
    bundle_id = info.get("CFBundleIdentifier", "")
    if not isinstance(bundle_id, str):
        raise DecodeError(f"CFBundleIdentifier is {value_kind(bundle_id)}, must be a string",
                          descriptor=f"Info.plist {path}", rule="CFBundleIdentifier")
    pers = info.get("IOKitPersonalities")
    if not isinstance(pers, dict) or not pers:
        problem = ("no IOKitPersonalities dictionary" if pers is None or pers == {} else
                   f"IOKitPersonalities is {value_kind(pers)}, must be a dictionary of personalities")
        raise DecodeError(problem, descriptor=f"Info.plist {path}", rule="IOKitPersonalities")
    out = []
    for name, props in pers.items():
        where = f"Info.plist {path}: IOKitPersonalities/{name}"
        if not isinstance(props, dict):
            raise DecodeError("personality is not a dictionary", descriptor=where, rule="IOKitPersonalities")
        props = dict(props)
        if "IOProviderClass" not in props:
            raise DecodeError("IOProviderClass missing", descriptor=where, rule="IOProviderClass")
        if "IOUserClass" not in props and "IOClass" not in props:
            raise DecodeError("neither IOUserClass nor IOClass", descriptor=where, rule="IOUserClass")
        _check_personality(props, where)
        cfb = props.get("CFBundleIdentifier")
        if not isinstance(cfb, str) or cfb.startswith("$("):
            props["CFBundleIdentifier"] = bundle_id
        out.append(Personality(name=str(name), properties=props))
    return DriverBundle(path=str(path), bundle_identifier=bundle_id, personalities=out, info=info)


def load_entitlements(path: str | Path) -> Entitlements:
    """Read a ``.entitlements`` plist.

    Raises:
        DecodeError: not a plist, or a family's entitlement with a wrong value (``transport.usb``:
            an entry that is not a dictionary of integer or ``"*"`` matching keys); the message
            names the entry and key.
    """
    from dkproto.iokit.family import families

    values = _read_plist(path, "entitlements")
    for fam in families():
        key = fam.entitlement
        if fam.validate_entitlement is not None and key and values.get(key) is not None:
            fam.validate_entitlement(values[key], f"entitlements {path}: {key}")
    return Entitlements(values=values, path=str(path))


def load_bundle(info_plist: str | Path, entitlements: str | Path | None = None) -> DriverBundle:
    """``Info.plist`` plus the dext's entitlements: ``entitlements`` if given, else the one
    ``*.entitlements`` file beside the plist (``app.entitlements``, the app's, is not the dext's)."""
    bundle = load_info_plist(info_plist)
    if entitlements is None:
        found = sorted(p for p in Path(info_plist).parent.glob("*.entitlements") if p.name != "app.entitlements")
        if len(found) > 1:
            raise BadArgumentError(f"several .entitlements beside {info_plist}: pass one explicitly")
        entitlements = found[0] if found else None
    if entitlements is not None:
        bundle.entitlements = load_entitlements(entitlements)
    return bundle
