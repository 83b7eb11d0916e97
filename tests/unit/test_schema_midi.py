"""USB MIDI Streaming descriptors: MIDI 1.0 §6.1.2 and §6.2.2, MIDI 2.0 §5.3.2."""

from __future__ import annotations

from classdesc_corpus import meaning, parse_slice

from dkproto.schema import midi
from dkproto.schema.registry import Context, lookup

MS = Context(parent="interface", interface_class=1, interface_subclass=3, interface_protocol=0)
MS_EP = Context(
    parent="endpoint", interface_class=1, interface_subclass=3, interface_protocol=0, endpoint_address=1
)


def parse(hexstr: str, ctx: Context = MS, dtype: int = 0x24):
    return parse_slice(hexstr, ctx, dtype)


def test_field_names_follow_the_spec() -> None:
    names = {k: [sc.name for sc in s.struct.subcons][3:-1] for k, s in midi.MIDI_INTERFACE.items()}
    assert names == {
        1: ["bcdMSC", "wTotalLength"],
        2: ["bJackType", "bJackID", "iJack"],
        3: ["bJackType", "bJackID", "bNrInputPins", "sources", "iJack"],
        4: [
            "bElementID",
            "bNrInputPins",
            "sources",
            "bNrOutputPins",
            "bInTerminalLink",
            "bOutTerminalLink",
            "bElCapsSize",
            "bmElementCaps",
            "iElement",
        ],
    }


def test_ksoloti_midi_function() -> None:
    # Ksoloti Core (corpus usb/ksoloti-core-uac2-midi.json); lsusb agrees (see test_schema_class_corpus)
    s, f = parse("07 24 01 0001 4100")
    assert (s.key, meaning(s, f, "bcdMSC"), f.wTotalLength) == ("midi_ms_header", "1.00", 65)
    s, f = parse("06 24 02 01 01 05")
    assert (s.key, meaning(s, f, "bJackType"), f.bJackID, f.iJack) == ("midi_in_jack", "EMBEDDED", 1, 5)
    s, f = parse("06 24 02 02 02 06")
    assert meaning(s, f, "bJackType") == "EXTERNAL"
    s, f = parse("09 24 03 01 03 01 02 01 06")
    assert s.key == "midi_out_jack"
    assert [(p.baSourceID, p.BaSourcePin) for p in f.sources] == [(2, 1)]
    assert meaning(s, f, "sources") == "entity 2 pin 1"
    s, f = parse("05 25 01 01 01", MS_EP, dtype=0x25)
    assert (s.key, f.bNumEmbMIDIJack, list(f.baAssocJackID)) == ("midi_ms_endpoint", 1, [1])


def test_out_jack_with_two_pins_and_element() -> None:
    s, f = parse("0b 24 03 01 07 02 01 01 02 01 00")
    assert [(p.baSourceID, p.BaSourcePin) for p in f.sources] == [(1, 1), (2, 1)]
    # element: 1 input pin, 1 output pin, 2 bytes of capabilities (MIDI CLOCK, GM1, MIDI Patch Bay)
    s, f = parse("0e 24 04 09 01 07 01 01 00 00 02 12 02 00")
    assert (s.key, f.bElementID, f.bNrOutputPins, f.bmElementCaps) == ("midi_element", 9, 1, b"\x12\x02")
    assert meaning(s, f, "bmElementCaps") == "MIDI CLOCK, GM1 (General MIDI v.1), MIDI Patch Bay"


def test_midi2_endpoint_and_unknowns() -> None:
    s, f = parse("06 25 02 02 01 02", MS_EP, dtype=0x25)
    assert (s.key, list(f.baAssoGrpTrmBlkID)) == ("midi2_ms_endpoint", [1, 2])
    assert lookup(0x24, bytes.fromhex("05247f0000"), MS) is None
    # the AudioControl interface of a MIDI function is audio.py's, not midi.py's
    ac = Context(parent="interface", interface_class=1, interface_subclass=1)
    assert lookup(0x24, bytes.fromhex("092401000109000101"), ac).key == "uac1_ac_header"


def test_jack_count_past_blength_is_a_construct_error() -> None:
    import pytest
    from construct import ConstructError

    with pytest.raises(ConstructError):
        midi.MIDI_INTERFACE[3].struct.parse(bytes.fromhex("092403010303020106"))
