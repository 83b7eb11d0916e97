"""USB Audio Class 1.0 and 2.0 class-specific descriptors (AudioControl and AudioStreaming).

Layouts:

* UAC1: USB Device Class Definition for Audio Devices 1.0, §4.3.2 (AudioControl: header,
  input/output terminal, mixer, selector, feature, processing, extension unit), §4.5.2
  (AS general), §4.6.1.2 (AS isochronous audio data endpoint); Audio Data Formats 1.0 §2.2.5
  (Type I), §2.3.5 (Type II), §2.4.5 (Type III format type descriptors).
* UAC2: USB Audio 2.0, §4.7.2 (AC header, clock source/selector/multiplier, input/output
  terminal, mixer, selector, feature, sample rate converter, effect, processing, extension
  unit), §4.9.2 (AS general), §4.10.1.2 (AS isochronous audio data endpoint); Audio Data
  Formats 2.0 §2.3.1.6 (Type I), §2.3.2.6 (Type II), §2.3.3.1 (Type III), §2.3.4.1 (Type IV).

Which release applies: ``bInterfaceProtocol`` 0x20 (IP_VERSION_02_00) of the interface, or of
the IAD's ``bFunctionProtocol``, means UAC2; otherwise the ``bcdADC`` of the AC header,
carried in :attr:`Context.class_version`, decides (>= 2.00 is UAC2); otherwise UAC1. UAC3
(protocol 0x30) is not decoded. MIDI streaming (subclass 3) lives in :mod:`dkproto.schema.midi`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from construct import (
    Array,
    Bytes,
    BytesInteger,
    If,
    Int8ul,
    Int16ul,
    Int24ul,
    Int32ul,
    this,
)

from dkproto.schema.classcommon import (
    CS_ENDPOINT,
    CS_INTERFACE,
    bcd,
    bitlist,
    cs_schema,
    enum,
    flags,
    hexbytes,
    join_nonempty,
    name_subtypes,
    subtype_of,
    unit,
)
from dkproto.schema.registry import Context, Meaning, Schema, register_class

__all__ = [
    "AUDIO_TERMINAL_TYPES",
    "UAC1_AC",
    "UAC1_AS",
    "UAC2_AC",
    "UAC2_AS",
    "audio_release",
    "select_audio",
]

AUDIO_CLASS = 0x01
SUBCLASS_AUDIOCONTROL = 0x01
SUBCLASS_AUDIOSTREAMING = 0x02
IP_VERSION_02_00 = 0x20
IP_VERSION_03_00 = 0x30

# --- tables -------------------------------------------------------------------------------------

#: USB Audio Terminal Types 1.0 §2 and 2.0 §2 (wTerminalType).
AUDIO_TERMINAL_TYPES = {
    0x0100: "USB Undefined",
    0x0101: "USB Streaming",
    0x01FF: "USB Vendor Specific",
    0x0200: "Input Undefined",
    0x0201: "Microphone",
    0x0202: "Desktop Microphone",
    0x0203: "Personal Microphone",
    0x0204: "Omni-directional Microphone",
    0x0205: "Microphone Array",
    0x0206: "Processing Microphone Array",
    0x0300: "Output Undefined",
    0x0301: "Speaker",
    0x0302: "Headphones",
    0x0303: "Head Mounted Display Audio",
    0x0304: "Desktop Speaker",
    0x0305: "Room Speaker",
    0x0306: "Communication Speaker",
    0x0307: "Low Frequency Effects Speaker",
    0x0400: "Bi-directional Undefined",
    0x0401: "Handset",
    0x0402: "Headset",
    0x0403: "Speakerphone, no echo reduction",
    0x0404: "Echo-suppressing speakerphone",
    0x0405: "Echo-canceling speakerphone",
    0x0500: "Telephony Undefined",
    0x0501: "Phone line",
    0x0502: "Telephone",
    0x0503: "Down Line Phone",
    0x0600: "External Undefined",
    0x0601: "Analog connector",
    0x0602: "Digital audio interface",
    0x0603: "Line connector",
    0x0604: "Legacy audio connector",
    0x0605: "S/PDIF interface",
    0x0606: "1394 DA stream",
    0x0607: "1394 DV stream soundtrack",
    0x0608: "ADAT Lightpipe",
    0x0609: "TDIF",
    0x060A: "MADI",
    0x0700: "Embedded Undefined",
    0x0701: "Level Calibration Noise Source",
    0x0702: "Equalization Noise",
    0x0703: "CD player",
    0x0704: "DAT",
    0x0705: "DCC",
    0x0706: "MiniDisk",
    0x0707: "Analog Tape",
    0x0708: "Phonograph",
    0x0709: "VCR Audio",
    0x070A: "Video Disc Audio",
    0x070B: "DVD Audio",
    0x070C: "TV Tuner Audio",
    0x070D: "Satellite Receiver Audio",
    0x070E: "Cable Tuner Audio",
    0x070F: "DSS Audio",
    0x0710: "Radio Receiver",
    0x0711: "Radio Transmitter",
    0x0712: "Multi-track Recorder",
    0x0713: "Synthesizer",
    0x0714: "Piano",
    0x0715: "Guitar",
    0x0716: "Drums/Rhythm",
    0x0717: "Other Musical Instrument",
}

#: UAC1 §3.7.2.3 wChannelConfig bits.
UAC1_CHANNELS = dict(
    enumerate(
        [
            "Left Front (L)",
            "Right Front (R)",
            "Center Front (C)",
            "Low Frequency Enhancement (LFE)",
            "Left Surround (LS)",
            "Right Surround (RS)",
            "Left of Center (LC)",
            "Right of Center (RC)",
            "Surround (S)",
            "Side Left (SL)",
            "Side Right (SR)",
            "Top (T)",
        ]
    )
)

#: UAC2 §4.1 bmChannelConfig bits.
UAC2_CHANNELS = dict(
    enumerate(
        [
            "Front Left (FL)",
            "Front Right (FR)",
            "Front Center (FC)",
            "Low Frequency Effects (LFE)",
            "Back Left (BL)",
            "Back Right (BR)",
            "Front Left of Center (FLC)",
            "Front Right of Center (FRC)",
            "Back Center (BC)",
            "Side Left (SL)",
            "Side Right (SR)",
            "Top Center (TC)",
            "Top Front Left (TFL)",
            "Top Front Center (TFC)",
            "Top Front Right (TFR)",
            "Top Back Left (TBL)",
            "Top Back Center (TBC)",
            "Top Back Right (TBR)",
            "Top Front Left of Center (TFLC)",
            "Top Front Right of Center (TFRC)",
            "Left Low Frequency Effects (LLFE)",
            "Right Low Frequency Effects (RLFE)",
            "Top Side Left (TSL)",
            "Top Side Right (TSR)",
            "Bottom Center (BC)",
            "Back Left of Center (BLC)",
            "Back Right of Center (BRC)",
        ]
    )
)
UAC2_CHANNELS[31] = "Raw Data (RD)"

#: UAC1 §5.2.2.4.3 / UAC2 §5.2.5.7: feature unit controls, in bit (UAC1) or bit-pair (UAC2) order.
FEATURE_CONTROLS = [
    "Mute",
    "Volume",
    "Bass",
    "Mid",
    "Treble",
    "Graphic Equalizer",
    "Automatic Gain",
    "Delay",
    "Bass Boost",
    "Loudness",
    "Input Gain",
    "Input Gain Pad",
    "Phase Inverter",
    "Underflow",
    "Overflow",
]

#: Audio Data Formats 1.0 §A.1: wFormatTag.
UAC1_FORMAT_TAGS = {
    0x0000: "TYPE_I_UNDEFINED",
    0x0001: "PCM",
    0x0002: "PCM8",
    0x0003: "IEEE_FLOAT",
    0x0004: "ALAW",
    0x0005: "MULAW",
    0x1000: "TYPE_II_UNDEFINED",
    0x1001: "MPEG",
    0x1002: "AC-3",
    0x2000: "TYPE_III_UNDEFINED",
    0x2001: "IEC1937_AC-3",
    0x2002: "IEC1937_MPEG-1_Layer1",
    0x2003: "IEC1937_MPEG-1_Layer2/3 or IEC1937_MPEG-2_NOEXT",
    0x2004: "IEC1937_MPEG-2_EXT",
    0x2005: "IEC1937_MPEG-2_Layer1_LS",
    0x2006: "IEC1937_MPEG-2_Layer2/3_LS",
}

#: Audio Data Formats 1.0 §A.2 / 2.0 §A.1: bFormatType.
FORMAT_TYPES = {
    0x00: "FORMAT_TYPE_UNDEFINED",
    0x01: "FORMAT_TYPE_I",
    0x02: "FORMAT_TYPE_II",
    0x03: "FORMAT_TYPE_III",
    0x04: "FORMAT_TYPE_IV",
    0x81: "EXT_FORMAT_TYPE_I",
    0x82: "EXT_FORMAT_TYPE_II",
    0x83: "EXT_FORMAT_TYPE_III",
}

_TYPE_III_NAMES = [
    "IEC61937_AC-3",
    "IEC61937_MPEG-1_Layer1",
    "IEC61937_MPEG-1_Layer2/3 or IEC61937_MPEG-2_NOEXT",
    "IEC61937_MPEG-2_EXT",
    "IEC61937_MPEG-2_AAC_ADTS",
    "IEC61937_MPEG-2_Layer1_LS",
    "IEC61937_MPEG-2_Layer2/3_LS",
    "IEC61937_DTS-I",
    "IEC61937_DTS-II",
    "IEC61937_DTS-III",
    "IEC61937_ATRAC",
    "IEC61937_ATRAC2/3",
    "TYPE_III_WMA",
]
#: Audio Data Formats 2.0 §A.2: bmFormats bits per format type (type IV: the type I, II and
#: III names in that order, then IEC60958_PCM).
UAC2_FORMATS = {
    1: {0: "PCM", 1: "PCM8", 2: "IEEE_FLOAT", 3: "ALAW", 4: "MULAW", 31: "TYPE_I_RAW_DATA"},
    2: {0: "MPEG", 1: "AC-3", 2: "WMA", 3: "DTS", 31: "TYPE_II_RAW_DATA"},
    3: dict(enumerate(_TYPE_III_NAMES)),
    4: dict(
        enumerate(
            ["PCM", "PCM8", "IEEE_FLOAT", "ALAW", "MULAW", "MPEG", "AC-3", "WMA", *_TYPE_III_NAMES, "IEC60958_PCM"]
        )
    ),
}

UAC1_PROCESS_TYPES = {
    0x00: "PROCESS_UNDEFINED",
    0x01: "UP/DOWNMIX_PROCESS",
    0x02: "DOLBY_PROLOGIC_PROCESS",
    0x03: "3D_STEREO_EXTENDER_PROCESS",
    0x04: "REVERBERATION_PROCESS",
    0x05: "CHORUS_PROCESS",
    0x06: "DYN_RANGE_COMP_PROCESS",
}
UAC2_PROCESS_TYPES = {
    0x00: "PROCESS_UNDEFINED",
    0x01: "UP/DOWNMIX_PROCESS",
    0x02: "DOLBY_PROLOGIC_PROCESS",
    0x03: "STEREO_EXTENDER_PROCESS",
}
UAC2_EFFECT_TYPES = {
    0x00: "EFFECT_UNDEFINED",
    0x01: "PARAM_EQ_SECTION_EFFECT",
    0x02: "REVERBERATION_EFFECT",
    0x03: "MOD_DELAY_EFFECT",
    0x04: "DYN_RANGE_COMP_EFFECT",
}
UAC2_CATEGORIES = {
    0x00: "FUNCTION_SUBCLASS_UNDEFINED",
    0x01: "DESKTOP_SPEAKER",
    0x02: "HOME_THEATER",
    0x03: "MICROPHONE",
    0x04: "HEADSET",
    0x05: "TELEPHONE",
    0x06: "CONVERTER",
    0x07: "VOICE/SOUND_RECORDER",
    0x08: "I/O_BOX",
    0x09: "MUSICAL_INSTRUMENT",
    0x0A: "PRO-AUDIO",
    0x0B: "AUDIO/VIDEO",
    0x0C: "CONTROL_PANEL",
    0xFF: "OTHER",
}
LOCK_DELAY_UNITS = {0: "Undefined", 1: "Milliseconds", 2: "Decoded PCM samples"}


# --- meanings -----------------------------------------------------------------------------------


def controls2(names: list[str]) -> Meaning:
    """UAC2 bit-pair controls: each pair 0b01 = read-only, 0b11 = host programmable."""

    def meaning(value: Any, _c: Any = None) -> str | None:
        if not isinstance(value, int):
            return None
        out = []
        for i in range(16):
            pair = (value >> (2 * i)) & 3
            if not pair:
                continue
            name = names[i] if i < len(names) else f"control {i}"
            out.append(f"{name} ({ {1: 'read-only', 3: 'read/write'}.get(pair, 'invalid 0b10') })")
        return ", ".join(out) or "(none)"

    return meaning


def _channel_label(i: int) -> str:
    return "Master" if i == 0 else f"Channel {i}"


def _per_channel(inner: Meaning) -> Meaning:
    def meaning(value: Any, c: Any = None) -> str | None:
        if not isinstance(value, (list, tuple)):
            return None
        return join_nonempty(f"{_channel_label(i)}: {inner(v, c)}" for i, v in enumerate(value)) or None

    return meaning


def _freqs(value: Any, _c: Any = None) -> str | None:
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{f} Hz" for f in value)
    return None


def _bmformats(value: Any, c: Any = None) -> str | None:
    if not isinstance(value, int):
        return None
    table = UAC2_FORMATS.get(getattr(c, "bFormatType", None) or 0, {})
    return ", ".join(bitlist(value, table)) or "(none)"


def _clock_attributes(value: Any, _c: Any = None) -> str | None:
    if not isinstance(value, int):
        return None
    kind = [
        "External Clock",
        "Internal fixed Clock",
        "Internal variable Clock",
        "Internal programmable Clock",
    ][value & 3]
    return kind + (", synchronized to SOF" if value & 4 else "")


def _modes(table: Mapping[int, str]) -> Meaning:
    def meaning(value: Any, _c: Any = None) -> str | None:
        if not isinstance(value, (list, tuple)):
            return None
        return "; ".join(", ".join(bitlist(v, table)) or "(none)" for v in value)

    return meaning


_terminal = enum(AUDIO_TERMINAL_TYPES, "Unknown")
_uac1_channels = flags(UAC1_CHANNELS)
_uac2_channels = flags(UAC2_CHANNELS)
_lock_units = enum(LOCK_DELAY_UNITS, "Reserved")


def _uac1_lock_delay(value: Any, c: Any = None) -> str | None:
    units = {1: "ms", 2: "samples"}.get(getattr(c, "bLockDelayUnits", 0))
    return f"{value} {units}" if units and isinstance(value, int) else None


# --- UAC1 AudioControl --------------------------------------------------------------------------

_b = Int8ul
_w = Int16ul


_SOURCES = "baSourceID" / Array(this.bNrInPins, Int8ul)

UAC1_AC: dict[int, Schema] = {
    0x01: cs_schema(
        "uac1_ac_header",
        "AudioControl Interface Header Descriptor",
        "UAC 1.0 §4.3.2",
        [
            "bcdADC" / _w,
            "wTotalLength" / _w,
            "bInCollection" / _b,
            "baInterfaceNr" / Array(this.bInCollection, Int8ul),
        ],
        {"bcdADC": bcd, "wTotalLength": unit("bytes")},
    ),
    0x02: cs_schema(
        "uac1_input_terminal",
        "Input Terminal Descriptor",
        "UAC 1.0 §4.3.2.1",
        [
            "bTerminalID" / _b,
            "wTerminalType" / _w,
            "bAssocTerminal" / _b,
            "bNrChannels" / _b,
            "wChannelConfig" / _w,
            "iChannelNames" / _b,
            "iTerminal" / _b,
        ],
        {"wTerminalType": _terminal, "wChannelConfig": _uac1_channels},
    ),
    0x03: cs_schema(
        "uac1_output_terminal",
        "Output Terminal Descriptor",
        "UAC 1.0 §4.3.2.2",
        [
            "bTerminalID" / _b,
            "wTerminalType" / _w,
            "bAssocTerminal" / _b,
            "bSourceID" / _b,
            "iTerminal" / _b,
        ],
        {"wTerminalType": _terminal},
    ),
    0x04: cs_schema(
        "uac1_mixer_unit",
        "Mixer Unit Descriptor",
        "UAC 1.0 §4.3.2.3",
        [
            "bUnitID" / _b,
            "bNrInPins" / _b,
            _SOURCES,
            "bNrChannels" / _b,
            "wChannelConfig" / _w,
            "iChannelNames" / _b,
            "bmControls" / Bytes(this.bLength - 10 - this.bNrInPins),
            "iMixer" / _b,
        ],
        {"wChannelConfig": _uac1_channels, "bmControls": hexbytes},
    ),
    0x05: cs_schema(
        "uac1_selector_unit",
        "Selector Unit Descriptor",
        "UAC 1.0 §4.3.2.4",
        [
            "bUnitID" / _b,
            "bNrInPins" / _b,
            _SOURCES,
            "iSelector" / _b,
        ],
    ),
    0x06: cs_schema(
        "uac1_feature_unit",
        "Feature Unit Descriptor",
        "UAC 1.0 §4.3.2.5",
        [
            "bUnitID" / _b,
            "bSourceID" / _b,
            "bControlSize" / _b,
            "bmaControls"
            / If(
                this.bControlSize > 0,
                Array((this.bLength - 7) // this.bControlSize, BytesInteger(this.bControlSize, swapped=True)),
            ),
            "iFeature" / _b,
        ],
        {"bmaControls": _per_channel(flags(dict(enumerate(FEATURE_CONTROLS[:10]))))},
    ),
    0x07: cs_schema(
        "uac1_processing_unit",
        "Processing Unit Descriptor",
        "UAC 1.0 §4.3.2.6",
        [
            "bUnitID" / _b,
            "wProcessType" / _w,
            "bNrInPins" / _b,
            _SOURCES,
            "bNrChannels" / _b,
            "wChannelConfig" / _w,
            "iChannelNames" / _b,
            "bControlSize" / _b,
            "bmControls" / Bytes(this.bControlSize),
            "iProcessing" / _b,
            "bNrModes" / If((this.wProcessType == 1) | (this.wProcessType == 2), Int8ul),
            "waModes"
            / If((this.wProcessType == 1) | (this.wProcessType == 2), Array(this.bNrModes, Int16ul)),
        ],
        {
            "wProcessType": enum(UAC1_PROCESS_TYPES, "Reserved"),
            "wChannelConfig": _uac1_channels,
            "bmControls": hexbytes,
            "waModes": _modes(UAC1_CHANNELS),
        },
    ),
    0x08: cs_schema(
        "uac1_extension_unit",
        "Extension Unit Descriptor",
        "UAC 1.0 §4.3.2.7",
        [
            "bUnitID" / _b,
            "wExtensionCode" / _w,
            "bNrInPins" / _b,
            _SOURCES,
            "bNrChannels" / _b,
            "wChannelConfig" / _w,
            "iChannelNames" / _b,
            "bControlSize" / _b,
            "bmControls" / Bytes(this.bControlSize),
            "iExtension" / _b,
        ],
        {"wChannelConfig": _uac1_channels, "bmControls": hexbytes},
    ),
}

# --- UAC2 AudioControl --------------------------------------------------------------------------

_IT2 = ["Copy Protect", "Connector", "Overload", "Cluster", "Underflow", "Overflow"]
_OT2 = ["Copy Protect", "Connector", "Overload", "Underflow", "Overflow"]

UAC2_AC: dict[int, Schema] = {
    0x01: cs_schema(
        "uac2_ac_header",
        "AudioControl Interface Header Descriptor",
        "UAC 2.0 §4.7.2",
        [
            "bcdADC" / _w,
            "bCategory" / _b,
            "wTotalLength" / _w,
            "bmControls" / _b,
        ],
        {
            "bcdADC": bcd,
            "bCategory": enum(UAC2_CATEGORIES, "Reserved"),
            "wTotalLength": unit("bytes"),
            "bmControls": controls2(["Latency"]),
        },
    ),
    0x02: cs_schema(
        "uac2_input_terminal",
        "Input Terminal Descriptor",
        "UAC 2.0 §4.7.2.4",
        [
            "bTerminalID" / _b,
            "wTerminalType" / _w,
            "bAssocTerminal" / _b,
            "bCSourceID" / _b,
            "bNrChannels" / _b,
            "bmChannelConfig" / Int32ul,
            "iChannelNames" / _b,
            "bmControls" / _w,
            "iTerminal" / _b,
        ],
        {"wTerminalType": _terminal, "bmChannelConfig": _uac2_channels, "bmControls": controls2(_IT2)},
    ),
    0x03: cs_schema(
        "uac2_output_terminal",
        "Output Terminal Descriptor",
        "UAC 2.0 §4.7.2.5",
        [
            "bTerminalID" / _b,
            "wTerminalType" / _w,
            "bAssocTerminal" / _b,
            "bSourceID" / _b,
            "bCSourceID" / _b,
            "bmControls" / _w,
            "iTerminal" / _b,
        ],
        {"wTerminalType": _terminal, "bmControls": controls2(_OT2)},
    ),
    0x04: cs_schema(
        "uac2_mixer_unit",
        "Mixer Unit Descriptor",
        "UAC 2.0 §4.7.2.6",
        [
            "bUnitID" / _b,
            "bNrInPins" / _b,
            _SOURCES,
            "bNrChannels" / _b,
            "bmChannelConfig" / Int32ul,
            "iChannelNames" / _b,
            "bmMixerControls" / Bytes(this.bLength - 13 - this.bNrInPins),
            "bmControls" / _b,
            "iMixer" / _b,
        ],
        {
            "bmChannelConfig": _uac2_channels,
            "bmMixerControls": hexbytes,
            "bmControls": controls2(["Cluster", "Underflow", "Overflow"]),
        },
    ),
    0x05: cs_schema(
        "uac2_selector_unit",
        "Selector Unit Descriptor",
        "UAC 2.0 §4.7.2.7",
        [
            "bUnitID" / _b,
            "bNrInPins" / _b,
            _SOURCES,
            "bmControls" / _b,
            "iSelector" / _b,
        ],
        {"bmControls": controls2(["Selector"])},
    ),
    0x06: cs_schema(
        "uac2_feature_unit",
        "Feature Unit Descriptor",
        "UAC 2.0 §4.7.2.8",
        [
            "bUnitID" / _b,
            "bSourceID" / _b,
            "bmaControls" / Array((this.bLength - 6) // 4, Int32ul),
            "iFeature" / _b,
        ],
        {"bmaControls": _per_channel(controls2(FEATURE_CONTROLS))},
    ),
    0x07: cs_schema(
        "uac2_effect_unit",
        "Effect Unit Descriptor",
        "UAC 2.0 §4.7.2.10",
        [
            "bUnitID" / _b,
            "wEffectType" / _w,
            "bSourceID" / _b,
            "bmaControls" / Array((this.bLength - 8) // 4, Int32ul),
            "iEffects" / _b,
        ],
        {
            "wEffectType": enum(UAC2_EFFECT_TYPES, "Reserved"),
            "bmaControls": _per_channel(lambda v, c: f"0x{v:08x}"),
        },
    ),
    0x08: cs_schema(
        "uac2_processing_unit",
        "Processing Unit Descriptor",
        "UAC 2.0 §4.7.2.11",
        [
            "bUnitID" / _b,
            "wProcessType" / _w,
            "bNrInPins" / _b,
            _SOURCES,
            "bNrChannels" / _b,
            "bmChannelConfig" / Int32ul,
            "iChannelNames" / _b,
            "bmControls" / _w,
            "iProcessing" / _b,
            "bNrModes" / If((this.wProcessType == 1) | (this.wProcessType == 2), Int8ul),
            "daModes"
            / If((this.wProcessType == 1) | (this.wProcessType == 2), Array(this.bNrModes, Int32ul)),
        ],
        {
            "wProcessType": enum(UAC2_PROCESS_TYPES, "Reserved"),
            "bmChannelConfig": _uac2_channels,
            "bmControls": controls2(["Enable", "Mode Select", "Cluster", "Underflow", "Overflow"]),
            "daModes": _modes(UAC2_CHANNELS),
        },
    ),
    0x09: cs_schema(
        "uac2_extension_unit",
        "Extension Unit Descriptor",
        "UAC 2.0 §4.7.2.12",
        [
            "bUnitID" / _b,
            "wExtensionCode" / _w,
            "bNrInPins" / _b,
            _SOURCES,
            "bNrChannels" / _b,
            "bmChannelConfig" / Int32ul,
            "iChannelNames" / _b,
            "bmControls" / _b,
            "iExtension" / _b,
        ],
        {
            "bmChannelConfig": _uac2_channels,
            "bmControls": controls2(["Enable", "Cluster", "Underflow", "Overflow"]),
        },
    ),
    0x0A: cs_schema(
        "uac2_clock_source",
        "Clock Source Descriptor",
        "UAC 2.0 §4.7.2.1",
        [
            "bClockID" / _b,
            "bmAttributes" / _b,
            "bmControls" / _b,
            "bAssocTerminal" / _b,
            "iClockSource" / _b,
        ],
        {"bmAttributes": _clock_attributes, "bmControls": controls2(["Clock Frequency", "Clock Validity"])},
    ),
    0x0B: cs_schema(
        "uac2_clock_selector",
        "Clock Selector Descriptor",
        "UAC 2.0 §4.7.2.2",
        [
            "bClockID" / _b,
            "bNrInPins" / _b,
            "baCSourceID" / Array(this.bNrInPins, Int8ul),
            "bmControls" / _b,
            "iClockSelector" / _b,
        ],
        {"bmControls": controls2(["Clock Selector"])},
    ),
    0x0C: cs_schema(
        "uac2_clock_multiplier",
        "Clock Multiplier Descriptor",
        "UAC 2.0 §4.7.2.3",
        [
            "bClockID" / _b,
            "bCSourceID" / _b,
            "bmControls" / _b,
            "iClockMultiplier" / _b,
        ],
        {"bmControls": controls2(["Clock Numerator", "Clock Denominator"])},
    ),
    0x0D: cs_schema(
        "uac2_sample_rate_converter",
        "Sampling Rate Converter Descriptor",
        "UAC 2.0 §4.7.2.9",
        [
            "bUnitID" / _b,
            "bSourceID" / _b,
            "bCSourceInID" / _b,
            "bCSourceOutID" / _b,
            "iSRC" / _b,
        ],
    ),
}

# --- AudioStreaming -----------------------------------------------------------------------------

_SAM_FREQS = [
    "bSamFreqType" / _b,
    "tLowerSamFreq" / If(this.bSamFreqType == 0, Int24ul),
    "tUpperSamFreq" / If(this.bSamFreqType == 0, Int24ul),
    "tSamFreq" / If(this.bSamFreqType > 0, Array(this.bSamFreqType, Int24ul)),
]
_SAM_MEANINGS: dict[str, Meaning] = {
    "bSamFreqType": lambda v, c: "continuous" if v == 0 else f"{v} discrete frequencies",
    "tLowerSamFreq": unit("Hz"),
    "tUpperSamFreq": unit("Hz"),
    "tSamFreq": _freqs,
}

UAC1_AS_GENERAL = cs_schema(
    "uac1_as_general",
    "AudioStreaming Interface Descriptor",
    "UAC 1.0 §4.5.2",
    [
        "bTerminalLink" / _b,
        "bDelay" / _b,
        "wFormatTag" / _w,
    ],
    {"bDelay": unit("frames"), "wFormatTag": enum(UAC1_FORMAT_TAGS, "Unknown")},
)

UAC1_FORMAT_TYPE: dict[int, Schema] = {
    1: cs_schema(
        "uac1_format_type_i",
        "Type I Format Type Descriptor",
        "Audio Data Formats 1.0 §2.2.5",
        [
            "bFormatType" / _b,
            "bNrChannels" / _b,
            "bSubframeSize" / _b,
            "bBitResolution" / _b,
            *_SAM_FREQS,
        ],
        {
            "bFormatType": enum(FORMAT_TYPES),
            "bSubframeSize": unit("bytes"),
            "bBitResolution": unit("bits"),
            **_SAM_MEANINGS,
        },
    ),
    2: cs_schema(
        "uac1_format_type_ii",
        "Type II Format Type Descriptor",
        "Audio Data Formats 1.0 §2.3.5",
        [
            "bFormatType" / _b,
            "wMaxBitRate" / _w,
            "wSamplesPerFrame" / _w,
            *_SAM_FREQS,
        ],
        {"bFormatType": enum(FORMAT_TYPES), "wMaxBitRate": unit("kbit/s"), **_SAM_MEANINGS},
    ),
    3: cs_schema(
        "uac1_format_type_iii",
        "Type III Format Type Descriptor",
        "Audio Data Formats 1.0 §2.4.5",
        [
            "bFormatType" / _b,
            "bNrChannels" / _b,
            "bSubframeSize" / _b,
            "bBitResolution" / _b,
            *_SAM_FREQS,
        ],
        {
            "bFormatType": enum(FORMAT_TYPES),
            "bSubframeSize": unit("bytes"),
            "bBitResolution": unit("bits"),
            **_SAM_MEANINGS,
        },
    ),
}

UAC1_AS: dict[int, Schema] = {0x01: UAC1_AS_GENERAL}

UAC2_AS_GENERAL = cs_schema(
    "uac2_as_general",
    "AudioStreaming Interface Descriptor",
    "UAC 2.0 §4.9.2",
    [
        "bTerminalLink" / _b,
        "bmControls" / _b,
        "bFormatType" / _b,
        "bmFormats" / Int32ul,
        "bNrChannels" / _b,
        "bmChannelConfig" / Int32ul,
        "iChannelNames" / _b,
    ],
    {
        "bmControls": controls2(["Active Alternate Setting", "Valid Alternate Settings"]),
        "bFormatType": enum(FORMAT_TYPES),
        "bmFormats": _bmformats,
        "bmChannelConfig": _uac2_channels,
    },
)

UAC2_FORMAT_TYPE: dict[int, Schema] = {
    1: cs_schema(
        "uac2_format_type_i",
        "Type I Format Type Descriptor",
        "Audio Data Formats 2.0 §2.3.1.6",
        [
            "bFormatType" / _b,
            "bSubslotSize" / _b,
            "bBitResolution" / _b,
        ],
        {"bFormatType": enum(FORMAT_TYPES), "bSubslotSize": unit("bytes"), "bBitResolution": unit("bits")},
    ),
    2: cs_schema(
        "uac2_format_type_ii",
        "Type II Format Type Descriptor",
        "Audio Data Formats 2.0 §2.3.2.6",
        [
            "bFormatType" / _b,
            "wMaxBitRate" / _w,
            "wSlotsPerFrame" / _w,
        ],
        {"bFormatType": enum(FORMAT_TYPES), "wMaxBitRate": unit("kbit/s")},
    ),
    3: cs_schema(
        "uac2_format_type_iii",
        "Type III Format Type Descriptor",
        "Audio Data Formats 2.0 §2.3.3.1",
        [
            "bFormatType" / _b,
            "bSubslotSize" / _b,
            "bBitResolution" / _b,
        ],
        {"bFormatType": enum(FORMAT_TYPES), "bSubslotSize": unit("bytes"), "bBitResolution": unit("bits")},
    ),
    4: cs_schema(
        "uac2_format_type_iv",
        "Type IV Format Type Descriptor",
        "Audio Data Formats 2.0 §2.3.4.1",
        [
            "bFormatType" / _b,
        ],
        {"bFormatType": enum(FORMAT_TYPES)},
    ),
}

UAC2_AS: dict[int, Schema] = {0x01: UAC2_AS_GENERAL}

UAC1_AS_ENDPOINT = cs_schema(
    "uac1_as_iso_endpoint",
    "AudioStreaming Isochronous Audio Data Endpoint Descriptor",
    "UAC 1.0 §4.6.1.2",
    [
        "bmAttributes" / _b,
        "bLockDelayUnits" / _b,
        "wLockDelay" / _w,
    ],
    {
        "bmAttributes": flags({0: "Sampling Frequency", 1: "Pitch", 7: "MaxPacketsOnly"}),
        "bLockDelayUnits": _lock_units,
        "wLockDelay": _uac1_lock_delay,
    },
)

UAC2_AS_ENDPOINT = cs_schema(
    "uac2_as_iso_endpoint",
    "AudioStreaming Isochronous Audio Data Endpoint Descriptor",
    "UAC 2.0 §4.10.1.2",
    [
        "bmAttributes" / _b,
        "bmControls" / _b,
        "bLockDelayUnits" / _b,
        "wLockDelay" / _w,
    ],
    {
        "bmAttributes": flags({7: "MaxPacketsOnly"}),
        "bmControls": controls2(["Pitch", "Data Overrun", "Data Underrun"]),
        "bLockDelayUnits": _lock_units,
        "wLockDelay": _uac1_lock_delay,
    },
)

#: UAC1 Table A-5 / UAC2 Table A-9 (AC), UAC1 Table A-6 / UAC2 Table A-10 (AS), Table A-8 / A-13 (endpoint).
UAC1_AC_SUBTYPES = {
    0x01: "HEADER",
    0x02: "INPUT_TERMINAL",
    0x03: "OUTPUT_TERMINAL",
    0x04: "MIXER_UNIT",
    0x05: "SELECTOR_UNIT",
    0x06: "FEATURE_UNIT",
    0x07: "PROCESSING_UNIT",
    0x08: "EXTENSION_UNIT",
}
UAC2_AC_SUBTYPES = {
    0x01: "HEADER",
    0x02: "INPUT_TERMINAL",
    0x03: "OUTPUT_TERMINAL",
    0x04: "MIXER_UNIT",
    0x05: "SELECTOR_UNIT",
    0x06: "FEATURE_UNIT",
    0x07: "EFFECT_UNIT",
    0x08: "PROCESSING_UNIT",
    0x09: "EXTENSION_UNIT",
    0x0A: "CLOCK_SOURCE",
    0x0B: "CLOCK_SELECTOR",
    0x0C: "CLOCK_MULTIPLIER",
    0x0D: "SAMPLE_RATE_CONVERTER",
}
AS_SUBTYPES = {0x01: "AS_GENERAL", 0x02: "FORMAT_TYPE"}
EP_SUBTYPES = {0x01: "EP_GENERAL"}

name_subtypes(UAC1_AC, UAC1_AC_SUBTYPES)
name_subtypes(UAC2_AC, UAC2_AC_SUBTYPES)
for _table in (UAC1_AS, UAC2_AS, UAC1_FORMAT_TYPE, UAC2_FORMAT_TYPE):
    name_subtypes(_table, AS_SUBTYPES)
name_subtypes({1: UAC1_AS_ENDPOINT, 2: UAC2_AS_ENDPOINT}, EP_SUBTYPES)


def audio_release(ctx: Context) -> int | None:
    """1 or 2 for UAC1 / UAC2 layouts, None for UAC3 (not decoded)."""
    protocols = (ctx.interface_protocol, ctx.function_protocol)
    if IP_VERSION_03_00 in protocols:
        return None
    if IP_VERSION_02_00 in protocols:
        return 2
    if ctx.class_version is not None and ctx.class_version >= 0x0200:
        return 2
    return 1


def select_audio(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    """Selector for class 0x01, subclasses AudioControl (1) and AudioStreaming (2)."""
    sub = subtype_of(raw)
    if sub is None:
        return None
    release = audio_release(ctx)
    if release is None:
        return None
    if descriptor_type == CS_INTERFACE:
        if ctx.interface_subclass == SUBCLASS_AUDIOCONTROL:
            return (UAC2_AC if release == 2 else UAC1_AC).get(sub)
        if ctx.interface_subclass == SUBCLASS_AUDIOSTREAMING:
            if sub == 0x02 and len(raw) >= 4:  # FORMAT_TYPE, then bFormatType decides
                return (UAC2_FORMAT_TYPE if release == 2 else UAC1_FORMAT_TYPE).get(raw[3])
            return (UAC2_AS if release == 2 else UAC1_AS).get(sub)
    elif descriptor_type == CS_ENDPOINT and ctx.interface_subclass == SUBCLASS_AUDIOSTREAMING and sub == 0x01:
        return UAC2_AS_ENDPOINT if release == 2 else UAC1_AS_ENDPOINT
    return None


register_class(AUDIO_CLASS, select_audio)
