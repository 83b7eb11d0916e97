"""USB Video Class 1.0 / 1.1 / 1.5 class-specific descriptors (VideoControl and VideoStreaming).

Layouts (UVC 1.5 numbering; 1.0 and 1.1 use the same sections):

* VideoControl, §3.7.2: header (§3.7.2), input terminal (§3.7.2.1), output terminal
  (§3.7.2.2), camera terminal (§3.7.2.3), selector unit (§3.7.2.4), processing unit
  (§3.7.2.5), encoding unit (§3.7.2.6, UVC 1.5), extension unit (§3.7.2.7); VC interrupt
  endpoint (§3.8.2.2, CS_ENDPOINT subtype EP_INTERRUPT). Media transport terminals: UVC 1.5
  "Media Transport Terminal" (input terminal of type ITT_MEDIA_TRANSPORT_INPUT).
* VideoStreaming, §3.9.2: input header (§3.9.2.1), output header (§3.9.2.2), still image frame
  (§3.9.2.5), color matching (§3.9.2.6).
* Payload specifications 1.5: Uncompressed §3.1.1 / §3.1.2, MJPEG §3.1.1 / §3.1.2, Frame Based
  §3.1.1 / §3.1.2 (H.264 and others carried frame-based), Stream Based §3.1.1, MPEG-2 TS §3.1.1,
  DV §3.1.1, H.264 §3.1.1 / §3.1.2 (H.264 format 0x13, simulcast format 0x15, frame 0x14).

Release differences are read from the bytes themselves, since the slice is exactly ``bLength``:
the processing unit has ``bmVideoStandards`` only when ``bLength`` leaves room for it (UVC 1.1
and later; UVC 1.0 devices send 9 + ``bControlSize`` bytes), its ``bmControls`` is
``bControlSize`` bytes (3 in UVC 1.5); the output header has ``bControlSize``/``bmaControls``
from UVC 1.1 on; the MPEG-2 TS format has ``guidStrideFormat`` from UVC 1.1 on.

Not decoded (kept raw): the VP8 payload descriptors (subtypes 0x16-0x18).
"""

from __future__ import annotations

from typing import Any

from construct import Array, Bytes, BytesInteger, If, Int8ul, Int16ul, Int32ul, Struct, this

from dkproto.schema.classcommon import (
    CS_ENDPOINT,
    CS_INTERFACE,
    bcd,
    cs_schema,
    enum,
    flags,
    guid,
    guid_text,
    hexbytes,
    name_subtypes,
    per_item,
    subtype_of,
    unit,
)
from dkproto.schema.registry import Context, Meaning, Schema, register_class

__all__ = ["UVC_TERMINAL_TYPES", "VC", "VS", "select_uvc"]

VIDEO_CLASS = 0x0E
SC_VIDEOCONTROL = 0x01
SC_VIDEOSTREAMING = 0x02

ITT_CAMERA = 0x0201
ITT_MEDIA_TRANSPORT_INPUT = 0x0202

#: UVC 1.5 Appendix B: terminal types.
UVC_TERMINAL_TYPES = {
    0x0100: "TT_VENDOR_SPECIFIC",
    0x0101: "TT_STREAMING",
    0x0200: "ITT_VENDOR_SPECIFIC",
    0x0201: "ITT_CAMERA",
    0x0202: "ITT_MEDIA_TRANSPORT_INPUT",
    0x0300: "OTT_VENDOR_SPECIFIC",
    0x0301: "OTT_DISPLAY",
    0x0302: "OTT_MEDIA_TRANSPORT_OUTPUT",
    0x0400: "EXTERNAL_VENDOR_SPECIFIC",
    0x0401: "COMPOSITE_CONNECTOR",
    0x0402: "SVIDEO_CONNECTOR",
    0x0403: "COMPONENT_CONNECTOR",
}

