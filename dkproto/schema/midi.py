"""USB MIDI Streaming (Audio class 0x01, subclass 0x03) class-specific descriptors.

Layouts: USB Device Class Definition for MIDI Devices 1.0, §6.1.2.1 (MS Interface Header),
§6.1.2.2 (MIDI IN Jack), §6.1.2.3 (MIDI OUT Jack), §6.1.2.4 (Element), §6.2.2 (MS Bulk Data
Endpoint, CS_ENDPOINT subtype MS_GENERAL). USB MIDI 2.0 §5.3.2 adds the CS_ENDPOINT subtype
MS_GENERAL_2_0 (0x02) listing Group Terminal Block IDs; it is decoded too. (Group Terminal
Block descriptors, type 0x26, are not part of the configuration descriptor.)
"""

from __future__ import annotations

from typing import Any

from construct import Array, Bytes, Int8ul, Int16ul, Struct, this

from dkproto.schema.classcommon import (
    CS_ENDPOINT,
    CS_INTERFACE,
    bcd,
    cs_schema,
    enum,
    flags,
    name_subtypes,
    subtype_of,
    unit,
)
from dkproto.schema.registry import Context, Schema, register_class

__all__ = ["MIDI_ENDPOINT", "MIDI_INTERFACE", "select_midi"]

AUDIO_CLASS = 0x01
SUBCLASS_MIDISTREAMING = 0x03

JACK_TYPES = {0x00: "JACK_TYPE_UNDEFINED", 0x01: "EMBEDDED", 0x02: "EXTERNAL"}

#: MIDI 1.0 §6.1.2.4, bmElementCaps bits.
ELEMENT_CAPS = dict(
    enumerate(
        [
            "CUSTOM UNDEFINED",
            "MIDI CLOCK",
            "MTC (MIDI Time Code)",
            "MMC (MIDI Machine Control)",
            "GM1 (General MIDI v.1)",
            "GM2 (General MIDI v.2)",
            "GS Format",
            "XG Format",
            "EFX",
            "MIDI Patch Bay",
            "DLS1 (Downloadable Sounds Level 1)",
            "DLS2 (Downloadable Sounds Level 2)",
        ]
    )
)

_PIN = Struct("baSourceID" / Int8ul, "BaSourcePin" / Int8ul)


def _pins(value: Any, _c: Any = None) -> str | None:
    if not isinstance(value, list):
        return None
    return ", ".join(f"entity {p.baSourceID} pin {p.BaSourcePin}" for p in value) or "(none)"


MIDI_INTERFACE: dict[int, Schema] = {
    0x01: cs_schema(
        "midi_ms_header",
        "MS Interface Header Descriptor",
        "MIDI 1.0 §6.1.2.1",
        [
            "bcdMSC" / Int16ul,
            "wTotalLength" / Int16ul,
        ],
        {"bcdMSC": bcd, "wTotalLength": unit("bytes")},
    ),
    0x02: cs_schema(
        "midi_in_jack",
        "MIDI IN Jack Descriptor",
        "MIDI 1.0 §6.1.2.2",
        [
            "bJackType" / Int8ul,
            "bJackID" / Int8ul,
            "iJack" / Int8ul,
        ],
        {"bJackType": enum(JACK_TYPES, "Reserved")},
    ),
    0x03: cs_schema(
        "midi_out_jack",
        "MIDI OUT Jack Descriptor",
        "MIDI 1.0 §6.1.2.3",
        [
            "bJackType" / Int8ul,
            "bJackID" / Int8ul,
            "bNrInputPins" / Int8ul,
            "sources" / Array(this.bNrInputPins, _PIN),
            "iJack" / Int8ul,
        ],
        {"bJackType": enum(JACK_TYPES, "Reserved"), "sources": _pins},
    ),
    0x04: cs_schema(
        "midi_element",
        "Element Descriptor",
        "MIDI 1.0 §6.1.2.4",
        [
            "bElementID" / Int8ul,
            "bNrInputPins" / Int8ul,
            "sources" / Array(this.bNrInputPins, _PIN),
            "bNrOutputPins" / Int8ul,
            "bInTerminalLink" / Int8ul,
            "bOutTerminalLink" / Int8ul,
            "bElCapsSize" / Int8ul,
            "bmElementCaps" / Bytes(this.bElCapsSize),
            "iElement" / Int8ul,
        ],
        {"sources": _pins, "bmElementCaps": flags(ELEMENT_CAPS)},
    ),
}

MIDI_ENDPOINT: dict[int, Schema] = {
    0x01: cs_schema(
        "midi_ms_endpoint",
        "MS Bulk Data Endpoint Descriptor",
        "MIDI 1.0 §6.2.2",
        [
            "bNumEmbMIDIJack" / Int8ul,
            "baAssocJackID" / Array(this.bNumEmbMIDIJack, Int8ul),
        ],
    ),
    0x02: cs_schema(
        "midi2_ms_endpoint",
        "MS Bulk Data Endpoint Descriptor (MIDI 2.0)",
        "MIDI 2.0 §5.3.2",
        [
            "bNumGrpTrmBlock" / Int8ul,
            "baAssoGrpTrmBlkID" / Array(this.bNumGrpTrmBlock, Int8ul),
        ],
    ),
}

#: MIDI 1.0 Tables A-1 and A-2, MIDI 2.0 Table A-3.
name_subtypes(
    MIDI_INTERFACE, {0x01: "MS_HEADER", 0x02: "MIDI_IN_JACK", 0x03: "MIDI_OUT_JACK", 0x04: "ELEMENT"}
)
name_subtypes(MIDI_ENDPOINT, {0x01: "MS_GENERAL", 0x02: "MS_GENERAL_2_0"})


def select_midi(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    """Selector for class 0x01 subclass 0x03 (MIDIStreaming)."""
    if ctx.interface_subclass != SUBCLASS_MIDISTREAMING:
        return None
    sub = subtype_of(raw)
    if descriptor_type == CS_INTERFACE:
        return MIDI_INTERFACE.get(sub)  # type: ignore[arg-type]
    if descriptor_type == CS_ENDPOINT:
        return MIDI_ENDPOINT.get(sub)  # type: ignore[arg-type]
    return None


register_class(AUDIO_CLASS, select_midi)
