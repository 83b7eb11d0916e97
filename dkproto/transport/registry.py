"""``open_transport(url)``: the URL scheme picks the transport class.

Schemes come from three places, first match wins:

1. :func:`register_scheme` (tests, applications),
2. the built-ins below (``usb``, ``hid``, ``serial``, ``sim``, ``spy``), imported lazily,
3. the ``dkproto.transports`` entry-point group, so another package adds a scheme by declaring
   ``[project.entry-points."dkproto.transports"] myscheme = "mypkg.mod:MyTransport"``.

A scheme written ``A+B://`` is a wrapper ``A`` around the transport for ``B://`` when ``A`` is a
wrapper class (:class:`~dkproto.transport.base.TransportWrapper`, e.g. ``spy+usb://...``);
otherwise the URL goes to scheme ``A``, which reads ``B`` itself (``serial+loop://``).
"""

from __future__ import annotations

import importlib
from importlib import metadata

from dkproto.errors import URLError
from dkproto.transport.base import Transport
from dkproto.transport.url import split_scheme

__all__ = ["ENTRY_POINT_GROUP", "GRAMMAR", "open_transport", "register_scheme", "resolve_scheme", "schemes"]

ENTRY_POINT_GROUP = "dkproto.transports"

#: Shown when no scheme matches.
GRAMMAR = "SCHEME://... with SCHEME one of {schemes} (wrappers stack: spy+usb://...)"

_BUILTINS: dict[str, str] = {
    "usb": "dkproto.transport.usb:USBTransport",
    "hid": "dkproto.transport.hid:HIDTransport",
    "serial": "dkproto.transport.serial:SerialTransport",
    "sim": "dkproto.transport.sim:SimTransport",
    "spy": "dkproto.transport.spy:SpyTransport",
}

_REGISTERED: dict[str, type[Transport]] = {}


def register_scheme(scheme: str, cls: type[Transport]) -> None:
    """Make ``scheme://`` open ``cls`` (``cls.from_url(url)``) in this process."""
    _REGISTERED[scheme.lower()] = cls


def _entry_points() -> dict[str, metadata.EntryPoint]:
    eps = metadata.entry_points(group=ENTRY_POINT_GROUP)  # the selectable API (Python >= 3.10)
    return {ep.name.lower(): ep for ep in eps}


def schemes() -> list[str]:
    """Every scheme this process can open."""
    return sorted(set(_REGISTERED) | set(_BUILTINS) | set(_entry_points()))


def resolve_scheme(scheme: str) -> type[Transport] | None:
    """The transport class for ``scheme``, or ``None``."""
    scheme = scheme.lower()
    if scheme in _REGISTERED:
        return _REGISTERED[scheme]
    target = _BUILTINS.get(scheme)
    if target is not None:
        module_name, attr = target.split(":")
        cls = getattr(importlib.import_module(module_name), attr)
        return cls  # type: ignore[no-any-return]
    ep = _entry_points().get(scheme)
    if ep is not None:
        return ep.load()  # type: ignore[no-any-return]
    return None


def open_transport(url: str, *, open: bool = False) -> Transport:
    """Build the transport for ``url`` (closed unless ``open=True``; use it as a context manager).

    Raises:
        URLError: unknown scheme or a URL that does not follow its scheme's grammar (quoted).
    """
    grammar = GRAMMAR.format(schemes=", ".join(schemes()))
    scheme, _ = split_scheme(url, grammar)
    cls = resolve_scheme(scheme)
    if cls is None and "+" in scheme:
        cls = resolve_scheme(scheme.split("+", 1)[0])
    if cls is None:
        raise URLError(f"bad transport URL {url!r}: unknown scheme {scheme!r}; expected {grammar}")
    transport = cls.from_url(url)
    return transport.open() if open else transport
