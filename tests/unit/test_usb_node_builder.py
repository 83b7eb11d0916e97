"""The walker's node builders (one generated function per schema that parses a descriptor and
makes its Node in one call) give exactly what the general path gives, or step aside.

Checked three ways: every corpus descriptor, built alone, equals the Node of the reference path
(Construct's interpreted parser); hostile slices (short, long, a wrong bLength, random bytes)
either give that same Node or None, and never raise; and whole parses of the corpus and of
damaged copies of it are identical, value for value and complaint for complaint, with the
builders switched off (every descriptor then takes the general path).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from usb_corpus import SLUGS, corpus_bytes

from dkproto.schema import _fields
from dkproto.schema._fields import Finish, fast_builder
from dkproto.usb import choice, parse
from dkproto.usb.model import Node
from dkproto.usb.tree import clear_choice_cache

SETS = {slug: corpus_bytes(slug) for slug in SLUGS}


def _value(v: Any) -> Any:
    """A value with its type, containers walked (Container, ListContainer, bytes...)."""
    if isinstance(v, dict):
        return type(v).__name__, [(k, _value(x)) for k, x in v.items()]
    if isinstance(v, list):
        return type(v).__name__, [_value(x) for x in v]
    return type(v).__name__, repr(v)


def _node(n: Node) -> tuple[Any, ...]:
    return (n.offset, n.raw, n.schema, None if n.fields is None else _value(n.fields), n.extra, n.role,
            n.error, n.context, n.blob, n.string_id, [_node(c) for c in n.children])


def _set(ds: Any) -> tuple[Any, ...]:
    def errors(found: list[Any]) -> list[tuple[Any, ...]]:
        return [(str(e), e.offset, e.rule, e.descriptor, getattr(e, "blob", None)) for e in found]

    return ([_node(n) for n in ds.iter_roots()], [_node(n) for n in ds.bos_roots], errors(ds.errors),
            errors(ds.warnings))


def _reference(schema: Any, raw: bytes, offset: int, ctx: Any, blob: str, role: str) -> Node | None:
    """The node the builder must give for a slice it takes: Construct's interpreted parse."""
    fields, _ = _fields.fast_parser(schema.struct)(raw)  # generated code, else Construct
    reference = schema.struct.parse(raw)
    assert {k: v for k, v in fields.items() if not k.startswith("_")} == \
        {k: v for k, v in reference.items() if not k.startswith("_")}
    return Node(offset, raw, schema, fields, b"", None, role, None, ctx, blob)


def _corpus_nodes() -> Iterator[Node]:
    for data, bos in SETS.values():
        yield from parse(data, bos or None).nodes()


def test_every_corpus_descriptor_is_built_and_equals_the_reference() -> None:
    built = 0
    for node in _corpus_nodes():
        if node.schema is None or node.blob == "string":
            continue
        build = choice.choice_for(node.schema).build
        assert build is not choice.no_node, node.schema.key  # every corpus layout has a builder
        got = build(node.raw, node.offset, node.context, node.blob, node.role)
        if node.extra or node.trailing:  # bytes past the layout: the general path's business
            assert got is None
            continue
        assert got is not None, node
        assert _node(got) == _node(_reference(node.schema, node.raw, node.offset, node.context,
                                              node.blob, node.role))
        assert type(got.fields) is type(node.fields) and list(got.fields) == list(node.fields)
        built += 1
    assert built > 800


def test_hostile_slices_give_the_reference_node_or_none() -> None:
    rng = random.Random(16)
    schemas = {id(n.schema): (n.schema, n.raw, n.context) for n in _corpus_nodes()
               if n.schema is not None and n.blob != "string"}
    for schema, raw, ctx in schemas.values():
        build = choice.choice_for(schema).build
        variants = [raw[:k] for k in range(len(raw))]  # every truncation
        variants += [raw + b"\x00", raw + bytes(7), bytes([len(raw) + 1]) + raw[1:], bytes([0]) + raw[1:]]
        for _ in range(40):
            mutated = bytearray(raw)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            variants.append(bytes(mutated))
        for v in variants:
            got = build(v, 5, ctx, "descriptors", "descriptor")  # never raises
            if got is None:
                continue
            # taken: only when bLength is the slice's length and the layout uses every byte
            assert v and v[0] == len(v)
            assert _node(got) == _node(_reference(schema, v, 5, ctx, "descriptors", "descriptor"))


