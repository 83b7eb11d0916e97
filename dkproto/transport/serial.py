"""``serial://``: serial ports through pyserial (CDC-ACM, FTDI, CP210x... and pyserial's URL handlers).

``serial:///dev/ttyACM0?baudrate=115200`` opens a port; ``serial://VID:PID[?serial=S&interface=N]``
finds the port of a USB device through ``serial.tools.list_ports``; ``serial+HANDLER://...``
hands ``HANDLER://...`` to pyserial's ``serial_for_url`` (``serial+loop://``,
``serial+socket://host:port``, ``serial+spy:///dev/ttyACM0``), so pyserial's own handlers keep
working. Options are listed in :data:`GRAMMAR`; for handler URLs, options dkproto does not know
are passed on to the handler.

Besides the :class:`~dkproto.transport.base.Transport` calls (``read``/``write``; the endpoint
only names the direction), :class:`SerialTransport` configures the line (baud rate, bits,
parity, stop bits, flow control, DTR, RTS, break), and reads with :meth:`SerialTransport.expect`.
:func:`list_ports` lists ports with their USB identity; :func:`terminal` is a line-mode terminal.
pyserial errors become DkErrors in one place, :func:`serial_error`.
"""

from __future__ import annotations

import errno as errno_mod
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO, Any, ClassVar

from dkproto.errors import (
    BadArgumentError,
    DkError,
    DkTimeoutError,
    ExclusiveAccessError,
    NoDeviceError,
    NotFoundError,
    NotPermittedError,
    UnsupportedError,
)
from dkproto.transport.base import DEFAULT_TIMEOUT_MS, Transport, TransportInfo
from dkproto.transport.url import QueryOptions, parse_url, parse_vid_pid, split_scheme, url_error

__all__ = ["GRAMMAR", "SerialPortInfo", "SerialTransport", "expect", "list_ports", "serial_error", "terminal"]

GRAMMAR = ("serial:///dev/PORT[?baudrate=N&bytesize=5..8&parity=N|E|O|M|S&stopbits=1|1.5|2&xonxoff=0|1"
           "&rtscts=0|1&dsrdtr=0|1&dtr=0|1&rts=0|1&exclusive=0|1], serial://VID:PID[?serial=S&interface=N"
           "&index=N&...same...], or serial+HANDLER://... for a pyserial URL handler (serial+loop://)")

_PARITIES = {"N": "N", "E": "E", "O": "O", "M": "M", "S": "S", "none": "N", "even": "E", "odd": "O",
             "mark": "M", "space": "S"}
_STOPBITS = {"1": 1, "1.5": 1.5, "2": 2}


@dataclass(frozen=True, kw_only=True)
class SerialPortInfo:
    """One serial port as ``serial.tools.list_ports`` sees it, with its USB identity."""

    device: str
    description: str | None = None
    hwid: str | None = None
    idVendor: int | None = None
    idProduct: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    interface: str | None = None
    location: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, ``None`` fields left out."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


def list_ports() -> list[SerialPortInfo]:
    """Every serial port, sorted by device path, with USB VID:PID, serial number and interface."""
    from serial.tools import list_ports as lp

    ports = []
    for p in lp.comports():
        ports.append(SerialPortInfo(device=p.device, description=p.description, hwid=p.hwid, idVendor=p.vid,
                                    idProduct=p.pid, serial_number=p.serial_number, manufacturer=p.manufacturer,
                                    product=p.product, interface=p.interface, location=p.location))
    return sorted(ports, key=lambda p: p.device)


