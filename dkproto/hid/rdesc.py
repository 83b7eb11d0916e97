"""Read the Linux HID core's debugfs ``rdesc`` dump and compare it with a dkproto parse.

``/sys/kernel/debug/hid/<dev>/rdesc`` (``hid_debug_rdesc_show`` in ``drivers/hid/hid-debug.c``)
prints the descriptor bytes on the first line, then every report as ``INPUT(id)[INPUT]`` and
its fields (``Field(n)``: Physical/Logical/Application collection usages, ``Usage(n)`` and the
usages one per line, Logical/Physical Minimum and Maximum (only when they differ), Unit
Exponent and Unit (only when nonzero), Report Size, Report Count, Report Offset, Flags), then
the input mapping (``Usage ---> Event`` lines), which is ignored here.

The kernel names usages from its own table (``hid_usage_table``), e.g. ``GenericDesktop.X``,
``Digitizers.TipSwitch``, ``ff00.0001``: usage IDs it does not know are 4 hex digits, pages it
does not know are 4 hex digits. :func:`kernel_usage_value` turns those names back into 32-bit
usages: hex as is, page names through :data:`KERNEL_PAGES`, usage names by matching the HID
Usage Tables names (case, spaces and punctuation ignored), then :data:`KERNEL_USAGE_ALIASES` for
the names the kernel spells differently from the HUT.

The kernel lists only fields with usages (padding is left out), lists ``max(usages, Report
Count)`` usages per field (the last repeated), and lists nothing at all when it refused the
descriptor; :func:`compare` follows those rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field

from dkproto.errors import DecodeError, NotFoundError
from dkproto.hid import usages as hut
from dkproto.hid.parser import ReportDescriptor

__all__ = [
    "KERNEL_PAGES",
    "KERNEL_USAGE_ALIASES",
    "KernelDump",
    "KernelField",
    "KernelReport",
    "compare",
    "kernel_usage_value",
    "parse_rdesc",
]

# Page names as hid-debug.c prints them.
KERNEL_PAGES: dict[str, int] = {
    "Undefined": 0x00,
    "GenericDesktop": 0x01,
    "Simulation": 0x02,
    "VR": 0x03,
    "Sport": 0x04,
    "Game": 0x05,
    "GenericDeviceControls": 0x06,
    "Keyboard": 0x07,
    "LED": 0x08,
    "Button": 0x09,
    "Ordinal": 0x0A,
    "Telephony": 0x0B,
    "Consumer": 0x0C,
    "Digitizers": 0x0D,
    "Haptics": 0x0E,
    "PhysicalInterfaceDevice": 0x0F,
    "Unicode": 0x10,
    "Eye and Head Trackers": 0x12,
    "Alphanumeric Display": 0x14,
    "Sensor": 0x20,
    "Medical Instrument": 0x40,
    "Braille Display": 0x41,
    "Lighting And Illumination": 0x59,
    "Monitor": 0x80,
    "Monitor Enumerated": 0x81,
    "VESA Virtual Controls": 0x82,
    "Power": 0x84,
    "Power Device": 0x84,
    "Battery System": 0x85,
    "Bar Code Scanner": 0x8C,
    "Scale": 0x8D,
    "Magnetic Stripe Reader": 0x8E,
    "Camera Control": 0x90,
    "Arcade": 0x91,
    "Vendor-specific-FF": 0xFFFF,
}

# (page, kernel usage name) -> usage ID, where the kernel's spelling does not match the HUT name.
KERNEL_USAGE_ALIASES: dict[tuple[int, str], int] = {
    # values as in hid_usage_table of drivers/hid/hid-debug.c
    (0x01, "HatSwitch"): 0x39,
    (0x06, "BatteryStrength"): 0x20,
    (0x0C, "HorizontalWheel"): 0x238,
    (0x0D, "DeviceConfiguration"): 0x0E,
    (0x0D, "ProgramChangeKey"): 0x3A,
    (0x0D, "Confidence"): 0x47,
    (0x0D, "ContactID"): 0x51,
    (0x0D, "InputMode"): 0x52,
    (0x0D, "DeviceIndex"): 0x53,
    (0x0D, "ContactMaximumNumber"): 0x55,
    (0x0D, "ButtonType"): 0x59,
    (0x0D, "TransducerSerialNumber"): 0x5B,
    (0x20, "Sensor"): 0x01,
    (0x20, "LightAmbientLight"): 0x41,
    (0x20, "MotionAccelerometer3D"): 0x73,
    (0x20, "MotionGyrometer3D"): 0x76,
    (0x20, "OrientationCompass3D"): 0x83,
    (0x20, "OrientationInclinometer3D"): 0x86,
    (0x20, "OrientationDeviceOrientation"): 0x8A,
    (0x84, "Good"): 0x61,
    (0x85, "CapacityGranularity1"): 0x8D,
    # names of the kernel's table that the HUT spells too differently to match
    (0x01, "MultiAxis"): 0x08,
    (0x02, "Anti-Torque"): 0xB2,
    (0x02, "Autopilot"): 0xB3,
    (0x02, "Chaff"): 0xB4,
    (0x02, "Collective"): 0xB5,
    (0x06, "SecurityCodeCharactedErased"): 0x25,
    (0x0D, "TabletFunctionKey"): 0x39,
    (0x0F, "Physical_Interface_Device"): 0x01,
    (0x0F, "Effect_Block_Index"): 0x22,
    (0x0F, "ET_Custom_Force_Data"): 0x28,
    (0x0F, "CP_Offset"): 0x60,
    (0x0F, "PID_Pool_Report"): 0x7F,
    (0x0F, "PID_Pool_Move_Report"): 0x85,
    (0x0F, "PID_Block_Load_Report"): 0x89,
    (0x0F, "Block_Load_Status"): 0x8B,
    (0x0F, "PID_Block_Free_Report"): 0x90,
    (0x0F, "DC_Device_Reset"): 0x9A,
    (0x0F, "DC_Device_Pause"): 0x9B,
    (0x0F, "DC_Device_Continue"): 0x9C,
    (0x0F, "Create_New_Effect_Report"): 0xAB,
    (0x20, "ElectricalPoteniometer"): 0x27,
    (0x20, "LocationGPS"): 0x53,
    (0x84, "ChangeStatus"): 0x03,
    (0x85, "SMBBatteryMode"): 0x01,
    (0x85, "SMBBatteryStatus"): 0x02,
    (0x85, "SMBAlarmWarning"): 0x03,
    (0x85, "SMBChargerMode"): 0x04,
    (0x85, "SMBChargerStatus"): 0x05,
    (0x85, "SMBChargerSpecInfo"): 0x06,
    (0x85, "SMBSelectorState"): 0x07,
    (0x85, "SMBSelectorPresets"): 0x08,
    (0x85, "SMBSelectorInfo"): 0x09,
    (0x85, "ManufacturerDate"): 0x85,
    (0x85, "Rechargeable"): 0x8B,
}


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


_USAGE_INDEX: dict[int, dict[str, int]] = {}


def kernel_usage_value(name: str) -> int:
    """The 32-bit usage for a usage as the kernel prints it (``GenericDesktop.X`` -> 0x00010030).

    Raises:
        NotFoundError: a name neither in the HUT nor in the alias table.
    """
    page_s, sep, usage_s = name.rpartition(".")
    if not sep:
        raise NotFoundError(f"kernel usage {name!r} has no '.'")
    if re.fullmatch(r"[0-9a-f]{4}", page_s):
        page = int(page_s, 16)
    elif page_s in KERNEL_PAGES:
        page = KERNEL_PAGES[page_s]
    else:
        raise NotFoundError(f"unknown kernel usage page name {page_s!r} in {name!r}")
    if re.fullmatch(r"[0-9a-f]{4}", usage_s):
        return (page << 16) | int(usage_s, 16)
    alias = KERNEL_USAGE_ALIASES.get((page, usage_s))
    if alias is not None:
        return (page << 16) | alias
    index = _USAGE_INDEX.get(page)
    if index is None:
        index = {}
        for p in hut.pages():
            if p.id == page:
                index = {_norm(n): uid for uid, (n, _k) in p.usages.items()}
        _USAGE_INDEX[page] = index
    uid = index.get(_norm(usage_s))
    if uid is None:
        raise NotFoundError(f"kernel usage name {name!r} matches no HID Usage Tables name on page 0x{page:04x}")
    return (page << 16) | uid


@dataclass(slots=True)
class KernelField:
    """One ``Field(n)`` block of the dump (values as printed; None when the kernel omitted the line)."""

    index: int
    physical: str | None = None
    logical: str | None = None
    application: str | None = None
    usages: list[str] = dc_field(default_factory=list)
    logical_minimum: int | None = None
    logical_maximum: int | None = None
    physical_minimum: int | None = None
    physical_maximum: int | None = None
    unit_exponent: int | None = None
    unit: str | None = None
    report_size: int = 0
    report_count: int = 0
    report_offset: int = 0
    flags: list[str] = dc_field(default_factory=list)


@dataclass(slots=True)
class KernelReport:
    """One ``INPUT(id)[INPUT]`` block."""

    type: str
    id: int
    fields: list[KernelField] = dc_field(default_factory=list)


@dataclass(slots=True)
class KernelDump:
    """A parsed debugfs ``rdesc``: the raw descriptor bytes and the reports in the kernel's order."""

    raw: bytes
    reports: list[KernelReport]


