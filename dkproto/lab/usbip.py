"""Captured descriptor sets as live USB devices, through USB/IP over loopback in the lab VM.

A :class:`CaptureServer` speaks the USB/IP protocol (``Documentation/usb/usbip_protocol.rst``
in the kernel tree) for one captured device: it answers ``OP_REQ_IMPORT`` with the device's
identity and then the URB stream. Control requests go to a :class:`CapturedDevice`, a device
side on :mod:`dkproto.device`: the standard requests are answered by its
:class:`~dkproto.device.StandardResponder` from the capture's descriptor set (device, every
configuration, BOS, strings in every LANGID the capture has, qualifier, other-speed
configurations and hub descriptor when it carries them; a missing one STALLs; the state
changing requests act on what the set describes), the UVC probe and commit controls of a
VideoStreaming interface by a :func:`~dkproto.device.control_request` handler (``uvcvideo``
will not bind without them), and every other class or vendor request STALLs. Transfers on
other endpoints stay pending until the host unlinks them (an interrupt IN never completes, OUT
data is accepted). ``usbip attach`` hands the connection to ``vhci-hcd``, so the kernel, lsusb
and dkproto see the captured device itself.

The codec functions are pure (tested in ``tests/unit/test_lab_usbip.py``); the server runs
inside the lab VM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dkproto.device import (
    ControlRequest,
    RequestHandlers,
    StandardResponder,
    control_request,
    load_set,
    set_from_json,
    set_from_parts,
)
from dkproto.errors import BadArgumentError, DecodeError, DkTimeoutError, MissingToolError, PipeStalledError

if TYPE_CHECKING:
    from dkproto.usb import DescriptorSet

__all__ = [
    "USBIP_VERSION",
    "CaptureServer",
    "CapturedDevice",
    "CmdSubmit",
    "decode_cmd",
    "encode_op_rep_import",
    "encode_ret_submit",
    "encode_ret_unlink",
    "serve_capture",
]

log = logging.getLogger("dkproto.lab.usbip")

USBIP_VERSION = 0x0111
OP_REQ_DEVLIST, OP_REP_DEVLIST = 0x8005, 0x0005
OP_REQ_IMPORT, OP_REP_IMPORT = 0x8003, 0x0003
CMD_SUBMIT, CMD_UNLINK, RET_SUBMIT, RET_UNLINK = 1, 2, 3, 4
HEADER_SIZE = 48
EPIPE, ECONNRESET = 32, 104
#: usb_device_speed values (include/uapi/linux/usb/ch9.h)
SPEED_FULL, SPEED_HIGH, SPEED_SUPER = 2, 3, 5
#: The longest capture file read (a corpus item is a few KiB; a device presents at most ~16 MiB).
MAX_FILE_BYTES = 64 << 20


@dataclass(frozen=True, kw_only=True, slots=True)
class CmdSubmit:
    """USBIP_CMD_SUBMIT (or CMD_UNLINK when ``command`` is 2): the URB the host submitted."""

    command: int
    seqnum: int
    devid: int
    direction: int  # 0 OUT, 1 IN
    ep: int
    transfer_flags: int = 0
    transfer_buffer_length: int = 0
    start_frame: int = 0
    number_of_packets: int = 0
    interval: int = 0
    setup: bytes = b"\0" * 8
    unlink_seqnum: int = 0

    @property
    def is_iso(self) -> bool:
        return self.number_of_packets not in (0, 0xFFFFFFFF)


def decode_cmd(header: bytes) -> CmdSubmit:
    """Decode a 48-byte command header (all fields big-endian).

    Raises:
        DecodeError: wrong size or unknown command.
    """
    if len(header) != HEADER_SIZE:
        raise DecodeError(f"USB/IP command header is {len(header)} bytes, expected {HEADER_SIZE}",
                          descriptor="usbip_header", rule="size")
    command, seqnum, devid, direction, ep = struct.unpack_from(">IIIII", header, 0)
    if command == CMD_SUBMIT:
        flags, length, start, npk, interval = struct.unpack_from(">IIIII", header, 20)
        return CmdSubmit(command=command, seqnum=seqnum, devid=devid, direction=direction, ep=ep,
                         transfer_flags=flags, transfer_buffer_length=length, start_frame=start,
                         number_of_packets=npk, interval=interval, setup=bytes(header[40:48]))
    if command == CMD_UNLINK:
        (unlink_seqnum,) = struct.unpack_from(">I", header, 20)
        return CmdSubmit(command=command, seqnum=seqnum, devid=devid, direction=direction, ep=ep,
                         unlink_seqnum=unlink_seqnum)
    raise DecodeError(f"unknown USB/IP command {command:#x}", offset=0, descriptor="usbip_header", rule="command")


def encode_ret_submit(seqnum: int, status: int, data: bytes = b"", *, actual_length: int | None = None,
                      start_frame: int = 0, number_of_packets: int = 0, error_count: int = 0) -> bytes:
    """USBIP_RET_SUBMIT: header (devid, direction and ep are 0 in replies) followed by IN data."""
    length = len(data) if actual_length is None else actual_length
    head = struct.pack(">IIIIIiIIII", RET_SUBMIT, seqnum, 0, 0, 0, status, length, start_frame,
                       number_of_packets, error_count)
    return head + b"\0" * 8 + data


def encode_ret_unlink(seqnum: int, status: int) -> bytes:
    """USBIP_RET_UNLINK: ``status`` is -ECONNRESET when the URB was unlinked, 0 if it had completed."""
    return struct.pack(">IIIIIi", RET_UNLINK, seqnum, 0, 0, 0, status) + b"\0" * 24


class CapturedDevice(RequestHandlers):
    """A device made of captured descriptor bytes, answering through :mod:`dkproto.device`.

    Standard requests are answered by a :class:`~dkproto.device.StandardResponder` over the
    capture's :class:`~dkproto.usb.DescriptorSet`; the one class behaviour served is the UVC probe
    and commit controls (:meth:`uvc_probe_commit`); every other request STALLs, quietly (no
    behaviour was captured).

    Args:
        device: the 18-byte device descriptor.
        configurations: each configuration set, ``wTotalLength`` bytes.
        bos: the BOS set, or empty.
        strings: string index -> text, US English (index 0, the LANGID list, is made).
        name: where it came from.
        descriptor_set: instead of the four above, a whole set (strings in every LANGID,
            qualifier, other-speed configurations, hub descriptor): what :meth:`load` makes.
    """

    responder: StandardResponder

    def __init__(self, *, device: bytes = b"", configurations: list[bytes] | None = None, bos: bytes = b"",
                 strings: dict[int, str] | None = None, name: str = "capture",
                 descriptor_set: DescriptorSet | None = None) -> None:
        if descriptor_set is None:
            descriptor_set = set_from_parts(device, configurations or [], bos=bos, strings=strings, source=name)
        elif device or configurations or bos or strings:
            raise BadArgumentError(f"{name}: give a descriptor set or its parts, not both")
        self.name = name
        self.responder = StandardResponder(descriptor_set, name=name)
        self._video_streaming = {number for cfg in descriptor_set.configurations for iface in cfg.interfaces
                                 if (iface.get("bInterfaceClass"), iface.get("bInterfaceSubClass")) == (0x0E, 0x02)
                                 and (number := iface.get("bInterfaceNumber")) is not None}

    @property
    def descriptor_set(self) -> DescriptorSet:
        """The set served."""
        return self.responder.descriptor_set

    @property
    def device(self) -> bytes:
        """The 18-byte device descriptor."""
        return self.responder.device

    @property
    def configurations(self) -> list[bytes]:
        """Each configuration, ``wTotalLength`` bytes."""
        return self.responder.configurations

    @property
    def bos(self) -> bytes:
        """The BOS, or empty."""
        return self.responder.bos

    @classmethod
    def from_json(cls, obj: dict[str, Any], name: str = "capture") -> CapturedDevice:
        """From a corpus-format object (``descriptors_hex``, optional ``bos_descriptor_hex``,
        ``strings`` as ``{"1": "text"}``) or a ``dkproto dump --format json`` object."""
        return cls(descriptor_set=set_from_json(obj, name), name=name)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CapturedDevice:
        """From a descriptor file: the corpus format, or any format :func:`dkproto.usb.load` reads."""
        return cls(descriptor_set=load_set(path, max_bytes=MAX_FILE_BYTES), name=Path(path).stem)

    @property
    def bcdUSB(self) -> int:
        return int(struct.unpack_from("<H", self.device, 2)[0])

    @property
    def id(self) -> str:
        vid, pid = struct.unpack_from("<HH", self.device, 8)
        return f"{vid:04x}:{pid:04x}"

    def speed(self) -> int:
        """The speed to announce: SuperSpeed for bcdUSB >= 3.0, high for 2.x, else full."""
        if self.bcdUSB >= 0x0300:
            return SPEED_SUPER
        if self.bcdUSB >= 0x0200:
            return SPEED_HIGH
        return SPEED_FULL

    def video_streaming_interfaces(self) -> set[int]:
        """Numbers of the UVC VideoStreaming interfaces (class 0x0E, subclass 2)."""
        return set(self._video_streaming)

    @control_request(type="class", recipient="interface", number=0x01, direction="out")  # SET_CUR
    @control_request(type="class", recipient="interface", number=0x81, direction="in")  # GET_CUR
    @control_request(type="class", recipient="interface", number=0x82, direction="in")  # GET_MIN
    @control_request(type="class", recipient="interface", number=0x83, direction="in")  # GET_MAX
    @control_request(type="class", recipient="interface", number=0x87, direction="in")  # GET_DEF
    def uvc_probe_commit(self, req: ControlRequest) -> bytes | None:
        """UVC VS_PROBE/VS_COMMIT of a VideoStreaming interface (UVC 1.5 section 4.3.1.1).

        ``uvcvideo`` refuses a device whose probe control stalls, so GET_CUR/MIN/MAX/DEF of
        the probe and commit controls return a plausible probe (format 1, frame 1, 30 fps)
        and SET_CUR is accepted; every other class request still STALLs.
        """
        if req.wIndex & 0xFF not in self._video_streaming or req.wValue >> 8 not in (1, 2):
            raise PipeStalledError(f"{self.name}: {req.describe()}: not a UVC probe or commit control (STALL)")
        if not req.is_in:
            return None
        probe = struct.pack("<HBBIHHHHHII", 1, 1, 1, 333333, 0, 0, 0, 0, 0, 640 * 480 * 2, 1024)
        return probe.ljust(req.wLength, b"\0")

    def on_unhandled(self, req: ControlRequest) -> bytes | int | None:
        """No behaviour was captured for this request: STALL (without the handler hint)."""
        log.debug("%s: %s: no captured behaviour, STALL", self.name, req.describe())
        raise PipeStalledError(f"{self.name}: {req.describe()}: no captured behaviour (STALL)")

    def control(self, setup: bytes, data: bytes = b"") -> tuple[int, bytes]:
        """Answer one control request: (status, IN data). Status 0 or -EPIPE (STALL)."""
        try:
            result = self.handle_control(ControlRequest.from_setup(setup, data))
        except PipeStalledError:
            return -EPIPE, b""
        return 0, result if isinstance(result, bytes) else b""


def encode_op_rep_import(dev: CapturedDevice, busid: str = "1-1", busnum: int = 1, devnum: int = 2) -> bytes:
    """OP_REP_IMPORT: the reply to ``usbip attach``, carrying the device's identity (312 bytes after the header)."""
    vid, pid, bcd = struct.unpack_from("<HHH", dev.device, 8)
    cls_, sub, proto = dev.device[4], dev.device[5], dev.device[6]
    nconf = dev.device[17]
    nintf = dev.configurations[0][4] if dev.configurations else 0
    path = f"/sys/devices/dkproto/usbip/{busid}".encode().ljust(256, b"\0")
    body = path + busid.encode().ljust(32, b"\0") + struct.pack(
        ">IIIHHHBBBBBB", busnum, devnum, dev.speed(), vid, pid, bcd, cls_, sub, proto, 0, nconf, nintf)
    return struct.pack(">HHI", USBIP_VERSION, OP_REP_IMPORT, 0) + body


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return bytes(buf)


