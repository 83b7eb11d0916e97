"""Memory descriptors: ``IOMemoryDescriptor``, ``IOBufferMemoryDescriptor``, ``IOMemoryMap`` and
``IODMACommand`` (xnu ``iokit/DriverKit/IOMemoryDescriptor.iig``, ``IOBufferMemoryDescriptor.iig``,
``IOMemoryMap.iig``, ``IODMACommand.iig``; driverkit.md 4.7).

A dext allocates its buffers once (``IOBufferMemoryDescriptor::Create`` with a direction, in
``Start``) and reaches the bytes through ``GetAddressRange`` or ``CreateMapping`` +
``IOMemoryMap::GetAddress``. dkproto does the same with real memory: a descriptor owns (or
shares) a ``bytearray`` that is *pinned* (it cannot be resized while the descriptor lives), and
every address it reports is the address of those bytes in this process, usable with ``ctypes``
(``(ctypes.c_uint8 * n).from_address(addr)``, ``ctypes.memmove``), as a pointer is in C++.

There is no DMA, wiring or bouncing (driverkit.md 8.2). Method names are snake_case versions of
Apple's; out-parameters become return values and a failing ``kern_return_t`` becomes a
:class:`~dkproto.errors.DkError` carrying that IOReturn. ``retain``/``release`` do nothing.

dkproto conveniences, not Apple's (each says so in its docstring): :meth:`IOMemoryMap.view`,
:meth:`IOMemoryDescriptor.read_bytes` / :meth:`~IOMemoryDescriptor.write_bytes`,
:meth:`IOBufferMemoryDescriptor.with_bytes`, :func:`view_address`. Examples should use
``create_mapping()`` + ``get_address()`` (or ``view()``) instead.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from dkproto.errors import BadArgumentError, DkError, NotPermittedError, StateError, UnsupportedError
from dkproto.ioreturn import IOReturn

__all__ = [
    "IOAddressSegment",
    "IOBufferMemoryDescriptor",
    "IODMACommand",
    "IODMACommandSpecification",
    "IOMemoryDescriptor",
    "IOMemoryMap",
    "kIODMACommandCompleteDMANoOptions",
    "kIODMACommandCreateNoOptions",
    "kIODMACommandPrepareForDMANoOptions",
    "kIOMemoryDirectionIn",
    "kIOMemoryDirectionInOut",
    "kIOMemoryDirectionNone",
    "kIOMemoryDirectionOut",
    "kIOMemoryDirectionOutIn",
    "kIOMemoryDisableCopyOnWrite",
    "kIOMemoryMapCacheModeCopyback",
    "kIOMemoryMapCacheModeDefault",
    "kIOMemoryMapCacheModeInhibit",
    "kIOMemoryMapCacheModeRealTime",
    "kIOMemoryMapCacheModeWriteThrough",
    "kIOMemoryMapFixedAddress",
    "kIOMemoryMapGuardedDefault",
    "kIOMemoryMapGuardedLarge",
    "kIOMemoryMapGuardedMask",
    "kIOMemoryMapGuardedNone",
    "kIOMemoryMapGuardedSmall",
    "kIOMemoryMapReadOnly",
    "view_address",
]

# IOMemoryDescriptor.iig: Create options
kIOMemoryDirectionNone = 0
kIOMemoryDirectionIn = 1
kIOMemoryDirectionOut = 2
kIOMemoryDirectionOutIn = 3
kIOMemoryDirectionInOut = 3
kIOMemoryDisableCopyOnWrite = 0x10

# IOMemoryDescriptor.iig: CreateMapping options
kIOMemoryMapFixedAddress = 0x1
kIOMemoryMapReadOnly = 0x2
kIOMemoryMapGuardedMask = 0x1C
kIOMemoryMapGuardedDefault = 0x0
kIOMemoryMapGuardedNone = 0x4
kIOMemoryMapGuardedSmall = 0x8
kIOMemoryMapGuardedLarge = 0xC
kIOMemoryMapCacheModeDefault = 0x0
kIOMemoryMapCacheModeInhibit = 0x100
kIOMemoryMapCacheModeCopyback = 0x200
kIOMemoryMapCacheModeWriteThrough = 0x400
kIOMemoryMapCacheModeRealTime = 0x800
_CACHE_MODES = (kIOMemoryMapCacheModeDefault, kIOMemoryMapCacheModeInhibit, kIOMemoryMapCacheModeCopyback,
                kIOMemoryMapCacheModeWriteThrough, kIOMemoryMapCacheModeRealTime)

# IODMACommand.iig
kIODMACommandCreateNoOptions = 0
kIODMACommandPrepareForDMANoOptions = 0
kIODMACommandCompleteDMANoOptions = 0

_U64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class IOAddressSegment:
    """``struct IOAddressSegment { uint64_t address; uint64_t length; }`` (IOMemoryDescriptor.iig).

    ``address`` is the real address of the bytes in this process.
    """

    address: int
    length: int


def view_address(address: int, length: int, *, readonly: bool = False) -> memoryview:
    """A ``memoryview`` on ``length`` bytes at ``address`` (what a C++ cast to ``uint8_t *`` gives).

    dkproto convenience, not Apple's. The address must come from a live descriptor or mapping
    (``get_address_range()``, ``IOMemoryMap.get_address()``): like a pointer, it is not checked.
    """
    if length < 0 or not address and length:
        raise BadArgumentError(f"view_address: no {length} bytes at 0x{address:x}")
    view = memoryview((ctypes.c_uint8 * length).from_address(address)).cast("B")
    return view.toreadonly() if readonly else view


class IOMemoryDescriptor:
    """``IOMemoryDescriptor`` (IOMemoryDescriptor.iig): memory handed to the dext (by an app, the
    kernel or another descriptor).

    Args:
        data: the bytes it describes; a ``bytearray`` is shared (and pinned: it cannot be resized
            while the descriptor lives, as described memory does not move), anything else is copied.
        options: a ``kIOMemoryDirection*`` value.
        read_only: mappings refuse writes (memory the dext may only read: an app's
            ``structureInputDescriptor``, a ``kIOUserClientMemoryReadOnly`` mapping).
    """

    __slots__ = ("_buf", "_length", "_pin", "options", "read_only")

    def __init__(self, data: bytes | bytearray | memoryview = b"", *, options: int = kIOMemoryDirectionInOut,
                 read_only: bool = False) -> None:
        raw = data if isinstance(data, bytearray) else bytearray(data)
        self._adopt(raw, 0, len(raw))
        self._length = len(raw)
        self.options = options
        self.read_only = read_only

    def _adopt(self, raw: bytearray, offset: int, size: int) -> None:
        # The ctypes array exports raw's buffer: raw cannot be resized (so its address cannot move)
        # while this descriptor holds it, and ctypes.addressof gives the address of byte `offset`.
        self._pin = (ctypes.c_char * size).from_buffer(raw, offset)
        self._buf = memoryview(raw)[offset:offset + size]

    def _address(self) -> int:
        return ctypes.addressof(self._pin)

    def get_length(self) -> int:
        """``GetLength(uint64_t *returnLength)``: the described length in bytes."""
        return self._length

    def get_address_range(self) -> IOAddressSegment:
        """The address and length of the described bytes.

        Apple declares ``GetAddressRange(IOAddressSegment *range)`` on ``IOBufferMemoryDescriptor``
        only (IOBufferMemoryDescriptor.iig); dkproto also answers it for any descriptor, since
        every one is in this process. A dext maps other descriptors with :meth:`create_mapping`.
        """
        return IOAddressSegment(address=self._address(), length=self._length)

    def create_mapping(self, options: int = 0, address: int = 0, offset: int = 0, length: int = 0,
                       alignment: int = 0) -> IOMemoryMap:
        """``CreateMapping(options, address, offset, length, alignment, IOMemoryMap **map)``.

        As xnu's ``IOMemoryDescriptor::CreateMapping_Impl`` and ``createMappingInTask``: ``length``
        0 maps the descriptor's whole length (so a nonzero ``offset`` with length 0 fails); the
        range must lie inside the descriptor and ``offset`` before its end (``doMap``), else the
        call fails with kIOReturnError. ``kIOMemoryMapReadOnly`` (or memory the dext may only
        read) gives a read-only map; an unknown cache mode is kIOReturnBadArgument.

        Raises:
            BadArgumentError: a range outside the descriptor (kIOReturnError, as xnu returns), an
                unknown cache mode (kIOReturnBadArgument), or a nonzero ``alignment`` (the header:
                "Only zero for no alignment is supported"; xnu ignores it, dkproto refuses it).
            UnsupportedError: ``kIOMemoryMapFixedAddress`` (dkproto cannot map at a chosen address).
        """
        if options & kIOMemoryMapFixedAddress:
            raise UnsupportedError("CreateMapping: kIOMemoryMapFixedAddress cannot be emulated in-process")
        if (options & 0xFF00) not in _CACHE_MODES:
            raise BadArgumentError(f"CreateMapping: unknown cache mode 0x{options & 0xFF00:x}")
        if alignment:
            raise BadArgumentError(f"CreateMapping: alignment {alignment}: only zero is supported "
                                   "(IOMemoryDescriptor.iig)")
        if length == 0:
            length = self._length
        if not (0 <= offset < self._length and 0 < length and offset + length <= self._length):
            raise BadArgumentError(f"CreateMapping: offset {offset} + length {length} outside the descriptor's "
                                   f"{self._length} bytes", ioreturn=IOReturn.kIOReturnError)
        return IOMemoryMap(self, offset, length, read_only=self.read_only or bool(options & kIOMemoryMapReadOnly))

    # dkproto conveniences (no DriverKit counterpart: in C++ you map and use the pointer)
    def read_bytes(self, offset: int = 0, length: int | None = None) -> bytes:
        """A copy of ``length`` bytes from ``offset`` (to the end by default).

        dkproto convenience, not Apple's: a dext maps the descriptor (``create_mapping``) and reads
        through the address.
        """
        end = self._length if length is None else min(self._length, offset + length)
        return bytes(self._buf[offset:end])

    def write_bytes(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Copy ``data`` in at ``offset``; it must fit in the described length.

        dkproto convenience, not Apple's (a dext writes through a mapping's address).
        """
        if self.read_only:
            raise NotPermittedError("memory descriptor is read-only (kIOUserClientMemoryReadOnly)")
        if offset < 0 or offset + len(data) > self._length:
            raise BadArgumentError(f"write of {len(data)} bytes at {offset} exceeds {self._length}-byte descriptor")
        self._buf[offset:offset + len(data)] = data

    def retain(self) -> None:
        """``retain()``: a no-op (Python is garbage collected)."""

    def release(self) -> None:
        """``release()``: a no-op."""

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"{type(self).__name__}(length={self._length})"


