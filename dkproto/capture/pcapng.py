"""pcapng files: a bounded, hostile-input-safe reader and a small writer (layer 2, pure).

The format is the IETF draft "PCAP Now Generic (pcapng) Capture File Format"
(draft-ietf-opsawg-pcapng): a file is one or more sections, each a Section Header Block (SHB,
which sets the section's byte order) followed by Interface Description Blocks (IDB: link type,
snap length, ``if_tsresol``) and packet blocks (Enhanced Packet Block EPB, Simple Packet Block
SPB, the obsolete Packet Block), plus blocks a packet reader passes over: Name Resolution (NRB),
Interface Statistics (ISB), Decryption Secrets (DSB), custom blocks (0x00000BAD, 0x40000BAD)
and any type it does not know.

Written by hand with :mod:`struct` rather than taken from PyPI's ``python-pcapng`` (last release
2.1.1, 2022): that library raises its own exceptions (and ``struct.error``) on bad input, has no
caps on block or option sizes, and would be a runtime dependency for ~300 lines of format. Here
every length is checked before it is used (a block is at least 12 bytes, a multiple of 4, at
most :data:`MAX_BLOCK_BYTES`, its trailing length equal to its leading one, options inside their
block), and every refusal is a :class:`~dkproto.errors.DecodeError` naming the byte offset and
the block. The reader streams: one block in memory at a time.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, TYPE_CHECKING

from dkproto._paths import os_errors
from dkproto.errors import DecodeError, DkError, EncodeError, NotPermittedError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "BLOCK_NAMES",
    "MAX_BLOCK_BYTES",
    "MAX_INTERFACES",
    "Interface",
    "Packet",
    "PcapngReader",
    "PcapngWriter",
    "read_pcapng",
]

SHB, IDB, PB, SPB, NRB, ISB, EPB, DSB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6, 0x0000000A
CB_COPY, CB_NOCOPY = 0x00000BAD, 0x40000BAD
BYTE_ORDER_MAGIC = 0x1A2B3C4D

#: Block names used in messages.
BLOCK_NAMES: dict[int, str] = {
    SHB: "Section Header Block", IDB: "Interface Description Block", PB: "Packet Block (obsolete)",
    SPB: "Simple Packet Block", NRB: "Name Resolution Block", ISB: "Interface Statistics Block",
    EPB: "Enhanced Packet Block", DSB: "Decryption Secrets Block", CB_COPY: "Custom Block",
    CB_NOCOPY: "Custom Block (do not copy)",
}

#: A block longer than this (64 MiB) is refused: no usbmon packet comes near (usbmon caps a
#: record's data at a fifth of its buffer, and libpcap's default snap length is 256 KiB).
MAX_BLOCK_BYTES = 64 << 20
#: A section with more interfaces than this is refused.
MAX_INTERFACES = 65536

_OPT_ENDOFOPT, _OPT_COMMENT = 0, 1
_SHB_USERAPPL = 4
_IF_NAME, _IF_DESCRIPTION, _IF_TSRESOL, _IF_TSOFFSET = 2, 3, 9, 14


def _name(block_type: int) -> str:
    return BLOCK_NAMES.get(block_type, f"block type 0x{block_type:08x}")


@dataclass(frozen=True)
class Interface:
    """One interface of a section (an IDB).

    Attributes:
        linktype: the LINKTYPE_ value (189, 220 for usbmon).
        snaplen: the snap length (0: no limit).
        units_per_second: timestamp resolution (``if_tsresol``: 10**6 by default).
        tsoffset: ``if_tsoffset`` seconds added to every timestamp.
        name: ``if_name``, if given.
        section: the section's index in the file (0, 1, ...).
        big_endian: the section's byte order.
    """

    linktype: int
    snaplen: int = 0
    units_per_second: int = 1_000_000
    tsoffset: int = 0
    name: str | None = None
    section: int = 0
    big_endian: bool = False


@dataclass(frozen=True)
class Packet:
    """One captured packet.

    Attributes:
        interface: its interface.
        interface_id: the interface's index in its section.
        timestamp: in the interface's units since 1970 (``None`` for a Simple Packet Block).
        data: the captured bytes.
        orig_len: the packet's length on the wire (>= ``len(data)``).
        offset: the block's byte offset in the file.
    """

    interface: Interface
    interface_id: int
    timestamp: int | None
    data: bytes
    orig_len: int
    offset: int

    @property
    def timestamp_ns(self) -> int | None:
        """The timestamp in nanoseconds since 1970 (``if_tsoffset`` applied)."""
        if self.timestamp is None:
            return None
        ups = self.interface.units_per_second
        return self.timestamp * 1_000_000_000 // ups + self.interface.tsoffset * 1_000_000_000


@dataclass
class _Section:
    index: int
    big_endian: bool
    interfaces: list[Interface] = field(default_factory=list)


class PcapngReader:
    """Read the packets of a pcapng file (iterate over it), one block at a time.

    Args:
        source: a path, bytes, or a binary file object.
        strict: when False, a file cut in its last block (a capture killed mid-write) ends the
            packets and adds a line to :attr:`complaints` instead of raising.

    Attributes:
        complaints: problems that did not stop reading.
        skipped: block name -> count of blocks passed over (NRB, ISB, DSB, custom, unknown).
        sections: sections seen.

    Raises (while iterating):
        DecodeError: not pcapng, or a block that breaks the format (offset and block named).
        NotFoundError, NotPermittedError, DkError: the file cannot be opened or read.
    """

    def __init__(self, source: str | os.PathLike[str] | bytes | IO[bytes], *, strict: bool = True) -> None:
        self.strict = strict
        self.complaints: list[str] = []
        self.skipped: dict[str, int] = {}
        self.sections = 0
        self._owned: IO[bytes] | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._f: IO[bytes] = io.BytesIO(bytes(source))
            self.name = "<bytes>"
        elif isinstance(source, (str, os.PathLike)):
            self.name = os.fspath(source)
            with os_errors(self.name, what="capture file", directory=DecodeError,
                           is_directory="is a directory, not a pcapng file", verb="open"):
                self._owned = self._f = open(self.name, "rb")  # noqa: SIM115 - closed by close()
        else:
            self._f = source
            self.name = str(getattr(source, "name", "<stream>"))

    def close(self) -> None:
        """Close the file if this reader opened it."""
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _error(self, offset: int, block: int | None, message: str, rule: str) -> DecodeError:
        what = f"pcapng {_name(block)}" if block is not None else "pcapng"
        return DecodeError(f"{message} ({self.name})", offset=offset, descriptor=what, rule=rule)

    def _read(self, n: int) -> bytes:
        try:
            return self._f.read(n)
        except OSError as exc:
            raise DkError(f"{self.name}: cannot read: {exc.strerror or exc}", backend_code=exc.errno) from exc

    def _cut(self, offset: int, block: int | None, message: str) -> bool:
        """A cut at the end of the file: True to stop quietly (non-strict), else raise."""
        if self.strict:
            raise self._error(offset, block, message, "truncated")
        self.complaints.append(f"{self.name}: offset {offset}: {message}: the rest is ignored (a capture "
                               "stopped mid-write?)")
        return True

    def __iter__(self) -> Iterator[Packet]:
        offset = 0
        section: _Section | None = None
        while True:
            head = self._read(8)
            if not head:
                if section is None:
                    raise self._error(0, None, "empty file, not a pcapng capture", "SHB")
                return
            if len(head) < 8:
                if section is None:
                    raise self._error(0, None, f"{len(head)} bytes, not a pcapng capture", "SHB")
                self._cut(offset, None, f"{len(head)} bytes left, less than a block header")
                return
            if head[:4] == b"\x0a\x0d\x0d\x0a":
                found = self._section_header(head, offset, section)
                if found is None:
                    return
                section, total = found
                offset += total
                continue
            if section is None:
                magic = head[:4].hex()
                hint = " (a pcap file: convert it with editcap -F pcapng)" if magic in (
                    "d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d") else ""
                raise self._error(0, None, f"does not start with a Section Header Block (magic {magic}){hint}",
                                  "SHB")
            e = ">" if section.big_endian else "<"
            block_type, total = struct.unpack(e + "II", head)
            self._check_total(offset, block_type, total, 12)
            rest = self._read(total - 8)
            if len(rest) < total - 8:
                self._cut(offset, block_type, f"block length {total} but only {len(rest) + 8} bytes left")
                return
            (trailer,) = struct.unpack(e + "I", rest[-4:])
            if trailer != total:
                raise self._error(offset, block_type, f"trailing block length {trailer} differs from {total}",
                                  "block_total_length")
            body = rest[:-4]
            packet = self._block(section, block_type, body, offset, e)
            if packet is not None:
                yield packet
            offset += total

    def _check_total(self, offset: int, block_type: int, total: int, minimum: int) -> None:
        """A Block Total Length must be a multiple of 4, at least ``minimum`` and within the cap."""
        if total < minimum or total % 4:
            raise self._error(offset, block_type, f"block length {total} is not a multiple of 4 of at least {minimum}",
                              "block_total_length")
        if total > MAX_BLOCK_BYTES:
            raise self._error(offset, block_type, f"block length {total:,} is over the {MAX_BLOCK_BYTES:,}-byte cap",
                              "block_total_length")

    def _section_header(self, head: bytes, offset: int, previous: _Section | None) -> tuple[_Section, int] | None:
        bom = self._read(4)
        if len(bom) < 4:
            if previous is None:
                raise self._error(offset, SHB, "cut before its byte-order magic", "truncated")
            self._cut(offset, SHB, "cut before its byte-order magic")
            return None
        if bom == b"\x4d\x3c\x2b\x1a":
            e, big = "<", False
        elif bom == b"\x1a\x2b\x3c\x4d":
            e, big = ">", True
        else:
            raise self._error(offset, SHB, f"byte-order magic {bom.hex()} is neither 1a2b3c4d nor 4d3c2b1a",
                              "byte_order_magic")
        (total,) = struct.unpack(e + "I", head[4:8])
        self._check_total(offset, SHB, total, 28)
        rest = self._read(total - 12)
        if len(rest) < total - 12:
            if previous is None:
                raise self._error(offset, SHB, f"block length {total} but the file ends first", "truncated")
            self._cut(offset, SHB, f"block length {total} but the file ends first")
            return None
        major, minor = struct.unpack(e + "HH", rest[:4])
        if major != 1:
            raise self._error(offset, SHB, f"version {major}.{minor}; this reader knows 1.x", "major_version")
        (trailer,) = struct.unpack(e + "I", rest[-4:])
        if trailer != total:
            raise self._error(offset, SHB, f"trailing block length {trailer} differs from {total}",
                              "block_total_length")
        self._options(rest[12:-4], offset + 24, SHB, e)  # checked, not used
        index = self.sections
        self.sections += 1
        return _Section(index, big), total

    def _options(self, data: bytes, offset: int, block: int, e: str) -> dict[int, list[bytes]]:
        """The options of a block body tail: code -> values; checked to stay inside the block."""
        out: dict[int, list[bytes]] = {}
        pos = 0
        while pos + 4 <= len(data):
            code, length = struct.unpack(e + "HH", data[pos:pos + 4])
            if code == _OPT_ENDOFOPT:
                return out
            end = pos + 4 + length
            if end > len(data):
                raise self._error(offset + pos, block, f"option {code} of {length} bytes runs past the block",
                                  "option_length")
            out.setdefault(code, []).append(data[pos + 4:end])
            pos = end + (-length % 4)
        if pos != len(data) and pos < len(data):
            raise self._error(offset + pos, block, f"{len(data) - pos} stray bytes after the options", "options")
        return out

    def _block(self, section: _Section, block_type: int, body: bytes, offset: int, e: str) -> Packet | None:
        if block_type == IDB:
            if len(body) < 8:
                raise self._error(offset, IDB, f"body of {len(body)} bytes, less than 8", "block_total_length")
            linktype, _reserved, snaplen = struct.unpack(e + "HHI", body[:8])
            opts = self._options(body[8:], offset + 16, IDB, e)
            ups = 1_000_000
            if _IF_TSRESOL in opts:
                raw = opts[_IF_TSRESOL][0]
                if len(raw) != 1:
                    raise self._error(offset, IDB, f"if_tsresol of {len(raw)} bytes, not 1", "if_tsresol")
                exp = raw[0] & 0x7F
                base = 2 if raw[0] & 0x80 else 10
                if (base == 10 and exp > 18) or (base == 2 and exp > 63):
                    raise self._error(offset, IDB, f"if_tsresol {base}^-{exp} is finer than this reader handles",
                                      "if_tsresol")
                ups = base ** exp
            tsoffset = 0
            if _IF_TSOFFSET in opts:
                raw = opts[_IF_TSOFFSET][0]
                if len(raw) != 8:
                    raise self._error(offset, IDB, f"if_tsoffset of {len(raw)} bytes, not 8", "if_tsoffset")
                (tsoffset,) = struct.unpack(e + "q", raw)
            name = opts[_IF_NAME][0].decode("utf-8", "replace") if _IF_NAME in opts else None
            if len(section.interfaces) >= MAX_INTERFACES:
                raise self._error(offset, IDB, f"more than {MAX_INTERFACES} interfaces in a section", "interfaces")
            section.interfaces.append(Interface(linktype, snaplen, ups, tsoffset, name, section.index,
                                                section.big_endian))
            return None
        if block_type in (EPB, PB):
            if len(body) < 20:
                raise self._error(offset, block_type, f"body of {len(body)} bytes, less than 20", "block_total_length")
            if block_type == EPB:
                iface_id, ts_hi, ts_lo, cap_len, orig_len = struct.unpack(e + "IIIII", body[:20])
            else:
                iface_id, _drops, ts_hi, ts_lo, cap_len, orig_len = struct.unpack(e + "HHIIII", body[:20])
            if iface_id >= len(section.interfaces):
                raise self._error(offset, block_type, f"interface {iface_id} not described (the section has "
                                  f"{len(section.interfaces)})", "interface_id")
            if cap_len > len(body) - 20:
                raise self._error(offset, block_type, f"captured length {cap_len} runs past the block "
                                  f"({len(body) - 20} bytes of packet data)", "captured_packet_length")
            data = body[20:20 + cap_len]
            self._options(body[20 + cap_len + (-cap_len % 4):], offset + 28 + cap_len, block_type, e)
            return Packet(section.interfaces[iface_id], iface_id, (ts_hi << 32) | ts_lo, data,
                          max(orig_len, cap_len), offset)
        if block_type == SPB:
            if len(body) < 4:
                raise self._error(offset, SPB, f"body of {len(body)} bytes, less than 4", "block_total_length")
            if not section.interfaces:
                raise self._error(offset, SPB, "a Simple Packet Block before any interface", "interface_id")
            (orig_len,) = struct.unpack(e + "I", body[:4])
            iface = section.interfaces[0]
            cap = min(orig_len, len(body) - 4)
            if iface.snaplen:
                cap = min(cap, iface.snaplen)
            return Packet(iface, 0, None, body[4:4 + cap], max(orig_len, cap), offset)
        name = _name(block_type)
        self.skipped[name] = self.skipped.get(name, 0) + 1
        return None


def read_pcapng(source: str | os.PathLike[str] | bytes | IO[bytes], *, strict: bool = True) -> list[Packet]:
    """Every packet of a pcapng file (see :class:`PcapngReader` for the checks and errors)."""
    with PcapngReader(source, strict=strict) as reader:
        return list(reader)


class PcapngWriter:
    """Write a little-endian pcapng file: one section, one interface, Enhanced Packet Blocks.

    Every block goes out whole with one ``write`` and the file is flushed after each, so an
    interrupted writer leaves a file that reads up to its last packet.

    Args:
        target: a path (created or emptied) or a binary file object (left open by :meth:`close`).
        linktype: the interface's link type (220 for usbmon).
        nanoseconds: timestamps in nanoseconds (``if_tsresol`` 9) instead of microseconds.
        snaplen: the interface's snap length (0: none).
        if_name: the interface's name (``usbmon0``...).
        user_appl: the ``shb_userappl`` text (the writing program).

    Raises:
        NotPermittedError, DkError: the file cannot be created.
    """

    def __init__(self, target: str | os.PathLike[str] | IO[bytes], *, linktype: int, nanoseconds: bool = False,
                 snaplen: int = 0, if_name: str | None = None, user_appl: str | None = None) -> None:
        self.nanoseconds = nanoseconds
        self.packets = 0
        self._owned = False
        if isinstance(target, (str, os.PathLike)):
            self.name = os.fspath(target)
            try:
                self._f: IO[bytes] | None = open(self.name, "wb")  # noqa: SIM115 - closed by close()
            except PermissionError as exc:
                raise NotPermittedError(f"{self.name}: cannot create the capture file ({exc.strerror})") from exc
            except OSError as exc:
                raise DkError(f"{self.name}: cannot create the capture file: {exc.strerror or exc}",
                              backend_code=exc.errno) from exc
            self._owned = True
        else:
            self._f = target
            self.name = str(getattr(target, "name", "<stream>"))
        shb_opts = _option(_SHB_USERAPPL, user_appl.encode()) if user_appl else b""
        self._block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + shb_opts + _END)
        idb_opts = _option(_IF_TSRESOL, bytes([9 if nanoseconds else 6]))
        if if_name:
            idb_opts += _option(_IF_NAME, if_name.encode())
        self._block(IDB, struct.pack("<HHI", linktype, 0, snaplen) + idb_opts + _END)

    def _block(self, block_type: int, body: bytes) -> None:
        if self._f is None:
            raise DkError(f"{self.name}: the capture file is closed")
        body += bytes(-len(body) % 4)
        total = len(body) + 12
        if total > MAX_BLOCK_BYTES:
            raise EncodeError(f"a {total:,}-byte block is over the {MAX_BLOCK_BYTES:,}-byte cap")
        try:
            self._f.write(struct.pack("<II", block_type, total) + body + struct.pack("<I", total))
            self._f.flush()
        except OSError as exc:
            raise DkError(f"{self.name}: cannot write: {exc.strerror or exc}", backend_code=exc.errno) from exc

    def write_packet(self, data: bytes, timestamp_ns: int, orig_len: int | None = None,
                     comment: str | None = None) -> None:
        """One Enhanced Packet Block on interface 0.

        Args:
            data: the packet bytes.
            timestamp_ns: nanoseconds since 1970.
            orig_len: its length on the wire (default ``len(data)``).
            comment: an ``opt_comment`` shown by Wireshark.
        """
        ts = max(0, int(timestamp_ns)) if self.nanoseconds else max(0, int(timestamp_ns)) // 1000
        opts = _option(_OPT_COMMENT, comment.encode()) + _END if comment else b""
        pad = bytes(-len(data) % 4)
        orig = len(data) if orig_len is None else max(orig_len, len(data))
        self._block(EPB, struct.pack("<IIIII", 0, (ts >> 32) & 0xFFFFFFFF, ts & 0xFFFFFFFF, len(data), orig)
                    + bytes(data) + pad + opts)
        self.packets += 1

    def close(self) -> None:
        """Flush, and close the file if this writer opened it (idempotent)."""
        f, self._f = self._f, None
        if f is not None and self._owned:
            f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


_END = struct.pack("<HH", _OPT_ENDOFOPT, 0)


def _option(code: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        value = value[:0xFFFF]
    return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)