#: UVC 1.5 §3.7.2.3 bmControls of the camera terminal.
CAMERA_CONTROLS = dict(
    enumerate(
        [
            "Scanning Mode",
            "Auto-Exposure Mode",
            "Auto-Exposure Priority",
            "Exposure Time (Absolute)",
            "Exposure Time (Relative)",
            "Focus (Absolute)",
            "Focus (Relative)",
            "Iris (Absolute)",
            "Iris (Relative)",
            "Zoom (Absolute)",
            "Zoom (Relative)",
            "PanTilt (Absolute)",
            "PanTilt (Relative)",
            "Roll (Absolute)",
            "Roll (Relative)",
            "Reserved",
            "Reserved",
            "Focus, Auto",
            "Privacy",
            "Focus, Simple",
            "Window",
            "Region of Interest",
        ]
    )
)

#: UVC 1.5 §3.7.2.5 bmControls of the processing unit.
PROCESSING_CONTROLS = dict(
    enumerate(
        [
            "Brightness",
            "Contrast",
            "Hue",
            "Saturation",
            "Sharpness",
            "Gamma",
            "White Balance Temperature",
            "White Balance Component",
            "Backlight Compensation",
            "Gain",
            "Power Line Frequency",
            "Hue, Auto",
            "White Balance Temperature, Auto",
            "White Balance Component, Auto",
            "Digital Multiplier",
            "Digital Multiplier Limit",
            "Analog Video Standard",
            "Analog Video Lock Status",
            "Contrast, Auto",
        ]
    )
)

VIDEO_STANDARDS = dict(
    enumerate(["None", "NTSC - 525/60", "PAL - 625/50", "SECAM - 625/50", "NTSC - 625/50", "PAL - 525/60"])
)

#: UVC 1.5 §3.7.2.6 bmControls / bmControlsRuntime of the encoding unit.
ENCODING_CONTROLS = dict(
    enumerate(
        [
            "Select Layer",
            "Profile and Toolset",
            "Video Resolution",
            "Minimum Frame Interval",
            "Slice Mode",
            "Rate Control Mode",
            "Average Bit Rate",
            "CPB Size",
            "Peak Bit Rate",
            "Quantization Parameter",
            "Synchronization and Long-Term Reference Frame",
            "Long-Term Buffer",
            "Picture Long-Term Reference",
            "LTR Validation",
            "Level IDC",
            "SEI Message",
            "QP Range",
            "Priority ID",
            "Start or Stop Layer/View",
            "Error Resiliency",
        ]
    )
)

#: UVC 1.5 §3.9.2.1 bmaControls of the VS input header (per format).
VS_CONTROLS = dict(
    enumerate(
        [
            "wKeyFrameRate",
            "wPFrameRate",
            "wCompQuality",
            "wCompWindowSize",
            "Generate Key Frame",
            "Update Frame Segment",
        ]
    )
)

MEDIA_TRANSPORT_CONTROLS = dict(
    enumerate(
        ["Transport Control", "Absolute Track Number Control", "Media Information", "Time Code Information"]
    )
)

COLOR_PRIMARIES = {
    0: "Unspecified",
    1: "BT.709, sRGB",
    2: "BT.470-2 (M)",
    3: "BT.470-2 (B, G)",
    4: "SMPTE 170M",
    5: "SMPTE 240M",
}
TRANSFER_CHARACTERISTICS = {
    0: "Unspecified",
    1: "BT.709",
    2: "BT.470-2 M",
    3: "BT.470-2 B, G",
    4: "SMPTE 170M",
    5: "SMPTE 240M",
    6: "Linear (V = Lc)",
    7: "sRGB (very similar to BT.709)",
}
MATRIX_COEFFICIENTS = {
    0: "Unspecified",
    1: "BT.709",
    2: "FCC",
    3: "BT.470-2 B, G",
    4: "SMPTE 170M (BT.601)",
    5: "SMPTE 240M",
}

#: Suffix of the "FourCC" GUIDs the payload specs use (YUY2, NV12, M420, I420, H264, ...).
FOURCC_GUID_SUFFIX = "-0000-0010-8000-00AA00389B71}"


def _format_guid(value: Any, _c: Any = None) -> str | None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 16:
        return None
    text = guid_text(bytes(value))
    name = None
    if text.endswith(FOURCC_GUID_SUFFIX):
        fourcc = bytes(value[:4])
        if all(32 <= b < 127 for b in fourcc):
            name = fourcc.decode("ascii")
    return f"{text} {name}" if name else text


