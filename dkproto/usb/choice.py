"""The walker's cache of schema *choices* (never of decoded values).

Asking :func:`dkproto.schema.registry.lookup` for every descriptor costs more than decoding it,
and the answer depends only on the descriptor type, the first
:data:`~dkproto.schema.registry.SELECTOR_PREFIX` bytes and the :class:`Context`. So contexts
are interned as :class:`Place`\\ s, and each place remembers, per prefix (``bLength``
included), the :class:`Choice` made there: the schema, its fast parser and the sizes the walker
checks. Types whose selectors read further (:data:`~dkproto.schema.registry.UNCACHED_TYPES`)
are never cached. Registering a selector changes :func:`dkproto.schema.registry.generation`,
which drops every place (:func:`fresh_places`); :func:`clear_choice_cache` drops them by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from construct import Struct

from dkproto.schema._fields import Finish, fast_builder, fast_parser, fixed_size
from dkproto.schema.registry import Context, Schema
from dkproto.schema.registry import generation as registry_generation
from dkproto.usb.model import Node

__all__ = [
    "RELEASE_FIELDS",
    "UNKNOWN",
    "Builder",
    "Choice",
    "Place",
    "choice_for",
    "clear_choice_cache",
    "endpoint_place",
    "fresh_places",
    "no_node",
    "node_builder",
    "place",
    "version_place",
]

#: Standard descriptors whose size the spec fixes: bytes past it are reported.
_STRICT_SIZE = {
    "device": 18,
    "configuration": 9,
    "other_speed_configuration": 9,
    "interface": 9,
    "interface_association": 8,
    "device_qualifier": 10,
    "ss_endpoint_companion": 6,
    "ssp_isoc_endpoint_companion": 8,
    "bos": 5,
    "usb20_extension": 7,
    "superspeed_usb": 10,
    "container_id": 20,
}

#: Class-header fields that give the class spec release (``Context.class_version``).
_CLASS_BCD = ("bcdADC", "bcdUVC", "bcdCDC", "bcdHID", "bcdMSC", "bcdDFUVersion", "bcdVersion")

#: How many places are kept before the table starts over (places in use keep working: each
#: carries its own caches).
_MAX_PLACES = 4096


class Place:
    """A shared, interned :class:`Context` plus what the walker learnt about it.

    ``choices`` caches the :class:`Choice` for the descriptors met at this place, keyed by their
    first :data:`~dkproto.schema.registry.SELECTOR_PREFIX` bytes (``bLength`` included, so the
    length is part of the key). ``endpoints`` and ``versions`` cache the derived places
    (endpoint address, class version).
    """

    __slots__ = ("choices", "ctx", "endpoints", "values", "versions")

    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = values
        self.ctx = Context(*values)
        self.choices: dict[bytes, Choice] = {}
        self.endpoints: dict[Any, Place] = {}
        self.versions: dict[Any, Place] = {}


#: A node builder: ``(raw, offset, ctx, blob, role) -> Node | None`` (see :func:`node_builder`).
Builder = Callable[[bytes, int, Context, str, str], "Node | None"]


class Choice:
    """What the walker needs of one schema, worked out once per schema.

    Attributes:
        schema: the schema, or None for "no schema: kept as raw bytes" (:data:`UNKNOWN`).
        parse: its fast parser, ``raw -> (fields, bytes used)``.
        build: its node builder (see :func:`node_builder`); :func:`no_node` when the schema's
            layout has no generated builder (and for :data:`UNKNOWN`).
        strict_size: the size the spec fixes for a standard descriptor (bytes past it are an
            error), or None.
        min_size: the struct's fixed size (fewer bytes cannot decode), or None when variable.
        release: the class-release field (``bcdADC``, ``bcdUVC``...) it carries, or None.
        layout_size: for a class struct ending in an ``extra`` tail and fixed before it, that
            size (bytes past it are worth a warning); else 255 (never exceeded).
        has_tail: whether the struct ends with the ``extra`` tail.
    """

    __slots__ = ("build", "has_tail", "layout_size", "min_size", "parse", "release", "schema", "strict_size")

    def __init__(self, schema: Schema | None, parse: Callable[[bytes], tuple[Any, int]] | None = None,
                 strict_size: int | None = None, min_size: int | None = None, release: str | None = None,
                 layout_size: int = 255, has_tail: bool = False,
                 build: Builder | None = None) -> None:
        self.schema = schema
        self.parse = parse
        self.build = build or no_node
        self.strict_size = strict_size
        self.min_size = min_size
        self.release = release
        self.layout_size = layout_size
        self.has_tail = has_tail


def no_node(raw: bytes, offset: int, ctx: Context, blob: str, role: str) -> Node | None:
    """The node builder of a choice that has none: always the walker's general path."""
    return None


