"""USB Audio Class 1.0 and 2.0 descriptors (UAC1 §4.3-4.6, UAC2 §4.7-4.10, Audio Data Formats 1.0/2.0)."""

from __future__ import annotations

import pytest
from classdesc_corpus import meaning, parse_slice

from dkproto.schema.registry import Context, lookup

AC1 = Context(parent="interface", interface_class=1, interface_subclass=1, interface_protocol=0)
AS1 = Context(parent="interface", interface_class=1, interface_subclass=2, interface_protocol=0)
AC2 = Context(parent="interface", interface_class=1, interface_subclass=1, interface_protocol=0x20)
AS2 = Context(parent="interface", interface_class=1, interface_subclass=2, interface_protocol=0x20)
EP1 = Context(
    parent="endpoint", interface_class=1, interface_subclass=2, interface_protocol=0, endpoint_address=0x86
)
EP2 = Context(parent="endpoint", interface_class=1, interface_subclass=2, interface_protocol=0x20)


def parse(hexstr: str, ctx: Context, dtype: int = 0x24):
    return parse_slice(hexstr, ctx, dtype)


# --- UAC1, Logitech C270 microphone (corpus usb/logitech-c270-webcam.json) ------------------------------


def test_uac1_control_interface_from_c270() -> None:
    s, f = parse("09 24 01 0001 2600 01 03", AC1)
    assert (s.key, f.bcdADC, f.wTotalLength, list(f.baInterfaceNr)) == ("uac1_ac_header", 0x0100, 38, [3])
    s, f = parse("0c 24 02 01 0102 00 01 0000 00 00", AC1)
    assert (s.key, f.wTerminalType, meaning(s, f, "wTerminalType")) == (
        "uac1_input_terminal",
        0x0201,
        "Microphone",
    )
    assert meaning(s, f, "wChannelConfig") == "(none)"
    s, f = parse("09 24 03 03 0101 01 05 00", AC1)
    assert (s.key, meaning(s, f, "wTerminalType"), f.bSourceID) == (
        "uac1_output_terminal",
        "USB Streaming",
        5,
    )
    s, f = parse("09 24 06 05 01 01 03 00 00", AC1)
    assert (s.key, f.bControlSize, list(f.bmaControls)) == ("uac1_feature_unit", 1, [3, 0])
    assert meaning(s, f, "bmaControls") == "Master: Mute, Volume; Channel 1: (none)"


def test_uac1_streaming_interface_from_c270() -> None:
    s, f = parse("07 24 01 03 01 0100", AS1)
    assert (s.key, f.bTerminalLink, meaning(s, f, "bDelay"), meaning(s, f, "wFormatTag")) == (
        "uac1_as_general",
        3,
        "1 frames",
        "PCM",
    )
    s, f = parse("0b 24 02 01 01 02 10 01 803e00", AS1)
    assert s.key == "uac1_format_type_i"
    assert (f.bNrChannels, f.bSubframeSize, f.bBitResolution, f.bSamFreqType, list(f.tSamFreq)) == (
        1,
        2,
        16,
        1,
        [16000],
    )
    assert f.tLowerSamFreq is None and f.tUpperSamFreq is None
    assert meaning(s, f, "tSamFreq") == "16000 Hz"
    assert meaning(s, f, "bBitResolution") == "16 bits"
    s, f = parse("07 25 01 01 00 0000", EP1, dtype=0x25)
    assert (s.key, meaning(s, f, "bmAttributes")) == ("uac1_as_iso_endpoint", "Sampling Frequency")


def test_uac1_format_type_i_continuous_range() -> None:
    s, f = parse("0e 24 02 01 02 02 10 00 401f00 80bb00", AS1)
    assert (f.bSamFreqType, f.tLowerSamFreq, f.tUpperSamFreq, f.tSamFreq) == (0, 8000, 48000, None)
    assert meaning(s, f, "bSamFreqType") == "continuous"
    assert meaning(s, f, "tUpperSamFreq") == "48000 Hz"