@pytest.fixture
def no_builders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every choice made while active has no node builder (the general path for everything)."""
    clear_choice_cache()
    monkeypatch.setattr(choice, "_CHOICES", {})
    monkeypatch.setattr(choice, "node_builder", lambda schema: None)
    yield
    clear_choice_cache()


def _damaged(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(out[:rng.randrange(1, len(out))])
    if kind == 1:  # a bLength off by a little, or broken
        pos, starts = 0, []
        while pos < len(out) and out[pos] >= 2:
            starts.append(pos)
            pos += out[pos]
        at = rng.choice(starts or [0])
        out[at] = rng.choice([0, 1, 2, 3, out[at] - 1, out[at] + 1, 255]) & 0xFF
        return bytes(out)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] = rng.choice([0, 1, 2, 4, 5, 9, 0x0B, 0x21, 0x24, 0x25, 0x30,
                                                   rng.randrange(256)])
    return bytes(out)


def _inputs() -> list[tuple[bytes, bytes]]:
    rng = random.Random(1616)
    out = list(SETS.values())
    for data, bos in SETS.values():
        out += [(_damaged(rng, data), bos) for _ in range(12)]
    return out


def test_parse_is_the_same_with_and_without_builders(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = _inputs()
    clear_choice_cache()
    with_builders = [_set(parse(d, b or None)) for d, b in inputs]
    with_builders_warm = [_set(parse(d, b or None)) for d, b in inputs]
    assert with_builders == with_builders_warm
    clear_choice_cache()
    monkeypatch.setattr(choice, "_CHOICES", {})
    monkeypatch.setattr(choice, "node_builder", lambda schema: None)
    try:
        general = [_set(parse(d, b or None)) for d, b in inputs]
    finally:
        clear_choice_cache()
    assert len(general) == len(with_builders)
    for i, (a, b) in enumerate(zip(with_builders, general)):
        assert a == b, inputs[i]


def test_builder_sets_every_node_slot() -> None:
    # the generated ending assigns each slot once; a new Node slot must be added there too
    assert tuple(sorted(Node.__slots__)) == choice._NODE_SLOTS
    from dkproto.schema.usb import INTERFACE

    raw = bytes.fromhex("090400000103010200")
    node = choice.node_builder(INTERFACE)(raw, 3, None, "descriptors", "interface")  # type: ignore[misc]
    for name in Node.__slots__:
        getattr(node, name)  # AttributeError if one were left unset


def test_fast_builder_ending_and_refusals() -> None:
    from construct import Array, Bytes, GreedyBytes, Int8ul, Struct, this

    def lines(container: str, greedy: dict[str, str]) -> list[str]:
        return [f"return ({container}, pos, n, sorted(greedy), tag)".replace("greedy", repr(greedy))]

    finish = Finish(("tag",), lines)
    s = Struct("a" / Int8ul, "n" / Int8ul, "xs" / Array(this.n, Int8ul), "rest" / GreedyBytes)
    fn = fast_builder(s, finish, "test")
    assert fn is not None
    fields, pos, n, greedy, tag = fn(b"\x01\x02\x0a\x0b\xff", "T")
    assert dict(fields) == {"a": 1, "n": 2, "xs": [10, 11], "rest": b"\xff"} and (pos, n) == (5, 5)
    assert greedy == ["rest"] and tag == "T"
    assert fn(b"\x01\x05\x0a", "T") is None  # the array runs past the bytes: None, no exception
    assert fn(b"\x01", "T") is None
    # arrays of structs: each item parsed alone (its parent is not there: reading it refuses)
    nested = Struct("n" / Int8ul, "items" / Array(this.n, Struct("x" / Int8ul, "y" / Int8ul)))
    fn = fast_builder(nested, finish)
    assert fn is not None
    assert fn(b"\x02\x01\x02\x03\x04", "T")[0] == nested.parse(b"\x02\x01\x02\x03\x04")
    reads_parent = Struct("n" / Int8ul, "items" / Array(this.n, Struct("x" / Bytes(this._.n))))
    fn = fast_builder(reads_parent, finish)
    assert fn is not None and fn(b"\x01\x07", "T") is None
    fields, used = _fields.fast_parser(reads_parent)(b"\x01\x07")  # Construct's answer
    assert fields["items"][0]["x"] == b"\x07" and used == 2
    # a layout that needs a container while parsing (a plain function of it) has no builder
    assert fast_builder(Struct("n" / Int8ul, "b" / Bytes(lambda ctx: ctx.n)), finish) is None
