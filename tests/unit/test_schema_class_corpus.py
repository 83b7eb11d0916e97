"""Every class-specific descriptor of the corpus: decoded, round-tripped, and checked against lsusb.

The slices come from ``classdesc_corpus`` (a bLength framer independent of the walker), so
these tests exercise the class schemas and their selectors on their own.
"""

from __future__ import annotations

import pytest
from classdesc_corpus import (
    USB_SETS,
    all_class_slices,
    class_slices,
    compare_with_oracle,
    corpus_sets,
    lsusb_prints,
    oracle_blocks,
)
from construct import ConstructError

from dkproto.schema import audio, cdc, dfu, hid, midi, uvc
from dkproto.schema.registry import Schema, lookup

SETS = corpus_sets()
SLICES = all_class_slices()
#: Types decoded by the standard (chapter 9) schemas, not by the class modules.
STANDARD_TYPES = (0x30, 0x31)


def class_schemas() -> list[Schema]:
    """Every Schema defined by the class modules."""
    found: dict[str, Schema] = {}
    for mod in (hid, dfu, cdc, audio, midi, uvc):
        for value in vars(mod).values():
            items = value.values() if isinstance(value, dict) else [value]
            for item in items:
                if isinstance(item, Schema):
                    found[item.key] = item
    return list(found.values())


def test_corpus_has_class_descriptors() -> None:
    assert len(SLICES) > 350
    kinds = {s.ctx.interface_class for s in SLICES}
    assert {0x01, 0x02, 0x03, 0x0E, 0xFE, 0xFF, 0xE0} <= kinds


def test_no_class_slice_left_undecoded() -> None:
    undecoded = [
        (s.name, s.offset, s.raw.hex())
        for s in SLICES
        if s.raw[1] not in STANDARD_TYPES and lookup(s.raw[1], s.raw, s.ctx) is None
    ]
    assert undecoded == []


@pytest.mark.parametrize("name,blob", SETS, ids=[n for n, _ in SETS])
def test_roundtrip_and_exact_consumption(name: str, blob: bytes) -> None:
    for s in class_slices(name, blob):
        if s.raw[1] in STANDARD_TYPES:
            continue
        schema = lookup(s.raw[1], s.raw, s.ctx)
        assert schema is not None, (s.offset, s.raw.hex())
        fields = schema.struct.parse(s.raw)
        assert fields.extra == b"", (
            f"{name}@{s.offset} {schema.key}: bytes past the layout {fields.extra.hex()}"
        )
        assert schema.struct.build(fields) == s.raw, f"{name}@{s.offset} {schema.key}"
        compiled = schema.struct.compile()
        assert compiled.parse(s.raw) == fields
        assert compiled.build(fields) == s.raw


@pytest.mark.parametrize("name,blob", SETS, ids=[n for n, _ in SETS])
def test_agrees_with_lsusb(name: str, blob: bytes) -> None:
    slices = [s for s in class_slices(name, blob) if lsusb_prints(s) and s.raw[1] not in STANDARD_TYPES]
    blocks = oracle_blocks(name)
    assert len(slices) == len(blocks)
    compared = 0
    for s, block in zip(slices, blocks):
        if block.unrecognized is not None:  # lsusb printed the bytes only: they must be ours
            assert block.unrecognized == s.raw
            continue
        schema = lookup(s.raw[1], s.raw, s.ctx)
        assert schema is not None
        n, bad = compare_with_oracle(schema.struct.parse(s.raw), block)
        assert bad == [], f"{name}@{s.offset}"
        compared += n
    if any(b.unrecognized is None for b in blocks):
        assert compared > 0


def test_oracle_comparison_detects_a_wrong_value() -> None:
    name, blob = next((n, b) for n, b in SETS if n == "logitech-c270-webcam")
    s = next(s for s in class_slices(name, blob) if s.ctx.interface_class == 0x0E and s.raw[2] == 0x07)
    block = [b for b in oracle_blocks(name)][
        [x.offset for x in class_slices(name, blob) if lsusb_prints(x)].index(s.offset)
    ]
    fields = uvc.VS[0x07].struct.parse(s.raw)
    assert compare_with_oracle(fields, block)[1] == []
    fields.wWidth += 1
    assert compare_with_oracle(fields, block)[1]


def test_every_meaning_gives_text_or_none() -> None:
    for s in SLICES:
        schema = lookup(s.raw[1], s.raw, s.ctx)
        if schema is None or s.raw[1] in STANDARD_TYPES:
            continue
        fields = schema.struct.parse(s.raw)
        for key, fn in schema.meanings.items():
            assert key in fields, f"{schema.key}: meaning for unknown field {key}"
            text = fn(fields[key], fields)
            assert text is None or isinstance(text, str)


def test_every_class_schema_compiles_and_is_documented() -> None:
    schemas = class_schemas()
    assert len(schemas) > 80
    keys = [s.key for s in schemas]
    assert len(keys) == len(set(keys))
    for schema in schemas:
        schema.struct.compile()
        assert schema.spec and schema.name
        for field in schema.meanings:
            assert field in [sc.name for sc in schema.struct.subcons], (schema.key, field)


