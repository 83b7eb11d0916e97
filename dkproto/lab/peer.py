"""Peers: the far (device) end of a lab gadget, kept busy while ``dkproto lab run`` runs a command.

A gadget definition may name its peer with the ``"peer"`` key (see ``devices/README.md``):

``"echo"``
    on every serial function (``acm.*``, ``gser.*``), a thread reads the device-side tty
    (``/dev/ttyGSn``, raw mode: no echo, no translation) and writes every byte back, so
    ``dkproto serial expect /dev/ttyACM0 hi --send hi`` and ``dkproto serial term`` get
    answers. The default for a gadget with serial functions.
``"none"``
    no peer: nothing opens the device side. The default for every other gadget.
``{"reports": ["hex", ...], "interval": 0.01, "function": "hid.0", "loop": true}``
    a thread writes these HID input reports, in order, to the function's ``/dev/hidgN``
    (default: the gadget's first ``hid`` function), ``interval`` seconds apart, over and
    over while the command runs (once with ``"loop": false``): a capture replayed as a live
    device for ``dkproto hid watch``.

Only the lab agent (``dkproto lab run``, ``dkproto lab shell``) starts peers
(:func:`start_peers`), after the gadgets are bound and on the bus, and stops them
(:func:`stop_peers`) before the gadgets are removed. The pytest lab fixtures do not: a test
is the device side itself (``g.serial()``, ``g.send_report()``).

Every blocking call in the threads has a timeout and a wake-up pipe, so :meth:`Peer.stop`
returns within a fraction of a second even when the host never reads.
"""

from __future__ import annotations

import errno
import os
import select
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dkproto.errors import BadArgumentError

if TYPE_CHECKING:
    from dkproto.lab.gadget import Gadget

__all__ = [
    "PEER_KINDS",
    "SERIAL_FUNCTION_TYPES",
    "EchoPeer",
    "Peer",
    "PeerSpec",
    "ReportPlayer",
    "parse_peer",
    "peer_spec",
    "raw_mode",
    "start_peers",
    "stop_peers",
]

#: configfs function types whose device side is a ``/dev/ttyGSn``.
SERIAL_FUNCTION_TYPES = ("acm", "gser")
PEER_KINDS = ("none", "echo", "reports")
DEFAULT_INTERVAL = 0.01
MAX_INTERVAL = 3600.0
_REPORT_KEYS = ("reports", "interval", "function", "loop")
#: how long a thread waits in one select() before it looks at its stop flag again (the wake-up
#: pipe makes stop() immediate; this is the backstop).
_POLL = 0.5


@dataclass(frozen=True)
class PeerSpec:
    """A gadget's peer, defaults applied.

    Attributes:
        kind: ``none``, ``echo`` or ``reports``.
        reports: the input reports to play (``reports`` only).
        interval: seconds between two reports.
        function: the ``hid`` function the reports go to (``None``: the gadget's first one).
        loop: play the reports again and again (else once).
    """

    kind: str
    reports: tuple[bytes, ...] = ()
    interval: float = DEFAULT_INTERVAL
    function: str | None = None
    loop: bool = True


def _ftype(fname: str) -> str:
    return fname.partition(".")[0]


def serial_functions(functions: Mapping[str, Any]) -> list[str]:
    """The serial functions (``acm.*``, ``gser.*``) of a gadget, in definition order."""
    return [f for f in functions if _ftype(f) in SERIAL_FUNCTION_TYPES]


