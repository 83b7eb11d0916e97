"""The walker's cache of schema choices gives the registry's own answer, every time.

The walker remembers, per context, which schema the selectors chose for a descriptor's first
``SELECTOR_PREFIX`` bytes (``dkproto.schema.registry``). These tests warm that cache on the whole
corpus, then change the bytes *past* the prefix of every descriptor and check that each node's
schema is still exactly what :func:`~dkproto.schema.registry.lookup` says for its bytes.
"""

from __future__ import annotations

import pytest
from usb_corpus import SLUGS, corpus_bytes

from dkproto.schema.registry import SELECTOR_PREFIX, UNCACHED_TYPES, lookup
from dkproto.usb import parse


def _check(ds) -> int:
    checked = 0
    for node in ds.nodes():
        raw = node.raw
        if node.blob == "string" or len(raw) < 2 or raw[0] != len(raw) or node.context is None:
            continue
        expected = lookup(raw[1], raw, node.context)
        if node.decoded or node.schema is not None:
            assert node.schema is expected, (node, expected)
        elif expected is not None:
            # undecoded although a schema exists: only when the bytes do not fit it (said so)
            assert node.error is not None, node
        checked += 1
    return checked


@pytest.mark.parametrize("slug", SLUGS)
def test_cached_choice_is_lookup_after_changing_bytes_past_the_prefix(slug: str) -> None:
    data, bos = corpus_bytes(slug)
    for _ in range(2):  # cold, then warm
        assert _check(parse(data, bos or None)) > 0
    base = parse(data)
    for node in base.nodes():
        if node.blob != "descriptors" or node.bDescriptorType in UNCACHED_TYPES:
            continue
        for at in range(SELECTOR_PREFIX, min(len(node.raw), SELECTOR_PREFIX + 12)):
            mutated = bytearray(data)
            mutated[node.offset + at] ^= 0xFF
            _check(parse(bytes(mutated)))


def test_cache_dropped_when_a_selector_is_registered() -> None:
    from dkproto.schema import registry
    from dkproto.schema.usb import DEBUG

    data = corpus_bytes(SLUGS[0])[0]
    cfg_end = data[0] + (data[data[0] + 2] | data[data[0] + 3] << 8)
    odd = bytes([4, 0x42, 0, 0])  # type 0x42: nobody knows it
    total = cfg_end - data[0] + 4
    blob = data[:data[0] + 2] + bytes([total & 0xFF, total >> 8]) + data[data[0] + 4:cfg_end] + odd
    for _ in range(2):
        ds = parse(blob)
        [node] = [n for n in ds.nodes() if n.bDescriptorType == 0x42]
        assert not node.decoded  # and "unknown" is now the cached choice
    registry.register_standard(0x42, lambda _t, _raw, _ctx: DEBUG)
    try:
        ds = parse(blob)
        [node] = [n for n in ds.nodes() if n.bDescriptorType == 0x42]
        assert node.schema is DEBUG and node.decoded
    finally:
        del registry._STANDARD[0x42]
        registry._generation += 1
    [node] = [n for n in parse(blob).nodes() if n.bDescriptorType == 0x42]
    assert not node.decoded


def test_warm_cache_gives_what_a_cold_one_gives_on_random_damage() -> None:
    import random

    from dkproto.usb.tree import clear_choice_cache

    rng = random.Random(2026)
    sets = [corpus_bytes(slug) for slug in SLUGS]

    def signature(ds):
        return ([(n.offset, n.role, n.key, None if n.fields is None else dict(n.fields), n.extra, n.error)
                 for n in ds.nodes()], [str(e) for e in ds.errors], [str(w) for w in ds.warnings])

    for _ in range(400):
        data, bos = rng.choice(sets)
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.choice(
                [0, 1, 2, 4, 5, 9, 0x0B, 0x21, 0x24, 0x25, 0x30, rng.randrange(256)])
        blob = bytes(mutated)
        warm = parse(blob, bos or None)
        clear_choice_cache()
        assert signature(warm) == signature(parse(blob, bos or None))
        offsets = [n.offset for n in warm.nodes() if n.blob == "descriptors"]
        assert offsets == sorted(offsets)