def interval(value: Any, _c: Any = None) -> str | None:
    """A frame interval in 100 ns units: ``333333`` -> ``"33.3333 ms (30.00 fps)"``."""
    if not isinstance(value, int):
        return None
    if value == 0:
        return "0 (invalid)"
    return f"{value / 10000:g} ms ({1e7 / value:.2f} fps)"


def _intervals(value: Any, c: Any = None) -> str | None:
    if not isinstance(value, (list, tuple)):
        return None
    return ", ".join(interval(v) or "" for v in value)


def _endpoint(value: Any, _c: Any = None) -> str | None:
    if not isinstance(value, int):
        return None
    return f"EP {value & 0x0F} {'IN' if value & 0x80 else 'OUT'}" if value else "none"


def _clock(value: Any, _c: Any = None) -> str | None:
    return f"{value} Hz ({value / 1e6:.6f} MHz)" if isinstance(value, int) else None


def _bitmap(size: Any) -> Any:
    """A little-endian bitmap of ``size`` bytes as an int (absent when ``size`` is 0)."""
    return If(size > 0, BytesInteger(size, swapped=True))


_terminal = enum(UVC_TERMINAL_TYPES, "Unknown")
_SOURCES = "baSourceID" / Array(this.bNrInPins, Int8ul)
_IT_COMMON = [
    "bTerminalID" / Int8ul,
    "wTerminalType" / Int16ul,
    "bAssocTerminal" / Int8ul,
    "iTerminal" / Int8ul,
]

# --- VideoControl -------------------------------------------------------------------------------

VC_HEADER = cs_schema(
    "uvc_vc_header",
    "VideoControl Interface Header Descriptor",
    "UVC 1.5 §3.7.2",
    [
        "bcdUVC" / Int16ul,
        "wTotalLength" / Int16ul,
        "dwClockFrequency" / Int32ul,
        "bInCollection" / Int8ul,
        "baInterfaceNr" / Array(this.bInCollection, Int8ul),
    ],
    {"bcdUVC": bcd, "wTotalLength": unit("bytes"), "dwClockFrequency": _clock},
)

VC_INPUT_TERMINAL = cs_schema(
    "uvc_input_terminal",
    "Input Terminal Descriptor",
    "UVC 1.5 §3.7.2.1",
    list(_IT_COMMON),
    {"wTerminalType": _terminal},
)

VC_CAMERA_TERMINAL = cs_schema(
    "uvc_camera_terminal",
    "Camera Terminal Descriptor",
    "UVC 1.5 §3.7.2.3",
    [
        *_IT_COMMON,
        "wObjectiveFocalLengthMin" / Int16ul,
        "wObjectiveFocalLengthMax" / Int16ul,
        "wOcularFocalLength" / Int16ul,
        "bControlSize" / Int8ul,
        "bmControls" / _bitmap(this.bControlSize),
    ],
    {"wTerminalType": _terminal, "bmControls": flags(CAMERA_CONTROLS)},
)

VC_MEDIA_TRANSPORT_INPUT = cs_schema(
    "uvc_media_transport_input_terminal",
    "Media Transport Input Terminal Descriptor",
    "UVC 1.5 Media Transport Terminal §2.2.1",
    [
        *_IT_COMMON,
        "bControlSize" / Int8ul,
        "bmControls" / _bitmap(this.bControlSize),
        "bTransportModeSize" / Int8ul,
        "bmTransportModes" / Bytes(this.bTransportModeSize),
    ],
    {"wTerminalType": _terminal, "bmControls": flags(MEDIA_TRANSPORT_CONTROLS), "bmTransportModes": hexbytes},
)