_REPORT_RE = re.compile(r"^\s*(INPUT|OUTPUT|FEATURE)(?:\((\d+)\))?\[(INPUT|OUTPUT|FEATURE)\]\s*$")
# The key starts with a letter, so leading blanks are matched once (linear on a line of spaces).
_KV_RE = re.compile(r"^[ \t]*([A-Za-z][A-Za-z ]*)\((.*)\)\s*$")


def _int(val: str, key: str, line: int) -> int:
    v = val.strip()
    if not v.lstrip("-").isdigit() or len(v) > 20:
        raise DecodeError(f"{key}({val[:20]}): not an integer", offset=line, descriptor="rdesc", rule=key)
    return int(v)


def parse_rdesc(text: str) -> KernelDump:
    """Parse the text of a debugfs ``rdesc`` file.

    Raises:
        DecodeError: the first line is not hex bytes, or a field line is out of place (with the
            line number as offset).
    """
    lines = text.splitlines()
    if not lines:
        raise DecodeError("empty rdesc", descriptor="rdesc")
    try:
        raw = bytes.fromhex(lines[0])
    except ValueError as exc:
        raise DecodeError(f"first line is not hex bytes: {exc}", offset=0, descriptor="rdesc") from exc
    reports: list[KernelReport] = []
    cur_r: KernelReport | None = None
    cur_f: KernelField | None = None
    in_usages = 0
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if "--->" in line:
            break  # the input mapping follows the reports
        m = _REPORT_RE.match(line)
        if m:
            cur_r = KernelReport(m.group(1).lower(), _int(m.group(2) or "0", "report ID", n))
            reports.append(cur_r)
            cur_f = None
            in_usages = 0
            continue
        if in_usages:
            if cur_f is None:
                raise DecodeError("usage line outside a field", offset=n, descriptor="rdesc")
            cur_f.usages.append(line.strip())
            in_usages -= 1
            continue
        m = _KV_RE.match(line)
        if not m or cur_r is None:
            raise DecodeError(f"unexpected line {line.strip()!r}", offset=n, descriptor="rdesc")
        key, val = m.group(1).strip(), m.group(2)
        if key == "Field":
            cur_f = KernelField(_int(val, key, n))
            cur_r.fields.append(cur_f)
            continue
        if cur_f is None:
            raise DecodeError(f"{key} line before any Field", offset=n, descriptor="rdesc")
        if key == "Usage":
            in_usages = _int(val, key, n)
        elif key in ("Physical", "Logical", "Application"):
            setattr(cur_f, key.lower(), val)
        elif key == "Flags":
            cur_f.flags = val.split()
        elif key == "Unit":
            cur_f.unit = val
        else:
            attr = key.lower().replace(" ", "_")
            if attr not in ("logical_minimum", "logical_maximum", "physical_minimum", "physical_maximum",
                            "unit_exponent", "report_size", "report_count", "report_offset"):
                raise DecodeError(f"unknown key {key!r}", offset=n, descriptor="rdesc")
            setattr(cur_f, attr, _int(val, key, n))
    return KernelDump(raw, reports)


