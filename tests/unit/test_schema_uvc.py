"""USB Video Class 1.0/1.1/1.5 descriptors (UVC 1.5 §3.7-3.9 and the payload specifications)."""

from __future__ import annotations

import pytest
from classdesc_corpus import meaning, parse_slice

from dkproto.schema import uvc
from dkproto.schema.registry import Context, lookup

VC = Context(parent="interface", interface_class=0x0E, interface_subclass=1, interface_protocol=0)
VS = Context(parent="interface", interface_class=0x0E, interface_subclass=2, interface_protocol=0)
VC_EP = Context(parent="endpoint", interface_class=0x0E, interface_subclass=1, endpoint_address=0x83)


def parse(hexstr: str, ctx: Context, dtype: int = 0x24):
    return parse_slice(hexstr, ctx, dtype)


def names(schema) -> list[str]:
    return [sc.name for sc in schema.struct.subcons][3:-1]


def test_field_names_follow_the_spec() -> None:
    assert names(uvc.VC_HEADER) == [
        "bcdUVC",
        "wTotalLength",
        "dwClockFrequency",
        "bInCollection",
        "baInterfaceNr",
    ]
    assert names(uvc.VC_CAMERA_TERMINAL) == [
        "bTerminalID",
        "wTerminalType",
        "bAssocTerminal",
        "iTerminal",
        "wObjectiveFocalLengthMin",
        "wObjectiveFocalLengthMax",
        "wOcularFocalLength",
        "bControlSize",
        "bmControls",
    ]
    assert names(uvc.VC[0x05]) == [
        "bUnitID",
        "bSourceID",
        "wMaxMultiplier",
        "bControlSize",
        "bmControls",
        "iProcessing",
        "bmVideoStandards",
    ]
    assert names(uvc.VC[0x07]) == [
        "bUnitID",
        "bSourceID",
        "iEncoding",
        "bControlSize",
        "bmControls",
        "bmControlsRuntime",
    ]
    assert names(uvc.VS[0x01]) == [
        "bNumFormats",
        "wTotalLength",
        "bEndpointAddress",
        "bmInfo",
        "bTerminalLink",
        "bStillCaptureMethod",
        "bTriggerSupport",
        "bTriggerUsage",
        "bControlSize",
        "bmaControls",
    ]
    assert names(uvc.VS[0x11]) == [
        "bFrameIndex",
        "bmCapabilities",
        "wWidth",
        "wHeight",
        "dwMinBitRate",
        "dwMaxBitRate",
        "dwDefaultFrameInterval",
        "bFrameIntervalType",
        "dwBytesPerLine",
        "dwMinFrameInterval",
        "dwMaxFrameInterval",
        "dwFrameIntervalStep",
        "dwFrameInterval",
    ]


# --- ELP H.264 camera (corpus usb/elp-h264-camera.json), UVC 1.00 ------------------------------------------


def test_elp_videocontrol() -> None:
    s, f = parse("0e 24 01 0001 7300 c0e1e400 02 01 02", VC)
    assert (f.bcdUVC, f.wTotalLength, f.dwClockFrequency, list(f.baInterfaceNr)) == (
        0x0100,
        0x73,
        15_000_000,
        [1, 2],
    )
    assert meaning(s, f, "dwClockFrequency") == "15000000 Hz (15.000000 MHz)"
    s, f = parse("12 24 02 01 0102 00 00 0000 0000 0000 03 0e2000", VC)
    assert s is uvc.VC_CAMERA_TERMINAL
    assert (meaning(s, f, "wTerminalType"), f.bmControls) == ("ITT_CAMERA", 0x200E)
    # lsusb: Auto-Exposure Mode, Auto-Exposure Priority, Exposure Time (Absolute), Roll (Absolute)
    assert meaning(s, f, "bmControls") == (
        "Auto-Exposure Mode, Auto-Exposure Priority, Exposure Time (Absolute), Roll (Absolute)"
    )
    s, f = parse("1c 24 06 03 7033f02811632e4aba2c6890eb334016 18 01 02 03 ffffff 00", VC)
    assert (s.key, f.bNumControls, list(f.baSourceID), f.bmControls) == (
        "uvc_extension_unit",
        24,
        [2],
        0xFFFFFF,
    )
    assert meaning(s, f, "guidExtensionCode") == "{28F03370-6311-4A2E-BA2C-6890EB334016}"
    s, f = parse("05 25 03 4000", VC_EP, dtype=0x25)
    assert (s.key, meaning(s, f, "wMaxTransferSize")) == ("uvc_vc_interrupt_endpoint", "64 bytes")


def test_uvc_1_0_processing_unit_has_no_video_standards() -> None:
    # 11 bytes = 9 + bControlSize: UVC 1.0 layout. lsusb reads bmVideoStandards past the end here
    # ("Warning: Descriptor too short", then the next descriptor's bLength); dkproto does not.
    s, f = parse("0b 24 05 02 01 0000 02 7f17 00", VC)
    assert f.bmVideoStandards is None
    assert f.bmControls == 0x177F
    assert meaning(s, f, "bmControls").startswith("Brightness, Contrast, Hue, Saturation, Sharpness, Gamma")