VC: dict[int, Schema] = {
    0x01: VC_HEADER,
    0x03: cs_schema(
        "uvc_output_terminal",
        "Output Terminal Descriptor",
        "UVC 1.5 §3.7.2.2",
        [
            "bTerminalID" / Int8ul,
            "wTerminalType" / Int16ul,
            "bAssocTerminal" / Int8ul,
            "bSourceID" / Int8ul,
            "iTerminal" / Int8ul,
        ],
        {"wTerminalType": _terminal},
    ),
    0x04: cs_schema(
        "uvc_selector_unit",
        "Selector Unit Descriptor",
        "UVC 1.5 §3.7.2.4",
        [
            "bUnitID" / Int8ul,
            "bNrInPins" / Int8ul,
            _SOURCES,
            "iSelector" / Int8ul,
        ],
    ),
    0x05: cs_schema(
        "uvc_processing_unit",
        "Processing Unit Descriptor",
        "UVC 1.5 §3.7.2.5",
        [
            "bUnitID" / Int8ul,
            "bSourceID" / Int8ul,
            "wMaxMultiplier" / Int16ul,
            "bControlSize" / Int8ul,
            "bmControls" / _bitmap(this.bControlSize),
            "iProcessing" / Int8ul,
            "bmVideoStandards" / If(this.bLength >= 10 + this.bControlSize, Int8ul),
        ],
        {
            "wMaxMultiplier": lambda v, c: f"{v / 100:g}x" if v else None,
            "bmControls": flags(PROCESSING_CONTROLS),
            "bmVideoStandards": flags(VIDEO_STANDARDS),
        },
    ),
    0x06: cs_schema(
        "uvc_extension_unit",
        "Extension Unit Descriptor",
        "UVC 1.5 §3.7.2.7",
        [
            "bUnitID" / Int8ul,
            "guidExtensionCode" / Bytes(16),
            "bNumControls" / Int8ul,
            "bNrInPins" / Int8ul,
            _SOURCES,
            "bControlSize" / Int8ul,
            "bmControls" / _bitmap(this.bControlSize),
            "iExtension" / Int8ul,
        ],
        {"guidExtensionCode": guid(), "bmControls": flags({}, none="(none)")},
    ),
    0x07: cs_schema(
        "uvc_encoding_unit",
        "Encoding Unit Descriptor",
        "UVC 1.5 §3.7.2.6",
        [
            "bUnitID" / Int8ul,
            "bSourceID" / Int8ul,
            "iEncoding" / Int8ul,
            "bControlSize" / Int8ul,
            "bmControls" / _bitmap(this.bControlSize),
            "bmControlsRuntime" / _bitmap(this.bControlSize),
        ],
        {"bmControls": flags(ENCODING_CONTROLS), "bmControlsRuntime": flags(ENCODING_CONTROLS)},
    ),
}

VC_ENDPOINT = cs_schema(
    "uvc_vc_interrupt_endpoint",
    "VC Interrupt Endpoint Descriptor",
    "UVC 1.5 §3.8.2.2",
    [
        "wMaxTransferSize" / Int16ul,
    ],
    {"wMaxTransferSize": unit("bytes")},
)

# --- VideoStreaming -----------------------------------------------------------------------------

_FRAME_INTERVALS = [
    "bFrameIntervalType" / Int8ul,
]
_INTERVAL_TAIL = [
    "dwMinFrameInterval" / If(this.bFrameIntervalType == 0, Int32ul),
    "dwMaxFrameInterval" / If(this.bFrameIntervalType == 0, Int32ul),
    "dwFrameIntervalStep" / If(this.bFrameIntervalType == 0, Int32ul),
    "dwFrameInterval" / If(this.bFrameIntervalType > 0, Array(this.bFrameIntervalType, Int32ul)),
]
_INTERLACE = flags(
    {0: "Interlaced stream or variable", 1: "1 field per frame", 2: "Field 1 first"}, none="non-interlaced"
)
_FRAME_CAPS = flags({0: "Still image supported", 1: "Fixed frame-rate"})

_FRAME_MEANINGS: dict[str, Meaning] = {
    "bmCapabilities": _FRAME_CAPS,
    "wWidth": unit("pixels"),
    "wHeight": unit("pixels"),
    "dwMinBitRate": unit("bit/s"),
    "dwMaxBitRate": unit("bit/s"),
    "dwMaxVideoFrameBufferSize": unit("bytes"),
    "dwBytesPerLine": unit("bytes"),
    "dwDefaultFrameInterval": interval,
    "bFrameIntervalType": lambda v, c: "continuous" if v == 0 else f"{v} discrete intervals",
    "dwMinFrameInterval": interval,
    "dwMaxFrameInterval": interval,
    "dwFrameIntervalStep": interval,
    "dwFrameInterval": _intervals,
}

_FRAME_HEAD = [
    "bFrameIndex" / Int8ul,
    "bmCapabilities" / Int8ul,
    "wWidth" / Int16ul,
    "wHeight" / Int16ul,
    "dwMinBitRate" / Int32ul,
    "dwMaxBitRate" / Int32ul,
]

