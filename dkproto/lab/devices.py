"""Lab device definitions: one JSON file per device (``devices/lab/*.json``), validated here.

The format is documented in ``devices/README.md``. Three kinds:

``qemu``
    a device QEMU emulates on its xHCI controller; ``qemu`` holds the QEMU arguments
    (``{bus}`` is the xHCI bus, ``{share}`` the results folder, ``{image:NAME:MiB}`` a fresh
    zero-filled disk image of that size).
``gadget``
    a configfs gadget bound to a ``dummy_hcd`` UDC: ``device`` (device-descriptor fields),
    ``strings``, ``functions`` (configfs function directory -> attributes and steps) and
    ``configs``; optionally ``peer``, what runs on the device side under ``dkproto lab run``
    (``"echo"`` on the serial functions, ``"none"``, or ``{"reports": [hex...], ...}`` played
    on a ``hid`` function: see :mod:`dkproto.lab.peer`).
``capture``
    a captured descriptor set (the corpus JSON format) served through USB/IP: ``capture``
    names the file (relative to the definition).

Definitions are found in, in order: the folders in ``DKPROTO_LAB_DEVICES`` (``:``-separated),
``./devices/lab`` and the ``devices/lab`` folder of the source tree dkproto runs from. A
definition in an earlier folder hides one of the same name later.

Where a definition name is expected (``dkproto lab run -d``, :func:`select`), a descriptor file
may stand instead: :func:`definition_from_file` makes a USB descriptor set a ``capture`` device
and a HID report descriptor a HID gadget that plays its recorded reports.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkproto.errors import BadArgumentError, NotFoundError

__all__ = [
    "HID_CAPTURE_ID",
    "KINDS",
    "DeviceDefinition",
    "attr_bytes",
    "definition_dirs",
    "definition_from_file",
    "load_definition",
    "load_definitions",
    "parse_definition",
]

KINDS = ("qemu", "gadget", "capture")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_DEVICE_FIELDS = {
    "idVendor": 0xFFFF, "idProduct": 0xFFFF, "bcdDevice": 0xFFFF, "bcdUSB": 0xFFFF,
    "bDeviceClass": 0xFF, "bDeviceSubClass": 0xFF, "bDeviceProtocol": 0xFF, "bMaxPacketSize0": 0xFF,
}
_STRING_KEYS = ("manufacturer", "product", "serialnumber")
_FUNCTION_TYPES = {
    "hid": "usb_f_hid", "acm": "usb_f_acm", "gser": "usb_f_serial", "Loopback": "usb_f_ss_lb",
    "SourceSink": "usb_f_ss_lb", "ffs": "usb_f_fs", "mass_storage": "usb_f_mass_storage",
    "uac2": "usb_f_uac2", "uvc": "usb_f_uvc", "midi": "usb_f_midi", "printer": "usb_f_printer",
    "ecm": "usb_f_ecm", "ncm": "usb_f_ncm", "obex": "usb_f_obex", "rndis": "usb_f_rndis",
}


def _bad(source: str, where: str, msg: str) -> BadArgumentError:
    return BadArgumentError(f"{source}: {where}: {msg}")


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceDefinition:
    """One lab device, as read from its definition file.

    Attributes:
        name: the name used with ``--device`` and ``lab_gadget(name)``.
        kind: ``qemu``, ``gadget`` or ``capture``.
        description: one line for ``dkproto lab devices``.
        default: present when no ``--device`` is given.
        modules: extra kernel modules the device needs (gadget function modules are implied).
        expect: ``vvvv:pppp`` ids that appear on the host side once the device is up.
        spec: the whole parsed JSON object.
        path: the definition file, or ``None`` for one built in code.
    """

    name: str
    kind: str
    description: str
    default: bool = False
    modules: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    spec: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def qemu_args(self) -> list[str]:
        """The QEMU arguments of a ``qemu`` device (placeholders unexpanded)."""
        return list(self.spec.get("qemu", []))

    def resolve(self, relpath: str) -> Path:
        """A path named in the definition, relative to its file."""
        base = self.path.parent if self.path else Path.cwd()
        return (base / relpath).resolve()


def attr_bytes(value: Any, definition: DeviceDefinition | None = None, where: str = "value") -> bytes:
    """What to write to a configfs attribute for a definition value.

    ``int`` -> decimal text; ``str`` -> the text (``"0x1d6b"`` is written as is: configfs
    parses it); ``{"hex": "05 01 ..."}`` -> those bytes; ``{"file": "rel/path"}`` -> the file's
    bytes; ``{"corpus_hid": "rel/path.json"}`` -> that corpus item's report descriptor.
    (``{"image_mib": N}``, a fresh zero-filled backing file, is made by the gadget builder.)

    Raises:
        BadArgumentError: a value of another shape, or bad hex.
    """
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "hex":
            try:
                return bytes.fromhex(str(arg).replace(":", " "))
            except ValueError as exc:
                raise BadArgumentError(f"{where}: bad hex: {exc}") from exc
        if key == "file" and definition is not None:
            return definition.resolve(str(arg)).read_bytes()
        if key == "corpus_hid" and definition is not None:
            item = json.loads(definition.resolve(str(arg)).read_text())
            return bytes.fromhex(item["report_descriptor_hex"])
    raise BadArgumentError(f"{where}: expected an integer, a string, {{'hex': ...}} or {{'file': ...}}, got {value!r}")


def _int_field(source: str, where: str, value: Any, limit: int) -> int:
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise _bad(source, where, f"{value!r} is not a number") from None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise _bad(source, where, f"{value!r} is not in 0..{limit:#x}")
    return value


def _check_gadget(spec: Mapping[str, Any], source: str) -> tuple[str, ...]:
    """Check a gadget spec; returns the kernel modules its functions need."""
    device = spec.get("device")
    if not isinstance(device, dict):
        raise _bad(source, "device", "a gadget needs a 'device' object (idVendor, idProduct, ...)")
    for key in ("idVendor", "idProduct"):
        if key not in device:
            raise _bad(source, f"device.{key}", "required")
    for key, value in device.items():
        if key not in _DEVICE_FIELDS:
            raise _bad(source, f"device.{key}", f"unknown field (known: {', '.join(sorted(_DEVICE_FIELDS))})")
        _int_field(source, f"device.{key}", value, _DEVICE_FIELDS[key])
    strings = spec.get("strings", {})
    if not isinstance(strings, dict) or any(k not in _STRING_KEYS for k in strings):
        raise _bad(source, "strings", f"an object with keys among {', '.join(_STRING_KEYS)}")
    functions = spec.get("functions")
    if not isinstance(functions, dict) or not functions:
        raise _bad(source, "functions", "a gadget needs at least one function")
    modules = []
    for fname, fspec in functions.items():
        ftype, dot, inst = fname.partition(".")
        if not dot or not inst or ftype not in _FUNCTION_TYPES:
            raise _bad(source, f"functions.{fname}",
                       f"name must be TYPE.INSTANCE with TYPE among {', '.join(sorted(_FUNCTION_TYPES))}")
        modules.append(_FUNCTION_TYPES[ftype])
        if not isinstance(fspec, dict):
            raise _bad(source, f"functions.{fname}", "must be an object")
        for key in fspec:
            if key not in ("attrs", "steps", "program"):
                raise _bad(source, f"functions.{fname}.{key}", "unknown key (known: attrs, steps, program)")
        for akey, aval in fspec.get("attrs", {}).items():
            if isinstance(aval, dict) and set(aval) == {"image_mib"}:
                _int_field(source, f"functions.{fname}.attrs.{akey}.image_mib", aval["image_mib"], 4096)
            elif not (isinstance(aval, dict) and set(aval) & {"file", "corpus_hid"}):
                attr_bytes(aval, None, f"{source}: functions.{fname}.attrs.{akey}")
        for i, step in enumerate(fspec.get("steps", [])):
            if not isinstance(step, dict) or len(set(step) & {"mkdir", "write", "symlink"}) != 1:
                raise _bad(source, f"functions.{fname}.steps[{i}]",
                           "each step is {'mkdir': P}, {'write': P, 'value': V} or {'symlink': P, 'to': Q}")
            if "symlink" in step and "to" not in step:
                raise _bad(source, f"functions.{fname}.steps[{i}]", "a symlink step needs 'to'")
            if "write" in step and "value" not in step:
                raise _bad(source, f"functions.{fname}.steps[{i}]", "a write step needs 'value'")
        if ftype == "ffs" and "program" not in fspec:
            raise _bad(source, f"functions.{fname}", "an ffs function needs 'program' (module:attr of a FunctionFS device)")
    configs = spec.get("configs")
    if not isinstance(configs, list) or not configs:
        raise _bad(source, "configs", "a gadget needs at least one configuration")
    for i, cfg in enumerate(configs):
        if not isinstance(cfg, dict) or not cfg.get("functions"):
            raise _bad(source, f"configs[{i}]", "needs a 'functions' list")
        for fn in cfg["functions"]:
            if fn not in functions:
                raise _bad(source, f"configs[{i}].functions", f"{fn!r} is not in 'functions'")
        if "MaxPower" in cfg:
            _int_field(source, f"configs[{i}].MaxPower", cfg["MaxPower"], 500)
        if "bmAttributes" in cfg:
            _int_field(source, f"configs[{i}].bmAttributes", cfg["bmAttributes"], 0xFF)
    return tuple(dict.fromkeys(modules))


def parse_definition(data: Any, source: str = "<definition>", path: Path | None = None) -> DeviceDefinition:
    """Validate one definition object.

    Raises:
        BadArgumentError: the message names the file, the key and the rule broken.
    """
    if not isinstance(data, dict):
        raise _bad(source, "top level", "a definition is a JSON object")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(source, "name", f"{name!r}: lower-case letters, digits, '-', '_', '.'")
    kind = data.get("kind")
    if kind not in KINDS:
        raise _bad(source, "kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    if "peer" in data and kind != "gadget":
        raise _bad(source, "peer", f"only a gadget has a peer (this is a {kind} device)")
    known = {"name", "kind", "description", "default", "modules", "expect", "notes", "source",
             "qemu", "device", "strings", "functions", "configs", "capture", "udc_speed", "peer"}
    for key in data:
        if key not in known:
            raise _bad(source, key, f"unknown key (known: {', '.join(sorted(known))})")
    modules = data.get("modules", [])
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise _bad(source, "modules", "a list of kernel module names")
    expect = data.get("expect", [])
    if not isinstance(expect, list) or not all(isinstance(e, str) and re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{4}", e)
                                               for e in expect):
        raise _bad(source, "expect", "a list of 'vvvv:pppp' (lower-case hex)")
    implied: tuple[str, ...] = ()
    if kind == "qemu":
        args = data.get("qemu")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            raise _bad(source, "qemu", "a qemu device needs a non-empty list of QEMU arguments")
    elif kind == "gadget":
        implied = _check_gadget(data, source)
        if "peer" in data:
            from dkproto.lab.peer import parse_peer

            try:
                parse_peer(data["peer"], data["functions"])
            except BadArgumentError as exc:
                raise BadArgumentError(f"{source}: {exc.message}") from None
        dev = data["device"]
        vid = _int_field(source, "device.idVendor", dev["idVendor"], 0xFFFF)
        pid = _int_field(source, "device.idProduct", dev["idProduct"], 0xFFFF)
        if not expect:
            expect = [f"{vid:04x}:{pid:04x}"]
    else:
        if not isinstance(data.get("capture"), str):
            raise _bad(source, "capture", "a capture device names its descriptor file (corpus JSON format)")
        implied = ("vhci_hcd",)
    return DeviceDefinition(
        name=name,
        kind=kind,
        description=str(data.get("description", "")),
        default=bool(data.get("default", False)),
        modules=tuple(dict.fromkeys(list(implied) + modules)),
        expect=tuple(expect),
        spec=data,
        path=path,
    )


def load_definition(path: Path) -> DeviceDefinition:
    """Read and validate one definition file."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BadArgumentError(f"{path}: line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return parse_definition(data, str(path), path)


