"""The walker: framing by ``bLength``, decoding by schema, placement like ``lsusb -v``.

:class:`Walker` first *frames* a blob into descriptors by ``bLength`` and ``bDescriptorType``,
then decodes each exact slice with the schema that :func:`dkproto.schema.registry.lookup` picks
for it (knowing where it stands: a :class:`~dkproto.schema.registry.Context`; the choice is
cached per place, see :mod:`dkproto.usb.choice`), and hangs it where it belongs:

* configurations (and other-speed configurations) at the top, with everything up to the next
  configuration under them;
* an interface association (IAD) over the interfaces it spans (the interfaces that follow it
  whose ``bInterfaceNumber`` is in its range);
* class-specific interface descriptors (0x24), HID/functional descriptors (0x21) and vendor
  descriptors under their interface (alternate setting);
* endpoint companions (0x30, 0x31), class-specific endpoint descriptors (0x25) and anything
  else that follows an endpoint under the endpoint.

Inside a configuration, each descriptor type has one handler (:data:`_HANDLERS`, a table by
``bDescriptorType``): it says where the descriptor stands (the place whose context decodes it),
decodes it, hangs it and runs the checks of its role. A top-level type (device, configuration,
other-speed configuration, BOS) ends the configuration. Decoding is one call in the usual case:
the cached choice's node builder (:func:`dkproto.usb.choice.node_builder`) parses the fields and
makes the node; whatever it does not take goes to the general path (:meth:`Walker.decode_general`).

Document order is kept: a pre-order walk of the tree visits the nodes in byte order, so
:meth:`~dkproto.usb.model.DescriptorSet.to_bytes` is the concatenation of every node rebuilt
from its fields. Undecoded descriptors (unknown or vendor types, or slices too short for their
schema) keep their raw bytes. Every rule broken is a :class:`~dkproto.errors.DecodeError`
(offset, descriptor, rule); the walker never raises for bad bytes and always terminates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dkproto.errors import DecodeError
from dkproto.schema.enums import descriptor_type_name
from dkproto.schema.registry import SELECTOR_PREFIX, UNCACHED_TYPES, Schema, lookup
from dkproto.usb.bounds import MAX_COMPLAINTS, MAX_CONFIGURATION
from dkproto.usb.choice import (
    RELEASE_FIELDS,
    UNKNOWN,
    Choice,
    Place,
    choice_for,
    endpoint_place,
    fresh_places,
    place,
    version_place,
)
from dkproto.usb.model import Node

__all__ = ["Walker", "walk"]

#: Roles of top-level descriptors other than configurations and the BOS.
_TOP_ROLES = {0x01: "device", 0x03: "string"}


class Walker:
    """State of one walk over one blob (see :func:`walk`).

    Args:
        errors: where complaints go (shared by the walkers of one set).
        blob: ``descriptors``, ``BOS``, ``string`` or ``other``: named in complaints outside the
            ``descriptors`` blob, and kept on each node.
        device_class, bcd_usb: of the device, when known before the walk (BOS, extras).
        warnings: where spec-conformance notes go.
    """

    def __init__(self, errors: list[DecodeError], blob: str, device_class: int | None, bcd_usb: int | None,
                 warnings: list[DecodeError] | None = None) -> None:
        self.errors = errors
        self.warnings = warnings if warnings is not None else []
        self.device_protocol: tuple[int, int] | None = None
        self.configurations = 0  # configuration descriptors (0x02) met at top level
        self.broken = -1  # offset of the undecodable rest when framing broke
        self.blob = blob
        self.device_class = device_class
        self.bcd_usb = bcd_usb
        self.data = b""
        self.end = self.pos = 0
        self.pending: tuple[int, bytes] | None = None
        #: complaints past MAX_COMPLAINTS, counted instead of kept
        self.dropped_errors = 0
        self.dropped_warnings = 0
        self.configuration_values: set[int] = set()

    # complaints ---------------------------------------------------------------------
    def where(self, descriptor: str) -> str:
        """``descriptor`` prefixed with the blob it is in (``BOS``, ``string``, ``other``), once."""
        if self.blob == "descriptors" or descriptor.lower().startswith(self.blob.lower()):
            return descriptor
        return f"{self.blob} {descriptor}"

    def complain(self, offset: int, descriptor: str, rule: str, message: str,
                 node: Node | None = None) -> None:
        """An error: kept (up to :data:`MAX_COMPLAINTS`, then counted) and set on ``node``."""
        if len(self.errors) >= MAX_COMPLAINTS:
            self.dropped_errors += 1
            if node is not None and node.error is None:
                node.error = str(DecodeError(message, offset=offset, descriptor=self.where(descriptor)))
            return
        err = DecodeError(message, offset=offset, descriptor=self.where(descriptor), rule=rule)
        err.blob = self.blob  # type: ignore[attr-defined]  # for the order of parse()'s list
        self.errors.append(err)
        if node is not None and node.error is None:
            node.error = str(err)

    def warn(self, offset: int, descriptor: str, rule: str, message: str) -> None:
        """A warning: kept up to :data:`MAX_COMPLAINTS`, then counted."""
        if len(self.warnings) >= MAX_COMPLAINTS:
            self.dropped_warnings += 1
            return
        err = DecodeError(message, offset=offset, descriptor=self.where(descriptor), rule=rule)
        err.blob = self.blob  # type: ignore[attr-defined]
        self.warnings.append(err)

    # framing ------------------------------------------------------------------------
    # Frames ``(offset, raw)`` are cut by ``bLength`` as the walk asks for them (never all at
    # once): ``pos`` is where the next one starts; the configuration loop cuts its own inline.
    def start(self, data: bytes) -> None:
        """Frame ``data`` from its start."""
        self.data = data
        self.end = len(data)
        self.pos = 0
        self.broken = -1
        self.pending = None

    def broken_frame(self, pos: int) -> tuple[int, bytes]:
        """The frame at ``pos`` when its ``bLength`` is below 2 or runs past the end: the rest of the
        data, kept undecoded (a complaint says why); framing ends there."""
        data, end = self.data, self.end
        length = data[pos]
        self.broken = pos
        self.pos = end
        if length < 2:
            kind = "bDescriptorType" if pos + 1 >= end else descriptor_type_name(data[pos + 1])
            self.complain(pos, f"{kind} descriptor" if pos + 1 < end else "descriptor", "bLength",
                          f"bLength {length} < 2: a descriptor cannot be shorter than its header; "
                          f"the {end - pos} remaining bytes are kept undecoded")
        else:
            kind = f"{descriptor_type_name(data[pos + 1])} descriptor" if pos + 1 < end else "descriptor"
            self.complain(pos, kind, "bLength",
                          f"bLength {length} runs past the end of the data ({end - pos} bytes left); "
                          "kept undecoded")
        return pos, data[pos:]

    def next_frame(self) -> tuple[int, bytes] | None:
        """The frame pushed back by the last configuration or BOS, else the next one, else None."""
        frame = self.pending
        if frame is not None:
            self.pending = None
            return frame
        pos = self.pos
        if pos >= self.end:
            return None
        length = self.data[pos]
        if length < 2 or pos + length > self.end:
            return self.broken_frame(pos)
        self.pos = pos + length
        return pos, self.data[pos:pos + length]

    # decoding -----------------------------------------------------------------------
    def decode(self, offset: int, raw: bytes, at: Place, role: str) -> Node:
        """Decode one framed descriptor at place ``at`` (the schema choice cached per place).

        The hot path of a walk: the cached choice's node builder parses the fields and makes the
        :class:`Node` in one call (the handlers inline this); anything else (no cached choice,
        the broken rest of a blob, bytes the builder does not take as they are) goes to
        :meth:`decode_first` or :meth:`decode_general`.
        """
        try:
            choice = at.choices[raw[:SELECTOR_PREFIX]]
        except KeyError:
            return self.decode_first(offset, raw, at, role)
        node = choice.build(raw, offset, at.ctx, self.blob, role)
        if node is None:
            return self.decode_general(offset, raw, at, role, choice)
        return node

    def decode_general(self, offset: int, raw: bytes, at: Place, role: str, choice: Choice | None = None) -> Node:
        """A descriptor whose node builder did not take it (no schema, the broken rest of a blob,
        bytes past the layout, a tail, bytes the schema refuses), or whose choice is not cached
        (``choice`` None)."""
        if choice is None:
            choice = at.choices.get(raw[:SELECTOR_PREFIX])
            if choice is None:
                return self.decode_first(offset, raw, at, role)
        if offset == self.broken:
            return self.decode_first(offset, raw, at, role)
        schema = choice.schema
        if schema is None:
            return Node(offset, raw, None, None, b"", None, role, None, at.ctx, self.blob)
        try:
            fields, used = choice.parse(raw)  # type: ignore[misc]  # a Choice with a schema has a parser
        except Exception as exc:  # noqa: BLE001 - construct errors of every kind: the slice is too short/odd
            return self.undecodable(offset, raw, at, role, schema, exc)
        node = Node(offset, raw, schema, fields, b"", None, role, None, at.ctx, self.blob)
        if used < len(raw):
            self.tail(node, choice, used)
        elif choice.has_tail and fields["extra"]:
            self.past_layout(node, choice.layout_size)
        return node

    def decode_first(self, offset: int, raw: bytes, at: Place, role: str) -> Node:
        """The slow path: ask the registry, check the size, remember the choice when allowed."""
        node = Node(offset, raw, None, None, b"", None, role, None, at.ctx, self.blob)
        if offset == self.broken or len(raw) < 2:
            return node  # the bytes left after framing broke are kept, never decoded
        try:
            schema = lookup(raw[1], raw, at.ctx)
        except Exception as exc:  # noqa: BLE001 - a class selector failed: keep raw, say so
            self.complain(offset, descriptor_type_name(raw[1]) + " descriptor", "schema selection",
                          f"schema selection failed: {exc}; kept undecoded", node)
            return node
        cacheable = raw[1] not in UNCACHED_TYPES and raw[0] == len(raw)
        if schema is None:
            if cacheable:
                at.choices[raw[:SELECTOR_PREFIX]] = UNKNOWN
            return node
        choice = choice_for(schema)
        size = choice.min_size
        if size is not None and len(raw) < size:
            self.complain(offset, schema.name, "bLength",
                          f"bLength {len(raw)} < {size} required by {schema.name}; kept undecoded", node)
            return node
        if cacheable:
            at.choices[raw[:SELECTOR_PREFIX]] = choice
        built = choice.build(raw, offset, at.ctx, self.blob, role)
        if built is not None:  # the plain case, as in decode (uncached types come here every time)
            return built
        try:
            fields, used = choice.parse(raw)  # type: ignore[misc]  # a Choice with a schema has a parser
        except Exception as exc:  # noqa: BLE001 - construct errors of every kind: the slice is too short/odd
            return self.undecodable(offset, raw, at, role, schema, exc)
        node.schema = schema
        node.fields = fields
        if used < len(raw):
            self.tail(node, choice, used)
        elif choice.has_tail and fields["extra"]:
            self.past_layout(node, choice.layout_size)
        return node

    def undecodable(self, offset: int, raw: bytes, at: Place, role: str, schema: Schema,
                    exc: Exception) -> Node:
        """A slice its schema refuses (too short, odd): kept raw, with a ``bLength`` complaint."""
        node = Node(offset, raw, schema, None, b"", None, role, None, at.ctx, self.blob)
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.complain(offset, schema.name, "bLength",
                      f"bLength {len(raw)} too short for {schema.name} ({msg}); kept undecoded", node)
        return node

    def past_layout(self, node: Node, size: int) -> None:
        """A class descriptor longer than its spec layout: the bytes are kept (``extra``).

        ``size`` is the layout's fixed size, or 255 for a layout its own fields size (a UVC
        frame's interval count...): then the layout ends where the ``extra`` tail starts.
        """
        raw = node.raw
        count = len(node.fields["extra"])
        layout = len(raw) - count
        name = node.schema.name if node.schema else node.name
        if size < 255:
            message = f"bLength {len(raw)} > {size} fixed by the spec; {count} extra bytes kept"
        else:
            message = (f"bLength {len(raw)} but its fields end at byte {layout}: {count} trailing bytes at "
                       f"offset {node.offset + layout} kept")
        swallowed = _frames_cleanly(raw[layout:])
        if swallowed > 1:
            message += (f"; they frame as {swallowed} well-formed descriptors: bLength may have swallowed "
                        "the descriptors that follow")
        self.warn(node.offset, name, "bLength", message)

    def tail(self, node: Node, choice: Choice, used: int) -> None:
        """Bytes past what the schema consumed: kept as ``extra``; a complaint where the size is fixed."""
        raw = node.raw
        node.extra = raw[used:]
        strict = choice.strict_size
        if strict is not None:
            self.complain(node.offset, node.name, "bLength",
                          f"bLength {len(raw)} > {strict} fixed by the spec; "
                          f"{len(raw) - used} extra bytes kept", node)

    # placement ----------------------------------------------------------------------
    def walk(self, data: bytes) -> list[Node]:
        """The top-level nodes of ``data``, each with its subtree."""
        return list(self.iter_walk(data))

    def iter_walk(self, data: bytes) -> Iterator[Node]:
        """The top-level nodes of ``data``, each complete with its subtree, as the walk reaches them.

        Frames are made as needed and a configuration holds at most :data:`MAX_CONFIGURATION`
        bytes, so a walk that drops each root after use holds one configuration at a time.
        """
        fresh_places()
        self.start(data)
        top = place("device", None, None, None, None, None, None, None, self.device_class, self.bcd_usb, None)
        while True:
            frame = self.next_frame()
            if frame is None:
                return
            offset, raw = frame
            dtype = raw[1] if len(raw) > 1 else -1
            if dtype == 0x02 or dtype == 0x07:
                node = self.decode(offset, raw, top, "configuration")
                if dtype == 0x02:
                    self.configurations += 1
                    self.check_configuration_value(node)
                self.configuration(node)
                yield node
                continue
            if dtype == 0x0F:
                node = self.decode(offset, raw, top, "bos")
                self.bos(node)
                yield node
                continue
            role = _TOP_ROLES.get(dtype, "descriptor")
            node = self.decode(offset, raw, top, role)
            if role == "device" and node.fields is not None:
                self.device_class = node.fields["bDeviceClass"]
                self.device_protocol = (node.fields["bDeviceSubClass"], node.fields["bDeviceProtocol"])
                self.bcd_usb = node.fields["bcdUSB"]
                top = place("device", None, None, None, None, None, None, None, self.device_class,
                            self.bcd_usb, None)
            yield node

    def bos(self, bos: Node) -> None:
        """Hang the device capabilities that follow a BOS (up to its ``wTotalLength``) under it."""
        at = place("bos", None, None, None, None, None, None, None, self.device_class, self.bcd_usb, None)
        end = bos.offset + (bos.fields["wTotalLength"] if bos.fields is not None else bos.bLength)
        while True:
            frame = self.next_frame()
            if frame is None:
                break
            if frame[0] >= end:
                self.pending = frame
                break
            offset, raw = frame
            node = self.decode(offset, raw, at, "capability")
            bos.children.append(node)
            if offset + len(raw) > end:
                self.complain(offset, node.name, "wTotalLength",
                              f"runs past the end of its BOS (wTotalLength ends it at {end})", node)
        if bos.fields is not None:
            last = bos.children[-1] if bos.children else bos
            actual = last.offset + len(last.raw) - bos.offset
            if actual != bos.fields["wTotalLength"]:
                self.complain(bos.offset, bos.name, "wTotalLength",
                              f"wTotalLength {bos.fields['wTotalLength']} disagrees with the bytes: "
                              f"{actual} bytes belong to the BOS")
            if len(bos.children) != bos.fields["bNumDeviceCaps"]:
                self.complain(bos.offset, bos.name, "bNumDeviceCaps",
                              f"bNumDeviceCaps {bos.fields['bNumDeviceCaps']} but {len(bos.children)} "
                              "device capabilities follow")

    def configuration(self, config: Node) -> None:
        """Place the descriptors of one configuration (up to the next top-level descriptor, at most
        :data:`MAX_CONFIGURATION` bytes from its start), each by its type's handler."""
        walk = _ConfigurationWalk(self, config)
        cap = config.offset + MAX_CONFIGURATION
        handlers = _HANDLERS
        last_end = -1  # where the last descriptor placed ends (-1: none)
        # nothing is pending here (the walk just took this configuration's frame): the frames
        # are cut right here, the rare broken one by broken_frame
        data, end, pos = self.data, self.end, self.pos
        while pos < end:
            stop = pos + data[pos]
            if stop < pos + 2 or stop > end:
                offset, raw = self.broken_frame(pos)
                stop = end
                # a broken tail may be 1 byte long: no type to read (-1 reads the table's last entry)
                dtype = raw[1] if len(raw) > 1 else -1
            else:
                offset = pos
                raw = data[pos:stop]
                dtype = raw[1]
            handler = handlers[dtype]
            if handler is None or offset >= cap:
                if handler is not None:
                    self.complain(offset, config.name, "wTotalLength",
                                  f"descriptors from offset {offset} on lie {MAX_CONFIGURATION} or more "
                                  f"bytes after the configuration at offset {config.offset} (wTotalLength is "
                                  "16 bits, a configuration cannot be longer); placed at top level")
                self.pending = (offset, raw)
                pos = stop
                break
            handler(walk, offset, raw, dtype)
            last_end = pos = stop
        self.pos = pos
        walk.finish(last_end)

    # checks -------------------------------------------------------------------------
    def check_configuration_value(self, config: Node) -> None:
        """Two configurations with one ``bConfigurationValue``: SET_CONFIGURATION cannot tell them apart."""
        if config.fields is None:
            return
        value = config.fields["bConfigurationValue"]
        if value in self.configuration_values:
            self.complain(config.offset, config.name, "bConfigurationValue",
                          f"bConfigurationValue {value} is used by an earlier configuration: "
                          "SET_CONFIGURATION could not tell them apart", config)
        self.configuration_values.add(value)