_FRAME = [
    *_FRAME_HEAD,
    "dwMaxVideoFrameBufferSize" / Int32ul,
    "dwDefaultFrameInterval" / Int32ul,
    "bFrameIntervalType" / Int8ul,
    *_INTERVAL_TAIL,
]
_FRAME_BASED_FRAME = [
    *_FRAME_HEAD,
    "dwDefaultFrameInterval" / Int32ul,
    "bFrameIntervalType" / Int8ul,
    "dwBytesPerLine" / Int32ul,
    *_INTERVAL_TAIL,
]

_FORMAT_MEANINGS: dict[str, Meaning] = {
    "guidFormat": _format_guid,
    "bBitsPerPixel": unit("bits"),
    "bmInterlaceFlags": _INTERLACE,
    "bCopyProtect": lambda v, c: "restrict duplication" if v else "no restrictions",
    "bVariableSize": lambda v, c: "variable size" if v else "fixed size",
}

VS: dict[int, Schema] = {
    0x01: cs_schema(
        "uvc_vs_input_header",
        "VideoStreaming Input Header Descriptor",
        "UVC 1.5 §3.9.2.1",
        [
            "bNumFormats" / Int8ul,
            "wTotalLength" / Int16ul,
            "bEndpointAddress" / Int8ul,
            "bmInfo" / Int8ul,
            "bTerminalLink" / Int8ul,
            "bStillCaptureMethod" / Int8ul,
            "bTriggerSupport" / Int8ul,
            "bTriggerUsage" / Int8ul,
            "bControlSize" / Int8ul,
            "bmaControls" / Array(this.bNumFormats, _bitmap(this.bControlSize)),
        ],
        {
            "wTotalLength": unit("bytes"),
            "bEndpointAddress": _endpoint,
            "bmInfo": flags({0: "Dynamic Format Change supported"}),
            "bStillCaptureMethod": enum({0: "none", 1: "Method 1", 2: "Method 2", 3: "Method 3"}, "Reserved"),
            "bTriggerSupport": enum({0: "not supported", 1: "supported"}),
            "bTriggerUsage": enum({0: "Initiate still image capture", 1: "General purpose button event"}),
            "bmaControls": per_item(flags(VS_CONTROLS), "format {}", start=1),
        },
    ),
    0x02: cs_schema(
        "uvc_vs_output_header",
        "VideoStreaming Output Header Descriptor",
        "UVC 1.5 §3.9.2.2",
        [
            "bNumFormats" / Int8ul,
            "wTotalLength" / Int16ul,
            "bEndpointAddress" / Int8ul,
            "bTerminalLink" / Int8ul,
            "bControlSize" / If(this.bLength >= 9, Int8ul),
            "bmaControls" / If(this.bLength >= 9, Array(this.bNumFormats, _bitmap(this.bControlSize))),
        ],
        {
            "wTotalLength": unit("bytes"),
            "bEndpointAddress": _endpoint,
            "bmaControls": per_item(flags(VS_CONTROLS), "format {}", start=1),
        },
    ),
    0x03: cs_schema(
        "uvc_still_image_frame",
        "Still Image Frame Descriptor",
        "UVC 1.5 §3.9.2.5",
        [
            "bEndpointAddress" / Int8ul,
            "bNumImageSizePatterns" / Int8ul,
            "sizes" / Array(this.bNumImageSizePatterns, Struct("wWidth" / Int16ul, "wHeight" / Int16ul)),
            "bNumCompressionPattern" / Int8ul,
            "bCompression" / Array(this.bNumCompressionPattern, Int8ul),
        ],
        {
            "bEndpointAddress": _endpoint,
            "sizes": lambda v, c: ", ".join(f"{s.wWidth}x{s.wHeight}" for s in v),
            "bCompression": lambda v, c: ", ".join(str(x) for x in v) or "(none)",
        },
    ),
    0x04: cs_schema(
        "uvc_vs_format_uncompressed",
        "Uncompressed Video Format Descriptor",
        "UVC Uncompressed Payload 1.5 §3.1.1",
        [
            "bFormatIndex" / Int8ul,
            "bNumFrameDescriptors" / Int8ul,
            "guidFormat" / Bytes(16),
            "bBitsPerPixel" / Int8ul,
            "bDefaultFrameIndex" / Int8ul,
            "bAspectRatioX" / Int8ul,
            "bAspectRatioY" / Int8ul,
            "bmInterlaceFlags" / Int8ul,
            "bCopyProtect" / Int8ul,
        ],
        _FORMAT_MEANINGS,
    ),
    0x05: cs_schema(
        "uvc_vs_frame_uncompressed",
        "Uncompressed Video Frame Descriptor",
        "UVC Uncompressed Payload 1.5 §3.1.2",
        _FRAME,
        _FRAME_MEANINGS,
    ),
    0x06: cs_schema(
        "uvc_vs_format_mjpeg",
        "MJPEG Video Format Descriptor",
        "UVC MJPEG Payload 1.5 §3.1.1",
        [
            "bFormatIndex" / Int8ul,
            "bNumFrameDescriptors" / Int8ul,
            "bmFlags" / Int8ul,
            "bDefaultFrameIndex" / Int8ul,
            "bAspectRatioX" / Int8ul,
            "bAspectRatioY" / Int8ul,
            "bmInterlaceFlags" / Int8ul,
            "bCopyProtect" / Int8ul,
        ],
        {"bmFlags": flags({0: "FixedSizeSamples"}), **_FORMAT_MEANINGS},
    ),
    0x07: cs_schema(
        "uvc_vs_frame_mjpeg",
        "MJPEG Video Frame Descriptor",
        "UVC MJPEG Payload 1.5 §3.1.2",
        _FRAME,
        _FRAME_MEANINGS,
    ),
    0x0A: cs_schema(
        "uvc_vs_format_mpeg2ts",
        "MPEG-2 TS Format Descriptor",
        "UVC MPEG-2 TS Payload 1.5 §3.1.1",
        [
            "bFormatIndex" / Int8ul,
            "bDataOffset" / Int8ul,
            "bPacketLength" / Int8ul,
            "bStrideLength" / Int8ul,
            "guidStrideFormat" / If(this.bLength >= 23, Bytes(16)),
        ],
        {"guidStrideFormat": _format_guid},
    ),
    0x0C: cs_schema(
        "uvc_vs_format_dv",
        "DV Format Descriptor",
        "UVC DV Payload 1.5 §3.1.1",
        [
            "bFormatIndex" / Int8ul,
            "dwMaxVideoFrameBufferSize" / Int32ul,
            "bFormatType" / Int8ul,
        ],
        {
            "dwMaxVideoFrameBufferSize": unit("bytes"),
            "bFormatType": lambda v, c: (
                {0: "SD-DV", 1: "SDL-DV", 2: "HD-DV"}.get(v & 0x7F, "Reserved")
                + (", 60 Hz" if v & 0x80 else ", 50 Hz")
            ),
        },
    ),
    0x0D: cs_schema(
        "uvc_color_matching",
        "Color Matching Descriptor",
        "UVC 1.5 §3.9.2.6",
        [
            "bColorPrimaries" / Int8ul,
            "bTransferCharacteristics" / Int8ul,
            "bMatrixCoefficients" / Int8ul,
        ],
        {
            "bColorPrimaries": enum(COLOR_PRIMARIES, "Reserved"),
            "bTransferCharacteristics": enum(TRANSFER_CHARACTERISTICS, "Reserved"),
            "bMatrixCoefficients": enum(MATRIX_COEFFICIENTS, "Reserved"),
        },
    ),
    0x10: cs_schema(
        "uvc_vs_format_frame_based",
        "Frame Based Format Descriptor",
        "UVC Frame Based Payload 1.5 §3.1.1",
        [
            "bFormatIndex" / Int8ul,
            "bNumFrameDescriptors" / Int8ul,
            "guidFormat" / Bytes(16),
            "bBitsPerPixel" / Int8ul,
            "bDefaultFrameIndex" / Int8ul,
            "bAspectRatioX" / Int8ul,
            "bAspectRatioY" / Int8ul,
            "bmInterlaceFlags" / Int8ul,
            "bCopyProtect" / Int8ul,
            "bVariableSize" / Int8ul,
        ],
        _FORMAT_MEANINGS,
    ),
    0x11: cs_schema(
        "uvc_vs_frame_frame_based",
        "Frame Based Frame Descriptor",
        "UVC Frame Based Payload 1.5 §3.1.2",
        _FRAME_BASED_FRAME,
        _FRAME_MEANINGS,
    ),
    0x12: cs_schema(
        "uvc_vs_format_stream_based",
        "Stream Based Format Descriptor",
        "UVC Stream Based Payload 1.5 §3.1.1",
        [
            "bFormatIndex" / Int8ul,
            "guidFormat" / Bytes(16),
            "dwPacketLength" / Int32ul,
        ],
        {"guidFormat": _format_guid, "dwPacketLength": unit("bytes")},
    ),
}