def test_uac1_format_type_ii_and_iii() -> None:
    # Audio Data Formats 1.0 §2.3.5: MPEG, 384 kbit/s, 1152 samples per frame, 44.1 and 48 kHz
    s, f = parse("0f 24 02 02 8001 8004 02 44ac00 80bb00", AS1)
    assert s.key == "uac1_format_type_ii"
    assert (f.wMaxBitRate, f.wSamplesPerFrame, list(f.tSamFreq)) == (384, 1152, [44100, 48000])
    assert meaning(s, f, "wMaxBitRate") == "384 kbit/s"
    # §2.4.5: IEC1937 AC-3 carried as 2 channels of 16 bits
    s, f = parse("0b 24 02 03 02 02 10 01 80bb00", AS1)
    assert (s.key, f.bNrChannels, list(f.tSamFreq)) == ("uac1_format_type_iii", 2, [48000])
    s, f = parse("07 24 01 01 01 0120", AS1)
    assert meaning(s, f, "wFormatTag") == "IEC1937_AC-3"


def test_uac1_mixer_selector_processing_extension() -> None:
    # mixer: 2 input pins, 2 channels (L, R), 1 byte of mixer controls
    s, f = parse("0d 24 04 06 02 01 02 02 0300 00 ff 00", AC1)
    assert (s.key, list(f.baSourceID), f.bmControls) == ("uac1_mixer_unit", [1, 2], b"\xff")
    assert meaning(s, f, "wChannelConfig") == "Left Front (L), Right Front (R)"
    s, f = parse("08 24 05 07 02 01 02 00", AC1)
    assert (s.key, list(f.baSourceID)) == ("uac1_selector_unit", [1, 2])
    # up/down-mix processing unit with two modes
    s, f = parse("12 24 07 08 0100 01 07 02 0300 00 01 01 00 02 0100 0300", AC1)
    assert (s.key, meaning(s, f, "wProcessType"), f.bNrModes, list(f.waModes)) == (
        "uac1_processing_unit",
        "UP/DOWNMIX_PROCESS",
        2,
        [1, 3],
    )
    assert meaning(s, f, "waModes") == "Left Front (L); Left Front (L), Right Front (R)"
    s, f = parse("0f 24 08 09 3412 01 08 02 0300 00 01 01 00", AC1)
    assert (s.key, f.wExtensionCode, f.bmControls) == ("uac1_extension_unit", 0x1234, b"\x01")


# --- UAC2, Ksoloti Core (corpus usb/ksoloti-core-uac2-midi.json) -----------------------------------------


def test_uac2_control_interface_from_ksoloti() -> None:
    s, f = parse("09 24 01 0002 04 5d00 00", AC2)
    assert (s.key, f.bcdADC, meaning(s, f, "bCategory"), f.wTotalLength) == (
        "uac2_ac_header",
        0x0200,
        "HEADSET",
        93,
    )
    s, f = parse("08 24 0a 04 03 07 00 00", AC2)
    assert s.key == "uac2_clock_source"
    assert meaning(s, f, "bmAttributes") == "Internal programmable Clock"
    assert meaning(s, f, "bmControls") == "Clock Frequency (read/write), Clock Validity (read-only)"
    s, f = parse("11 24 02 01 0101 00 04 02 00000000 00 0000 00", AC2)
    assert (s.key, f.bCSourceID, f.bNrChannels, meaning(s, f, "wTerminalType")) == (
        "uac2_input_terminal",
        4,
        2,
        "USB Streaming",
    )
    s, f = parse("12 24 06 02 01 0f000000 0f000000 0f000000 00", AC2)
    assert (s.key, list(f.bmaControls)) == ("uac2_feature_unit", [15, 15, 15])
    assert meaning(s, f, "bmaControls").startswith(
        "Master: Mute (read/write), Volume (read/write); Channel 1:"
    )
    s, f = parse("0c 24 03 03 0203 00 02 04 0000 00", AC2)
    assert (s.key, meaning(s, f, "wTerminalType"), f.bCSourceID) == ("uac2_output_terminal", "Headphones", 4)


def test_uac2_streaming_interface_from_ksoloti() -> None:
    s, f = parse("10 24 01 01 00 01 01000000 02 00000000 00", AS2)
    assert (s.key, meaning(s, f, "bmFormats"), f.bNrChannels) == ("uac2_as_general", "PCM", 2)
    s, f = parse("06 24 02 01 02 10", AS2)
    assert (s.key, f.bSubslotSize, f.bBitResolution) == ("uac2_format_type_i", 2, 16)
    s, f = parse("08 25 01 00 00 01 0100", EP2, dtype=0x25)
    assert (s.key, meaning(s, f, "bLockDelayUnits"), meaning(s, f, "wLockDelay")) == (
        "uac2_as_iso_endpoint",
        "Milliseconds",
        "1 ms",
    )