def definition_dirs() -> list[Path]:
    """The folders searched for definitions, in order (see the module docstring)."""
    dirs = [Path(p) for p in os.environ.get("DKPROTO_LAB_DEVICES", "").split(":") if p]
    dirs.append(Path.cwd() / "devices" / "lab")
    dirs.append(Path(__file__).resolve().parents[2] / "devices" / "lab")
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def load_definitions(dirs: Iterable[Path] | None = None) -> dict[str, DeviceDefinition]:
    """Every definition, by name (first folder wins).

    Besides ``*.json`` in each folder, a ``devices/lab`` folder's siblings contribute their
    ``gadget.json`` (``devices/<example>/gadget.json``, the device side of an example driver).
    """
    found: dict[str, DeviceDefinition] = {}
    for d in definition_dirs() if dirs is None else dirs:
        paths = sorted(Path(d).glob("*.json"))
        if Path(d).name == "lab" and Path(d).parent.name == "devices":
            paths += sorted(Path(d).parent.glob("*/gadget.json"))
        for path in paths:
            definition = load_definition(path)
            found.setdefault(definition.name, definition)
    return found


def select(names: Iterable[str] | None, available: Mapping[str, DeviceDefinition]) -> list[DeviceDefinition]:
    """The definitions for ``names`` (the defaults when ``names`` is ``None``).

    Raises:
        NotFoundError: an unknown name; the message lists the known ones.
    """
    if names is None:
        return [d for d in available.values() if d.default]
    out = []
    for n in names:
        if n in available:
            out.append(available[n])
            continue
        from dkproto._paths import find_file

        found = find_file(n) if n else None
        if found is None:
            raise NotFoundError(f"no lab device named {n!r} and no such file (known: {', '.join(sorted(available))})")
        out.append(definition_from_file(found))
    return out