def test_uvc_1_1_and_1_5_processing_units() -> None:
    s, f = parse("0c 24 05 02 01 0040 02 7f17 00 09", VC)  # Rockchip-style, 1.1 layout
    assert (f.bmVideoStandards, meaning(s, f, "bmVideoStandards")) == (9, "None, SECAM - 625/50")
    assert meaning(s, f, "wMaxMultiplier") == "163.84x"
    s, f = parse("0d 24 05 02 01 0000 03 ff ff 07 00 00", VC)  # UVC 1.5: 3-byte bmControls
    assert f.bControlSize == 3 and f.bmControls == 0x07FFFF and f.bmVideoStandards == 0
    assert meaning(s, f, "bmControls").endswith("Analog Video Lock Status, Contrast, Auto")


def test_encoding_selector_output_and_other_terminals() -> None:
    s, f = parse("0d 24 07 04 03 00 03 ff ff 01 01 00 00", VC)
    assert (s.key, f.bmControls, f.bmControlsRuntime) == ("uvc_encoding_unit", 0x01FFFF, 1)
    assert meaning(s, f, "bmControlsRuntime") == "Select Layer"
    s, f = parse("08 24 04 05 02 01 02 00", VC)
    assert (s.key, list(f.baSourceID)) == ("uvc_selector_unit", [1, 2])
    s, f = parse("09 24 03 05 0101 00 04 00", VC)
    assert (s.key, meaning(s, f, "wTerminalType")) == ("uvc_output_terminal", "TT_STREAMING")
    s, f = parse("08 24 02 07 0104 00 00", VC)  # composite connector input
    assert (s.key, meaning(s, f, "wTerminalType")) == ("uvc_input_terminal", "COMPOSITE_CONNECTOR")
    s, f = parse("0d 24 02 08 0202 00 00 01 0f 02 ff 01", VC)
    assert (s.key, f.bmControls, f.bmTransportModes) == (
        "uvc_media_transport_input_terminal",
        0x0F,
        b"\xff\x01",
    )
    s, f = parse("0f 24 02 01 0102 00 00 0000 0000 0000 00", VC)  # camera with bControlSize 0
    assert f.bmControls is None


def test_elp_videostreaming_formats_and_frames() -> None:
    s, f = parse("1b 24 04 02 06 59555932 00001000 800000aa00389b71 10 01 00 00 00 00", VS)
    assert (s.key, f.bFormatIndex, f.bNumFrameDescriptors, f.bBitsPerPixel) == (
        "uvc_vs_format_uncompressed",
        2,
        6,
        16,
    )
    assert meaning(s, f, "guidFormat") == "{32595559-0000-0010-8000-00AA00389B71} YUY2"
    assert meaning(s, f, "bmInterlaceFlags") == "non-interlaced"
    s, f = parse("1c 24 10 01 08 48323634 00001000 800000aa00389b71 10 01 00 00 00 00 01", VS)
    assert s.key == "uvc_vs_format_frame_based"
    assert meaning(s, f, "guidFormat").endswith(" H264")
    assert meaning(s, f, "bVariableSize") == "variable size"
    s, f = parse(
        "26 24 11 01 00 8007 3804 0040e309 0080c613 15160500 03 00000000 15160500 801a0600 2a2c0a00", VS
    )
    assert (s.key, f.wWidth, f.wHeight, f.bFrameIntervalType, list(f.dwFrameInterval)) == (
        "uvc_vs_frame_frame_based",
        1920,
        1080,
        3,
        [333333, 400000, 666666],
    )
    assert f.dwMinFrameInterval is None and f.dwBytesPerLine == 0
    assert meaning(s, f, "dwDefaultFrameInterval") == "33.3333 ms (30.00 fps)"
    assert (
        meaning(s, f, "dwFrameInterval")
        == "33.3333 ms (30.00 fps), 40 ms (25.00 fps), 66.6666 ms (15.00 fps)"
    )
    s, f = parse("06 24 0d 01 01 04", VS)
    assert (meaning(s, f, "bColorPrimaries"), meaning(s, f, "bMatrixCoefficients")) == (
        "BT.709, sRGB",
        "SMPTE 170M (BT.601)",
    )


def test_c270_mjpeg_frame_and_input_header() -> None:
    s, f = parse("0b 24 06 02 13 01 01 00 00 00 00", VS)
    assert (s.key, f.bNumFrameDescriptors, meaning(s, f, "bmFlags")) == (
        "uvc_vs_format_mjpeg",
        19,
        "FixedSizeSamples",
    )
    s, f = parse(
        "32 24 07 01 01 8002 e001 00007701 0000ca08 00600900 15160500 06"
        " 15160500 801a0600 20a10700 2a2c0a00 40420f00 80841e00",
        VS,
    )
    assert (s.key, meaning(s, f, "bmCapabilities"), f.dwMaxVideoFrameBufferSize) == (
        "uvc_vs_frame_mjpeg",
        "Still image supported",
        614400,
    )
    assert list(f.dwFrameInterval)[-1] == 2_000_000
    s, f = parse("0f 24 01 02 7e02 81 00 03 02 01 00 01 00 00", VS)
    assert (s.key, f.bNumFormats, f.bEndpointAddress, list(f.bmaControls)) == (
        "uvc_vs_input_header",
        2,
        0x81,
        [0, 0],
    )
    assert meaning(s, f, "bStillCaptureMethod") == "Method 2"