def _report_hex(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise BadArgumentError(f"{where}: a report is a hex string ('01 00 ff'), got {value!r}")
    try:
        data = bytes.fromhex(value.replace(":", " "))
    except ValueError as exc:
        raise BadArgumentError(f"{where}: bad hex: {exc}") from None
    if not data:
        raise BadArgumentError(f"{where}: an empty report")
    return data


def parse_peer(value: Any, functions: Mapping[str, Any] | None = None) -> PeerSpec:
    """Validate the ``peer`` value of a gadget definition (``functions``: its ``functions`` object).

    ``None`` (the key is absent) gives the default: ``echo`` when the gadget has a serial
    function, else ``none``.

    Raises:
        BadArgumentError: ``"peer...: rule"`` (the caller prefixes the file name).
    """
    functions = functions or {}
    if value is None:
        return PeerSpec("echo" if serial_functions(functions) else "none")
    if value == "none":
        return PeerSpec("none")
    if value == "echo":
        if not serial_functions(functions):
            raise BadArgumentError("peer: 'echo' needs a serial function (acm.* or gser.*)")
        return PeerSpec("echo")
    if not isinstance(value, dict):
        raise BadArgumentError(f"peer: {value!r}: 'none', 'echo' or {{'reports': [hex, ...], "
                               "'interval': s, 'function': 'hid.N', 'loop': true}")
    for key in value:
        if key not in _REPORT_KEYS:
            raise BadArgumentError(f"peer.{key}: unknown key (known: {', '.join(_REPORT_KEYS)})")
    reports = value.get("reports")
    if not isinstance(reports, list) or not reports:
        raise BadArgumentError("peer.reports: a non-empty list of hex strings (HID input reports)")
    played = tuple(_report_hex(r, f"peer.reports[{i}]") for i, r in enumerate(reports))
    interval = value.get("interval", DEFAULT_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
            or not 0 <= interval <= MAX_INTERVAL:
        raise BadArgumentError(f"peer.interval: {interval!r} is not a number of seconds in 0..{MAX_INTERVAL:g}")
    loop = value.get("loop", True)
    if not isinstance(loop, bool):
        raise BadArgumentError(f"peer.loop: {loop!r} is not true or false")
    hids = [f for f in functions if _ftype(f) == "hid"]
    function = value.get("function")
    if function is None:
        if not hids:
            raise BadArgumentError("peer.reports: the gadget has no hid function to play them on")
    elif not isinstance(function, str) or function not in hids:
        raise BadArgumentError(f"peer.function: {function!r} is not a hid function of the gadget "
                               f"(has {', '.join(hids) or 'none'})")
    return PeerSpec("reports", reports=played, interval=float(interval), function=function, loop=loop)


def peer_spec(spec: Mapping[str, Any]) -> PeerSpec:
    """The peer of a gadget definition (its parsed JSON object), defaults applied."""
    functions = spec.get("functions")
    return parse_peer(spec.get("peer"), functions if isinstance(functions, Mapping) else {})


def raw_mode(attrs: list[Any]) -> list[Any]:
    """``termios.tcgetattr`` attributes turned raw (as ``cfmakeraw``): 8 bits, no echo, no
    line editing, no signals, no CR/LF translation, no flow control; reads return each byte."""
    import termios

    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attrs
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
               | termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF | termios.IXANY)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ECHOE | termios.ECHOK | termios.ICANON
               | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB)
    cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
    cc = list(cc)
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    return [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]


class Peer:
    """A daemon thread on one device-side node; :meth:`start`, :meth:`stop`.

    Attributes:
        path: the node (``/dev/ttyGS0``, ``/dev/hidg0``).
        error: what ended the thread early (``None`` if nothing did).
    """

    label = "peer"
    #: errno values of a write that is tried again (after 0.1 s) rather than ending the thread.
    transient_errnos: frozenset[int] = frozenset()

    def __init__(self, path: str) -> None:
        self.path = path
        self.error: str | None = None
        self.fd: int | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)

    def start(self) -> None:
        """Open the node (errors are raised here) and start the thread."""
        try:
            self.fd = self._open()
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._guarded, name=f"dkproto-{self.label}:{self.path}", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _guarded(self) -> None:
        try:
            self._run()
        except OSError as exc:
            if not self._stop.is_set():
                self.error = f"{self.label} on {self.path}: {exc.strerror or exc}"
        except Exception as exc:  # noqa: BLE001 - reported by stop_peers, never kills the agent
            self.error = f"{self.label} on {self.path}: {type(exc).__name__}: {exc}"

    def _run(self) -> None:
        raise NotImplementedError

    def _wait(self, fd: int, *, write: bool, timeout: float = _POLL) -> bool:
        """Wait until ``fd`` is readable (writable); False on timeout or when told to stop."""
        rl = [self._wake_r] if write else [self._wake_r, fd]
        wl = [fd] if write else []
        r, w, _ = select.select(rl, wl, [], timeout)
        if self._stop.is_set():
            return False
        return bool(w) if write else fd in r

    def _write_all(self, fd: int, data: bytes) -> bool:
        """Write every byte (retrying while the node is full); False if told to stop first."""
        view = memoryview(data)
        while view:
            if not self._wait(fd, write=True):
                if self._stop.is_set():
                    return False
                continue
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno not in self.transient_errnos:
                    raise
                self._stop.wait(0.1)  # e.g. hidg between a host's reset and its SET_CONFIGURATION
                continue
            view = view[n:]
        return True

    def stop(self, timeout: float = 2.0) -> None:
        """Tell the thread to stop, wait for it (at most ``timeout`` s) and close the node."""
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout)
        fd, self.fd = self.fd, None
        if fd is not None:
            self._close(fd)
        for p in (self._wake_r, self._wake_w):
            try:
                os.close(p)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def _close(self, fd: int) -> None:
        os.close(fd)


