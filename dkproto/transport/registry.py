"""``open_transport(url)``: the URL scheme picks the transport class.

Schemes come from three places, first match wins:

1. :func:`register_scheme` (tests, applications),
2. the built-ins below (``usb``, ``hid``, ``serial``, ``sim``, ``spy``), imported lazily,
3. the ``dkproto.transports`` entry-point group, so another package adds a scheme by declaring
   ``[project.entry-points."dkproto.transports"] myscheme = "mypkg.mod:MyTransport"``.

A scheme written ``A+B://`` is a wrapper ``A`` around the transport for ``B://`` when ``A`` is a
wrapper class (:class:`~dkproto.transport.base.TransportWrapper`, e.g. ``spy+usb://...``);
otherwise the URL goes to scheme ``A``, which reads ``B`` itself (``serial+loop://``).

While a session is recorded or replayed (``dkproto.transport.record.recording``,
``dkproto.transport.replay.replaying``, or ``DKPROTO_RECORD`` / ``DKPROTO_REPLAY`` in the
environment), the transport of every back end's URL goes through the open hooks; a wrapper's URL
does not (its inner URL comes back here), so ``spy+`` stacks on a recorded or replayed device.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from dkproto._entry_points import entry_points
from dkproto.errors import URLError
from dkproto.transport.base import Transport, TransportWrapper
from dkproto.transport.url import is_url, split_scheme

if TYPE_CHECKING:
    from importlib import metadata

__all__ = ["ENTRY_POINT_GROUP", "GRAMMAR", "OPEN_HOOKS", "OpenHook", "open_transport", "register_scheme",
           "resolve_scheme", "schemes"]

ENTRY_POINT_GROUP = "dkproto.transports"

#: Shown when no scheme matches.
GRAMMAR = "SCHEME://... with SCHEME one of {schemes} (wrappers stack: spy+usb://...)"

_BUILTINS: dict[str, str] = {
    "usb": "dkproto.transport.usb:USBTransport",
    "hid": "dkproto.transport.hid:HIDTransport",
    "serial": "dkproto.transport.serial:SerialTransport",
    "sim": "dkproto.transport.sim:SimTransport",
    "spy": "dkproto.transport.spy:SpyTransport",
    "record": "dkproto.transport.record:RecordTransport",
    "replay": "dkproto.transport.replay:ReplayTransport",
}

#: ``hook(cls, url, build) -> Transport``: wraps or replaces what ``build()`` (``cls.from_url(url)``)
#: makes, for a back end's URL. The replayer is first (it replaces), the recorder after (it wraps).
OpenHook = Callable[[type[Transport], str, Callable[[], Transport]], Transport]
OPEN_HOOKS: list[OpenHook] = []


def _open_hooks() -> list[OpenHook]:
    """The hooks, after ``DKPROTO_REPLAY`` / ``DKPROTO_RECORD`` had their say (each activates once per process)."""
    if os.environ.get("DKPROTO_REPLAY"):
        from dkproto.transport.replay import activate_from_environment as replay_env

        replay_env()
    if os.environ.get("DKPROTO_RECORD"):
        from dkproto.transport.record import activate_from_environment as record_env

        record_env()
    return list(OPEN_HOOKS)


_REGISTERED: dict[str, type[Transport]] = {}


def register_scheme(scheme: str, cls: type[Transport]) -> None:
    """Make ``scheme://`` open ``cls`` (``cls.from_url(url)``) in this process."""
    _REGISTERED[scheme.lower()] = cls


@functools.cache
def _scan_entry_points() -> dict[str, metadata.EntryPoint]:
    # Once per process, and only when a scheme is neither registered nor built in (or the list
    # of schemes is asked for): a scan reads every installed distribution's metadata (~0.25 s
    # under the lab's emulated CPU, and list/match open a transport per device).
    eps = entry_points(ENTRY_POINT_GROUP)
    return {ep.name.lower(): ep for ep in eps}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return _scan_entry_points()


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


def _grammar() -> str:
    return GRAMMAR.format(schemes=", ".join(schemes()))


def open_transport(url: str, *, open: bool = False) -> Transport:
    """Build the transport for ``url`` (closed unless ``open=True``; use it as a context manager).

    Raises:
        URLError: unknown scheme or a URL that does not follow its scheme's grammar (quoted).
    """
    # The grammar lists every scheme (entry points included): built only for an error message.
    if not isinstance(url, str) or not is_url(url):
        split_scheme(url, _grammar())  # raises the URLError that quotes it
    scheme, _ = split_scheme(url)
    cls = resolve_scheme(scheme)
    if cls is None and "+" in scheme:
        cls = resolve_scheme(scheme.split("+", 1)[0])
    if cls is None:
        raise URLError(f"bad transport URL {url!r}: unknown scheme {scheme!r}; expected {_grammar()}")
    build: Callable[[], Transport] = functools.partial(cls.from_url, url)
    if not issubclass(cls, TransportWrapper):
        for hook in _open_hooks():
            build = functools.partial(hook, cls, url, build)
    transport = build()
    return transport.open() if open else transport