#: UVC H.264 Payload 1.5 §3.1.1: the macroblock-rate limits, one per number of simultaneous
#: resolutions (1-4) and kind of scalability. Spelled as in Microsoft's ``ksmedia.h``
#: (``KS_H264VIDEOINFO``), misspellings included ("Scalablility", "Scalablity"), which are believed
#: to come from the spec PDF (not at hand to check).
H264_MAX_MB_FIELDS = [
    "wMaxMBperSecOneResolutionNoScalability",
    "wMaxMBperSecTwoResolutionsNoScalability",
    "wMaxMBperSecThreeResolutionsNoScalability",
    "wMaxMBperSecFourResolutionsNoScalability",
    "wMaxMBperSecOneResolutionTemporalScalability",
    "wMaxMBperSecTwoResolutionsTemporalScalablility",
    "wMaxMBperSecThreeResolutionsTemporalScalability",
    "wMaxMBperSecFourResolutionsTemporalScalability",
    "wMaxMBperSecOneResolutionTemporalQualityScalability",
    "wMaxMBperSecTwoResolutionsTemporalQualityScalability",
    "wMaxMBperSecThreeResolutionsTemporalQualityScalablity",
    "wMaxMBperSecFourResolutionsTemporalQualityScalability",
    "wMaxMBperSecOneResolutionTemporalSpatialScalability",
    "wMaxMBperSecTwoResolutionsTemporalSpatialScalability",
    "wMaxMBperSecThreeResolutionsTemporalSpatialScalablity",
    "wMaxMBperSecFourResolutionsTemporalSpatialScalability",
    "wMaxMBperSecOneResolutionFullScalability",
    "wMaxMBperSecTwoResolutionsFullScalability",
    "wMaxMBperSecThreeResolutionsFullScalability",
    "wMaxMBperSecFourResolutionsFullScalability",
]