def serial_error(exc: BaseException, what: str) -> DkError:
    """THE translation from pyserial (and OS) errors to dkproto's tree, keeping errno in ``backend_code``."""
    import serial

    code = getattr(exc, "errno", None)
    text = str(exc)
    if isinstance(exc, serial.SerialTimeoutException):
        return DkTimeoutError(f"{what}: {text or 'write timeout'}", backend_code=code)
    if isinstance(exc, (ValueError, TypeError)):
        return BadArgumentError(f"{what}: {text}", backend_code=code)
    if code is None:  # pyserial wraps OSError text in SerialException; recover errno from it
        match = re.search(r"\[Errno (\d+)\]", text)
        code = int(match.group(1)) if match else None
    if code in (errno_mod.ENOENT, errno_mod.ENXIO, errno_mod.ENODEV) or "disconnected" in text \
            or "returned no data" in text:
        return NoDeviceError(f"{what}: {text}", backend_code=code)
    if code in (errno_mod.EACCES, errno_mod.EPERM):
        hint = ""
        if sys.platform.startswith("linux"):
            hint = ("; add yourself to the group that owns the port (usually 'dialout': "
                    "sudo usermod -aG dialout $USER, then log in again) or add a udev rule "
                    "'SUBSYSTEM==\"tty\", ATTRS{idVendor}==\"VID\", MODE=\"0660\", TAG+=\"uaccess\"'")
        return NotPermittedError(f"{what}: {text}{hint}", backend_code=code)
    if code == errno_mod.EBUSY or "exclusively lock" in text:
        return ExclusiveAccessError(f"{what}: {text}", backend_code=code)
    if code == errno_mod.EIO:
        return NoDeviceError(f"{what}: {text} (I/O error: the device is probably gone)", backend_code=code)
    return DkError(f"{what}: {text}", backend_code=code)


@contextmanager
def serial_errors(what: str) -> Iterator[None]:
    """Context manager around pyserial calls: errors become :func:`serial_error`'s DkError."""
    import serial

    try:
        yield
    except DkError:
        raise
    except (serial.SerialException, OSError, ValueError) as exc:
        raise serial_error(exc, what) from exc