@pytest.mark.parametrize("schema", class_schemas(), ids=lambda s: s.key)
def test_truncated_input_raises_construct_error_only(schema: Schema) -> None:
    """A slice too short for the layout fails with a ConstructError (the walker makes it a DecodeError)."""
    for raw in (b"", b"\x03\x24", bytes([4, 0x24, 0x01, 0xFF]), bytes([9, 0x24, 0x01, 0, 0, 0, 0, 0, 0])):
        try:
            schema.struct.parse(raw)
        except ConstructError:
            pass


def _fuzz_cases():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    schemas = class_schemas()

    @settings(max_examples=400, deadline=None)
    @given(
        st.sampled_from(schemas),
        st.binary(min_size=0, max_size=64),
        st.integers(0, 255),
        st.one_of(st.none(), st.integers(0, 255)),
    )
    def fuzz(schema: Schema, body: bytes, subtype: int, blength: int | None) -> None:
        # the walker hands over exactly bLength bytes; a lying bLength is fuzzed too
        raw = bytes([len(body) + 3 if blength is None else blength, 0x24, subtype]) + body
        try:
            fields = schema.struct.parse(raw)
        except ConstructError:
            return
        assert schema.struct.build(fields) == raw
        for key, fn in schema.meanings.items():
            text = fn(fields[key], fields)
            assert text is None or isinstance(text, str)

    return fuzz


def test_random_bytes_parse_or_fail_cleanly_and_round_trip() -> None:
    """Any slice either parses (and then rebuilds exactly, meanings give text) or raises a ConstructError."""
    _fuzz_cases()()


# --- through the walker (dkproto.usb.tree) and the text renderer ---------------------------------

RENDERED_MEANINGS = {
    "ksoloti-core-uac2-midi": [
        "CLOCK_SOURCE",
        "Internal programmable Clock",
        "Headphones",
        "MIDI_OUT_JACK",
        "entity 2 pin 1",
        "HEADSET",
    ],
    "elp-h264-camera": [
        "ITT_CAMERA",
        "Auto-Exposure Mode",
        "33.3333 ms (30.00 fps)",
        "H264",
        "1920 pixels",
        "VS_FRAME_FRAME_BASED",
    ],
    "logitech-c270-webcam": ["Microphone", "16000 Hz", "Master: Mute, Volume", "YUY2", "FixedSizeSamples"],
    "nxp-lpc4330-dfu-mode": ["bitCanDnload, bitWillDetach", "65280 ms", "2048 bytes"],
    "kinesis-advantage-pro-keyboard": ["Report (63 bytes)", "US"],
    "lg-phone-cdc-acm-ecm-1004-61fe": ["Ethernet Networking", "1514 bytes", "Union", "Set_Line_Coding"],
    "simcom-sim7600e-modem": ["Header", "Abstract Control Management"],
}


@pytest.mark.parametrize("name,blob", SETS, ids=[n for n, _ in SETS])
def test_walker_decodes_every_class_descriptor_with_these_schemas(name: str, blob: bytes) -> None:
    from dkproto.usb import sources
    from dkproto.usb.render import render_as

    ds = sources.load(str(next(p for p in USB_SETS if p.stem == name)))
    assert ds.errors == []
    class_nodes = [
        n
        for c in ds.configurations
        for n in c.walk()
        if len(n.raw) >= 2 and n.raw[1] >= 0x20 and n.raw[1] not in STANDARD_TYPES
    ]
    assert len(class_nodes) == len([s for s in class_slices(name, blob) if s.raw[1] not in STANDARD_TYPES])
    for node in class_nodes:
        assert node.schema is not None, (node.offset, node.raw.hex())
        expected = lookup(node.raw[1], node.raw, node.context)
        assert node.schema is expected
    text = render_as(ds, "text")
    for needle in RENDERED_MEANINGS.get(name, []):
        assert needle in text, needle


def test_numbers_quoted_in_the_docs() -> None:
    """docs/class-descriptors.md quotes these counts; keep them true."""
    ours = [s for s in SLICES if s.raw[1] not in STANDARD_TYPES]
    printed = [s for s in ours if lsusb_prints(s)]
    blocks = [b for name, _ in SETS for b in oracle_blocks(name)]
    unrecognized = [b for b in blocks if b.unrecognized is not None]
    compared = 0
    for name, blob in SETS:
        pairs = zip(
            [s for s in class_slices(name, blob) if lsusb_prints(s) and s.raw[1] not in STANDARD_TYPES],
            oracle_blocks(name),
        )
        for s, block in pairs:
            if block.unrecognized is None:
                compared += compare_with_oracle(lookup(s.raw[1], s.raw, s.ctx).struct.parse(s.raw), block)[0]
    assert (len(ours), len(printed), len(blocks), len(unrecognized), compared) == (355, 348, 348, 33, 3562)