_FLAG_BITS = [(0, "Constant"), (3, "Wrap"), (4, "NonLinear"), (5, "NoPreferredState"), (6, "NullState"),
              (7, "Volatile"), (8, "BufferedByte")]


def kernel_flags(flags: int) -> list[str]:
    """Flags as ``hid_dump_field`` prints them (``Constant Variable Absolute ...``)."""
    out = []
    if flags & 1:
        out.append("Constant")
    out.append("Variable" if flags & 2 else "Array")
    out.append("Relative" if flags & 4 else "Absolute")
    for bit, name in _FLAG_BITS[1:]:
        if flags >> bit & 1:
            out.append(name)
    return out


def kernel_unit(unit: int) -> str | None:
    """The ``Unit(...)`` text of ``hid_dump_field`` (None for unit 0)."""
    if not unit:
        return None
    systems = ["None", "SI Linear", "SI Rotation", "English Linear", "English Rotation"]
    units = [
        ["None", "None", "None", "None", "None", "None", "None", "None"],
        ["None", "Centimeter", "Gram", "Seconds", "Kelvin", "Ampere", "Candela", "None"],
        ["None", "Radians", "Gram", "Seconds", "Kelvin", "Ampere", "Candela", "None"],
        ["None", "Inch", "Slug", "Seconds", "Fahrenheit", "Ampere", "Candela", "None"],
        ["None", "Degrees", "Slug", "Seconds", "Fahrenheit", "Ampere", "Candela", "None"],
    ]
    sys_ = unit & 0xF
    if sys_ > 4:
        return "Invalid"
    data = unit >> 4
    parts = []
    for i in range(1, 8):
        nib = data & 0xF
        data >>= 4
        if nib:
            s = units[sys_][i]
            if nib != 1:
                s += f"^{nib - 16 if nib & 8 else nib}"
            parts.append(s)
    return f"{systems[sys_]} : " + "*".join(parts)


