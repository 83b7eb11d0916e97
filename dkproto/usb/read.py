"""``read_descriptor_set(transport)``: a device's whole descriptor set, read through control transfers only.

Every byte comes from :meth:`Transport.control_transfer <dkproto.transport.base.Transport.control_transfer>`
on the default pipe, so the same reader serves ``usb://`` (libusb), ``sim://``, ``MockTransport``
and any wrapper such as ``spy+``. What is read, in this order (USB 2.0 §9.4.3 GET_DESCRIPTOR):

1. the device descriptor (18 bytes);
2. every configuration (``bNumConfigurations``): its first 9 bytes for ``wTotalLength``, then
   the whole of it;
3. the BOS when ``bcdUSB`` >= 0x0201: 5 bytes, then ``wTotalLength``;
4. for a hub (``bDeviceClass`` 9), its class descriptor (class request ``bmRequestType`` 0xA0):
   when ``bcdUSB`` >= 0x0300 the SuperSpeed hub descriptor 0x2A, 12 bytes in one request (its
   fixed size, USB 3.2 §10.15.2.1: Linux's xHCI root hub STALLs a shorter ``wLength``, and the
   kernel's hub driver asks 12 too); else 0x29 (USB 2.0 §11.24.2.10), 2 bytes, then ``bLength``
   (a Linux root hub answers 15 bytes to a longer ``wLength``, whatever its ``bLength``);
5. the device qualifier (10 bytes) when ``bcdUSB`` >= 0x0200 (a STALL means the device has
   none: full speed only), and when there is one, each other-speed configuration it counts
   (9 bytes, then ``wTotalLength``);
6. string 0 (the LANGID list) when any descriptor refers to a string, then every string index
   referred to (``iManufacturer``, ``iInterface``...) in every LANGID it lists (at most 126
   LANGIDs, duplicates read once; 255 bytes asked, the answer is the descriptor);
7. the report descriptor (``GET_DESCRIPTOR(Report)`` to the interface, ``wDescriptorLength``
   bytes from its HID descriptor, HID 1.11 §7.1.1) of every HID interface number (class 3) of
   every configuration, once per number.

The requests are :mod:`dkproto.transport.descriptors`' (``get_descriptor``,
``get_report_descriptor``, and ``interfaces_of`` for the HID interfaces of each configuration):
one implementation of each, under the transport; this module adds what a whole set needs (the
order, the bounds, the complaints about answers, the notes about absent pieces).

Steps 1 and 2 are the set: a failure there is raised. Steps 3-7 are optional: a STALL means
the piece is absent, noted in ``meta`` (``bos_error``, ``hub_descriptor_error``,
``other_speed_error``, ``strings_error``, ``hid_report_errors``: a list, one line per
interface); a device qualifier STALL is not noted (it is how a full-speed device says it has
none), and a STALLed string is just left out. Any other error but
:class:`~dkproto.errors.NoDeviceError` (raised at any step) is noted the same way
(``device_qualifier_error`` too) with its message; after one on a string no more strings are
asked. The extras are the hub descriptor, the qualifier and the other-speed configurations, in
that order, as ``DescriptorSet.extras`` of a file.

An answer shorter than the length the descriptor declares (a *short read*) or longer than the
``wLength`` asked is a complaint in ``DescriptorSet.errors`` naming the request (rule ``read``):
a short answer is kept as it came, a long one is kept up to ``wLength`` and the complaint counts
the bytes dropped. A string whose ``bLength`` disagrees with the bytes answered is the parser's
complaint (``String Descriptor N (LANGID ...): bLength ... but ... bytes were read``).

Bounded: at most 1 + 2 x 255 (configurations) + 2 (BOS) + 2 (hub) + 1 (qualifier) + 2 x 255
(other-speed) + 1 + 126 x 255 (strings) + 256 (HID) requests, whatever the device answers, and
no request asks for more than 65,535 bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from dkproto.errors import DecodeError, DkError, NoDeviceError, NotPermittedError, PipeStalledError
from dkproto.schema.enums import DescriptorType as DT
from dkproto.schema.enums import descriptor_type_name
from dkproto.transport.base import DEFAULT_TIMEOUT_MS, Transport
from dkproto.transport.descriptors import (
    RECIPIENT_DEVICE,
    REQUEST_TYPE_CLASS,
    REQUEST_TYPE_STANDARD,
    get_descriptor,
    get_report_descriptor,
    interfaces_of,
)
from dkproto.usb.bounds import MAX_LANGIDS, MAX_STRING
from dkproto.usb.model import DescriptorSet
from dkproto.usb.parser import parse

__all__ = ["BusDevice", "iter_live", "read_descriptor_set", "read_device", "string_indices"]

_T = TypeVar("_T")

#: The SuperSpeed hub descriptor's one size (USB 3.2 §10.15.2.1; the kernel's USB_DT_SS_HUB_SIZE).
SS_HUB_DESCRIPTOR_SIZE = 12


def read_descriptor_set(transport: Transport, *, source: str | None = None,
                        meta: dict[str, Any] | None = None, timeout: int = DEFAULT_TIMEOUT_MS,
                        ) -> DescriptorSet:
    """Read every descriptor of the device behind ``transport`` (see the module docstring).

    Args:
        transport: any transport with control transfers; opened here (and closed again) when it
            is not open.
        source: the set's ``source`` (default: the transport's URL).
        meta: the set's ``meta``; notes about absent pieces are added after its keys.
        timeout: milliseconds per request.

    Raises:
        DkError: the device descriptor or a configuration could not be read (the back end's
            error: :class:`~dkproto.errors.NoDeviceError`, ``PipeStalledError``, a timeout...);
            a NoDeviceError at any step.
    """
    if not transport.is_open:
        with transport:
            return read_descriptor_set(transport, source=source, meta=meta, timeout=timeout)
    reader = _Reader(transport, timeout)
    return reader.read(transport.info.url if source is None else source, dict(meta or {}))


def string_indices(ds: DescriptorSet) -> list[int]:
    """Every string index a decoded descriptor of ``ds`` refers to (fields ``i...`` but ``id...``), sorted."""
    out: set[int] = set()
    for node in ds.nodes():
        for name, value in node.field_items():
            if name.startswith("i") and not name.startswith("id") and isinstance(value, int) \
                    and 0 < value <= 255:
                out.add(value)
    return sorted(out)


# -- live devices: found by the USB transport, read through usb://BUS/ADDRESS ---------------------


class BusDevice(Protocol):
    """What :func:`read_device` needs of a device on the bus: the USB transport's ``UsbDeviceInfo``
    (:func:`dkproto.transport.usb.find_devices`), or anything with the same attributes."""

    @property
    def bus(self) -> int: ...
    @property
    def address(self) -> int: ...
    @property
    def port_path(self) -> str: ...
    @property
    def speed(self) -> int: ...
    @property
    def sysfs_path(self) -> Path: ...


def read_device(live: BusDevice, *, source: str | None = None) -> DescriptorSet:
    """Read every descriptor of a live device through its ``usb://BUS/ADDRESS`` transport.

    :func:`read_descriptor_set` over the transport, opened for control transfers only (no
    interface claimed, no kernel driver detached) and closed again. On Linux, when the device
    cannot be opened or read (permissions, busy), the sysfs ``descriptors`` file is read instead
    and the set says so in ``meta["read_from"]``. ``source`` names the set (default
    ``usb:BUS:ADDRESS``; ``dkproto dump`` gives the URL, ``usb://BUS/ADDRESS``).

    Raises:
        NoDeviceError: the device went away.
        NotPermittedError: it cannot be read and there is no sysfs fallback.
    """
    from dkproto.transport import open_transport  # at call time: tests stand sim:// in for it

    source = source or f"usb:{live.bus:03d}:{live.address:03d}"
    meta: dict[str, Any] = {"bus": live.bus, "address": live.address, "port_path": live.port_path,
                            "speed": live.speed}
    try:
        ds = read_descriptor_set(open_transport(f"usb://{live.bus}/{live.address}"), source=source, meta=meta)
    except NoDeviceError:
        raise
    except DkError as exc:
        sysfs = live.sysfs_path / "descriptors"
        if sysfs.is_file():
            try:
                data = sysfs.read_bytes()
            except OSError as err:
                raise NotPermittedError(f"{source}: cannot open ({exc}) nor read {sysfs} ({err})") from err
            meta["read_from"] = f"sysfs {sysfs} (libusb: {exc})"
            return parse(data, source=source, meta=meta)
        raise NotPermittedError(f"{source}: cannot read descriptors: {exc}", backend_code=exc.backend_code) from exc
    ds.meta["read_from"] = "libusb"
    return ds


def iter_live(vid: int | None = None, pid: int | None = None, bus: int | None = None,
              address: int | None = None) -> Iterator[DescriptorSet]:
    """Every device on the bus matching the lsusb-style selectors
    (:func:`dkproto.transport.usb.find_devices`), each read by :func:`read_device` and named by
    its URL (``usb://BUS/ADDRESS``); a device that cannot be read at all is a set with one
    ``read`` error.

    Raises:
        MissingToolError: no libusb back end.
    """
    from dkproto.transport.usb import find_devices  # the USB back end, only when the bus is asked

    for dev in find_devices(vid=vid, pid=pid, bus=bus, address=address):
        try:
            yield read_device(dev, source=dev.url)
        except DkError as exc:
            ds = DescriptorSet(source=dev.url)
            ds.errors.append(DecodeError(str(exc), descriptor="device", rule="read"))
            yield ds


class _Reader:
    """One read of one device: the requests, and the complaints about their answers."""

    def __init__(self, transport: Transport, timeout: int) -> None:
        self.transport = transport
        self.timeout = timeout
        self.complaints: list[DecodeError] = []
        self.notes: dict[str, Any] = {}

    # -- requests -------------------------------------------------------------------------
    def get(self, dtype: int, index: int, length: int, wIndex: int = 0, declared: int | None = None, *,
            recipient: int = RECIPIENT_DEVICE, request_type: int = REQUEST_TYPE_STANDARD) -> bytes:
        """One GET_DESCRIPTOR of ``length`` bytes (:func:`~dkproto.transport.descriptors.get_descriptor`);
        ``declared`` is the length the descriptor says it has (an answer shorter than that is a short
        read). An answer longer than ``length`` is kept up to ``length``; both are complaints naming
        the request."""
        data = get_descriptor(self.transport, dtype, index, length, wIndex=wIndex, recipient=recipient,
                              request_type=request_type, timeout=self.timeout)
        return self.checked(data, dtype, index, length, wIndex, declared, request_type)

    def checked(self, data: bytes, dtype: int, index: int, length: int, wIndex: int, declared: int | None,
                request_type: int = REQUEST_TYPE_STANDARD) -> bytes:
        """``data`` answered to a request of ``length`` bytes, cut to ``length``; a complaint when it
        is longer than that, or shorter than ``declared``."""
        if len(data) > length:
            self.complain(request_type, dtype, index, wIndex, length,
                          f"{len(data)} bytes answered, more than the wLength {length} asked: the "
                          f"{len(data) - length} bytes past it are dropped")
            data = data[:length]
        elif declared is not None and len(data) < declared:
            self.complain(request_type, dtype, index, wIndex, length,
                          f"short read: {len(data)} bytes answered, the descriptor has {declared}; "
                          f"the {len(data)} bytes are kept")
        return data

    def get_total(self, dtype: int, index: int, head: int) -> bytes:
        """A descriptor with a ``wTotalLength`` (configuration, other-speed configuration, BOS):
        its first ``head`` bytes, then the whole of it."""
        first = self.get(dtype, index, head, declared=head)
        if len(first) < 4:
            return first
        total = int.from_bytes(first[2:4], "little")
        return self.get(dtype, index, total, declared=total) if total > len(first) else first

    def complain(self, request_type: int, dtype: int, index: int, wIndex: int, length: int,
                 message: str) -> None:
        """A complaint about one request's answer (rule ``read``), named by the request."""
        kind = "class " if request_type == REQUEST_TYPE_CLASS else ""
        name = descriptor_type_name(dtype)
        where = f", wIndex 0x{wIndex:04x}" if wIndex else ""
        request = f"GET_DESCRIPTOR({kind}{name} {index}{where}, wLength {length})"
        self.complaints.append(DecodeError(message, descriptor=request, rule="read"))

    def optional(self, note: str, fn: Callable[[], _T], *, stalled: str | None) -> _T | None:
        """``fn()``, or None when it fails: ``meta[note]`` says why (a STALL says ``stalled``, or
        nothing when ``stalled`` is None: the device has none). NoDeviceError is raised."""
        try:
            return fn()
        except NoDeviceError:
            raise
        except PipeStalledError:
            if stalled is not None:
                self.notes[note] = stalled
        except DkError as exc:
            self.notes[note] = str(exc)
        return None

    # -- the whole read ---------------------------------------------------------------------
    def read(self, source: str, meta: dict[str, Any]) -> DescriptorSet:
        device = self.get(DT.DEVICE, 0, 18, declared=18)
        if len(device) < 18:  # without bNumConfigurations and bcdUSB there is nothing more to ask
            return self.finish(parse(device, source=source, meta=meta))
        bcd_usb, device_class = int.from_bytes(device[2:4], "little"), device[4]
        configurations = [self.get_total(DT.CONFIGURATION, i, 9) for i in range(device[17])]
        blob = device + b"".join(configurations)
        bos = b""
        if bcd_usb >= 0x0201:
            bos = self.optional("bos_error", partial(self.get_total, DT.BOS, 0, 5),
                                stalled="BOS request stalled") or b""
        extras: list[bytes] = []
        if device_class == 0x09:
            kind = DT.SUPERSPEED_HUB if bcd_usb >= 0x0300 else DT.HUB
            hub = self.optional("hub_descriptor_error", partial(self.hub_descriptor, kind),
                                stalled="hub descriptor request stalled")
            if hub:
                extras.append(hub)
        if bcd_usb >= 0x0200:
            ask = partial(self.get, DT.DEVICE_QUALIFIER, 0, 10, declared=10)
            qualifier = self.optional("device_qualifier_error", ask, stalled=None)
            if qualifier:
                extras.append(qualifier)
                count = qualifier[8] if len(qualifier) > 8 else 0
                for i in range(count):
                    ask = partial(self.get_total, DT.OTHER_SPEED_CONFIGURATION, i, 9)
                    other = self.optional("other_speed_error", ask,
                                          stalled=f"other-speed configuration {i} request stalled")
                    if other:
                        extras.append(other)
        first = parse(blob, bos or None, extras=extras, source=source)
        strings = self.strings(string_indices(first))
        reports = self.hid_reports(configurations)
        meta.update(self.notes)
        return self.finish(parse(blob, bos or None, strings=strings, extras=extras, source=source, meta=meta,
                                 hid_report_descriptors=reports))

    def finish(self, ds: DescriptorSet) -> DescriptorSet:
        ds.errors.extend(self.complaints)
        return ds

    def hub_descriptor(self, kind: int) -> bytes:
        """A hub's class descriptor. 0x2A (SuperSpeed): its 12 bytes in one request. 0x29: 2 bytes
        for ``bLength``, then the whole of it (asking ``bLength`` keeps out the bytes past it that
        a Linux root hub answers to a longer ``wLength``)."""
        ask = partial(self.get, kind, 0, recipient=RECIPIENT_DEVICE, request_type=REQUEST_TYPE_CLASS)
        if kind == DT.SUPERSPEED_HUB:
            return ask(SS_HUB_DESCRIPTOR_SIZE, declared=SS_HUB_DESCRIPTOR_SIZE)
        head = ask(2, declared=2)
        if len(head) == 2 and head[0] > 2:
            return ask(head[0], declared=head[0])
        return head

    def strings(self, indices: list[int]) -> dict[tuple[int, int], bytes]:
        """String 0, then every index in every LANGID it lists (a STALLed string is left out; after
        any other error no more strings are asked)."""
        out: dict[tuple[int, int], bytes] = {}
        if not indices:
            return out
        zero = self.optional("strings_error", partial(self.get, DT.STRING, 0, MAX_STRING),
                             stalled="no string descriptor 0")
        if zero is None:
            return out
        out[(0, 0)] = zero
        listed = (int.from_bytes(zero[i:i + 2], "little") for i in range(2, len(zero) - 1, 2))
        langids = list(dict.fromkeys(listed))  # each once, in order
        for langid in langids[:MAX_LANGIDS]:
            for index in indices:
                try:
                    out[(langid, index)] = self.get(DT.STRING, index, MAX_STRING, wIndex=langid)
                except NoDeviceError:
                    raise
                except PipeStalledError:
                    continue
                except DkError as exc:
                    self.notes["strings_error"] = f"string {index} (LANGID 0x{langid:04x}): {exc}"
                    return out
        return out

    def hid_reports(self, configurations: list[bytes]) -> dict[int, bytes]:
        """The report descriptor of each HID interface number of the configurations (as read),
        ``wDescriptorLength`` bytes (:func:`~dkproto.transport.descriptors.interfaces_of`,
        :func:`~dkproto.transport.descriptors.get_report_descriptor`)."""
        lengths: dict[int, int] = {}
        for config in configurations:
            for iface in interfaces_of(config):
                if iface.bInterfaceClass == 0x03 and iface.report_descriptor_length \
                        and iface.bInterfaceNumber not in lengths:
                    lengths[iface.bInterfaceNumber] = iface.report_descriptor_length
        out: dict[int, bytes] = {}
        errors: list[str] = []
        for number, length in lengths.items():
            try:
                data = get_report_descriptor(self.transport, number, length, self.timeout)
            except NoDeviceError:
                raise
            except DkError as exc:
                errors.append(f"interface {number}: {exc}")
                continue
            out[number] = self.checked(data, DT.HID_REPORT, 0, length, number, length)
        if errors:
            self.notes["hid_report_errors"] = errors
        return out