class IOBufferMemoryDescriptor(IOMemoryDescriptor):
    """``IOBufferMemoryDescriptor`` (IOBufferMemoryDescriptor.iig): memory the dext allocates.

    Allocate it once with :meth:`create` (usually in ``Start``), set the length of each transfer
    with :meth:`set_length`, reach the bytes with :meth:`get_address_range` or
    :meth:`create_mapping`.
    """

    __slots__ = ("_capacity",)

    def __init__(self, capacity: int, *, options: int = kIOMemoryDirectionInOut, alignment: int = 0) -> None:
        if capacity < 0:
            raise BadArgumentError(f"IOBufferMemoryDescriptor: negative capacity {capacity}")
        # Over-allocate by `alignment` bytes and start at the first aligned address inside.
        raw = bytearray(capacity + alignment)
        pad = 0
        if alignment > 1 and capacity:
            base = ctypes.addressof((ctypes.c_char * len(raw)).from_buffer(raw))
            pad = -base % alignment
        self._adopt(raw, pad, capacity)
        self._length = capacity
        self.options = options
        self.read_only = False
        self._capacity = capacity

    @classmethod
    def create(cls, options: int, capacity: int, alignment: int = 0) -> IOBufferMemoryDescriptor:
        """``static Create(uint64_t options, uint64_t capacity, uint64_t alignment,
        IOBufferMemoryDescriptor **memory)``.

        As xnu's ``IOBufferMemoryDescriptor::Create_Impl``: ``options`` may hold only the
        direction bits (``kIOMemoryDirectionIn``/``Out``/``InOut``), anything else is
        kIOReturnBadArgument; a zero capacity allocates nothing (kIOReturnNoMemory). The length
        starts at the capacity (``initWithPhysicalMask`` ends with ``setLength(_capacity)``; the
        .iig comment says zero, the kernel sets the capacity). ``alignment`` (0 = none) must be a
        power of two (dkproto's check: the kernel builds an alignment mask from it).

        Raises:
            BadArgumentError: other option bits, a negative capacity or a bad alignment.
            DkError: capacity 0 (kIOReturnNoMemory).
        """
        if options & ~kIOMemoryDirectionOutIn:
            raise BadArgumentError(f"IOBufferMemoryDescriptor::Create: options 0x{options:x}: only the "
                                   "kIOMemoryDirection bits are defined")
        if capacity < 0 or capacity > _U64:
            raise BadArgumentError(f"IOBufferMemoryDescriptor::Create: capacity {capacity}")
        if alignment < 0 or (alignment & (alignment - 1)):
            raise BadArgumentError(f"IOBufferMemoryDescriptor::Create: alignment {alignment} is not a power of two")
        if capacity == 0:
            raise DkError("IOBufferMemoryDescriptor::Create: capacity 0 (nothing allocated)",
                          ioreturn=IOReturn.kIOReturnNoMemory)
        return cls(capacity, options=options, alignment=alignment)

    @classmethod
    def with_bytes(cls, data: bytes | bytearray | memoryview, options: int = kIOMemoryDirectionInOut
                   ) -> IOBufferMemoryDescriptor:
        """A new buffer holding a copy of ``data``.

        dkproto convenience, not Apple's (a dext allocates its buffers once with ``Create`` and
        copies into them through a mapping); it allocates on every call.
        """
        buf = cls(len(data), options=options)
        buf._buf[:] = data
        return buf

    def set_length(self, length: int) -> None:
        """``SetLength(uint64_t length)``: the valid length, at most the capacity.

        xnu's ``setLength`` silently ignores a length above the capacity (``SetLength_Impl``
        still returns success); dkproto raises instead, so the prototype does not go on with
        the old length.

        Raises:
            BadArgumentError: ``length`` outside ``0..capacity``.
        """
        if not 0 <= length <= self._capacity:
            raise BadArgumentError(f"SetLength({length}) outside capacity {self._capacity}")
        self._length = length

    def get_capacity(self) -> int:
        """The allocated capacity (``Create``'s ``capacity``; the kernel's ``getCapacity``)."""
        return self._capacity