class _ConfigurationWalk:
    """Where the walk stands inside one configuration: what is open, what was seen.

    The handlers of :data:`_HANDLERS` move this state; :meth:`finish` checks the configuration
    against what followed it.
    """

    __slots__ = ("addresses", "alternates", "bcd_usb", "blob", "cfg_place", "children", "config",
                 "device_class", "endpoints", "ep", "ep_place", "general", "iad", "iad_fields", "iad_first",
                 "iad_stop", "iface", "iface_place", "interfaces", "versions", "walker")

    def __init__(self, walker: Walker, config: Node) -> None:
        self.walker = walker
        self.blob = walker.blob
        self.general = walker.decode_general
        self.config = config
        self.children = config.children
        self.device_class, self.bcd_usb = walker.device_class, walker.bcd_usb
        self.cfg_place = place("configuration", None, None, None, None, None, None, None, self.device_class,
                               self.bcd_usb, None)
        #: the open interface association, and the interface numbers it spans
        self.iad: Node | None = None
        self.iad_fields: Any = None  # its decoded fields (None when undecoded)
        self.iad_first = self.iad_stop = 0
        #: the open interface (alternate setting) and endpoint, and the places below them
        self.iface: Node | None = None
        self.ep: Node | None = None
        self.iface_place = self.cfg_place
        self.ep_place = self.cfg_place
        #: class releases (bcdADC...) seen in this function, by class
        self.versions: dict[int, int] = {}
        self.interfaces: list[tuple[Node, int]] = []  # (interface, endpoints seen)
        self.endpoints = 0
        self.addresses: set[int] = set()  # endpoint addresses of the current alternate setting
        self.alternates: set[tuple[int, int]] = set()  # (bInterfaceNumber, bAlternateSetting) seen

    def new_release(self, version: int) -> None:
        """A class header gave its class release (``bcdADC``...): it decides how the rest of the
        function reads (``Context.class_version``)."""
        values = self.iface_place.values
        cls = values[4] if values[4] is not None else values[1]  # function, else interface class
        if cls is not None:
            self.versions[cls] = version
        if values[1] is not None:
            self.versions[values[1]] = version
        self.iface_place = version_place(self.iface_place, version)

    def finish(self, last_end: int) -> None:
        """After the last descriptor (ending at ``last_end``, -1 when there was none): ``wTotalLength``,
        interface and endpoint counts."""
        config = self.config
        total = config.fields["wTotalLength"] if config.fields is not None else None
        end = config.offset + total if total is not None else -1
        if last_end < 0:
            last_end = config.offset + len(config.raw)
        elif last_end > end >= 0 and config.fields is not None:
            self.straddle(end, total)
        if self.iface is not None:
            self.interfaces.append((self.iface, self.endpoints))
        if config.fields is not None:
            self.check_configuration(last_end)

    # checks ---------------------------------------------------------------------------
    def straddle(self, end: int, total: int | None) -> None:
        """Complain about the descriptor that runs past the end ``wTotalLength`` gives (if one does)."""
        config = self.config
        for node in config.walk():
            if node is not config and node.offset < end < node.offset + len(node.raw):
                self.walker.complain(node.offset, node.name, "wTotalLength",
                                     f"runs past the end of its configuration (wTotalLength {total} ends it "
                                     f"at offset {end})", node)
                return

    def check_endpoint(self, node: Node, iface: Node, address: int) -> None:
        """Endpoint 0 has no descriptor; an address appears once per alternate setting.

        The handler tests both first and calls this for the complaint only."""
        where = ""
        if iface.fields is not None:
            where = f" (interface {iface.fields['bInterfaceNumber']} alt {iface.fields['bAlternateSetting']})"
        if address & 0x0F == 0:
            self.walker.complain(node.offset, node.name, "bEndpointAddress",
                                 f"bEndpointAddress 0x{address:02x} is endpoint 0, which has no endpoint "
                                 f"descriptor (USB 2.0 §9.6.6){where}", node)
        elif address in self.addresses:
            self.walker.complain(node.offset, node.name, "bEndpointAddress",
                                 f"a second endpoint 0x{address:02x} in one alternate setting{where}", node)

    def check_companion(self, node: Node, ep: Node) -> None:
        """SuperSpeed companions belong to SuperSpeed devices; bulk endpoints have no interval bytes."""
        warn, bcd_usb = self.walker.warn, self.walker.bcd_usb
        if bcd_usb is not None and bcd_usb < 0x0300:
            warn(node.offset, node.name, "bcdUSB",
                 f"SuperSpeed Endpoint Companion in a device with bcdUSB {bcd_usb >> 8:x}."
                 f"{bcd_usb & 0xFF:02x} (< 3.00): only SuperSpeed configurations carry companions")
        bulk = ep.fields is not None and ep.fields["bmAttributes"] & 3 in (0, 2)
        if bulk and node.fields["wBytesPerInterval"]:
            warn(node.offset, node.name, "wBytesPerInterval",
                 f"wBytesPerInterval {node.fields['wBytesPerInterval']} on bulk endpoint "
                 f"0x{ep.fields['bEndpointAddress']:02x}: reserved, shall be zero (USB 3.2 §9.6.7)")

    def check_configuration(self, last_end: int) -> None:
        """The configuration's counts and length against what followed it."""
        walker, config = self.walker, self.config
        f = config.fields
        if walker.device_class == 0xEF and walker.device_protocol == (2, 1) and not any(
                c.role == "interface_association" for c in config.children):
            walker.warn(config.offset, config.name, "bDeviceClass",
                        "device class 0xEF/0x02/0x01 (Interface Association) but configuration "
                        f"{f['bConfigurationValue']} has no Interface Association Descriptor")
        actual = last_end - config.offset
        if actual != f["wTotalLength"]:
            walker.complain(config.offset, config.name, "wTotalLength",
                            f"wTotalLength {f['wTotalLength']} disagrees with the bytes: {actual} bytes "
                            "follow up to the next configuration or the end")
        numbers = {n.fields["bInterfaceNumber"] for n, _ in self.interfaces if n.fields is not None}
        if len(numbers) != f["bNumInterfaces"]:
            walker.complain(config.offset, config.name, "bNumInterfaces",
                            f"bNumInterfaces {f['bNumInterfaces']} but {len(numbers)} interfaces follow")
        for iface, count in self.interfaces:
            if iface.fields is None:
                continue
            if count != iface.fields["bNumEndpoints"]:
                walker.complain(iface.offset, iface.name, "bNumEndpoints",
                                f"bNumEndpoints {iface.fields['bNumEndpoints']} but {count} endpoint "
                                f"descriptors follow (interface {iface.fields['bInterfaceNumber']} alt "
                                f"{iface.fields['bAlternateSetting']})", iface)


