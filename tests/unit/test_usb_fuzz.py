"""Property-based: mutated corpus bytes never crash the walker, never hang it, never lose a byte.

Mutations: truncation, bLength changes, random byte flips, inserted zero-length descriptors.
Whatever the damage, the result is a DescriptorSet (errors listed) or a DkError; the three
renderers run; every byte is kept in place (rebuild gives the input back).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from usb_corpus import SLUGS, corpus_bytes

from dkproto.errors import DkError
from dkproto.usb import from_bytes, parse, render_hex, render_json, render_text

SETS = {slug: corpus_bytes(slug) for slug in SLUGS}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def boundaries(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data) and data[pos] >= 2:
        out.append(pos)
        pos += data[pos]
    return out or [0]


def check(data: bytes, bos: bytes = b"") -> None:
    try:
        ds = parse(data, bos or None)
    except DkError:
        return
    render_text(ds)
    render_hex(ds)
    as_json = render_json(ds)
    try:
        rebuilt = ds.to_bytes()
    except DkError:
        return
    assert rebuilt == data
    assert ds.bos_bytes() == bos
    assert from_bytes(as_json.encode()).to_bytes() == data


@SETTINGS
@given(st.sampled_from(SLUGS), st.data())
def test_truncated(slug: str, data: st.DataObject) -> None:
    blob, bos = SETS[slug]
    cut = data.draw(st.integers(0, len(blob)))
    check(blob[:cut], bos[: data.draw(st.integers(0, len(bos)))])


@SETTINGS
@given(st.sampled_from(SLUGS), st.data())
def test_blength_mutated(slug: str, data: st.DataObject) -> None:
    blob, _ = SETS[slug]
    at = data.draw(st.sampled_from(boundaries(blob)))
    mutated = bytearray(blob)
    mutated[at] = data.draw(st.integers(0, 255))
    check(bytes(mutated))


@SETTINGS
@given(st.sampled_from(SLUGS), st.data())
def test_bytes_flipped(slug: str, data: st.DataObject) -> None:
    blob, bos = SETS[slug]
    mutated = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 8))):
        mutated[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    check(bytes(mutated), bos)


@SETTINGS
@given(st.sampled_from(SLUGS), st.data())
def test_zero_length_inserted(slug: str, data: st.DataObject) -> None:
    blob, _ = SETS[slug]
    at = data.draw(st.sampled_from(boundaries(blob)) | st.integers(0, len(blob)))
    junk = data.draw(st.sampled_from([b"\x00", b"\x00\x00", b"\x00\x04", b"\x01\x02", b"\x00\x24\x01"]))
    mutated = blob[:at] + junk + blob[at:]
    check(mutated)
    ds = parse(mutated)
    assert ds.errors  # a zero/one-length descriptor is always reported


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_through_every_loader(raw: bytes) -> None:
    check(raw)
    try:
        from_bytes(raw)
    except DkError:
        pass