#: The lab's product ID for a HID capture that carries no VID:PID (hex or binary descriptor files).
HID_CAPTURE_ID = (0x1D6B, 0x01C0)


def definition_from_file(path: str | os.PathLike[str]) -> DeviceDefinition:
    """A lab device that plays a captured device, from its descriptor file.

    * A USB descriptor set (any format :func:`dkproto.usb.load` reads: the corpus JSON, hex,
      binary) becomes a ``capture`` device, served over USB/IP with the capture's own identity.
    * A HID report descriptor (the corpus JSON of ``descriptors/hid``, a hid-recorder recording,
      hex or binary) becomes a HID ``gadget`` with that report descriptor and the capture's
      VID:PID (:data:`HID_CAPTURE_ID` when the file has none); its recorded input reports are
      played in a loop by the gadget's peer while the command runs.

    Raises:
        NotFoundError, BadArgumentError: the file cannot be read.
        DecodeError: neither a USB descriptor set nor a HID report descriptor; the message
            gives both reasons.
    """
    from dkproto._paths import find_file
    from dkproto.errors import DecodeError
    from dkproto.lab.usbip import CapturedDevice

    p = (find_file(path) or Path(path)).resolve()
    name = re.sub(r"[^a-z0-9_.-]+", "-", p.stem.lower()).strip("-._") or "capture"
    try:
        captured = CapturedDevice.load(p)
    except DecodeError as usb_exc:
        from dkproto.hid import parse, sources

        try:
            src = sources.load(p)
            if src.origin == "binary" and p.suffix != ".bin" and p.name != "report_descriptor":
                raise DecodeError("not in a HID descriptor format (binary report descriptors are read from .bin "
                                  "or sysfs report_descriptor files)", descriptor=str(p), rule="format")
            rd = parse(src.descriptor)
            if not rd.reports:
                raise DecodeError("the report descriptor declares no report", descriptor=str(p), rule="reports")
        except DecodeError as hid_exc:
            def why(exc: DecodeError) -> str:
                return str(exc).replace(f"{p}: ", "")

            raise DecodeError(f"neither a USB descriptor set ({why(usb_exc)}) nor a HID report descriptor "
                              f"({why(hid_exc)})", descriptor=str(p), rule="lab device file") from None
        return _hid_capture_definition(name, p, src, rd)
    spec = {"name": name, "kind": "capture", "capture": str(p), "expect": [captured.id],
            "description": f"{p.name} served over USB/IP"}
    return parse_definition(spec, str(p))