# -- one handler per role -------------------------------------------------------------------
# ``handler(walk, offset, raw, bDescriptorType)``: where the descriptor stands (the place that
# decodes it), decoding, where it hangs, the checks of its role.

Handler = Callable[[_ConfigurationWalk, int, bytes, int], None]


def _interface(walk: _ConfigurationWalk, offset: int, raw: bytes, dtype: int) -> None:
    """An interface (alternate setting, 0x04): under the IAD spanning its number, else the
    configuration; it opens the place its class-specific descriptors decode in."""
    at = walk.cfg_place
    try:  # Walker.decode, inlined: the cached choice's node builder, else the general path
        node = at.choices[raw[:SELECTOR_PREFIX]].build(raw, offset, at.ctx, walk.blob, "interface")
    except KeyError:
        node = None
    if node is None:
        node = walk.general(offset, raw, at, "interface")
    if walk.iface is not None:
        walk.interfaces.append((walk.iface, walk.endpoints))
    walk.ep = None
    walk.endpoints = 0
    walk.addresses = set()
    f = node.fields
    iad = walk.iad
    if iad is not None and f is not None and walk.iad_first <= f["bInterfaceNumber"] < walk.iad_stop \
            and walk.children[-1] is iad:
        iad.children.append(node)
    else:
        walk.iad = walk.iad_fields = None
        walk.children.append(node)
    device_class, bcd_usb = walk.device_class, walk.bcd_usb
    if f is not None:
        cls = f["bInterfaceClass"]
        fn = walk.iad_fields
        if fn is not None:
            fcls = fn["bFunctionClass"]
            walk.iface_place = place("interface", cls, f["bInterfaceSubClass"], f["bInterfaceProtocol"], fcls,
                                     fn["bFunctionSubClass"], fn["bFunctionProtocol"], None, device_class,
                                     bcd_usb, walk.versions.get(fcls, walk.versions.get(cls)))
        else:
            walk.iface_place = place("interface", cls, f["bInterfaceSubClass"], f["bInterfaceProtocol"],
                                     None, None, None, None, device_class, bcd_usb, walk.versions.get(cls))
    else:
        walk.iface_place = place("interface", None, None, None, None, None, None, None, device_class, bcd_usb,
                                 None)
    walk.iface = node
    if f is not None:
        pair = (f["bInterfaceNumber"], f["bAlternateSetting"])
        if pair in walk.alternates:
            walk.walker.complain(offset, node.name, "bAlternateSetting",
                                 f"interface {pair[0]} alternate setting {pair[1]} appears twice in this "
                                 "configuration", node)
        walk.alternates.add(pair)