def compare(rd: ReportDescriptor, dump: KernelDump) -> list[str]:
    """Differences between a dkproto parse and the kernel's, as readable lines (empty = agree).

    Compared per report (type, ID, order) and per field with usages: bit offset, report size,
    count, logical and physical range (where printed), unit and unit exponent, flags, usages and
    the application/physical/logical collection usages. When the kernel refused the descriptor it
    lists no report; dkproto must then have a ``kernel_error``.
    """
    diffs: list[str] = []
    if rd.data != dump.raw:
        diffs.append("descriptor bytes differ")
    if rd.kernel_error is not None:
        if dump.reports:
            diffs.append(f"dkproto expects the kernel to refuse ({rd.kernel_error}) but it lists reports")
        return diffs
    ours = list(rd.reports.values())
    # The kernel prints all INPUT reports, then OUTPUT, then FEATURE, each in registration order.
    ours.sort(key=lambda r: ("input", "output", "feature").index(r.type))
    if [(r.type, r.id) for r in ours] != [(r.type, r.id) for r in dump.reports]:
        diffs.append(
            f"reports differ: dkproto {[(r.type, r.id) for r in ours]} kernel {[(r.type, r.id) for r in dump.reports]}"
        )
        return diffs
    for mine, theirs in zip(ours, dump.reports):
        where = f"{mine.type} report {mine.id}"
        mf = [f for f in mine.fields if f.usages and not f.kernel_dropped]
        if len(mf) != len(theirs.fields):
            diffs.append(f"{where}: {len(mf)} fields with usages, kernel has {len(theirs.fields)}")
            continue
        for f, k in zip(mf, theirs.fields):
            w = f"{where} field {k.index} (item at offset {f.offset})"

            def chk(what: str, a: object, b: object, w: str = w) -> None:
                if a != b:
                    diffs.append(f"{w}: {what} dkproto {a!r} kernel {b!r}")

            chk("bit offset", f.bit_offset, k.report_offset)
            chk("report size", f.report_size, k.report_size)
            chk("report count", f.report_count, k.report_count)
            chk("flags", kernel_flags(f.flags), k.flags)
            if k.logical_minimum is None:
                chk("logical min == max", f.logical_minimum, f.logical_maximum)
            else:
                chk("logical minimum", f.logical_minimum, k.logical_minimum)
                chk("logical maximum", f.logical_maximum, k.logical_maximum)
            if k.physical_minimum is None:
                chk("physical min == max", f.physical_minimum, f.physical_maximum)
            else:
                chk("physical minimum", f.physical_minimum, k.physical_minimum)
                chk("physical maximum", f.physical_maximum, k.physical_maximum)
            chk("unit exponent", f.unit_exponent, k.unit_exponent or 0)
            chk("unit", kernel_unit(f.unit), k.unit)
            try:
                kus = [kernel_usage_value(u) for u in k.usages]
            except NotFoundError as exc:
                diffs.append(f"{w}: {exc}")
                continue
            chk("usages", [f"0x{u:08x}" for u in f.kernel_usages], [f"0x{u:08x}" for u in kus])
            for attr in ("application", "physical", "logical"):
                kname = getattr(k, attr)
                mine_u = getattr(f, attr)
                if kname is None:
                    chk(attr, mine_u, 0)
                else:
                    try:
                        chk(attr, f"0x{mine_u:08x}", f"0x{kernel_usage_value(kname):08x}")
                    except NotFoundError as exc:
                        diffs.append(f"{w}: {exc}")
    return diffs