def _h264_format(key: str, name: str) -> Schema:
    return cs_schema(
        key,
        name,
        "UVC H.264 Payload 1.5 §3.1.1",
        [
            "bFormatIndex" / Int8ul,
            "bNumFrameDescriptors" / Int8ul,
            "bDefaultFrameIndex" / Int8ul,
            "bMaxCodecConfigDelay" / Int8ul,
            "bmSupportedSliceModes" / Int8ul,
            "bmSupportedSyncFrameTypes" / Int8ul,
            "bResolutionScaling" / Int8ul,
            "Reserved1" / Int8ul,
            "bmSupportedRateControlModes" / Int8ul,
            *(field / Int16ul for field in H264_MAX_MB_FIELDS),
        ],
        {"bMaxCodecConfigDelay": unit("frames")},
    )


def _level(value: Any, _c: Any = None) -> str | None:
    return f"level {value / 10:g}" if isinstance(value, int) and value else None


VS[0x13] = _h264_format("uvc_vs_format_h264", "H.264 Video Format Descriptor")
VS[0x15] = _h264_format("uvc_vs_format_h264_simulcast", "H.264 Simulcast Video Format Descriptor")
VS[0x14] = cs_schema(
    "uvc_vs_frame_h264",
    "H.264 Video Frame Descriptor",
    "UVC H.264 Payload 1.5 §3.1.2",
    [
        "bFrameIndex" / Int8ul,
        "wWidth" / Int16ul,
        "wHeight" / Int16ul,
        "wSARwidth" / Int16ul,
        "wSARheight" / Int16ul,
        "wProfile" / Int16ul,
        "bLevelIDC" / Int8ul,
        "wConstrainedToolset" / Int16ul,
        "bmSupportedUsages" / Int32ul,
        "bmCapabilities" / Int16ul,
        "bmSVCCapabilities" / Int32ul,
        "bmMVCCapabilities" / Int32ul,
        "dwMinBitRate" / Int32ul,
        "dwMaxBitRate" / Int32ul,
        "dwDefaultFrameInterval" / Int32ul,
        "bNumFrameIntervals" / Int8ul,
        "dwFrameInterval" / Array(this.bNumFrameIntervals, Int32ul),
    ],
    {
        "wWidth": unit("pixels"),
        "wHeight": unit("pixels"),
        "bLevelIDC": _level,
        "dwMinBitRate": unit("bit/s"),
        "dwMaxBitRate": unit("bit/s"),
        "dwDefaultFrameInterval": interval,
        "dwFrameInterval": _intervals,
    },
)