class IOMemoryMap:
    """``IOMemoryMap`` (IOMemoryMap.iig): ``GetAddress``, ``GetLength``, ``GetOffset``."""

    __slots__ = ("_length", "_offset", "descriptor", "read_only")

    def __init__(self, descriptor: IOMemoryDescriptor, offset: int, length: int, *, read_only: bool = False
                 ) -> None:
        self.descriptor = descriptor
        self._offset = offset
        self._length = length
        self.read_only = read_only or descriptor.read_only

    def get_address(self) -> int:
        """``uint64_t GetAddress()``: the address of the mapped bytes in this process.

        Use it as C++ uses the pointer (``ctypes``), or :meth:`view` for a ``memoryview``.
        """
        return self.descriptor._address() + self._offset

    def get_length(self) -> int:
        """``uint64_t GetLength()``."""
        return self._length

    def get_offset(self) -> int:
        """``uint64_t GetOffset()``: the mapping's start in the descriptor."""
        return self._offset

    def view(self) -> memoryview:
        """The mapped bytes as a ``memoryview`` (read-only for a read-only map).

        dkproto convenience, not Apple's: what ``(uint8_t *)map->GetAddress()`` gives in C++.
        """
        v = self.descriptor._buf[self._offset:self._offset + self._length]
        return v.toreadonly() if self.read_only else v

    def retain(self) -> None:
        """``retain()``: a no-op."""

    def release(self) -> None:
        """``release()``: a no-op (the mapping lives as long as it is referenced)."""

    def __repr__(self) -> str:
        return f"IOMemoryMap(offset={self._offset}, length={self._length}{', read-only' if self.read_only else ''})"