class CaptureServer:
    """Serves one :class:`CapturedDevice` to one ``usbip attach`` on 127.0.0.1.

    Args:
        device: what to serve.
        busid: the bus id it is exported as.
    """

    def __init__(self, device: CapturedDevice, busid: str = "1-1") -> None:
        self.device = device
        self.busid = busid
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(2)
        self.port = self.listener.getsockname()[1]
        self.requests: list[tuple[bytes, int]] = []  # (setup, status) of every control request
        self._conn: socket.socket | None = None
        self._pending: set[int] = set()
        self._wlock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"usbip-{device.name}", daemon=True)
        self._thread.start()

    def _send(self, data: bytes) -> None:
        assert self._conn is not None
        with self._wlock:
            self._conn.sendall(data)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                _version, code, _status = struct.unpack(">HHI", _recv_exact(conn, 8))
                if code == OP_REQ_DEVLIST:
                    conn.sendall(self._devlist())
                    conn.close()
                    continue
                if code != OP_REQ_IMPORT:
                    log.warning("usbip: unexpected op %#x", code)
                    conn.close()
                    continue
                busid = _recv_exact(conn, 32).rstrip(b"\0").decode()
                if busid != self.busid:
                    conn.sendall(struct.pack(">HHI", USBIP_VERSION, OP_REP_IMPORT, 1))
                    conn.close()
                    continue
                conn.sendall(encode_op_rep_import(self.device, self.busid))
                self._conn = conn
                self._urb_loop(conn)
            except (ConnectionError, OSError) as exc:
                log.debug("usbip connection ended: %s", exc)
            finally:
                with contextlib.suppress(OSError):
                    conn.close()
                self._conn = None

    def _devlist(self) -> bytes:
        rep = encode_op_rep_import(self.device, self.busid)[8:]
        head = struct.pack(">HHII", USBIP_VERSION, OP_REP_DEVLIST, 0, 1)
        configs = self.device.descriptor_set.configurations
        intf = b"".join(bytes([iface.get("bInterfaceClass", 0), iface.get("bInterfaceSubClass", 0),
                               iface.get("bInterfaceProtocol", 0), 0])
                        for iface in (configs[0].interfaces if configs else ()) if iface.get("bAlternateSetting") == 0)
        return head + rep + intf

    def _urb_loop(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            cmd = decode_cmd(_recv_exact(conn, HEADER_SIZE))
            if cmd.command == CMD_UNLINK:
                if cmd.unlink_seqnum in self._pending:
                    self._pending.discard(cmd.unlink_seqnum)
                    self._send(encode_ret_unlink(cmd.seqnum, -ECONNRESET))
                else:
                    self._send(encode_ret_unlink(cmd.seqnum, 0))
                continue
            data = b""
            if cmd.direction == 0 and cmd.transfer_buffer_length:
                data = _recv_exact(conn, cmd.transfer_buffer_length)
            if cmd.is_iso:
                _recv_exact(conn, 16 * cmd.number_of_packets)
            if cmd.ep == 0:
                status, reply = self.device.control(cmd.setup, data)
                self.requests.append((cmd.setup, status))
                if cmd.direction == 1:
                    reply = reply[: cmd.transfer_buffer_length]
                    self._send(encode_ret_submit(cmd.seqnum, status, reply if status == 0 else b""))
                else:
                    self._send(encode_ret_submit(cmd.seqnum, status, actual_length=len(data) if status == 0 else 0))
            elif cmd.direction == 0 and not cmd.is_iso:
                self._send(encode_ret_submit(cmd.seqnum, 0, actual_length=len(data)))
            else:
                self._pending.add(cmd.seqnum)  # no captured behaviour: stays pending until unlinked

    def close(self) -> None:
        """Stop serving: the connection closes and vhci-hcd detaches the device."""
        self._stop.set()
        for s in (self._conn, self.listener):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
        self._thread.join(timeout=2)


def _usb_device_with(vid_pid: str, exclude: set[str]) -> Path | None:
    for dev in Path("/sys/bus/usb/devices").iterdir():
        try:
            ident = f"{(dev / 'idVendor').read_text().strip()}:{(dev / 'idProduct').read_text().strip()}"
        except OSError:
            continue
        if ident == vid_pid and dev.name not in exclude and "vhci" in str(dev.resolve()):
            return dev
    return None


@dataclass(kw_only=True)
class LiveCapture:
    """A captured device attached through vhci-hcd: where the host sees it."""

    server: CaptureServer
    sysfs: Path

    @property
    def bus(self) -> int:
        return int((self.sysfs / "busnum").read_text())

    @property
    def address(self) -> int:
        return int((self.sysfs / "devnum").read_text())


@contextlib.contextmanager
def serve_capture(source: Any, *, timeout: float = 15.0) -> Iterator[LiveCapture]:
    """Serve a capture and attach it with ``usbip attach``; detach on exit. Inside the lab VM.

    Args:
        source: a :class:`~dkproto.lab.devices.DeviceDefinition` of kind ``capture``, a path
            to a corpus-format JSON file, or a :class:`CapturedDevice`.
    """
    from dkproto.lab.gadget import load_modules

    if isinstance(source, CapturedDevice):
        dev = source
    elif hasattr(source, "kind"):
        dev = CapturedDevice.load(source.resolve(source.spec["capture"]))
        load_modules(list(source.modules))
    else:
        dev = CapturedDevice.load(source)
    load_modules(["vhci_hcd"])
    usbip = subprocess.run(["sh", "-c", "command -v usbip"], capture_output=True, text=True, check=False).stdout.strip()
    if not usbip:
        raise MissingToolError("the lab needs 'usbip' to attach captured devices: apt-get install usbip")
    before = {d.name for d in Path("/sys/bus/usb/devices").iterdir()}
    server = CaptureServer(dev)
    try:
        res = subprocess.run([usbip, "--tcp-port", str(server.port), "attach", "-r", "127.0.0.1", "-b", server.busid],
                             capture_output=True, text=True, timeout=timeout, check=False)
        if res.returncode != 0:
            raise MissingToolError(f"usbip attach failed for {dev.name}: {(res.stderr or res.stdout).strip()}")
        deadline = time.monotonic() + timeout
        sysfs = None
        while time.monotonic() < deadline:
            sysfs = _usb_device_with(dev.id, before)
            if sysfs is not None and any(p.name.startswith(sysfs.name + ":") for p in sysfs.iterdir()):
                break
            time.sleep(0.1)
        if sysfs is None:
            raise DkTimeoutError(f"captured device {dev.name} ({dev.id}) did not appear on the vhci bus in {timeout} s")
        yield LiveCapture(server=server, sysfs=sysfs)
    finally:
        server.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _usb_device_with(dev.id, before) is not None:
            time.sleep(0.05)