def _endpoint(walk: _ConfigurationWalk, offset: int, raw: bytes, dtype: int) -> None:
    """An endpoint (0x05): under the open interface (outside one it is an error); it opens the
    place its companions and class-specific endpoint descriptors decode in."""
    iface = walk.iface
    at = walk.cfg_place if iface is None else walk.iface_place
    try:  # Walker.decode, inlined: the cached choice's node builder, else the general path
        node = at.choices[raw[:SELECTOR_PREFIX]].build(raw, offset, at.ctx, walk.blob, "endpoint")
    except KeyError:
        node = None
    if node is None:
        node = walk.general(offset, raw, at, "endpoint")
    f = node.fields
    address = f["bEndpointAddress"] if f is not None else None
    if iface is None:
        walk.children.append(node)
        walk.walker.complain(offset, node.name, "placement", "endpoint descriptor outside any interface",
                             node)
        walk.iad = walk.iad_fields = None  # later interfaces cannot join it without breaking byte order
    else:
        iface.children.append(node)
        walk.endpoints += 1
        if address is not None:
            addresses = walk.addresses
            if address & 0x0F == 0 or address in addresses:
                walk.check_endpoint(node, iface, address)
            addresses.add(address)
    walk.ep = node
    at = walk.iface_place
    walk.ep_place = at.endpoints.get(address) or endpoint_place(at, address)


