"""USB matching rules: Apple's precedence tables (QA1076) for ``IOUSBHostDevice`` and
``IOUSBHostInterface`` personalities, the nubs a described USB device publishes, and the
``transport.usb`` entitlement. :mod:`~dkproto.iokit.usb_host` registers them as the two USB
families (:mod:`~dkproto.iokit.family`); matching itself knows none of this.

A personality is compared with a candidate of its ``IOProviderClass``:

1. every USB key present must match (``"*"`` matches anything; ``idProductMask`` is ANDed
   with the device's idProduct before comparing; ``idProductArray`` lists accepted products);
2. the set of keys present must be one of Apple's combinations (driverkit.md 3.4 table),
   which gives the score; the vendor rows need class 0xFF, the class rows need class != 0xFF;
3. score = row score - 1000 per wildcard + ``IOProbeScore`` (which a USB personality should
   not have: reported as a warning).

Where the reference is unconfirmed (driverkit.md 3.4, 9): ``idProductArray`` scores like
``idProduct``; IOUSBHost* keep QA1076's scores. Interfaces are taken from configuration
index 0 only, as macOS configures a device before interface matching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dkproto.errors import BadArgumentError, DecodeError
from dkproto.iokit.matching import Candidate, USBDeviceInfo
from dkproto.iokit.matching import format_value as _fmt
from dkproto.iokit.personality import Entitlements, Personality, matching_value_problem, value_kind

if TYPE_CHECKING:
    from dkproto.iokit.family import Scorer
    from dkproto.iokit.matching import MatchResult

__all__ = [
    "DEVICE_TABLE",
    "ENT_TRANSPORT_USB",
    "INTERFACE_TABLE",
    "WILDCARD",
    "WILDCARD_COST",
    "Row",
    "check_transport_entitlement",
    "score_device",
    "score_interface",
    "usb_nubs",
    "validate_transport_usb",
]

ENT_TRANSPORT_USB = "com.apple.developer.driverkit.transport.usb"
WILDCARD = "*"
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
#: Keys that accept a list or a mask instead of comparing one value.
_PRODUCT_LISTS = ("idProductMask", "idProductArray")


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


def _table_scorer(table: tuple[Row, ...], scoring: frozenset[str]) -> Scorer:
    """A family scorer (:data:`dkproto.iokit.family.Scorer`) for one precedence table."""
    class_key = table[0].class_key

    def score(p: Personality, c: Candidate, keys: dict[str, Any], res: MatchResult) -> int | None:
        usb_keys = {}
        for k, v in keys.items():
            if k in scoring or k in _CONSTRAINTS or k in _PRODUCT_LISTS:
                usb_keys[k] = v
            else:
                res.warnings.append(f"{k} is not a {c.provider_class} matching key: ignored")
        try:
            ok, wild, present = _compare_usb(usb_keys, c.properties, res.reasons)
        except BadArgumentError as exc:
            res.reasons.append(str(exc))
            return None
        if not ok:
            return None
        row = _pick_row(table, present, scoring, c.properties[class_key], res.reasons)
        if row is None:
            return None
        res.row, res.wildcards = row, wild
        res.reasons.append(f"QA1076 row {row.score}: {row.text}" + (f", {wild} wildcard(s)" if wild else ""))
        if "IOProbeScore" in p.properties:
            res.warnings.append(f"IOProbeScore {p.io_probe_score} on a USB personality: Apple says never add it "
                                "(driverkit.md 3.4); it was added to the score")
        return row.score - WILDCARD_COST * wild + p.io_probe_score

    return score


#: ``IOUSBHostDevice`` personalities: :data:`DEVICE_TABLE`.
score_device = _table_scorer(DEVICE_TABLE, _DEVICE_SCORING)
#: ``IOUSBHostInterface`` personalities: :data:`INTERFACE_TABLE`.
score_interface = _table_scorer(INTERFACE_TABLE, _INTERFACE_SCORING)


def usb_nubs(dev: USBDeviceInfo, config_index: int = 0) -> list[Candidate]:
    """The nubs a described device publishes itself: the ``IOUSBHostDevice`` and one
    ``IOUSBHostInterface`` per interface (alternate setting 0) of configuration index ``config_index``."""
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
    return out


def validate_transport_usb(value: Any, where: str) -> None:
    """``transport.usb`` as an ``.entitlements`` file gives it: a dictionary or an array of them,
    of integer (or ``"*"``) matching keys.

    Raises:
        DecodeError: the entry and key that are wrong.
    """
    for i, d in enumerate(value if isinstance(value, list) else [value]):
        if not isinstance(d, dict):
            raise DecodeError(f"entry [{i}] is {value_kind(d)}, must be a dictionary", descriptor=where,
                              rule=ENT_TRANSPORT_USB)
        for key, v in d.items():
            problem = matching_value_problem(key, v)
            if problem:
                raise DecodeError(f"entry [{i}]: {problem}", descriptor=where, rule=key)


def check_transport_entitlement(ents: Entitlements | None, c: Candidate) -> tuple[bool | None, str]:
    """Do the dext's ``transport.usb`` dictionaries allow this device (driverkit.md 7.1)?

    A dictionary allows the device when each of its keys present matches (``idVendor`` "*"
    is the development-only variant); the exact comparison Apple uses is [unconfirmed].
    Returns ``(None, why)`` when there is nothing to check.
    """
    if ents is None or c.device is None:
        return None, "no entitlements to check"
    dicts = ents.dictionaries(ENT_TRANSPORT_USB)
    if not dicts:
        return False, f"{ENT_TRANSPORT_USB} is missing: the dext may not drive USB devices"
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
