"""``parse()``: a :class:`~dkproto.usb.model.DescriptorSet` from raw blobs.

One walk of the ``descriptors`` blob (device, configurations), one of the BOS, one per
standalone descriptor (``extras``), and the string descriptors decoded one by one; the
set-wide checks (the device descriptor first, ``bNumConfigurations``) and the complaint limit.
Files, hex text, JSON and live devices all end here (:mod:`dkproto.usb.sources`,
:mod:`dkproto.usb.read`).
"""

from __future__ import annotations

import gc
from typing import Any

from dkproto.errors import DecodeError
from dkproto.schema import usb as usb_schema
from dkproto.schema._fields import compiled
from dkproto.usb.bounds import MAX_COMPLAINTS, check_bounds
from dkproto.usb.model import DescriptorSet, Node
from dkproto.usb.walker import Walker

__all__ = ["parse"]


def parse(
    descriptors: bytes,
    bos: bytes | None = None,
    *,
    strings: dict[tuple[int, int], bytes] | None = None,
    extras: list[bytes] | None = None,
    source: str = "",
    meta: dict[str, Any] | None = None,
    lazy: bool = False,
    hid_report_descriptors: dict[int, bytes] | None = None,
) -> DescriptorSet:
    """Build a :class:`DescriptorSet` from raw blobs.

    Args:
        descriptors: device descriptor followed by each configuration (sysfs ``descriptors``
            layout; any top-level descriptors are accepted).
        bos: the BOS descriptor set, if read.
        strings: string descriptors by ``(langid, index)``, the LANGID list as ``(0, 0)``.
        extras: other standalone descriptors (device qualifier, hub descriptor...).
        source: where the bytes came from.
        meta: extra information kept on the set.
        lazy: keep no tree of the ``descriptors`` blob: ``roots`` stays empty and every
            traversal (:meth:`DescriptorSet.iter_roots`, ``nodes()``, ``to_bytes()``, the
            renderers) walks the blob again, so memory holds one configuration at a time. The
            errors, warnings, BOS, extras and strings are complete at once. Edits to a lazy set's
            nodes are not kept.
        hid_report_descriptors: HID report descriptors by ``bInterfaceNumber``, kept as bytes
            (:attr:`DescriptorSet.hid_report_descriptors`).

    Raises:
        DecodeError: a blob larger than any device can present (:func:`check_bounds`).
    """
    check_bounds(descriptors, bos, strings, extras, source=source, hid_reports=hid_report_descriptors)
    data = bytes(descriptors)
    errors: list[DecodeError] = []
    warnings: list[DecodeError] = []
    w = Walker(errors, "descriptors", None, None, warnings)
    walkers = [w]
    roots: list[Node] = []
    first: Node | None = None
    dev: Node | None = None
    # A walk allocates one Node and one Container per descriptor and keeps them all: the cyclic
    # garbage collector would scan them again and again for nothing, so it waits until the end.
    gc_was_enabled = gc.isenabled()
    if gc_was_enabled and not lazy:
        gc.disable()
    try:
        for node in w.iter_walk(data):
            if first is None:
                first = node
            if dev is None and node.role == "device":
                dev = node
            if not lazy:
                roots.append(node)
        bos_roots: list[Node] = []
        if bos:
            walkers.append(Walker(errors, "BOS", w.device_class, w.bcd_usb, warnings))
            bos_roots = walkers[-1].walk(bytes(bos))
    finally:
        if gc_was_enabled:
            gc.enable()
    ds = DescriptorSet(roots, bos_roots, {}, [], errors, warnings, source, dict(meta) if meta else {})
    if lazy:
        ds.rewalk = lambda: Walker([], "descriptors", None, None, []).iter_walk(data)
    if hid_report_descriptors:
        ds.hid_report_descriptors = {k: bytes(v) for k, v in sorted(hid_report_descriptors.items())}
    if dev is None:
        if descriptors:
            w.complain(0, "Device Descriptor", "order",
                       "the data does not start with a device descriptor (bDescriptorType 1)")
        else:
            w.complain(0, "Device Descriptor", "bLength", "no bytes: a descriptor set starts with the "
                                                          "18-byte device descriptor")
    elif first is not dev:
        w.complain(dev.offset, dev.name, "order", "the device descriptor is not the first descriptor")
    if dev is not None and dev.fields is not None:
        count = w.configurations  # == len(ds.configurations)
        if count != dev.fields["bNumConfigurations"]:
            w.complain(dev.offset, dev.name, "bNumConfigurations",
                       f"bNumConfigurations {dev.fields['bNumConfigurations']} but {count} configurations follow")
    if strings:
        walkers.append(Walker(errors, "string", w.device_class, w.bcd_usb, warnings))
        _strings(ds, strings, walkers[-1])
    for raw in extras or ():
        walkers.append(Walker(errors, "other", w.device_class, w.bcd_usb, warnings))
        ds.extras.extend(walkers[-1].walk(bytes(raw)))
    if len(errors) > 1 or len(warnings) > 1:
        order = {"BOS": 1, "string": 2, "other": 3}

        def by_place(e: DecodeError) -> tuple[int, int]:
            return order.get(getattr(e, "blob", ""), 0), e.offset or 0

        errors.sort(key=by_place)
        warnings.sort(key=by_place)
    if len(errors) >= MAX_COMPLAINTS or len(warnings) >= MAX_COMPLAINTS:  # else none was dropped
        for kind, found, dropped in (("errors", errors, sum(x.dropped_errors for x in walkers)),
                                     ("warnings", warnings, sum(x.dropped_warnings for x in walkers))):
            if dropped:
                found.append(DecodeError(f"{dropped:,} more {kind} not listed (the first {MAX_COMPLAINTS:,} are)",
                                         descriptor=source or None, rule="complaint limit"))
    return ds


