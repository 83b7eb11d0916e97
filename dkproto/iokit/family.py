"""DriverKit families as data: what :mod:`~dkproto.iokit.matching` and :mod:`~dkproto.iokit.runner` know
about a family comes only from here.

A *family* is one DriverKit class dkproto models, registered by the module that defines it
(``usb_host.py``, ``hid.py``, ``serial.py``, ``resources.py``) with :func:`register_family`:

- a **provider** family (``IOUSBHostDevice``, ``IOUSBHostInterface``, ``IOHIDInterface``,
  ``IOUserResources``) is a nub class a personality's ``IOProviderClass`` names: it says how
  personalities are scored against its nubs, which nubs a described device publishes (``dkproto
  match``), how the live nubs are published from a transport (``dkproto run``), and which
  transport entitlement lets a dext drive them;
- a **driver-class** family (``IOUserHIDDevice``, ``IOUserHIDEventService``, ``IOUserSerial``) is a
  class a dext subclasses: it names the kernel ``IOClass`` values a personality gives for it and
  the family entitlement they need (driverkit.md 5.1, 7.1).

Matching and the runner iterate :func:`families`; neither names a family. Adding a family is one
module (recipe: ``docs/iokit.md``, "Add a DriverKit family").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from dkproto.errors import BadArgumentError, NotFoundError
from dkproto.iokit.service import IOService

if TYPE_CHECKING:
    from dkproto.iokit.matching import Candidate, MatchResult, USBDeviceInfo
    from dkproto.iokit.personality import Entitlements, Personality

__all__ = [
    "ANY_SCHEME",
    "EntitlementCheck",
    "Family",
    "PublishHandler",
    "Publisher",
    "Scorer",
    "add_publish_handler",
    "families",
    "family_entitlement_for",
    "family_for",
    "family_of",
    "nub_published",
    "nub_republishing",
    "predecessor_of",
    "publisher_for",
    "register_family",
    "remove_publish_handler",
    "republish_failed",
    "republish_pending",
    "unregister_family",
]

#: In :attr:`Family.schemes`: every transport scheme no other family names.
ANY_SCHEME = "*"

#: ``score(personality, candidate, matching_keys, result) -> score or None``: the family's matching
#: rules; append the reasons (and warnings) to ``result``; None is "no match".
Scorer: TypeAlias = "Callable[[Personality, Candidate, dict[str, Any], MatchResult], int | None]"
#: ``check_entitlement(entitlements, candidate) -> (allowed, why)``; ``allowed`` None: nothing to check.
EntitlementCheck: TypeAlias = "Callable[[Entitlements, Candidate], tuple[bool | None, str]]"
#: ``publish(transport, watch) -> (root nub, every nub to match)``; ``transport`` is None for a
#: standalone family. The runner terminates the root nub to stop the driver.
Publisher: TypeAlias = "Callable[[Any, float | None], tuple[IOService, list[IOService]]]"


@dataclass(frozen=True, slots=True)
class Family:
    """One DriverKit class and everything matching and the runner need to know about it.

    Only ``cls`` is required; a provider family sets ``score`` and the hooks it needs, a
    driver-class family sets ``io_classes`` and ``entitlement``.

    Attributes:
        cls: the dkproto class (its ``__name__`` is Apple's: the ``IOProviderClass`` value of a
            provider family).
        entitlement: for a provider, the transport entitlement a dext needs to drive its nubs
            (``...transport.usb``); for a driver class, the family entitlement its ``io_classes``
            need (``...family.serial``).
        io_classes: kernel ``IOClass`` values a personality gives for subclasses of ``cls``
            (``AppleUserHIDEventService``); ``dkproto match`` warns when ``entitlement`` is missing.
        validate_entitlement: ``(value, where)`` checks ``entitlement``'s value when an
            ``.entitlements`` file is loaded; raises :class:`~dkproto.errors.DecodeError`.
        check_entitlement: whether the dext's entitlements allow a candidate (a winner they do
            not allow does not win; ``dkproto run`` refuses it with kIOReturnNotPermitted).
        score: the matching rules (see ``Scorer``); set for every provider family.
        nubs: ``(device, config_index)``: the candidates a described device publishes itself
            (a device nub and its interfaces), in publication order.
        published_on / children: the provider classes whose candidates publish this family's nubs,
            and ``children(parent)``, those nubs (an ``IOHIDInterface`` on a HID interface).
        standalone: the candidates that exist without any device (``IOUserResources``); listed
            only when a personality names the class.
        schemes / publish: transport URL schemes whose devices this family publishes for ``dkproto
            run`` (:data:`ANY_SCHEME`: any scheme no other family names), and how (see
            ``Publisher``). A standalone family's ``publish`` gets ``None``.
        device_info: the described device behind a live nub (what ``check_entitlement`` compares).
        default_url: a device URL from a personality's keys, when no device is given.
    """

    cls: type[IOService]
    entitlement: str | None = None
    io_classes: tuple[str, ...] = ()
    validate_entitlement: Callable[[Any, str], None] | None = None
    check_entitlement: EntitlementCheck | None = None
    score: Scorer | None = None
    nubs: Callable[[USBDeviceInfo, int], list[Candidate]] | None = None
    published_on: tuple[str, ...] = ()
    children: Callable[[Candidate], list[Candidate]] | None = None
    standalone: Callable[[], list[Candidate]] | None = None
    schemes: tuple[str, ...] = ()
    publish: Publisher | None = None
    device_info: Callable[[IOService], USBDeviceInfo | None] | None = None
    default_url: Callable[[Personality], str | None] | None = None

    @property
    def name(self) -> str:
        """Apple's class name (``cls.__name__``)."""
        return self.cls.__name__

    @property
    def is_provider(self) -> bool:
        """True when personalities may name this class in ``IOProviderClass``."""
        return self.score is not None


