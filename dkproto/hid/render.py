"""Text renderings of descriptors, layouts and decoded reports (used by ``dkproto hid``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dkproto.hid.items import ItemType, flag_names, unit_text
from dkproto.hid.parser import HID_GLOBAL_STACK_SIZE, MAX_COLLECTION_DEPTH, Field, ReportDescriptor
from dkproto.hid.usages import page_name, usage_name

__all__ = ["format_field", "format_items", "format_layouts", "format_values"]

_FLAG_SHORT = {
    "Data": "Data", "Constant": "Cnst", "Array": "Arr", "Variable": "Var", "Absolute": "Abs",
    "Relative": "Rel", "Wrap": "Wrap", "Non Linear": "NLin", "No Preferred State": "NPrf",
    "Null State": "Null", "Volatile": "Vol", "Buffered Bytes": "Buf",
}


def _short_flags(flags: int) -> str:
    return ",".join(_FLAG_SHORT[n] for n in flag_names(flags) if n in _FLAG_SHORT)


def format_items(rd: ReportDescriptor) -> list[str]:
    """Every item with its offset and bytes, indented by collection depth, usages named with
    the page in force (like hid-decode or the kernel's debugfs ``rdesc``).

    Linear: the indentation stops growing at MAX_COLLECTION_DEPTH levels, the Push stack at
    HID_GLOBAL_STACK_SIZE (as in the parser)."""
    lines = []
    depth = 0
    page = 0
    stack: list[int] = []
    for it in rd.items:
        if it.type == ItemType.MAIN and it.tag == 0xC:
            depth = max(depth - 1, 0)
        text = f"{it.name} ({it.value_text()})" if it.size or it.type == ItemType.LONG else it.name
        if it.type == ItemType.GLOBAL and it.tag == 0:
            page = it.udata
            text = f"Usage Page ({page_name(page)})"
        elif it.type == ItemType.GLOBAL and it.tag == 0xA and len(stack) < HID_GLOBAL_STACK_SIZE:
            stack.append(page)
        elif it.type == ItemType.GLOBAL and it.tag == 0xB and stack:
            page = stack.pop()
        elif it.type == ItemType.LOCAL and it.tag in (0, 1, 2):
            u = it.udata if it.size == 4 else (page << 16) | (it.udata & 0xFFFF)
            text = f"{it.name} ({usage_name(u)})"
        elif it.type == ItemType.MAIN and it.tag == 0xA:
            text = f"Collection ({it.value_text()})"
        elif it.type == ItemType.MAIN and it.tag in (8, 9, 0xB):
            text = f"{it.name} ({_short_flags(it.udata)})"
        elif it.type == ItemType.GLOBAL and it.tag == 2:
            text = f"Logical Maximum ({it.sdata if it.sdata >= 0 else it.udata})"
        elif it.type == ItemType.GLOBAL and it.tag == 4:
            text = f"Physical Maximum ({it.sdata if it.sdata >= 0 else it.udata})"
        raw = it.raw.hex(" ")
        lines.append(f"{it.offset:5d}: {raw:<15s} {'  ' * min(depth, MAX_COLLECTION_DEPTH)}{text}")
        if it.type == ItemType.MAIN and it.tag == 0xA:
            depth += 1
    return lines


def _usage_summary(f: Field) -> str:
    us = f.usages
    if not us:
        return "(padding)"
    if len(us) > 3 and all(us[i + 1] == us[i] + 1 for i in range(len(us) - 1)):
        return f"{usage_name(us[0])} .. {usage_name(us[-1])} ({len(us)} usages)"
    names = [usage_name(u) for u in us[:6]]
    more = f" +{len(us) - 6}" if len(us) > 6 else ""
    return ", ".join(names) + more


def format_field(rd: ReportDescriptor, f: Field, path: str | None = None) -> str:
    """One line per field: bit offset, size x count, usages, flags, ranges, unit, collection
    (``path``: ``rd.collection_path(f)`` when the caller has it)."""
    parts = [f"bit {f.bit_offset:5d}  {f.report_size:3d}x{f.report_count:<3d}",
             f"{'Array' if f.is_array else 'Var'} {_usage_summary(f)}",
             f"[{_short_flags(f.flags)}]", f"logical {f.logical_minimum}..{f.logical_maximum}"]
    if f.physical_minimum or f.physical_maximum:
        parts.append(f"physical {f.physical_minimum}..{f.physical_maximum}")
    u = unit_text(f.unit, f.unit_exponent)
    if u:
        parts.append(f"unit {u}")
    if path is None:
        path = rd.collection_path(f)
    if path:
        parts.append(f"in {path}")
    return "  ".join(parts)


def format_layouts(rd: ReportDescriptor) -> list[str]:
    """Every report with its size and fields."""
    lines = []
    paths: dict[tuple[int, ...], str] = {}  # one path text per collection, not per field
    for r in rd.reports.values():
        rid = f" {r.id}" if r.id else " (no ID)"
        lines.append(f"{r.type} report{rid}: {r.size} bytes ({r.size_bits} bits of fields"
                     f"{', after the ID byte' if r.id else ''})")
        for f in r.fields:
            path = paths.get(f.collection)
            if path is None:
                path = paths[f.collection] = rd.collection_path(f)
            lines.append("  " + format_field(rd, f, path))
    return lines


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, int) and not -(1 << 64) < v < (1 << 64):
        return f"{v:#x}"  # wide padding/vendor values; str() of huge ints is limited
    return str(v)


def format_values(values: Mapping[str, Any], previous: Mapping[str, Any] | None = None,
                  physical: Mapping[str, tuple[Any, str]] | None = None) -> str:
    """``X=-5 Y=3 Button 1=1*``: changed values (against ``previous``) marked with ``*``."""
    out = []
    for k, v in values.items():
        mark = "*" if previous is not None and previous.get(k) != v else ""
        text = f"{k}={_fmt(v)}{mark}"
        if physical and k in physical and physical[k][1]:
            pv, unit = physical[k]
            text += f"({_fmt(round(pv, 4) if isinstance(pv, float) else pv)} {unit})"
        out.append(text)
    return " ".join(out)