class EchoPeer(Peer):
    """Reads a device-side tty (raw mode) and writes every byte back."""

    label = "echo"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.echoed = 0

    def _open(self) -> int:
        import termios

        fd = super()._open()
        try:
            termios.tcsetattr(fd, termios.TCSANOW, raw_mode(termios.tcgetattr(fd)))
            termios.tcflush(fd, termios.TCIOFLUSH)
        except termios.error as exc:  # not an OSError: make it one (errno, text)
            os.close(fd)
            raise OSError(*exc.args) from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _run(self) -> None:
        while not self._stop.is_set():
            fd = self.fd
            if fd is None:  # hung up: open the tty again once the host is back
                try:
                    self.fd = self._open()
                except OSError:
                    self._stop.wait(0.2)
                continue
            if not self._wait(fd, write=False):
                continue
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                data = b""
            if not data:  # a hang-up (the gadget was disconnected): this fd is dead
                self.fd = None
                self._close(fd)
                continue
            if not self._write_all(fd, data):
                return
            self.echoed += len(data)

    def _close(self, fd: int) -> None:
        """Drop unsent output and close; a close the kernel keeps waiting (u_serial waits for
        its write buffer to drain while the host is connected) is left to a helper thread: the
        gadget's removal, which comes next, ends it."""
        import termios

        try:
            termios.tcflush(fd, termios.TCOFLUSH)
        except (OSError, termios.error):
            pass
        closer = threading.Thread(target=os.close, args=(fd,), name=f"dkproto-close:{self.path}", daemon=True)
        closer.start()
        closer.join(0.5)


class ReportPlayer(Peer):
    """Writes HID input reports to a ``/dev/hidgN`` (any writable node: a FIFO in the tests).

    Args:
        path: the node.
        reports: the reports, played in order.
        interval: seconds between two reports.
        loop: start again after the last (else stop there).
    """

    label = "reports"
    transient_errnos = frozenset({errno.ESHUTDOWN, errno.ECONNRESET})

    def __init__(self, path: str, reports: tuple[bytes, ...] | list[bytes], interval: float = DEFAULT_INTERVAL,
                 loop: bool = True) -> None:
        if not reports:
            raise BadArgumentError("a report player needs at least one report")
        super().__init__(path)
        self.reports = tuple(bytes(r) for r in reports)
        self.interval = float(interval)
        self.loop = loop
        self.sent = 0

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)

    def _run(self) -> None:
        fd = self.fd
        assert fd is not None
        while not self._stop.is_set():
            for report in self.reports:
                if not self._write_all(fd, report):
                    return
                self.sent += 1
                if self._stop.wait(self.interval):  # wait(0) returns at once
                    return
            if not self.loop:
                return


def start_peers(gadget: Gadget) -> list[Peer]:
    """Start the peer threads of a bound gadget (its definition's ``peer``, defaults applied).

    Raises:
        BadArgumentError: a bad ``peer`` value.
        OSError, NotFoundError: a device-side node that cannot be opened.
    """
    spec = peer_spec(gadget.definition.spec)
    peers: list[Peer] = []
    try:
        if spec.kind == "echo":
            for fname in serial_functions(gadget.definition.spec["functions"]):
                peer: Peer = EchoPeer(gadget.tty(fname))
                peer.start()
                peers.append(peer)
        elif spec.kind == "reports":
            peer = ReportPlayer(gadget.hidg(spec.function), spec.reports, spec.interval, spec.loop)
            peer.start()
            peers.append(peer)
    except BaseException:
        stop_peers(peers)
        raise
    return peers


def stop_peers(peers: list[Peer]) -> list[str]:
    """Stop peer threads and close their nodes; returns the errors that ended any early."""
    errors = []
    for peer in peers:
        peer.stop()
        if peer.error:
            errors.append(peer.error)
    peers.clear()
    return errors
