"""The generated fast parsers agree with Construct's own parser on every corpus descriptor."""

from __future__ import annotations

import pytest
from usb_corpus import SLUGS, corpus_bytes

from dkproto.schema._fields import _generate, _plan, fast_parser
from dkproto.usb import parse


def _plain(obj):
    return {k: v for k, v in obj.items() if not k.startswith("_")}


@pytest.mark.parametrize("slug", SLUGS)
def test_fast_parse_equals_construct(slug: str) -> None:
    data, bos = corpus_bytes(slug)
    ds = parse(data, bos or None)
    for node in ds.nodes():
        if node.schema is None:
            continue
        fast, used = fast_parser(node.schema.struct)(node.raw)
        reference = node.schema.struct.parse(node.raw)
        assert _plain(fast) == _plain(reference), (slug, node)
        assert used == len(node.raw) - len(node.extra)
        # and the generated code (not a fallback) handled it
        generated = _generate(_plan(node.schema.struct))
        assert _plain(generated(node.raw)[0]) == _plain(reference)


def test_fast_parse_refuses_what_construct_refuses() -> None:
    from dkproto.schema.registry import Context, lookup

    # UVC camera terminal whose bControlSize (3) runs past bLength: Construct's compiled code
    # would read 1 byte and accept it; the fast path must refuse like the interpreted parser
    raw = bytes.fromhex("10240201010200000000000000000302")
    schema = lookup(0x24, raw, Context(parent="interface", interface_class=0x0E, interface_subclass=1))
    assert schema is not None
    with pytest.raises(Exception, match="stream read less than specified amount"):
        fast_parser(schema.struct)(raw)