def _node_lines(container: str, greedy: dict[str, str]) -> list[str]:
    """The ending of a node builder: the plain case only (see :func:`node_builder`)."""
    # bytes past the layout (the walker's tail rules), or a slice that is not exactly bLength
    # long (the broken rest of a blob): the general path
    lines = ["if pos != n or raw[0] != n: return None"]
    if "extra" in greedy:  # a class layout's own tail caught bytes: the walker warns
        lines.append(f"if {greedy['extra']}: return None")
    # the Node made without a call to its __init__: every slot set here, in one place
    lines += [
        "node = new(Node)",
        "node.offset = offset",
        "node.raw = raw",
        "node.schema = schema",
        f"node.fields = {container}",
        "node.extra = b''",
        "node.children = []",
        "node.role = role",
        "node.error = None",
        "node.context = ctx",
        "node.blob = blob",
        "node.string_id = None",
        "return node",
    ]
    return lines


def node_builder(schema: Schema) -> Builder | None:
    """A generated ``(raw, offset, ctx, blob, role) -> Node | None`` for ``schema``: the walker's
    hot path, parsing and making the :class:`Node` in one call.

    It returns the node only in the plain case: ``raw`` is exactly ``bLength`` bytes, the fields
    parse (generated code, the same as :func:`~dkproto.schema._fields.fast_parser`'s), they use
    every byte and a class layout's ``extra`` tail is empty. Anything else (short or odd bytes, bytes left over, a tail
    to warn about) returns None and the walker takes its general path, which gives the
    reference answer (Construct's parser when the generated code refuses the bytes). None when
    the layout has no generated parser with local variables.
    """
    if Node.__slots__ != _NODE_SLOTS:  # the ending below sets every slot of Node
        return None
    finish = Finish(("offset", "ctx", "blob", "role"), _node_lines,
                    {"new": object.__new__, "Node": Node, "schema": schema})
    return fast_builder(schema.struct, finish, schema.key)


#: Node's slots as :func:`_node_lines` sets them.
_NODE_SLOTS = ("blob", "children", "context", "error", "extra", "fields", "offset", "raw", "role", "schema",
               "string_id")


#: The cached choice "no schema": kept as raw bytes.
UNKNOWN = Choice(None)

_PLACES: dict[tuple[Any, ...], Place] = {}
_PLACES_GENERATION = [-1]  # the registry generation the places' choices were made with
_CHOICES: dict[int, Choice] = {}  # by id(schema)
#: ``Choice.release`` of each schema the walker has used that has one, by ``id(schema)`` (the
#: walker's hot path reads it without a call)
RELEASE_FIELDS: dict[int, str] = {}


def fresh_places() -> None:
    """Forget every cached choice when a selector was registered since they were made."""
    gen = registry_generation()
    if gen != _PLACES_GENERATION[0]:
        _PLACES.clear()
        _PLACES_GENERATION[0] = gen


def place(*values: Any) -> Place:
    """The interned place for the Context values in field order (Context is frozen)."""
    found = _PLACES.get(values)
    if found is None:
        if len(_PLACES) > _MAX_PLACES:
            _PLACES.clear()
        found = _PLACES[values] = Place(values)
    return found


def clear_choice_cache() -> None:
    """Forget every cached schema choice (the next walk asks the selectors again)."""
    _PLACES.clear()


def _with(at: Place, parent: str | None = None, endpoint_address: Any = None,
          class_version: Any = None) -> Place:
    """``at`` with its parent / endpoint address / class version replaced (interned)."""
    v = at.values
    return place(
        parent if parent is not None else v[0], v[1], v[2], v[3], v[4], v[5], v[6],
        endpoint_address if endpoint_address is not None else v[7], v[8], v[9],
        class_version if class_version is not None else v[10],
    )


def endpoint_place(at: Place, address: Any) -> Place:
    """The place below endpoint ``address`` of the interface at ``at`` (cached on ``at``)."""
    found = at.endpoints.get(address)
    if found is None:
        found = at.endpoints[address] = _with(at, parent="endpoint", endpoint_address=address)
    return found


def version_place(at: Place, version: Any) -> Place:
    """``at`` once a class header gave the class release ``version`` (cached on ``at``)."""
    found = at.versions.get(version)
    if found is None:
        found = at.versions[version] = _with(at, class_version=version)
    return found


def _layout_size(schema: Schema) -> int:
    """For a struct that ends with an ``extra`` GreedyBytes tail (class schemas) and is fixed
    before it: that size (bytes past it are worth a warning); else 255 (never exceeded)."""
    subcons = list(getattr(schema.struct, "subcons", ()))
    if not subcons or getattr(subcons[-1], "name", None) != "extra":
        return 255
    try:
        return int(Struct(*subcons[:-1]).sizeof())
    except Exception:  # noqa: BLE001 - SizeofError: a variable layout (arrays, optional fields)
        return 255


def choice_for(schema: Schema) -> Choice:
    """The :class:`Choice` for ``schema`` (made once per schema)."""
    found = _CHOICES.get(id(schema))
    if found is None:
        subcons = list(getattr(schema.struct, "subcons", ()))
        names = {getattr(sc, "name", None) for sc in subcons}
        tail = bool(subcons) and getattr(subcons[-1], "name", None) == "extra"
        release = next((n for n in _CLASS_BCD if n in names), None)
        found = _CHOICES[id(schema)] = Choice(
            schema, fast_parser(schema.struct), _STRICT_SIZE.get(schema.key), fixed_size(schema.struct),
            release, _layout_size(schema), tail, node_builder(schema))
        if release is not None:
            RELEASE_FIELDS[id(schema)] = release
    return found
