"""``spy+<scheme>://``: wrap any transport and log every transfer as a hex dump.

``open_transport("spy+usb://1d6b:0104")`` logs to the ``dkproto.spy`` logger at INFO
(``?spy_log=NAME`` picks another logger); when nothing handles that logger's INFO records
(logging not configured, as in the ``dkproto`` CLI), the dump goes to stderr instead. Modelled on pyserial's ``spy://`` handler. It is a
:class:`~dkproto.transport.base.TransportWrapper`: it sees every call through one hook, which is
where a recorder will sit as well.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, ClassVar

from dkproto.errors import DkError
from dkproto.transport.base import Transfer, Transport, TransportWrapper
from dkproto.transport.url import split_wrapper_url

__all__ = ["GRAMMAR", "SpyTransport", "hexdump"]

GRAMMAR = "spy+ANY-TRANSPORT-URL[?spy_log=LOGGER] (e.g. spy+usb://1d6b:0104, spy+sim://loopback)"



def hexdump(data: bytes, width: int = 16) -> str:
    """Classic hex dump: offset, hex bytes, ASCII (``.`` for non-printables)."""
    lines = []
    for off in range(0, len(data), width):
        chunk = data[off:off + width]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:04x}  {hexpart:<{width * 3 - 1}}  |{text}|")
    return "\n".join(lines) if lines else "(no data)"


class SpyTransport(TransportWrapper):
    """Logs each operation, its arguments, its result or error, and the bytes as a hex dump.

    Args:
        inner: the transport to watch.
        logger: where to log (default ``dkproto.spy``).
        sink: optional callable receiving each log text too (tests, the CLI's ``--spy``).
    """

    scheme: ClassVar[str] = "spy"
    grammar: ClassVar[str] = GRAMMAR

    def __init__(self, inner: Transport, logger: logging.Logger | None = None,
                 sink: Callable[[str], None] | None = None) -> None:
        super().__init__(inner)
        self.logger = logger or logging.getLogger("dkproto.spy")
        self.sink = sink

    @classmethod
    def from_url(cls, url: str) -> SpyTransport:
        """``spy+INNER://...``: build the inner transport from the rest of the URL."""
        from dkproto.transport.registry import open_transport

        inner_url, logger_name = split_wrapper_url(url, "spy", "spy_log", GRAMMAR)
        inner = open_transport(inner_url)
        return cls(inner, logging.getLogger(logger_name or "dkproto.spy"))

    def _emit(self, text: str) -> None:
        """To the logger; to ``sink`` if given, else to stderr when logging would drop it.

        ``spy+`` is a request to see the traffic: when nothing handles the logger's INFO records
        (logging not configured, as in the CLI), the text goes to stderr instead of nowhere.
        """
        if self.logger.isEnabledFor(logging.INFO) and self.logger.hasHandlers():
            self.logger.info("%s", text)
        elif self.sink is None:
            print(text, file=sys.stderr, flush=True)
        if self.sink is not None:
            self.sink(text)

    def _call(self, op: str, args: dict[str, Any], fn: Callable[[], Any]) -> Any:
        name = self.inner.info.url
        if op == "complete":
            transfer: Transfer = args["transfer"]
            self._emit(f"{name} < complete ep=0x{transfer.endpoint:02x} status=0x{int(transfer.status) & 0xFFFFFFFF:08x}"
                       f" actual={transfer.actual_length}"
                       + (f"\n{hexdump(transfer.data)}" if transfer.is_in and transfer.data else ""))
            return fn()
        shown = " ".join(f"{k}={_fmt(k, v)}" for k, v in args.items() if not isinstance(v, (bytes, bytearray)))
        out_data = next((v for v in args.values() if isinstance(v, (bytes, bytearray))), None)
        self._emit(f"{name} > {op} {shown}".rstrip() + (f"\n{hexdump(bytes(out_data))}" if out_data else ""))
        try:
            result = fn()
        except DkError as exc:
            self._emit(f"{name} ! {op}: {exc.one_line()}")
            raise
        if isinstance(result, (bytes, bytearray)):
            self._emit(f"{name} < {op} {len(result)} bytes\n{hexdump(bytes(result))}")
        elif isinstance(result, int) and not isinstance(result, bool):
            self._emit(f"{name} < {op} {result}")
        return result


_HEX_KEYS = {"endpoint", "bmRequestType", "bRequest", "wValue", "wIndex"}


def _fmt(key: str, value: Any) -> str:
    if key in _HEX_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return f"0x{value:02x}" if value >= 0 else str(value)
    return repr(value)