_FAMILIES: dict[str, Family] = {}


def _problems(f: Family, others: list[Family]) -> list[str]:
    """What is inconsistent in ``f``, alone or beside the other registered families."""
    out = []
    if not (isinstance(f.cls, type) and issubclass(f.cls, IOService)):
        out.append(f"cls {f.cls!r} is not an IOService subclass")
        return out
    provider_hooks = ("check_entitlement", "nubs", "published_on", "children", "standalone", "schemes",
                      "publish", "device_info", "default_url")
    if f.score is None:
        out += [f"{h} needs score (only a provider family has it)" for h in provider_hooks if getattr(f, h)]
    if bool(f.children) != bool(f.published_on):
        out.append("children and published_on go together")
    if f.cls.__name__ in f.published_on:
        out.append("its nubs cannot be published on its own nubs")
    if f.schemes and f.publish is None:
        out.append("schemes need publish")
    if f.publish is not None and not (f.schemes or f.standalone):
        out.append("publish needs schemes (or standalone)")
    if (f.io_classes or f.validate_entitlement) and not f.entitlement:
        out.append("io_classes and validate_entitlement need entitlement")
    for o in others:
        out += [f"scheme {s!r} is already published by {o.name}" for s in f.schemes if s in o.schemes]
        out += [f"IOClass {c!r} already belongs to {o.name}" for c in f.io_classes if c in o.io_classes]
    return out


def register_family(family: Family, *, replace: bool = False) -> Family:
    """Make ``family`` known to matching and the runner (call it when its module is imported).

    Raises:
        BadArgumentError: the family is inconsistent (hooks that go together, a scheme or an
            ``IOClass`` another family has), or one with that name exists and ``replace`` is false.
    """
    name = getattr(family.cls, "__name__", repr(family.cls))
    if name in _FAMILIES and not replace:
        raise BadArgumentError(f"register_family: {name} is already registered (replace=True to replace it)")
    problems = _problems(family, [f for n, f in _FAMILIES.items() if n != name])
    if problems:
        raise BadArgumentError(f"register_family({name}): " + "; ".join(problems))
    _FAMILIES[name] = family
    return family


def unregister_family(name: str) -> Family:
    """Forget the family called ``name``; returns it.

    Raises:
        NotFoundError: no such family.
    """
    try:
        return _FAMILIES.pop(name)
    except KeyError:
        raise NotFoundError(f"unregister_family: no family {name!r} (have: {', '.join(_FAMILIES)})") from None


def families() -> tuple[Family, ...]:
    """Every registered family, in registration order."""
    return tuple(_FAMILIES.values())


def family_for(provider_class: str) -> Family | None:
    """The provider family personalities name with ``IOProviderClass`` ``provider_class``."""
    f = _FAMILIES.get(provider_class)
    return f if f is not None and f.is_provider else None