@dataclass(slots=True)
class IODMACommandSpecification:
    """``struct IODMACommandSpecification { options; maxAddressBits; _resv[16]; }`` (IODMACommand.iig)."""

    options: int = 0
    maxAddressBits: int = 64


class IODMACommand:
    """``IODMACommand`` (IODMACommand.iig): a descriptor prepared for device DMA.

    dkproto has no IOMMU: ``prepare_for_dma`` returns the descriptor's own address range as the
    single segment (so ``maxAddressBits`` is not enforced), and ``complete_dma`` ends the
    preparation. The state rules are Apple's: one preparation at a time, ``CompleteDMA`` only
    after ``PrepareForDMA``.
    """

    def __init__(self, device: object, specification: IODMACommandSpecification) -> None:
        self.device = device
        self.specification = specification
        self._prepared: tuple[int, int, IOMemoryDescriptor] | None = None

    @classmethod
    def create(cls, device: object, options: int, specification: IODMACommandSpecification) -> IODMACommand:
        """``static Create(IOService *device, uint64_t options, const IODMACommandSpecification *spec,
        IODMACommand **command)``: options other than ``kIODMACommandCreateNoOptions`` are
        kIOReturnBadArgument (xnu ``IODMACommand::Create_Impl``)."""
        if options & ~kIODMACommandCreateNoOptions:
            raise BadArgumentError(f"IODMACommand::Create: options 0x{options:x}: none are defined")
        if device is None or specification is None:
            raise BadArgumentError("IODMACommand::Create: device and specification are required")
        return cls(device, specification)

    def prepare_for_dma(self, options: int, memory: IOMemoryDescriptor, offset: int = 0, length: int = 0
                        ) -> tuple[int, list[IOAddressSegment]]:
        """``PrepareForDMA(options, memory, offset, length, uint64_t *flags, uint32_t *segmentsCount,
        IOAddressSegment segments[32])``: returns ``(flags, segments)``; ``flags`` holds the
        memory's direction (kIOMemoryDirectionOut: readable, In: writable). ``length`` 0 = to
        the end.

        Raises:
            StateError: already prepared (call ``complete_dma`` first).
            BadArgumentError: a range outside the descriptor.
        """
        if self._prepared is not None:
            raise StateError("IODMACommand::PrepareForDMA: already prepared (CompleteDMA first)",
                             ioreturn=IOReturn.kIOReturnNotReady)
        total = memory.get_length()
        if length == 0:
            length = total - offset
        if offset < 0 or length <= 0 or offset + length > total:
            raise BadArgumentError(f"IODMACommand::PrepareForDMA: offset {offset} length {length} outside "
                                   f"{total} bytes")
        self._prepared = (offset, length, memory)
        seg = IOAddressSegment(memory._address() + offset, length)
        return memory.options & kIOMemoryDirectionOutIn, [seg]

    def complete_dma(self, options: int = kIODMACommandCompleteDMANoOptions) -> None:
        """``CompleteDMA(options)``: end the preparation.

        Raises:
            StateError: nothing is prepared.
        """
        if self._prepared is None:
            raise StateError("IODMACommand::CompleteDMA: not prepared", ioreturn=IOReturn.kIOReturnNotReady)
        self._prepared = None

    def get_preparation(self) -> tuple[int, int, IOMemoryDescriptor]:
        """``GetPreparation(uint64_t *offset, uint64_t *length, IOMemoryDescriptor **memory)``.

        Raises:
            StateError: nothing is prepared.
        """
        if self._prepared is None:
            raise StateError("IODMACommand::GetPreparation: not prepared", ioreturn=IOReturn.kIOReturnNotReady)
        return self._prepared