def _hid_capture_definition(name: str, path: Path, src: Any, rd: Any) -> DeviceDefinition:
    """The gadget for HID source ``src`` (:class:`dkproto.hid.sources.Source`), whose descriptor
    parsed as ``rd``."""
    # f_hid truncates a write to report_length (the interrupt endpoints' wMaxPacketSize).
    length = min(max([r.size for r in rd.reports.values()] + [8]), 1024)
    played = [r.hex() for r in src.reports if r]
    vid = src.vid if src.vid is not None else HID_CAPTURE_ID[0]
    pid = src.pid if src.pid is not None else HID_CAPTURE_ID[1]
    spec = {
        "name": name, "kind": "gadget",
        "description": f"HID capture {path.name} as a HID gadget; its {len(played)} recorded input reports "
                       "played in a loop",
        "device": {"idVendor": f"0x{vid:04x}", "idProduct": f"0x{pid:04x}", "bcdDevice": "0x0100",
                   "bcdUSB": "0x0200"},
        "strings": {"manufacturer": "dkproto lab", "product": (src.name or name)[:126],
                    "serialnumber": f"dklab-{name}"[:126]},
        "functions": {"hid.0": {"attrs": {"protocol": 0, "subclass": 0, "report_length": length,
                                          "report_desc": {"hex": src.descriptor.hex()}}}},
        "configs": [{"MaxPower": 100, "configuration": "HID capture", "functions": ["hid.0"]}],
        "modules": ["usbhid", "hid_generic"],
        "peer": {"reports": played} if played else "none",
    }
    return parse_definition(spec, str(path))
