"""Wireshark captures of dkproto sessions: usbmon records in pcapng files (layer 2, pure).

* :func:`export_pcapng`: a session as a usbmon capture Wireshark and tshark dissect;
  :class:`PcapngSessionSink`: the same, event by event, as the sink of a recording;
* :func:`import_pcapng`: a usbmon capture (``tshark -i usbmon1 -w cap.pcapng`` on Linux) as a
  session, so it can be replayed; :func:`capture_info`: a summary of a capture;
* :mod:`dkproto.capture.usbmon`: the usbmon header as Construct schemas (link types 189, 220);
* :mod:`dkproto.capture.pcapng`: a bounded pcapng reader and a writer.

See ``docs/capture.md``.
"""

from dkproto.capture.export import (
    ExportSummary,
    PcapngSessionSink,
    UsbmonEncoder,
    export_pcapng,
    session_packets,
)
from dkproto.capture.importer import CaptureInfo, DeviceSummary, capture_info, import_pcapng, usbmon_packets
from dkproto.capture.pcapng import Interface, Packet, PcapngReader, PcapngWriter, read_pcapng
from dkproto.capture.usbmon import (
    LINKTYPE_USB_LINUX,
    LINKTYPE_USB_LINUX_MMAPPED,
    UsbmonPacket,
    ioreturn_for_status,
    status_for_ioreturn,
)

__all__ = [
    "LINKTYPE_USB_LINUX",
    "LINKTYPE_USB_LINUX_MMAPPED",
    "CaptureInfo",
    "DeviceSummary",
    "ExportSummary",
    "Interface",
    "Packet",
    "PcapngReader",
    "PcapngSessionSink",
    "PcapngWriter",
    "UsbmonEncoder",
    "UsbmonPacket",
    "capture_info",
    "export_pcapng",
    "import_pcapng",
    "ioreturn_for_status",
    "read_pcapng",
    "session_packets",
    "status_for_ioreturn",
    "usbmon_packets",
]
