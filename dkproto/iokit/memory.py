"""Memory descriptors: ``IOMemoryDescriptor``, ``IOBufferMemoryDescriptor`` and ``IOMemoryMap``.

DriverKit hands buffers between the dext, the kernel and apps as memory descriptors
(driverkit.md 4.7). dkproto has no DMA, wiring or bouncing: a descriptor wraps a
``bytearray`` and a mapping is a ``memoryview`` on it (driverkit.md 8.2). Method names are
snake_case versions of Apple's; ``retain``/``release`` are accepted and do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from dkproto.errors import BadArgumentError, NotPermittedError

__all__ = [
    "IOAddressSegment",
    "IOBufferMemoryDescriptor",
    "IOMemoryDescriptor",
    "IOMemoryMap",
    "kIOMemoryDirectionIn",
    "kIOMemoryDirectionInOut",
    "kIOMemoryDirectionNone",
    "kIOMemoryDirectionOut",
    "kIOMemoryDirectionOutIn",
    "kIOMemoryDisableCopyOnWrite",
]

kIOMemoryDirectionNone = 0
kIOMemoryDirectionIn = 1
kIOMemoryDirectionOut = 2
kIOMemoryDirectionOutIn = 3
kIOMemoryDirectionInOut = 3
kIOMemoryDisableCopyOnWrite = 0x10


@dataclass(frozen=True, slots=True)
class IOAddressSegment:
    """``IOAddressSegment``: ``address`` (an opaque id here) and ``length``."""

    address: int
    length: int


class IOMemoryDescriptor:
    """``IOMemoryDescriptor`` over a Python buffer.

    Args:
        data: the bytes it describes; a ``bytearray`` is shared, ``bytes`` are copied.
        options: a ``kIOMemoryDirection*`` value.
        read_only: the mapping refuses writes (``kIOUserClientMemoryReadOnly`` mappings).
    """

    __slots__ = ("_buf", "_length", "options", "read_only")

    def __init__(self, data: bytes | bytearray | memoryview = b"", *, options: int = kIOMemoryDirectionInOut,
                 read_only: bool = False) -> None:
        self._buf = data if isinstance(data, bytearray) else bytearray(data)
        self._length = len(self._buf)
        self.options = options
        self.read_only = read_only

    def get_length(self) -> int:
        """``GetLength(uint64_t *length)``: the described length in bytes."""
        return self._length

    def get_address_range(self) -> IOAddressSegment:
        """``GetAddressRange(IOAddressSegment *)``: an opaque address and the length."""
        return IOAddressSegment(address=id(self._buf), length=self._length)

    def create_mapping(self, options: int = 0, address: int = 0, offset: int = 0, length: int = 0,
                       alignment: int = 0) -> IOMemoryMap:
        """``CreateMapping(options, address, offset, length, alignment, &map)``; length 0 means to the end."""
        if offset < 0 or offset > self._length:
            raise BadArgumentError(f"CreateMapping: offset {offset} outside the descriptor's {self._length} bytes")
        if length == 0:
            length = self._length - offset
        if offset + length > self._length:
            raise BadArgumentError(f"CreateMapping: offset {offset} + length {length} > {self._length}")
        return IOMemoryMap(self, offset, length)

    # Python helpers (no DriverKit counterpart: in C++ you map and use the pointer).
    def read_bytes(self, offset: int = 0, length: int | None = None) -> bytes:
        """A copy of ``length`` bytes from ``offset`` (to the end by default)."""
        end = self._length if length is None else min(self._length, offset + length)
        return bytes(self._buf[offset:end])

    def write_bytes(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Copy ``data`` in at ``offset``; it must fit in the described length."""
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
    """``IOBufferMemoryDescriptor``: an allocated buffer with a capacity and a settable length."""

    __slots__ = ("_capacity",)

    def __init__(self, capacity: int, *, options: int = kIOMemoryDirectionInOut) -> None:
        super().__init__(bytearray(capacity), options=options)
        self._capacity = capacity

    @classmethod
    def create(cls, options: int, capacity: int, alignment: int = 0) -> IOBufferMemoryDescriptor:
        """``IOBufferMemoryDescriptor::Create(options, capacity, alignment, &buf)``; length = capacity."""
        if capacity < 0:
            raise BadArgumentError(f"IOBufferMemoryDescriptor::Create: negative capacity {capacity}")
        return cls(capacity, options=options)

    @classmethod
    def with_bytes(cls, data: bytes | bytearray | memoryview, options: int = kIOMemoryDirectionInOut
                   ) -> IOBufferMemoryDescriptor:
        """A buffer holding a copy of ``data`` (Create, then copy through a mapping)."""
        buf = cls(len(data), options=options)
        buf._buf[:] = data
        return buf

    def set_length(self, length: int) -> None:
        """``SetLength(uint64_t length)``: must not exceed the capacity."""
        if not 0 <= length <= self._capacity:
            raise BadArgumentError(f"SetLength({length}) outside capacity {self._capacity}")
        self._length = length

    def get_capacity(self) -> int:
        """The allocated capacity (``Create``'s ``capacity``)."""
        return self._capacity


class IOMemoryMap:
    """``IOMemoryMap``: ``get_address()`` gives a ``memoryview`` where C++ gets a pointer."""

    __slots__ = ("_length", "_offset", "descriptor")

    def __init__(self, descriptor: IOMemoryDescriptor, offset: int, length: int) -> None:
        self.descriptor = descriptor
        self._offset = offset
        self._length = length

    def get_address(self) -> memoryview:
        """``GetAddress()``: a view on the mapped bytes (read-only if the descriptor is)."""
        view = memoryview(self.descriptor._buf)[self._offset:self._offset + self._length]
        return view.toreadonly() if self.descriptor.read_only else view

    def get_length(self) -> int:
        """``GetLength()``."""
        return self._length

    def get_offset(self) -> int:
        """``GetOffset()``."""
        return self._offset