def test_continuous_frame_intervals() -> None:
    s, f = parse(
        "26 24 05 01 00 8002 e001 00007701 0000ca08 00600900 15160500 00 15160500 80841e00 15160500", VS
    )
    assert f.bFrameIntervalType == 0 and f.dwFrameInterval is None
    assert (f.dwMinFrameInterval, f.dwMaxFrameInterval, f.dwFrameIntervalStep) == (333333, 2_000_000, 333333)
    assert meaning(s, f, "bFrameIntervalType") == "continuous"
    assert meaning(s, f, "dwMaxFrameInterval") == "200 ms (5.00 fps)"


def test_output_header_still_image_and_other_formats() -> None:
    s, f = parse("08 24 02 01 2000 02 03", VS)  # UVC 1.0: no bControlSize
    assert (s.key, f.bControlSize, f.bmaControls) == ("uvc_vs_output_header", None, None)
    s, f = parse("0a 24 02 01 2000 02 03 01 00", VS)  # UVC 1.1+
    assert (f.bControlSize, list(f.bmaControls)) == (1, [0])
    s, f = parse("12 24 03 00 03 8002 e001 4001 f000 a000 7800 01 05", VS)
    assert [(x.wWidth, x.wHeight) for x in f.sizes] == [(640, 480), (320, 240), (160, 120)]
    assert (meaning(s, f, "sizes"), list(f.bCompression)) == ("640x480, 320x240, 160x120", [5])
    s, f = parse("07 24 0a 01 00 bc 00", VS)  # MPEG-2 TS, UVC 1.0 (no guidStrideFormat)
    assert (s.key, f.bPacketLength, f.guidStrideFormat) == ("uvc_vs_format_mpeg2ts", 188, None)
    s, f = parse("17 24 0a 01 00 bc 00 59555932 00001000 800000aa00389b71", VS)
    assert meaning(s, f, "guidStrideFormat").endswith("YUY2")
    s, f = parse("09 24 0c 01 00c00100 82", VS)
    assert (s.key, meaning(s, f, "bFormatType")) == ("uvc_vs_format_dv", "HD-DV, 60 Hz")
    s, f = parse("18 24 12 01 4d504547 00001000 800000aa00389b71 00100000", VS)
    assert (s.key, f.dwPacketLength) == ("uvc_vs_format_stream_based", 4096)


@pytest.mark.parametrize("raw", ["0e2406030000000000000000000000", "0824050201000002"])
def test_counts_past_blength_fail_cleanly(raw: str) -> None:
    from construct import ConstructError

    b = bytes.fromhex(raw)
    with pytest.raises(ConstructError):
        lookup(0x24, b, VC).struct.parse(b)


def test_h264_payload_format_and_frame() -> None:
    # UVC 1.5 H.264 payload: format (52 bytes) with 20 macroblock-rate limits, frame with 2 intervals
    fmt = (
        "34 24 13 03 02 01 04 00 76 00 00 3f"
        + "cc03"
        + "0000" * 3
        + "cc03"
        + "0000" * 3
        + "cc03"
        + "0000" * 11
    )
    s, f = parse(fmt, VS)
    assert (s.key, f.bFormatIndex, f.bMaxCodecConfigDelay, f.bmSupportedRateControlModes) == (
        "uvc_vs_format_h264",
        3,
        4,
        0x3F,
    )
    assert f.wMaxMBperSecOneResolutionNoScalability == 972
    assert f.wMaxMBperSecTwoResolutionsTemporalScalablility == 0
    assert len(s.struct.build(f)) == 52
    s, f = parse(fmt.replace("34 24 13", "34 24 15"), VS)
    assert s.key == "uvc_vs_format_h264_simulcast"
    frame = (
        "34 24 14 01 0005 d002 0100 0100 4240 28 0000 01000000 0300 00000000 00000000"
        " 0000c201 0000c201 15160500 02 15160500 2a2c0a00"
    )
    s, f = parse(frame, VS)
    assert s.key == "uvc_vs_frame_h264"
    assert (f.wWidth, f.wHeight, f.wProfile, f.bLevelIDC, f.bNumFrameIntervals) == (1280, 720, 0x4042, 40, 2)
    assert meaning(s, f, "bLevelIDC") == "level 4"
    assert meaning(s, f, "dwFrameInterval") == "33.3333 ms (30.00 fps), 66.6666 ms (15.00 fps)"
    assert meaning(s, f, "bDescriptorSubtype") == "VS_FRAME_H264"


def test_vp8_payload_descriptors_are_left_raw() -> None:
    assert lookup(0x24, bytes.fromhex("05241601ff"), VS) is None
    assert lookup(0x24, bytes.fromhex("05241701ff"), VS) is None
