"""Lint for HID report descriptors: each finding has a rule ID, the byte offset and a message.

Rules (severity ``error`` = the descriptor is broken or Linux refuses it; ``warning`` = legal
or tolerated but suspicious, or it relies on a quirk):

======  ==============================  ==========================================================
HID001  unbalanced-collection           End Collection without Collection, or one left open (kernel refuses)
HID002  no-usage-page                   a main item's usages were given with no Usage Page in force
HID003  usage-page-after-usages         Usage Page written after the Usages it applies to (kernel re-pages them)
HID004  report-size-zero                Report Size 0 (or Report Count 0 with usages): the field takes no bits
HID005  report-size-too-large, ...      sizes that overflow: Report Size > 256 or Report Count > 12288 (kernel
                                        refuses), a data value over 32 bits, a logical range that does not fit
                                        its Report Size
HID006  logical-range-inverted          Logical Minimum above Logical Maximum (kernel refuses)
HID007  report-ids-mixed                reports without a Report ID next to reports with one
HID008  report-id-invalid               Report ID 0 or above 255 (kernel refuses)
HID009  report-too-long                 a report over HID_MAX_BUFFER_SIZE (16384 bytes with its ID; kernel refuses)
HID010  too-many-fields                 more than 256 fields in one report (kernel drops the rest)
HID011  descriptor-too-long             over HID_MAX_DESCRIPTOR_SIZE (4096 bytes; usbhid refuses it)
HID012  push-overflow, pop-underflow    Push beyond 4 levels, Pop with an empty stack (kernel refuses)
HID013  too-many-usages                 more than 12288 usages before a main item (kernel clips or refuses)
HID014  nested/unbalanced-delimiter     Delimiter misuse (kernel refuses)
HID015  usage-maximum-without-minimum   Usage Maximum with no Usage Minimum before it
HID016  usage-range-inverted            Usage Maximum below Usage Minimum
HID017  long-item                       a long item: none is defined, the kernel refuses the descriptor
HID018  reserved-tag                    reserved item type or tag (a stray 0x00 is a reserved Main tag 0)
HID019  truncated-item                  the last item is cut short by the end of the descriptor (kernel refuses)
HID020  empty-descriptor                no items at all
HID021  more-usages-than-count          a Variable item declares more usages than its Report Count
HID022  physical-range-inverted         Physical Minimum above Physical Maximum
HID023  main-item-outside-collection    Input/Output/Feature outside any Collection
HID024  dangling-local-items            local items after the last main item (they apply to nothing)
HID025  report-id-without-reports       a Report ID item whose ID no main item ever uses
HID026  array-range-smaller-than-usages an Array whose logical range cannot select all its usages
HID027  dkproto-bound                   parsing stopped at one of dkproto's bounds (65535 bytes, 32 nested
                                        collections, 65536 expanded usages, 4096 fields): the rest is not
                                        laid out
======  ==============================  ==========================================================

Lint never raises for bad bytes: :func:`lint` returns findings sorted by offset.
"""

from __future__ import annotations

from dkproto.hid.items import ItemType
from dkproto.hid.parser import Finding, ReportDescriptor, parse

__all__ = ["RULES", "Finding", "lint", "lint_descriptor"]

RULES: dict[str, str] = {
    "HID001": "unbalanced-collection",
    "HID002": "no-usage-page",
    "HID003": "usage-page-after-usages",
    "HID004": "report-size-zero",
    "HID005": "size-overflow",
    "HID006": "logical-range-inverted",
    "HID007": "report-ids-mixed",
    "HID008": "report-id-invalid",
    "HID009": "report-too-long",
    "HID010": "too-many-fields",
    "HID011": "descriptor-too-long",
    "HID012": "push-pop",
    "HID013": "too-many-usages",
    "HID014": "delimiter",
    "HID015": "usage-maximum-without-minimum",
    "HID016": "usage-range-inverted",
    "HID017": "long-item",
    "HID018": "reserved-tag",
    "HID019": "truncated-item",
    "HID020": "empty-descriptor",
    "HID021": "more-usages-than-count",
    "HID022": "physical-range-inverted",
    "HID023": "main-item-outside-collection",
    "HID024": "dangling-local-items",
    "HID025": "report-id-without-reports",
    "HID026": "array-range-smaller-than-usages",
    "HID027": "dkproto-bound",
}


def lint_descriptor(rd: ReportDescriptor) -> list[Finding]:
    """All findings for a parsed descriptor, sorted by offset (the parser's plus whole-descriptor rules)."""
    out = list(rd.findings)
    ids = {rid for (_t, rid) in rd.reports}
    if 0 in ids and len(ids) > 1:
        first0 = min((f.offset for r in rd.reports.values() if r.id == 0 for f in r.fields), default=0)
        out.append(Finding("HID007", "report-ids-mixed", first0,
                           f"main items without a Report ID next to reports with IDs {sorted(ids - {0})}: "
                           "the first byte of a report cannot tell them apart"))
    # Local items after the last main item, and Report IDs never used (among the items parsed).
    items = rd.items if rd.stopped is None else [it for it in rd.items if it.offset < rd.stopped.offset]
    last_main = -1
    for it in items:
        if it.type == ItemType.MAIN:
            last_main = it.offset
    dangling = [it for it in items if it.type == ItemType.LOCAL and it.offset > last_main]
    if dangling:
        out.append(Finding("HID024", "dangling-local-items", dangling[0].offset,
                           f"{len(dangling)} local item(s) after the last main item apply to nothing", "warning"))
    for it in items:
        if it.type == ItemType.GLOBAL and it.tag == 8 and it.udata and it.udata not in ids:
            out.append(Finding("HID025", "report-id-without-reports", it.offset,
                               f"Report ID {it.udata} is declared but no main item uses it", "warning"))
    out.sort(key=lambda f: (f.offset, f.rule))
    return out


def lint(data: bytes | bytearray | memoryview) -> list[Finding]:
    """Parse a report descriptor and return every finding, sorted by offset.

    Args:
        data: the report descriptor bytes.
    """
    return lint_descriptor(parse(data))
