"""Run a prototype driver on a device: what ``dkproto run devices/<driver>.py`` does, as a library.

1. load the driver module, its ``Info.plist`` and entitlements (beside it);
2. open the device (``--device URL``, else the module's ``DEFAULT_DEVICE``, else a URL a family
   makes from a personality: ``idVendor``/``idProduct``, ``VendorID``/``ProductID``) and publish its
   nubs with the family that publishes the URL's scheme (USB: the device and its interfaces; HID:
   an ``IOHIDInterface``); with no device at all, a standalone family's nub (``IOUserResources``)
   when a personality names it;
3. match the personalities against the live nubs (each family's rules); refuse a device the
   provider family's transport entitlement does not allow (kIOReturnNotPermitted);
4. ``init`` + ``Start`` the winning ``IOUserClass`` on its nub;
5. hand the driver to an app (in-process, or over a Unix socket for another process);
6. stop cleanly: on unplug the nub terminates (drivers stop first); :meth:`RunningDriver.stop`
   (end of the app, Ctrl-C) terminates the device nub, which stops the driver, then frees all;
7. match again what the device's family publishes after start-up in place of the nub
   (``IOUSBHostDevice::Reset`` terminates the device nub and publishes a new one, as in macOS):
   the driver comes back on the new nubs and :class:`RunningDriver` follows them.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from dkproto.errors import (
    BadArgumentError,
    DkError,
    DkTimeoutError,
    NotFoundError,
    NotPermittedError,
    UnsupportedError,
)
from dkproto.iokit.family import (
    add_publish_handler,
    families,
    family_for,
    family_of,
    predecessor_of,
    publisher_for,
    remove_publish_handler,
    republish_pending,
)
from dkproto.iokit.matching import Candidate, MatchResult, score_personality
from dkproto.iokit.personality import DriverBundle, Entitlements, Personality, load_bundle, load_entitlements
from dkproto.iokit.service import IOService, ServiceState, start_service
from dkproto.iokit.status import user_code_error

__all__ = ["RunningDriver", "load_driver_module", "run_driver"]

_log = logging.getLogger(__name__)
_counter = itertools.count()


def load_driver_module(path: str | Path) -> ModuleType:
    """Import a driver file under a unique module name (several may be loaded in one process).

    Raises:
        NotFoundError: no such file.
        DkError: the file does not import (SyntaxError, ImportError, any exception, ``sys.exit``):
            one line naming the file and line (:func:`~dkproto.iokit.status.user_code_error`).
    """
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"driver file {p} not found")
    name = f"dkproto_driver_{p.parent.name.replace('-', '_')}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise BadArgumentError(f"{p}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, (KeyboardInterrupt, DkError)):
            raise
        raise user_code_error(exc, "importing the driver", p) from exc
    return module


@dataclass
class RunningDriver:
    """A driver started on a device, and how to stop it.

    After a ``Reset`` (the device nub terminates and its family publishes a new one in its place)
    the driver is matched and started again on the new nubs: ``nub``, ``provider``, ``driver``,
    ``personality``, ``match`` and ``candidates`` then name the new objects, ``generation`` counts
    the restarts, and ``wait_stopped`` waits through the gap.
    """

    bundle: DriverBundle
    module: ModuleType
    nub: IOService
    provider: IOService
    driver: IOService
    personality: Personality
    match: MatchResult
    app_entitlements: dict[str, Any] | None = None
    candidates: list[Candidate] = field(default_factory=list)
    path: Path | None = None
    generation: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _stopping: bool = field(default=False, repr=False)

    @property
    def running(self) -> bool:
        """True while the driver is started (False after unplug or stop)."""
        return self.driver.state is ServiceState.STARTED

    def _coming_back(self) -> bool:
        """True while the device nub's family has announced a successor not yet matched (``Reset``)."""
        return not self._stopping and republish_pending(self.nub)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until the driver and then its device nub have stopped and been freed (unplug or stop).

        A nub that ends because its device is coming back (``Reset``) is not the end: this waits
        for the new nub and its driver instead.
        """
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        while True:
            generation, driver, nub = self.generation, self.driver, self.nub
            if not (driver.wait_terminated(left()) and nub.wait_terminated(left())):
                return False
            with self._cond:  # the successor is matched on the publisher's thread: wait for it
                while self.generation == generation and self._coming_back():
                    if deadline is not None and time.monotonic() >= deadline:
                        return False
                    self._cond.wait(0.05 if deadline is None else min(0.05, left() or 0.0))
                if self.generation == generation:
                    return True

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the device nub (clients stop first, then the nub); wait for the end.

        A device that is being re-published (``Reset``) is terminated when it appears.

        Raises:
            DkError: the driver's ``stop`` or ``free`` raised (once; the driver is freed anyway),
                naming the driver file and line.
            DkTimeoutError: the driver had not finished stopping within ``timeout`` seconds.
        """
        with self._cond:
            self._stopping = True
        deadline = time.monotonic() + timeout
        try:
            while True:
                generation = self.generation
                self._stop(max(0.0, deadline - time.monotonic()))
                while republish_pending(self.nub) and time.monotonic() < deadline:
                    time.sleep(0.02)  # a Reset in flight: _on_publish terminates the successor
                if self.generation == generation:  # else a successor started meanwhile: stop it too
                    return
        finally:
            remove_publish_handler(self._on_publish)

    def _stop(self, timeout: float) -> None:
        if self.nub.state is ServiceState.STARTED:
            self.nub.terminate()
        deadline = time.monotonic() + timeout
        stopped = self.driver.wait_terminated(timeout)
        self.nub.wait_terminated(max(0.0, deadline - time.monotonic()))
        for svc in (self.driver, self.nub):
            if svc.terminate_errors:
                _, exc = svc.terminate_errors[0]
                svc.terminate_errors.clear()
                if isinstance(exc, DkError):
                    raise exc
                raise user_code_error(exc, f"stopping {type(svc).__name__}", self.path) from exc
        if not stopped:
            raise DkTimeoutError(f"{self.path}: {type(self.driver).__name__} has not finished stopping after "
                                 f"{timeout:g} s (does its stop() block?)")

    def _on_publish(self, root: IOService, nubs: list[IOService]) -> None:
        """``family.nub_published``: match and start the driver again when ``root`` replaces our nub."""
        if predecessor_of(root) != self.nub.get_registry_entry_id():
            return  # another device's nubs
        with self._cond:
            stopping = self._stopping
        if stopping:
            if root.state is ServiceState.STARTED:
                root.terminate()  # stopped while the device was coming back: let it go
            return
        try:
            result, provider, drv, cands = _match_and_start(self.bundle, self.module, nubs, root.get_name(),
                                                            self.path)
        except BaseException as exc:  # noqa: BLE001 - logged: the driver stays stopped, as it would in macOS
            _log.error("%s: the device came back after a reset, but the driver did not start again: %s",
                       self.path, exc)
            if root.state is ServiceState.STARTED:
                root.terminate()
            return
        with self._cond:
            self.nub, self.provider, self.driver, self.candidates = root, provider, drv, cands
            self.match, self.personality = result, result.personality
            self.generation += 1
            self._cond.notify_all()
        _log.info("matched %s again on %s after a reset", result.personality.name, provider.get_name())