#: UVC 1.5 Tables A-5 (VC), A-6 (VS) and A-9 (endpoint).
VC_SUBTYPES = {
    0x01: "VC_HEADER",
    0x02: "VC_INPUT_TERMINAL",
    0x03: "VC_OUTPUT_TERMINAL",
    0x04: "VC_SELECTOR_UNIT",
    0x05: "VC_PROCESSING_UNIT",
    0x06: "VC_EXTENSION_UNIT",
    0x07: "VC_ENCODING_UNIT",
}
VS_SUBTYPES = {
    0x01: "VS_INPUT_HEADER",
    0x02: "VS_OUTPUT_HEADER",
    0x03: "VS_STILL_IMAGE_FRAME",
    0x04: "VS_FORMAT_UNCOMPRESSED",
    0x05: "VS_FRAME_UNCOMPRESSED",
    0x06: "VS_FORMAT_MJPEG",
    0x07: "VS_FRAME_MJPEG",
    0x0A: "VS_FORMAT_MPEG2TS",
    0x0C: "VS_FORMAT_DV",
    0x0D: "VS_COLORFORMAT",
    0x10: "VS_FORMAT_FRAME_BASED",
    0x11: "VS_FRAME_FRAME_BASED",
    0x12: "VS_FORMAT_STREAM_BASED",
    0x13: "VS_FORMAT_H264",
    0x14: "VS_FRAME_H264",
    0x15: "VS_FORMAT_H264_SIMULCAST",
    0x16: "VS_FORMAT_VP8",
    0x17: "VS_FRAME_VP8",
    0x18: "VS_FORMAT_VP8_SIMULCAST",
}
name_subtypes(
    {**VC, 0x02: VC_INPUT_TERMINAL, 0x20: VC_CAMERA_TERMINAL, 0x21: VC_MEDIA_TRANSPORT_INPUT}, VC_SUBTYPES
)
name_subtypes(VS, VS_SUBTYPES)
name_subtypes({3: VC_ENDPOINT}, {0x01: "EP_GENERAL", 0x02: "EP_ENDPOINT", 0x03: "EP_INTERRUPT"})


def select_uvc(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    """Selector for class 0x0E: VideoControl (subclass 1) and VideoStreaming (subclass 2)."""
    sub = subtype_of(raw)
    if sub is None:
        return None
    if descriptor_type == CS_INTERFACE:
        if ctx.interface_subclass == SC_VIDEOCONTROL:
            if sub == 0x02:
                if len(raw) < 8:
                    return VC_INPUT_TERMINAL  # parse reports the short descriptor
                kind = int.from_bytes(raw[4:6], "little")
                if kind == ITT_CAMERA and len(raw) >= 15:
                    return VC_CAMERA_TERMINAL
                if kind == ITT_MEDIA_TRANSPORT_INPUT and len(raw) >= 10:
                    return VC_MEDIA_TRANSPORT_INPUT
                return VC_INPUT_TERMINAL
            return VC.get(sub)
        if ctx.interface_subclass == SC_VIDEOSTREAMING:
            return VS.get(sub)
    elif descriptor_type == CS_ENDPOINT and ctx.interface_subclass == SC_VIDEOCONTROL and sub == 0x03:
        return VC_ENDPOINT
    return None


register_class(VIDEO_CLASS, select_uvc)