def _strings(ds: DescriptorSet, strings: dict[tuple[int, int], bytes], other: Walker) -> None:
    """Decode the string descriptors into ``ds.strings``."""
    for (langid, index), raw in sorted(strings.items()):
        node = Node(offset=0, raw=bytes(raw), role="string", blob="string", string_id=(langid, index))
        schema = usb_schema.LANGID_LIST if index == 0 else usb_schema.STRING
        name = f"String Descriptor {index} (LANGID 0x{langid:04x})"
        if len(raw) < 2 or raw[1] != 0x03:
            found = f"bDescriptorType {raw[1]}" if len(raw) >= 2 else f"{len(raw)} bytes, no bDescriptorType"
            other.complain(0, name, "bDescriptorType",
                           f"{found}, not 3 (String); kept undecoded", node)
        elif raw[0] != len(raw):
            other.complain(0, name, "bLength", f"bLength {raw[0]} but {len(raw)} bytes were read; kept undecoded",
                           node)
        else:
            node.schema = schema
            try:
                node.fields = compiled(schema.struct).parse(bytes(raw))
                used = 2 + (len(raw) - 2) // 2 * 2 if index == 0 else len(raw)
                node.extra = bytes(raw[used:])
            except Exception as exc:  # noqa: BLE001
                node.schema = None
                other.complain(0, name, "bLength", f"does not decode: {exc}", node)
            else:
                _check_string(node, name, other)
        ds.strings[(langid, index)] = node


def _check_string(node: Node, name: str, other: Walker) -> None:
    """A string (or LANGID list) holds 2-byte units; a string's are UTF-16LE (USB 2.0 §9.6.7)."""
    raw = node.raw
    if len(raw) % 2:
        unit = "LANGID" if node.string_id and node.string_id[1] == 0 else "UTF-16LE code unit"
        other.complain(0, name, "bLength", f"bLength {len(raw)} is odd: the last byte (offset {len(raw) - 1}) is "
                                           f"half a 2-byte {unit}", node)
        return
    if node.key != "string":
        return
    try:
        bytes(node.fields.bString).decode("utf-16-le")
    except UnicodeDecodeError as exc:
        other.complain(0, name, "bString", f"not UTF-16LE: a lone surrogate at offset {2 + exc.start} "
                                           f"(bytes {raw[2 + exc.start:2 + exc.end].hex(' ')}: {exc.reason})",
                       node)