def _default_url(module: ModuleType, bundle: DriverBundle) -> str | None:
    """``DEFAULT_DEVICE``, else the first URL a provider family makes from a personality."""
    url = getattr(module, "DEFAULT_DEVICE", None)
    if isinstance(url, str):
        return url
    for p in bundle.personalities:
        fam = family_for(p.io_provider_class)
        made = fam.default_url(p) if fam is not None and fam.default_url is not None else None
        if made:
            return made
    return None


def _publish(device: Any, bundle: DriverBundle, watch: float | None
             ) -> tuple[str, IOService, list[IOService]]:
    """Publish the nubs to match: ``(what was published, root nub, every nub)``."""
    if device is None:  # no device: the nub of a standalone family a personality names
        named = {p.io_provider_class for p in bundle.personalities}
        for fam in families():
            if fam.standalone is not None and fam.publish is not None and fam.name in named:
                return (fam.name, *fam.publish(None, watch))
        raise BadArgumentError("no device: pass --device URL (no DEFAULT_DEVICE in the driver and no "
                               "idVendor/idProduct in its personalities)")
    from dkproto.transport import open_transport

    transport = open_transport(device) if isinstance(device, str) else device
    scheme = getattr(transport, "device_scheme", transport.scheme)  # 'hid' for hid://, spy+hid://, a recorded or a replayed hid://
    publisher = publisher_for(scheme)
    if publisher is None or publisher.publish is None:
        raise UnsupportedError(f"{device}: no DriverKit family publishes the nubs of {scheme}:// "
                               "devices")
    return (str(device), *publisher.publish(transport, watch))