def family_of(nub: IOService) -> Family | None:
    """The provider family of a live nub: the nearest registered class in its MRO."""
    for klass in type(nub).__mro__:
        f = _FAMILIES.get(klass.__name__)
        if f is not None and f.cls is klass and f.is_provider:
            return f
    return None


def publisher_for(scheme: str) -> Family | None:
    """The family that publishes the nubs of a ``scheme://`` transport's device."""
    fallback = None
    for f in _FAMILIES.values():
        if scheme in f.schemes:
            return f
        if ANY_SCHEME in f.schemes:
            fallback = f
    return fallback


def family_entitlement_for(io_class: str | None) -> str | None:
    """The family entitlement a personality's ``IOClass`` needs, or None (``IOUserService``)."""
    for f in _FAMILIES.values():
        if io_class in f.io_classes:
            return f.entitlement
    return None


# ---- publications after start-up -------------------------------------------------------------
#
# In macOS a nub published later (``IOUSBHostDevice::Reset`` re-enumerates the device as a new
# IOUSBHostDevice; ``SetConfiguration(value, true)`` publishes new interfaces) starts matching
# again. A family announces such nubs with :func:`nub_published`; whoever runs matching (the
# runner) subscribes with :func:`add_publish_handler` and matches them like the first ones.

#: ``handler(root, nubs)``: ``root`` is the new root nub (what terminating stops), ``nubs`` every
#: nub to match, in publication order.
PublishHandler: TypeAlias = "Callable[[IOService, list[IOService]], None]"

_handlers: list[PublishHandler] = []
_handlers_lock = threading.Lock()
_log = logging.getLogger(__name__)


def add_publish_handler(handler: PublishHandler) -> None:
    """Call ``handler(root, nubs)`` for every nub published after start-up (a ``Reset`` device)."""
    with _handlers_lock:
        if handler not in _handlers:
            _handlers.append(handler)


def remove_publish_handler(handler: PublishHandler) -> None:
    """Stop calling ``handler``; unknown handlers are ignored."""
    with _handlers_lock:
        if handler in _handlers:
            _handlers.remove(handler)


def nub_republishing(old_root: IOService) -> None:
    """A family announces that ``old_root`` terminates to come back as a new nub (``Reset``): until
    :func:`nub_published` names its successor (``replaces=old_root``) or :func:`republish_failed`,
    :func:`republish_pending` is true, so whoever waits on the old nub knows it is not the end."""
    with _handlers_lock:
        _pending.add(old_root.get_registry_entry_id())


def republish_failed(old_root: IOService) -> None:
    """The device announced with :func:`nub_republishing` did not come back."""
    with _handlers_lock:
        _pending.discard(old_root.get_registry_entry_id())


def republish_pending(old_root: IOService) -> bool:
    """True while ``old_root``'s successor is announced but not published yet (or its handlers run)."""
    with _handlers_lock:
        return old_root.get_registry_entry_id() in _pending


def predecessor_of(root: IOService) -> int | None:
    """The registry ID of the nub ``root`` replaces (``nub_published(..., replaces=)``), or None."""
    with _handlers_lock:
        return _predecessors.get(root.get_registry_entry_id())


def nub_published(root: IOService, nubs: list[IOService], *, replaces: IOService | None = None) -> int:
    """Announce newly published nubs to every handler; returns how many were told.

    ``replaces``: the nub ``root`` succeeds (the device before ``Reset``); its pending
    republication ends once every handler has run. A handler that raises is logged and skipped:
    one subscriber cannot stop the others.
    """
    with _handlers_lock:
        handlers = list(_handlers)
        if replaces is not None:
            _predecessors[root.get_registry_entry_id()] = replaces.get_registry_entry_id()
    try:
        for h in handlers:
            try:
                h(root, list(nubs))
            except Exception:  # noqa: BLE001 - a subscriber's bug must not break the publication
                _log.exception("publish handler %r failed for %s", h, root.get_name())
    finally:
        if replaces is not None:
            republish_failed(replaces)  # no longer pending: the handlers have seen the successor
    return len(handlers)


_pending: set[int] = set()  # registry IDs of nubs whose successor is announced (nub_republishing)
_predecessors: dict[int, int] = {}  # successor's registry ID -> the ID of the nub it replaces