def _association(walk: _ConfigurationWalk, offset: int, raw: bytes, dtype: int) -> None:
    """An interface association (0x0B): at configuration level; the interfaces that follow in its
    range hang under it, and class releases start over for its function."""
    at = walk.cfg_place
    try:  # Walker.decode, inlined: the cached choice's node builder, else the general path
        node = at.choices[raw[:SELECTOR_PREFIX]].build(raw, offset, at.ctx, walk.blob, "interface_association")
    except KeyError:
        node = None
    if node is None:
        node = walk.general(offset, raw, at, "interface_association")
    if walk.iface is not None:
        walk.interfaces.append((walk.iface, walk.endpoints))
    walk.children.append(node)
    walk.iface = walk.ep = None
    walk.iad = node
    f = walk.iad_fields = node.fields
    if f is not None:
        walk.iad_first = f["bFirstInterface"]
        walk.iad_stop = walk.iad_first + f["bInterfaceCount"]
        walk.versions = {}
    else:
        walk.iad_first = walk.iad_stop = 0


def _class_interface(walk: _ConfigurationWalk, offset: int, raw: bytes, dtype: int) -> None:
    """A class-specific interface descriptor (0x24) or a HID/functional descriptor (0x21): under the
    open interface, else at configuration level (under an IAD it directly follows). It closes an
    open endpoint: what follows must not hang under it (document order = byte order)."""
    iface = walk.iface
    at = walk.cfg_place if iface is None else walk.iface_place
    try:  # Walker.decode, inlined: the cached choice's node builder, else the general path
        node = at.choices[raw[:SELECTOR_PREFIX]].build(raw, offset, at.ctx, walk.blob, "descriptor")
    except KeyError:
        node = None
    if node is None:
        node = walk.general(offset, raw, at, "descriptor")
    walk.ep = None
    if iface is not None:
        iface.children.append(node)
        if node.fields is not None:
            release = RELEASE_FIELDS.get(id(node.schema))
            if release is not None and release in node.fields:
                walk.new_release(node.fields[release])
    else:
        iad = walk.iad
        if iad is not None and walk.children[-1] is iad:
            iad.children.append(node)  # between an IAD and its first interface
        else:
            walk.children.append(node)