def _candidate(nub: IOService) -> Candidate:
    """A live nub as matching sees it (its family's class, properties, and the device behind it)."""
    fam = family_of(nub)
    c = Candidate(fam.name if fam is not None else type(nub).__name__, dict(nub.properties), nub.get_name())
    if fam is not None and fam.device_info is not None:
        c.device = fam.device_info(nub)
    return c


def run_driver(driver_path: str | Path, device: Any = None, *, info_plist: str | Path | None = None,
               entitlements: str | Path | None = None, app_entitlements: str | Path | None = None,
               watch: float | None = 0.25) -> RunningDriver:
    """Match and start the driver in ``driver_path`` on a device (see the module docstring).

    ``device`` is a transport URL or an (unopened or open) Transport object.

    Raises:
        NotFoundError: no personality matches the device (the message lists why each fails).
        NotPermittedError: the entitlements do not allow the device.
    """
    driver_path = Path(driver_path)
    module = load_driver_module(driver_path)
    plist = Path(info_plist) if info_plist else driver_path.parent / "Info.plist"
    bundle = load_bundle(plist, entitlements)
    app_ents_path = Path(app_entitlements) if app_entitlements else driver_path.parent / "app.entitlements"
    app_ents = load_entitlements(app_ents_path).values if app_ents_path.is_file() else None
    url, nub, nubs = _publish(device or _default_url(module, bundle), bundle, watch)
    try:
        result, provider, drv, cands = _match_and_start(bundle, module, nubs, url, driver_path, plist)
        running = RunningDriver(bundle=bundle, module=module, nub=nub, provider=provider, driver=drv,
                                personality=result.personality, match=result, app_entitlements=app_ents,
                                candidates=cands, path=driver_path)
        add_publish_handler(running._on_publish)  # a Reset publishes the device again: match it again
        return running
    except BaseException:
        if nub.state is ServiceState.STARTED:
            nub.terminate()
            nub.wait_terminated(5)
        raise


def _match_and_start(bundle: DriverBundle, module: ModuleType, nubs: list[IOService], url: str,
                     driver_path: Path | None, plist: Path | None = None
                     ) -> tuple[MatchResult, IOService, IOService, list[Candidate]]:
    """Match the bundle's personalities against live nubs, check the entitlements, start the winner:
    ``(match result, provider nub, started driver, candidates)``."""
    cands = [_candidate(n) for n in nubs]
    best: tuple[MatchResult, IOService] | None = None
    why: list[str] = []
    for c, n in zip(cands, nubs):
        for p in bundle.personalities:
            r = score_personality(p, c)
            if not r.matched:
                if p.io_provider_class == c.provider_class:
                    why.append(f"{p.name} vs {c.label}: {r.reasons[-1] if r.reasons else 'no match'}")
                continue
            if best is None or (r.score or 0) > (best[0].score or 0):
                best = (r, n)
    if best is None:
        raise NotFoundError(f"no personality of {plist or bundle.path} matches {url}: " + "; ".join(why))
    result, provider = best
    fam = family_for(result.candidate.provider_class)
    if bundle.entitlements is not None and fam is not None and fam.check_entitlement is not None:
        ok, why_ent = fam.check_entitlement(bundle.entitlements, result.candidate)
        if ok is False:
            raise NotPermittedError(f"{bundle.entitlements.path}: {why_ent}")
    p = result.personality
    cls_name = p.io_user_class or p.io_class
    cls = getattr(module, str(cls_name), None)
    if not (isinstance(cls, type) and issubclass(cls, IOService)):
        raise NotFoundError(f"{driver_path}: no IOService subclass {cls_name!r} (IOUserClass of {p.name})")
    _log.info("matched %s on %s (score %s); starting %s", p.name, provider.get_name(), result.score, cls_name)
    try:
        drv = cls()
        drv.properties.update(p.properties)
        drv.dext_entitlements = bundle.entitlements.values if bundle.entitlements is not None else None
        start_service(drv, provider)
    except (KeyboardInterrupt, DkError):
        raise
    except BaseException as exc:  # the driver's own __init__/init/start
        raise user_code_error(exc, f"starting {cls_name}", driver_path) from exc
    return result, provider, drv, cands


def entitlements_or_none(path: str | Path | None) -> Entitlements | None:
    """Load an entitlements file if a path is given."""
    return load_entitlements(path) if path else None