def test_uac2_units_not_in_the_corpus() -> None:
    # mixer: 2 pins, 2 channels FL FR, 1 byte of mixer controls, cluster control read-only
    s, f = parse("10 24 04 05 02 01 02 02 03000000 00 ff 01 00", AC2)
    assert (s.key, list(f.baSourceID), f.bmMixerControls) == ("uac2_mixer_unit", [1, 2], b"\xff")
    assert meaning(s, f, "bmChannelConfig") == "Front Left (FL), Front Right (FR)"
    assert meaning(s, f, "bmControls") == "Cluster (read-only)"
    s, f = parse("09 24 05 06 02 01 02 03 00", AC2)
    assert (s.key, meaning(s, f, "bmControls")) == ("uac2_selector_unit", "Selector (read/write)")
    s, f = parse("09 24 0b 07 02 04 05 03 00", AC2)
    assert (s.key, list(f.baCSourceID)) == ("uac2_clock_selector", [4, 5])
    s, f = parse("07 24 0c 08 04 0f 00", AC2)
    assert (s.key, meaning(s, f, "bmControls")) == (
        "uac2_clock_multiplier",
        "Clock Numerator (read/write), Clock Denominator (read/write)",
    )
    s, f = parse("08 24 0d 09 01 04 05 00", AC2)
    assert (s.key, f.bCSourceInID, f.bCSourceOutID) == ("uac2_sample_rate_converter", 4, 5)
    s, f = parse("10 24 07 0a 0200 01 03000000 03000000 00", AC2)
    assert (s.key, meaning(s, f, "wEffectType"), len(f.bmaControls)) == (
        "uac2_effect_unit",
        "REVERBERATION_EFFECT",
        2,
    )
    s, f = parse("1a 24 08 0b 0100 01 01 02 03000000 00 0000 00 02 01000000 03000000", AC2)
    assert (s.key, f.bNrModes, list(f.daModes)) == ("uac2_processing_unit", 2, [1, 3])
    s, f = parse("10 24 09 0c 3412 01 01 02 03000000 00 01 00", AC2)
    assert (s.key, meaning(s, f, "bmControls")) == ("uac2_extension_unit", "Enable (read-only)")


def test_uac2_format_types_ii_iii_iv() -> None:
    s, f = parse("08 24 02 02 8001 0004", AS2)
    assert (s.key, f.wMaxBitRate, f.wSlotsPerFrame) == ("uac2_format_type_ii", 384, 1024)
    s, f = parse("06 24 02 03 02 10", AS2)
    assert (s.key, f.bSubslotSize) == ("uac2_format_type_iii", 2)
    s, f = parse("04 24 02 04", AS2)
    assert s.key == "uac2_format_type_iv"
    s, f = parse("10 24 01 01 00 03 01000000 02 00000000 00", AS2)
    assert meaning(s, f, "bmFormats") == "IEC61937_AC-3"


@pytest.mark.parametrize(
    "ctx,expected",
    [
        (AC1, "uac1_ac_header"),
        (AC2, "uac2_ac_header"),
        (
            Context(parent="interface", interface_class=1, interface_subclass=1, class_version=0x0200),
            "uac2_ac_header",
        ),
        (
            Context(parent="interface", interface_class=1, interface_subclass=1, function_protocol=0x20),
            "uac2_ac_header",
        ),
        (
            Context(parent="interface", interface_class=1, interface_subclass=1, class_version=0x0100),
            "uac1_ac_header",
        ),
    ],
)
def test_release_is_chosen_by_protocol_or_bcdadc(ctx: Context, expected: str) -> None:
    raw = bytes.fromhex("092401000126000103")
    assert lookup(0x24, raw, ctx).key == expected


def test_uac3_and_unknown_subtypes_are_left_raw() -> None:
    uac3 = Context(parent="interface", interface_class=1, interface_subclass=1, interface_protocol=0x30)
    assert lookup(0x24, bytes.fromhex("0a240100030000000000"), uac3) is None
    assert lookup(0x24, bytes.fromhex("05247f0000"), AC1) is None
    assert lookup(0x24, bytes.fromhex("0524027f00"), AS1) is None  # unknown bFormatType
    assert lookup(0x24, bytes.fromhex("052403aabb"), AS1) is None  # FORMAT_SPECIFIC kept raw


def test_feature_unit_with_zero_control_size_does_not_divide_by_zero() -> None:
    _, f = parse("07 24 06 05 01 00 00", AC1)
    assert f.bmaControls is None