def _other(walk: _ConfigurationWalk, offset: int, raw: bytes, dtype: int) -> None:
    """Anything else (class-specific endpoint 0x25, vendor and unknown types, a broken tail):
    under the open endpoint, else placed as :func:`_class_interface`."""
    ep = walk.ep
    if ep is not None:
        at = walk.ep_place
        try:  # Walker.decode, inlined: the cached choice's node builder, else the general path
            node = at.choices[raw[:SELECTOR_PREFIX]].build(raw, offset, at.ctx, walk.blob, "descriptor")
        except KeyError:
            node = None
        if node is None:
            node = walk.general(offset, raw, at, "descriptor")
        ep.children.append(node)
    else:
        _class_interface(walk, offset, raw, dtype)


def _companion(walk: _ConfigurationWalk, offset: int, raw: bytes, dtype: int) -> None:
    """A SuperSpeed (0x30) or SuperSpeedPlus isochronous (0x31) endpoint companion: placed as
    :func:`_other`; a SuperSpeed companion under its endpoint is checked against it."""
    ep = walk.ep
    _other(walk, offset, raw, dtype)
    if ep is not None and dtype == 0x30:
        node = ep.children[-1]
        if node.fields is not None:
            walk.check_companion(node, ep)


def _string(walk: _ConfigurationWalk, offset: int, raw: bytes, dtype: int) -> None:
    """A string descriptor (0x03) inside a configuration: an error (strings are read on their
    own), then placed as :func:`_other`."""
    walk.walker.complain(offset, "String descriptor", "placement",
                         "a string descriptor inside a configuration: strings are only read with "
                         "GET_DESCRIPTOR(STRING) (USB 2.0 §9.6.7)")
    _other(walk, offset, raw, dtype)


