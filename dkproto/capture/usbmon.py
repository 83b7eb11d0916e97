"""The Linux usbmon packet header, as Wireshark and libpcap store it (layer 2, pure).

A usbmon capture (``tshark -i usbmon1``, ``dkproto capture export``) is a pcap or pcapng file
whose packets each start with the kernel's binary usbmon header (``struct mon_bin_hdr``,
``Documentation/usb/usbmon.rst``, "Raw binary format and API"), followed by the transfer's
data. Two link types carry it:

* ``LINKTYPE_USB_LINUX`` (189): the 48-byte header of the ``MON_IOCX_GET`` interface;
* ``LINKTYPE_USB_LINUX_MMAPPED`` (220): the 64-byte header of the memory-mapped interface
  (``interval``, ``start_frame``, ``xfer_flags``, ``ndesc`` added), then ``ndesc`` isochronous
  descriptors of 16 bytes, then the data. This is what libpcap (so tshark and Wireshark)
  writes today, and what :mod:`dkproto.capture` writes.

The header is in the capturing host's byte order: a file carries the byte order of its pcapng
section, so :func:`header_schema` has a little- and a big-endian form. The 8-byte ``setup``
field is the control SETUP packet (USB wire order, little-endian whatever the host) on a
control Submit, and ``error_count``/``numdesc`` (:data:`ISO_FIELDS`) on an isochronous one.

Fields (offsets of the 64-byte form):

====== ============ =====================================================================
offset field        meaning
====== ============ =====================================================================
0      id           URB id: the same on a Submit and its Complete
8      type         ``'S'`` submit, ``'C'`` complete, ``'E'`` submission error
9      xfer_type    0 isochronous, 1 interrupt, 2 control, 3 bulk (:data:`XFER_ISO`...)
10     epnum        endpoint number, bit 7 the direction (0x80 IN; also on endpoint 0)
11     devnum       device address on the bus
12     busnum       bus number (``usbmonN``)
14     flag_setup   0 when ``setup`` holds a SETUP packet, else a character (``'-'``)
15     flag_data    0 when data follows, else ``'<'`` (IN submit), ``'>'`` (OUT complete)
16     ts_sec       seconds (wall clock)
24     ts_usec      microseconds
28     status       0 or a negative Linux errno (``-EINPROGRESS`` on a Submit)
32     length       bytes of the transfer (asked for on a Submit, moved on a Complete)
36     len_cap      bytes of data captured after the header (iso descriptors included)
40     setup        SETUP packet, or ``error_count``, ``numdesc`` for isochronous
48     interval     polling interval (interrupt, isochronous)
52     start_frame  isochronous start frame
56     xfer_flags   the URB's ``transfer_flags`` (0x200 ``URB_DIR_IN``)
60     ndesc        isochronous descriptors that follow the header
====== ============ =====================================================================

Anchors: the kernel's ``drivers/usb/mon/mon_bin.c`` (``mon_bin_event``: which records carry
data and which flag they set), Wireshark's ``epan/dissectors/packet-usb.c``
(``dissect_linux_usb_pseudo_header``), libpcap's ``pcap/usb.h``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from construct import (
    Bytes,
    Construct,
    ConstructError,
    Int8ul,
    Int16ub,
    Int16ul,
    Int32sb,
    Int32sl,
    Int32ub,
    Int32ul,
    Int64sb,
    Int64sl,
    Int64ub,
    Int64ul,
    Struct,
)

from dkproto.errors import DecodeError, EncodeError
from dkproto.ioreturn import IOReturn

__all__ = [
    "ERRNO",
    "HEADER_SIZE",
    "HEADER_SIZE_MMAPPED",
    "ISO_DESCRIPTOR",
    "ISO_DESCRIPTOR_SIZE",
    "ISO_FIELDS",
    "LINKTYPE_USB_LINUX",
    "LINKTYPE_USB_LINUX_MMAPPED",
    "SETUP",
    "URB_DIR_IN",
    "USBMON_HEADER",
    "USBMON_HEADER_BE",
    "USBMON_HEADER_MMAPPED",
    "USBMON_HEADER_MMAPPED_BE",
    "XFER_BULK",
    "XFER_CONTROL",
    "XFER_INTERRUPT",
    "XFER_ISO",
    "XFER_NAMES",
    "UsbmonPacket",
    "errno_name",
    "header_schema",
    "ioreturn_for_status",
    "status_for_ioreturn",
    "usb_to_xfer_type",
]

#: libpcap link type of the 48-byte header.
LINKTYPE_USB_LINUX = 189
#: libpcap link type of the 64-byte (memory-mapped) header.
LINKTYPE_USB_LINUX_MMAPPED = 220
HEADER_SIZE = 48
HEADER_SIZE_MMAPPED = 64
ISO_DESCRIPTOR_SIZE = 16

#: ``xfer_type`` values (the kernel's ``PIPE_*`` numbering, not the descriptor's bmAttributes).
XFER_ISO, XFER_INTERRUPT, XFER_CONTROL, XFER_BULK = 0, 1, 2, 3
XFER_NAMES = {XFER_ISO: "isochronous", XFER_INTERRUPT: "interrupt", XFER_CONTROL: "control", XFER_BULK: "bulk"}

#: ``URB_DIR_IN`` of ``transfer_flags`` (``include/linux/usb.h``).
URB_DIR_IN = 0x0200

#: The SETUP packet: USB wire order (little-endian) whatever the host's byte order.
SETUP = Struct(
    "bmRequestType" / Int8ul,
    "bRequest" / Int8ul,
    "wValue" / Int16ul,
    "wIndex" / Int16ul,
    "wLength" / Int16ul,
)


def _common(i16: Construct, i32s: Construct, i32u: Construct, i64u: Construct, i64s: Construct) -> list[Any]:
    return [
        "id" / i64u,
        "type" / Int8ul,
        "xfer_type" / Int8ul,
        "epnum" / Int8ul,
        "devnum" / Int8ul,
        "busnum" / i16,
        "flag_setup" / Int8ul,
        "flag_data" / Int8ul,
        "ts_sec" / i64s,
        "ts_usec" / i32s,
        "status" / i32s,
        "length" / i32u,
        "len_cap" / i32u,
        "setup" / Bytes(8),
    ]


def _mmapped(i32s: Construct, i32u: Construct) -> list[Any]:
    return ["interval" / i32s, "start_frame" / i32s, "xfer_flags" / i32u, "ndesc" / i32u]


#: The 48-byte header (LINKTYPE_USB_LINUX), little-endian host.
USBMON_HEADER = Struct(*_common(Int16ul, Int32sl, Int32ul, Int64ul, Int64sl))
#: The 48-byte header, big-endian host.
USBMON_HEADER_BE = Struct(*_common(Int16ub, Int32sb, Int32ub, Int64ub, Int64sb))
#: The 64-byte header (LINKTYPE_USB_LINUX_MMAPPED), little-endian host.
USBMON_HEADER_MMAPPED = Struct(*_common(Int16ul, Int32sl, Int32ul, Int64ul, Int64sl), *_mmapped(Int32sl, Int32ul))
#: The 64-byte header, big-endian host.
USBMON_HEADER_MMAPPED_BE = Struct(*_common(Int16ub, Int32sb, Int32ub, Int64ub, Int64sb), *_mmapped(Int32sb, Int32ub))

#: The ``setup`` bytes of an isochronous record: ``error_count``, ``numdesc`` (host order).
ISO_FIELDS = {False: Struct("error_count" / Int32sl, "numdesc" / Int32sl),
              True: Struct("error_count" / Int32sb, "numdesc" / Int32sb)}
#: One isochronous descriptor (``struct mon_bin_isodesc``) after the 64-byte header (host order).
ISO_DESCRIPTOR = {False: Struct("status" / Int32sl, "offset" / Int32ul, "length" / Int32ul, "pad" / Int32ul),
                  True: Struct("status" / Int32sb, "offset" / Int32ub, "length" / Int32ub, "pad" / Int32ub)}

_SCHEMAS = {(False, False): USBMON_HEADER, (False, True): USBMON_HEADER_BE,
            (True, False): USBMON_HEADER_MMAPPED, (True, True): USBMON_HEADER_MMAPPED_BE}


def header_schema(linktype: int, big_endian: bool = False) -> Construct:
    """The header schema of a link type (189 or 220) in a byte order.

    Raises:
        DecodeError: another link type.
    """
    if linktype not in (LINKTYPE_USB_LINUX, LINKTYPE_USB_LINUX_MMAPPED):
        raise DecodeError(f"link type {linktype} is not usbmon (189 LINKTYPE_USB_LINUX or 220 "
                          "LINKTYPE_USB_LINUX_MMAPPED)", descriptor="usbmon", rule="linktype")
    return _SCHEMAS[(linktype == LINKTYPE_USB_LINUX_MMAPPED, big_endian)]


def usb_to_xfer_type(bmAttributes: int) -> int:
    """usbmon's ``xfer_type`` of an endpoint descriptor's ``bmAttributes`` (bits 1..0: 0 control,
    1 isochronous, 2 bulk, 3 interrupt; the kernel's ``xfer_to_pipe``)."""
    return (XFER_CONTROL, XFER_ISO, XFER_BULK, XFER_INTERRUPT)[bmAttributes & 3]


# ------------------------------------------------------------------------------ URB status
#: Linux errno values (asm-generic/errno*.h; the same on every Linux architecture dkproto runs
#: on). Written out so a capture made on macOS carries Linux numbers.
ERRNO: dict[str, int] = {
    "ENOENT": 2, "EINTR": 4, "EIO": 5, "ENXIO": 6, "EXDEV": 18, "ENODEV": 19, "EINVAL": 22, "EFBIG": 27,
    "ENOSPC": 28, "EPIPE": 32, "ETIME": 62, "ENOSR": 63, "ECOMM": 70, "EPROTO": 71, "EOVERFLOW": 75,
    "EILSEQ": 84, "EMSGSIZE": 90, "EOPNOTSUPP": 95, "ECONNRESET": 104, "ESHUTDOWN": 108, "ETIMEDOUT": 110,
    "EHOSTUNREACH": 113, "EALREADY": 114, "EINPROGRESS": 115, "EREMOTEIO": 121,
}
_ERRNO_NAMES = {v: k for k, v in ERRNO.items()}

#: IOReturn -> the URB status a Complete carries (``Documentation/driver-api/usb/error-codes.rst``).
_STATUS_OF: dict[int, int] = {
    IOReturn.kIOReturnSuccess: 0,
    IOReturn.kUSBHostReturnPipeStalled: -ERRNO["EPIPE"],  # "Endpoint stalled"
    IOReturn.kIOUSBPipeStalled: -ERRNO["EPIPE"],
    IOReturn.kIOReturnTimeout: -ERRNO["ETIMEDOUT"],  # "timeout expired before the transfer completed"
    IOReturn.kIOUSBTransactionTimeout: -ERRNO["ETIMEDOUT"],
    IOReturn.kIOReturnAborted: -ERRNO["ENOENT"],  # "URB was synchronously unlinked by usb_kill_urb"
    IOReturn.kIOUSBTransactionReturned: -ERRNO["ENOENT"],
    IOReturn.kIOReturnOverrun: -ERRNO["EOVERFLOW"],  # "more data than the max packet size or the buffer"
    IOReturn.kIOReturnUnderrun: -ERRNO["EREMOTEIO"],  # "did not fill the buffer, URB_SHORT_NOT_OK set"
    IOReturn.kIOReturnNotResponding: -ERRNO["ETIME"],  # "no response packet ... bus turn-around time"
    IOReturn.kIOReturnIOError: -ERRNO["EPROTO"],  # "bitstuff error / no response / unknown USB error"
    IOReturn.kIOReturnError: -ERRNO["EPROTO"],
    IOReturn.kIOReturnDeviceError: -ERRNO["EPROTO"],
    IOReturn.kIOReturnNoDevice: -ERRNO["ENODEV"],  # a submission error ('E'): "device doesn't exist"
    IOReturn.kIOReturnNotAttached: -ERRNO["ENODEV"],
}

#: URB status -> IOReturn (what libusb reports for it on Linux, in dkproto's IOReturn terms).
_IORETURN_OF: dict[int, IOReturn] = {
    0: IOReturn.kIOReturnSuccess,
    -ERRNO["EPIPE"]: IOReturn.kUSBHostReturnPipeStalled,
    -ERRNO["ETIMEDOUT"]: IOReturn.kIOReturnTimeout,
    -ERRNO["ENOENT"]: IOReturn.kIOReturnAborted,
    -ERRNO["ECONNRESET"]: IOReturn.kIOReturnAborted,
    -ERRNO["EOVERFLOW"]: IOReturn.kIOReturnOverrun,
    -ERRNO["EREMOTEIO"]: IOReturn.kIOReturnUnderrun,
    -ERRNO["ETIME"]: IOReturn.kIOReturnNotResponding,
    -ERRNO["EPROTO"]: IOReturn.kIOReturnIOError,
    -ERRNO["EILSEQ"]: IOReturn.kIOReturnIOError,
    -ERRNO["ECOMM"]: IOReturn.kIOReturnIOError,
    -ERRNO["ENOSR"]: IOReturn.kIOReturnIOError,
    -ERRNO["EXDEV"]: IOReturn.kIOReturnIOError,
    -ERRNO["ENODEV"]: IOReturn.kIOReturnNoDevice,
    -ERRNO["ESHUTDOWN"]: IOReturn.kIOReturnNoDevice,
    -ERRNO["EINVAL"]: IOReturn.kIOReturnBadArgument,
    -ERRNO["EMSGSIZE"]: IOReturn.kIOReturnBadArgument,
    -ERRNO["ENOSPC"]: IOReturn.kIOReturnNoBandwidth,
}


def status_for_ioreturn(code: int) -> int | None:
    """The URB status (0 or ``-errno``) a transfer that ended in IOReturn ``code`` carries; None when
    the failure never reaches the bus (a bad argument, an unsupported call, no permission...)."""
    return _STATUS_OF.get(code & 0xFFFFFFFF)


def ioreturn_for_status(status: int) -> IOReturn:
    """The IOReturn of a URB status (kIOReturnError for an errno the table does not know)."""
    return _IORETURN_OF.get(status, IOReturn.kIOReturnError)


def errno_name(status: int) -> str:
    """``-32`` -> ``"-EPIPE"``; ``0`` -> ``"0"``; unknown -> the number."""
    if status == 0:
        return "0"
    name = _ERRNO_NAMES.get(-status)
    return f"-{name}" if name else str(status)


# ------------------------------------------------------------------------------ one record
@dataclass
class UsbmonPacket:
    """One usbmon record: the header's fields and the bytes after it.

    ``data`` is the transfer's captured data (isochronous descriptors not included: they are in
    ``iso``). :meth:`pack` sets ``len_cap`` and ``ndesc`` from ``data`` and ``iso``.
    """

    id: int = 0
    type: str = "S"
    xfer_type: int = XFER_BULK
    epnum: int = 0
    devnum: int = 0
    busnum: int = 0
    flag_setup: int = ord("-")
    flag_data: int = 0
    ts_sec: int = 0
    ts_usec: int = 0
    status: int = 0
    length: int = 0
    len_cap: int = 0
    setup: bytes = bytes(8)
    interval: int = 0
    start_frame: int = 0
    xfer_flags: int = 0
    ndesc: int = 0
    iso: list[dict[str, int]] = field(default_factory=list)
    data: bytes = b""

    @property
    def is_in(self) -> bool:
        """True for a device-to-host transfer (bit 7 of ``epnum``)."""
        return bool(self.epnum & 0x80)

    @property
    def has_setup(self) -> bool:
        """True when ``setup`` holds a SETUP packet (``flag_setup`` is 0)."""
        return self.flag_setup == 0

    def setup_fields(self) -> dict[str, int]:
        """The SETUP packet as ``bmRequestType``, ``bRequest``, ``wValue``, ``wIndex``, ``wLength``."""
        c = SETUP.parse(self.setup)
        return {k: int(c[k]) for k in ("bmRequestType", "bRequest", "wValue", "wIndex", "wLength")}

    @property
    def timestamp_ns(self) -> int:
        """``ts_sec``/``ts_usec`` in nanoseconds."""
        return self.ts_sec * 1_000_000_000 + self.ts_usec * 1000

    def pack(self, linktype: int = LINKTYPE_USB_LINUX_MMAPPED, big_endian: bool = False) -> bytes:
        """Header and data as one packet of ``linktype``.

        Raises:
            EncodeError: a field out of its range, or isochronous descriptors with the 48-byte form.
        """
        schema = header_schema(linktype, big_endian)
        mmapped = linktype == LINKTYPE_USB_LINUX_MMAPPED
        if self.iso and not mmapped:
            raise EncodeError("isochronous descriptors need link type 220 (LINKTYPE_USB_LINUX_MMAPPED)")
        desc = b"".join(ISO_DESCRIPTOR[big_endian].build(d) for d in self.iso) if mmapped else b""
        values = {
            "id": self.id, "type": ord(self.type[:1] or "?"), "xfer_type": self.xfer_type, "epnum": self.epnum,
            "devnum": self.devnum, "busnum": self.busnum, "flag_setup": self.flag_setup,
            "flag_data": self.flag_data, "ts_sec": self.ts_sec, "ts_usec": self.ts_usec, "status": self.status,
            "length": self.length, "len_cap": len(desc) + len(self.data), "setup": bytes(self.setup),
            "interval": self.interval, "start_frame": self.start_frame, "xfer_flags": self.xfer_flags,
            "ndesc": len(self.iso),
        }
        try:
            head: bytes = schema.build(values)
        except (ConstructError, ValueError, TypeError, OverflowError) as exc:
            raise EncodeError(f"usbmon header: {exc}") from exc
        return head + desc + bytes(self.data)

    @classmethod
    def parse(cls, packet: bytes, linktype: int = LINKTYPE_USB_LINUX_MMAPPED, big_endian: bool = False,
              offset: int | None = None) -> UsbmonPacket:
        """One packet of ``linktype`` (189 or 220) in a byte order.

        The data is what follows the header (and the isochronous descriptors); a ``len_cap``
        larger than what is there (a snap length cut) keeps what is there.

        Raises:
            DecodeError: shorter than the header, or isochronous descriptors past the end; the
                message names ``offset`` (the packet's place in its file) when given.
        """
        schema = header_schema(linktype, big_endian)
        size = HEADER_SIZE_MMAPPED if linktype == LINKTYPE_USB_LINUX_MMAPPED else HEADER_SIZE
        if len(packet) < size:
            raise DecodeError(f"{len(packet)} bytes, shorter than the {size}-byte header of link type {linktype}",
                              offset=offset, descriptor="usbmon packet", rule="header")
        c = schema.parse(packet[:size])
        p = cls(id=c.id, type=chr(c.type), xfer_type=c.xfer_type, epnum=c.epnum, devnum=c.devnum,
                busnum=c.busnum, flag_setup=c.flag_setup, flag_data=c.flag_data, ts_sec=c.ts_sec,
                ts_usec=c.ts_usec, status=c.status, length=c.length, len_cap=c.len_cap, setup=bytes(c.setup))
        rest = packet[size:]
        if size == HEADER_SIZE_MMAPPED:
            p = replace(p, interval=c.interval, start_frame=c.start_frame, xfer_flags=c.xfer_flags, ndesc=c.ndesc)
            if p.xfer_type == XFER_ISO and p.ndesc:
                need = p.ndesc * ISO_DESCRIPTOR_SIZE
                if need > len(rest):
                    raise DecodeError(f"{p.ndesc} isochronous descriptors need {need} bytes, {len(rest)} are there",
                                      offset=offset, descriptor="usbmon packet", rule="ndesc")
                p.iso = [{k: int(v) for k, v in ISO_DESCRIPTOR[big_endian].parse(rest[i:i + 16]).items()
                          if not k.startswith("_")}
                         for i in range(0, need, ISO_DESCRIPTOR_SIZE)]
                rest = rest[need:]
        p.data = bytes(rest[:max(0, p.len_cap - len(p.iso) * ISO_DESCRIPTOR_SIZE)])
        return p
