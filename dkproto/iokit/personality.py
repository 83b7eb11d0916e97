"""Driver bundles: ``Info.plist`` ``IOKitPersonalities`` and ``.entitlements`` plists (plistlib).

A personality is the matching dictionary the kernel compares with providers
(driverkit.md 3.3): ``IOProviderClass``, ``IOClass`` (the kernel class) and ``IOUserClass``
(your class), the USB or HID matching keys, optional ``IOProbeScore``, ``IOMatchCategory``,
``IOPropertyMatch``, ``IOResourceMatch``, and any dictionaries such as
``UserClientProperties`` that ``Create`` reads. Entitlements (driverkit.md 7.1) decide whether
the dext may drive a device (``com.apple.developer.driverkit.transport.usb``) and which
family it may use.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkproto.errors import BadArgumentError, DecodeError, NotFoundError

__all__ = [
    "ENT_DRIVERKIT",
    "ENT_TRANSPORT_USB",
    "DriverBundle",
    "Entitlements",
    "Personality",
    "family_entitlement_for",
    "load_bundle",
    "load_entitlements",
    "load_info_plist",
]

ENT_DRIVERKIT = "com.apple.developer.driverkit"
ENT_TRANSPORT_USB = "com.apple.developer.driverkit.transport.usb"
ENT_TRANSPORT_HID = "com.apple.developer.driverkit.transport.hid"
ENT_FAMILY_HID_DEVICE = "com.apple.developer.driverkit.family.hid.device"
ENT_FAMILY_HID_EVENTSERVICE = "com.apple.developer.driverkit.family.hid.eventservice"
ENT_FAMILY_SERIAL = "com.apple.developer.driverkit.family.serial"

#: Personality keys that are not matching keys (IOKit bookkeeping and driver properties).
NON_MATCHING_KEYS = frozenset({
    "CFBundleIdentifier", "CFBundleIdentifierKernel", "IOClass", "IOUserClass", "IOProviderClass",
    "IOUserServerName", "IOProbeScore", "IOMatchCategory", "IOPropertyMatch", "IOResourceMatch",
    "IOKitDebug", "IOUserServerOneProcess", "UserClientProperties", "IOTTYBaseName", "IOTTYSuffix",
    "IOServiceDEXTEntitlements", "IOMatchDefer",
})

#: kernel IOClass -> the family entitlement it needs (driverkit.md 5.1, 7.1).
_FAMILY_ENT = {
    "AppleUserHIDDevice": ENT_FAMILY_HID_DEVICE,
    "AppleUserUSBHostHIDDevice": ENT_FAMILY_HID_DEVICE,
    "AppleUserHIDEventService": ENT_FAMILY_HID_EVENTSERVICE,
    "IOUserSerial": ENT_FAMILY_SERIAL,
}


def family_entitlement_for(io_class: str | None) -> str | None:
    """The family entitlement an ``IOClass`` needs, or None (``IOUserService``)."""
    return _FAMILY_ENT.get(io_class or "")


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

    @property
    def transport_usb(self) -> list[dict[str, Any]]:
        """``com.apple.developer.driverkit.transport.usb``: the list of device dictionaries."""
        v = self.values.get(ENT_TRANSPORT_USB)
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
        data = p.read_bytes()
    except OSError as exc:
        raise NotFoundError(f"{what} {p}: {exc.strerror}") from exc
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
    bundle_id = str(info.get("CFBundleIdentifier", ""))
    pers = info.get("IOKitPersonalities")
    if not isinstance(pers, dict) or not pers:
        raise DecodeError("no IOKitPersonalities dictionary", descriptor=f"Info.plist {path}",
                          rule="IOKitPersonalities")
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
        cfb = props.get("CFBundleIdentifier")
        if not isinstance(cfb, str) or cfb.startswith("$("):
            props["CFBundleIdentifier"] = bundle_id
        out.append(Personality(name=str(name), properties=props))
    return DriverBundle(path=str(path), bundle_identifier=bundle_id, personalities=out, info=info)


def load_entitlements(path: str | Path) -> Entitlements:
    """Read a ``.entitlements`` plist."""
    return Entitlements(values=_read_plist(path, "entitlements"), path=str(path))


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