class SerialTransport(Transport):
    """A serial port (``serial://``). Construct through :meth:`from_url` or with keyword settings.

    Args:
        port: a device path or a pyserial URL (``loop://``).
        settings: pyserial settings (baudrate, bytesize, parity, stopbits, xonxoff, rtscts, dsrdtr,
            exclusive).
        dtr, rts: initial modem-control line levels (``None`` leaves pyserial's default).
        url: for ``info``.
        usb_match: (idVendor, idProduct, serial, interface, index) to resolve at open.
    """

    scheme: ClassVar[str] = "serial"
    grammar: ClassVar[str] = GRAMMAR

    def __init__(self, port: str | None = None, *, settings: dict[str, Any] | None = None, dtr: bool | None = None,
                 rts: bool | None = None, url: str = "", usb_match: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.port_name = port
        self.settings = dict(settings or {})
        self.dtr = dtr
        self.rts = rts
        self.url = url or f"serial://{port}"
        self.usb_match = usb_match
        self.port: Any = None
        self._port_info: SerialPortInfo | None = None

    @classmethod
    def from_url(cls, url: str) -> SerialTransport:
        """Parse a ``serial://`` URL (see :data:`GRAMMAR`)."""
        scheme, _rest = split_scheme(url, GRAMMAR)
        head, plus, handler = scheme.partition("+")
        if head != "serial" or (plus and not handler):
            raise url_error(url, f"scheme {scheme!r} is not serial or serial+HANDLER", GRAMMAR)
        parsed = parse_url(url, GRAMMAR)
        opts = QueryOptions(parsed, GRAMMAR)
        settings: dict[str, Any] = {}
        baud = opts.int("baudrate", None, lo=1, hi=100_000_000, base=10)
        if baud is None:
            baud = opts.int("baud", None, lo=1, hi=100_000_000, base=10)
        if baud is not None:
            settings["baudrate"] = baud
        for key, value in (("bytesize", opts.int("bytesize", None, lo=5, hi=8)),
                           ("parity", opts.choice("parity", _PARITIES)),
                           ("stopbits", opts.choice("stopbits", _STOPBITS)),
                           ("xonxoff", opts.bool("xonxoff")), ("rtscts", opts.bool("rtscts")),
                           ("dsrdtr", opts.bool("dsrdtr")), ("exclusive", opts.bool("exclusive"))):
            if value is not None:
                settings[key] = value
        dtr, rts = opts.bool("dtr"), opts.bool("rts")
        if handler:
            rest = opts.rest()  # the handler's own options (e.g. loop://?logging=debug)
            query = "&".join(f"{k}={v}" for k, v in rest.items())
            target = f"{handler}://{parsed.authority}{parsed.path}" + (f"?{query}" if query else "")
            return cls(target, settings=settings, dtr=dtr, rts=rts, url=url)
        vidpid = parse_vid_pid(parsed.authority)
        if vidpid is not None:
            match = {"idVendor": vidpid[0], "idProduct": vidpid[1], "serial": opts.str("serial"),
                     "interface": opts.str("interface"), "index": opts.int("index", 0, lo=0, hi=255)}
            opts.finish()
            return cls(None, settings=settings, dtr=dtr, rts=rts, url=url, usb_match=match)
        opts.finish()
        if parsed.authority or not parsed.path:
            raise url_error(url, "give a path after 'serial://' (three slashes: serial:///dev/ttyACM0) "
                            "or VID:PID", GRAMMAR)
        return cls(parsed.path, settings=settings, dtr=dtr, rts=rts, url=url)

    def _resolve(self) -> str:
        m = self.usb_match or {}
        found = []
        for p in list_ports():
            if p.idVendor != m.get("idVendor") or p.idProduct != m.get("idProduct"):
                continue
            if m.get("serial") is not None and p.serial_number != m["serial"]:
                continue
            if m.get("interface") is not None and m["interface"] not in (p.interface or "") \
                    and not (p.location or "").endswith(f".{m['interface']}"):
                continue
            found.append(p)
        if len(found) <= m.get("index", 0):
            raise NoDeviceError(f"no serial port matches {self.url} ({len(found)} found)")
        self._port_info = found[m.get("index", 0)]
        return self._port_info.device

    def _open(self) -> None:
        import serial

        port = self.port_name if self.usb_match is None else self._resolve()
        self.port_name = port
        with serial_errors(f"opening {self.url}"):
            self.port = serial.serial_for_url(port, do_not_open=True, **self.settings)
            if self.dtr is not None:
                self.port.dtr = self.dtr
            if self.rts is not None:
                self.port.rts = self.rts
            self.port.open()

    def _close(self) -> None:
        port, self.port = self.port, None
        if port is None:
            return
        if _unsent(port):
            # Output nothing takes (the other end does not read): the kernel's close waits for it
            # to leave, up to the port's closing_wait (30 s). Close in a helper thread and move
            # on; it ends by itself, or at once when this process exits.
            closer = threading.Thread(target=_close_quietly, args=(port,), name="dkproto-serial-close", daemon=True)
            closer.start()
            closer.join(0.2)
        else:
            _close_quietly(port)

    @property
    def info(self) -> TransportInfo:
        pinfo = self._port_info
        if pinfo is None and self.port_name and self.port_name.startswith("/"):
            pinfo = next((p for p in list_ports() if p.device == self.port_name), None)
            self._port_info = pinfo
        extra: dict[str, Any] = {}
        if self.port is not None:
            extra = {k: v for k, v in self.port.get_settings().items() if k in
                     ("baudrate", "bytesize", "parity", "stopbits", "xonxoff", "rtscts", "dsrdtr")}
        return TransportInfo(url=self.url, scheme="serial", path=self.port_name,
                             idVendor=pinfo.idVendor if pinfo else None, idProduct=pinfo.idProduct if pinfo else None,
                             serial_number=pinfo.serial_number if pinfo else None,
                             manufacturer=pinfo.manufacturer if pinfo else None,
                             product=pinfo.product if pinfo else None, extra=extra)

    # ----------------------------------------------------------------- Transport calls
    def control_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                         data_or_wLength: bytes | int | None = None,
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        """Not available on a serial port (use ``usb://`` on the device for CDC requests)."""
        raise UnsupportedError(f"{self.url}: control transfers are not available through a serial port; "
                               "open the device with usb:// for CDC class requests")

    def get_report(self, report_type: int, report_id: int, length: int,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        raise self._unsupported("get_report")

    def set_report(self, report_type: int, report_id: int, data: bytes,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        raise self._unsupported("set_report")

    def read(self, endpoint: int = 0x81, length: int = 4096, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """Wait up to ``timeout`` ms for data, then return what is there (at most ``length`` bytes).

        Raises:
            DkTimeoutError: nothing arrived in time.
            NoDeviceError: the port went away.
        """
        self._require_open("read")
        with serial_errors(f"reading {self.url}"):
            self.port.timeout = None if timeout == 0 else timeout / 1000
            first = self.port.read(1)
            if not first:
                raise DkTimeoutError(f"{self.url}: nothing received within {timeout} ms")
            self.port.timeout = 0
            more = self.port.read(min(self.port.in_waiting, length - 1)) if length > 1 else b""
        return bytes(first + more)

    def write(self, endpoint: int = 0x02, data: bytes = b"", timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        """Send ``data`` and wait until it has left (``flush``), up to ``timeout`` ms (0: forever).

        Raises:
            DkTimeoutError: the port did not take the data, or it did not leave, in time
                (nothing reads the other end, or flow control holds it).
        """
        self._require_open("write")
        deadline = None if timeout == 0 else time.monotonic() + timeout / 1000
        with serial_errors(f"writing {self.url}"):
            self.port.write_timeout = None if timeout == 0 else timeout / 1000
            n = self.port.write(bytes(data))
            if deadline is not None:
                # tcdrain (pyserial's flush) has no timeout: first wait, bounded, for the
                # kernel's output queue to empty.
                while (pending := _unsent(self.port)) and time.monotonic() < deadline:
                    time.sleep(0.002)
                if pending:
                    raise DkTimeoutError(f"writing {self.url}: {pending} byte(s) still unsent after {timeout} ms "
                                         "(is anything reading the other end?)")
            self.port.flush()
        return int(n or 0)

    # ----------------------------------------------------------------- serial line
    def configure(self, *, baudrate: int | None = None, bytesize: int | None = None, parity: str | None = None,
                  stopbits: float | None = None, xonxoff: bool | None = None, rtscts: bool | None = None,
                  dsrdtr: bool | None = None) -> None:
        """Change line settings on the open port (``HwProgramUART``/``HwProgramBaudRate``/``HwProgramFlowControl``)."""
        self._require_open("configure")
        new = {k: v for k, v in (("baudrate", baudrate), ("bytesize", bytesize), ("parity", parity),
                                 ("stopbits", stopbits), ("xonxoff", xonxoff), ("rtscts", rtscts),
                                 ("dsrdtr", dsrdtr)) if v is not None}
        if "parity" in new:
            new["parity"] = _PARITIES.get(str(new["parity"]), new["parity"])
        with serial_errors(f"configuring {self.url}"):
            self.port.apply_settings(new)
        self.settings.update(new)

    def set_dtr(self, level: bool) -> None:
        """Drive DTR."""
        self._require_open("set_dtr")
        with serial_errors(f"setting DTR on {self.url}"):
            self.port.dtr = level

    def set_rts(self, level: bool) -> None:
        """Drive RTS."""
        self._require_open("set_rts")
        with serial_errors(f"setting RTS on {self.url}"):
            self.port.rts = level

    def send_break(self, duration: float = 0.25) -> None:
        """Send a break condition for ``duration`` seconds."""
        self._require_open("send_break")
        with serial_errors(f"sending a break on {self.url}"):
            self.port.send_break(duration)

    def modem_lines(self) -> dict[str, bool]:
        """Input lines: CTS, DSR, RI, CD."""
        self._require_open("modem_lines")
        with serial_errors(f"reading modem lines of {self.url}"):
            return {"cts": self.port.cts, "dsr": self.port.dsr, "ri": self.port.ri, "cd": self.port.cd}

    def reset_input(self) -> None:
        """Drop whatever is waiting in the receive buffer."""
        self._require_open("reset_input")
        with serial_errors(f"flushing {self.url}"):
            self.port.reset_input_buffer()

    def expect(self, pattern: bytes | str | re.Pattern[bytes], timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        """Read until ``pattern`` (bytes, text or a compiled bytes regex) appears; return all read so far.

        Raises:
            DkTimeoutError: the pattern did not come within ``timeout`` ms; the message shows the tail read.
        """
        self._require_open("expect")
        return expect(self, pattern, timeout)


def _unsent(port: Any) -> int:
    """Bytes in the kernel's output queue of an OS serial port (``TIOCOUTQ``); 0 for pyserial URL
    handlers (``loop://``'s ``out_waiting`` counts what is not read back yet, not what is unsent)."""
    fd = getattr(port, "fd", None)
    if not isinstance(fd, int) or fd < 0 or not getattr(port, "is_open", False):
        return 0
    try:
        return int(port.out_waiting)
    except Exception:  # noqa: BLE001 - a platform or driver without the call: nothing to wait for
        return 0


def _close_quietly(port: Any) -> None:
    with suppress(Exception):  # a vanished device: the fd is released anyway
        port.close()


def expect(transport: Transport, pattern: bytes | str | re.Pattern[bytes], timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
    """:meth:`SerialTransport.expect` through any transport's ``read(0x81, ...)`` (a ``spy+`` wrapper too)."""
    regex = pattern if isinstance(pattern, re.Pattern) else re.compile(
        re.escape(pattern.encode() if isinstance(pattern, str) else bytes(pattern)))
    deadline = None if timeout == 0 else time.monotonic() + timeout / 1000
    buf = b""
    while True:
        if regex.search(buf):
            return buf
        remaining = 0.5 if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            url = transport.info.url
            raise DkTimeoutError(f"{url}: {regex.pattern!r} not seen within {timeout} ms; "
                                 f"last bytes: {buf[-64:]!r}")
        try:
            buf += transport.read(0x81, 65536, max(1, int(min(remaining, 0.5) * 1000)))
        except DkTimeoutError:
            pass


#: Ctrl-D: typed at a terminal in line mode the kernel turns it into end of input; arriving as a
#: byte (a raw-mode terminal, a pipe) it ends the terminal too.
EOT = 0x04


def _input_chunks(stdin: IO[Any], stop: threading.Event) -> Iterator[bytes]:
    """What arrives on ``stdin``, as it arrives (not a line late), until end of input.

    A stream with a file descriptor is read with ``os.read`` (select()ed, so ``stop`` is seen
    within 0.2 s on POSIX); others (``io.StringIO``) line by line.
    """
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd < 0:
        while not stop.is_set():
            line = stdin.readline()
            if not line:
                return
            yield line.encode() if isinstance(line, str) else bytes(line)
        return
    import os
    import select

    while not stop.is_set():
        if os.name == "posix" and not select.select([fd], [], [], 0.2)[0]:
            continue
        try:
            data = os.read(fd, 4096)
        except InterruptedError:
            continue
        if not data:
            return
        yield data


def terminal(transport: Transport, stdin: IO[Any] | None = None, stdout: IO[bytes] | None = None,
             eol: bytes = b"\r\n", echo: bool = False, write_timeout: int = DEFAULT_TIMEOUT_MS) -> None:
    """A line-mode terminal: each line of ``stdin`` is sent with ``eol``; received bytes go to ``stdout``.

    Ends at end of input (a pipe or file that ends; Ctrl-D at a terminal), at a Ctrl-D byte
    (0x04) in the input (what precedes it on its line is still sent), or when the port goes
    away (then raises NoDeviceError). A line the port does not take within ``write_timeout`` ms
    raises DkTimeoutError (0: wait forever).
    """
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout.buffer
    stop = threading.Event()
    failure: list[DkError] = []

    def pump() -> None:
        while not stop.is_set():
            try:
                data = transport.read(0x81, 4096, timeout=100)
            except DkTimeoutError:
                continue
            except DkError as exc:
                failure.append(exc)
                stop.set()
                return
            out.write(data)
            out.flush()

    def send(line: bytes) -> None:
        payload = line.rstrip(b"\r\n") + eol
        if echo:
            out.write(payload)
            out.flush()
        try:
            transport.write(0x02, payload, timeout=write_timeout)
        except DkTimeoutError as exc:
            raise DkTimeoutError(f"{transport.info.url}: the line was not taken within {write_timeout} ms "
                                 "(is anything reading the other end?)", backend_code=exc.backend_code) from exc

    reader = threading.Thread(target=pump, name="dkproto-serial-term", daemon=True)
    reader.start()
    try:
        pending = b""
        for chunk in _input_chunks(stdin, stop):
            head, eot, _ = chunk.partition(bytes([EOT]))
            pending += head
            while b"\n" in pending and not stop.is_set():
                line, _, pending = pending.partition(b"\n")
                send(line)
            if eot:
                break
        if pending and not stop.is_set():
            send(pending)  # the last line, unterminated
        time.sleep(0.2)  # let the last answer arrive
    finally:
        stop.set()
        reader.join(timeout=2)
    if failure:
        raise failure[0]


def _unused() -> None:  # keep NotFoundError imported for callers' isinstance checks
    _ = NotFoundError