#: The handler of each descriptor type inside a configuration, by ``bDescriptorType``; None for
#: the top-level types, which end the configuration. Entry 255 is also the handler of a broken
#: 1-byte tail (type -1).
_HANDLERS: list[Handler | None] = [_other] * 256
for _types, _handler in (((0x04,), _interface), ((0x05,), _endpoint), ((0x0B,), _association),
                         ((0x24, 0x21), _class_interface), ((0x30, 0x31), _companion), ((0x03,), _string),
                         ((0x01, 0x02, 0x07, 0x0F), None)):
    for _type in _types:
        _HANDLERS[_type] = _handler
del _types, _handler, _type


def walk(data: bytes, *, errors: list[DecodeError] | None = None, blob: str = "descriptors",
         device_class: int | None = None, bcd_usb: int | None = None) -> list[Node]:
    """Frame, decode and place every descriptor of ``data``; returns the top-level nodes.

    Complaints are appended to ``errors`` (when given); nothing is raised for bad bytes.
    """
    return Walker(errors if errors is not None else [], blob, device_class, bcd_usb).walk(bytes(data))


def _frames_cleanly(data: bytes) -> int:
    """How many descriptors ``data`` frames into when every ``bLength`` (>= 2) ends exactly at its
    end, each with a standard or class descriptor type; else 0."""
    pos = count = 0
    while pos < len(data):
        length = data[pos]
        if length < 2 or pos + length > len(data) or descriptor_type_name(data[pos + 1]).startswith(
                ("Unknown", "Vendor-specific")):
            return 0
        pos += length
        count += 1
    return count
