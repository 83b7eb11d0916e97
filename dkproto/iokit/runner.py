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
   (end of the app, Ctrl-C) terminates the device nub, which stops the driver, then frees all.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import sys
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
from dkproto.iokit.family import families, family_for, family_of, publisher_for
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
    """A driver started on a device, and how to stop it."""

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

    @property
    def running(self) -> bool:
        """True while the driver is started (False after unplug or stop)."""
        return self.driver.state is ServiceState.STARTED

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until the driver and then its device nub have stopped and been freed (unplug or stop)."""
        return self.driver.wait_terminated(timeout) and self.nub.wait_terminated(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the device nub (clients stop first, then the nub); wait for the end.

        Raises:
            DkError: the driver's ``stop`` or ``free`` raised (once; the driver is freed anyway),
                naming the driver file and line.
            DkTimeoutError: the driver had not finished stopping within ``timeout`` seconds.
        """
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
            raise NotFoundError(f"no personality of {plist} matches {url}: " + "; ".join(why))
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
        return RunningDriver(bundle=bundle, module=module, nub=nub, provider=provider, driver=drv, personality=p,
                             match=result, app_entitlements=app_ents, candidates=cands, path=driver_path)
    except BaseException:
        if nub.state is ServiceState.STARTED:
            nub.terminate()
            nub.wait_terminated(5)
        raise


def entitlements_or_none(path: str | Path | None) -> Entitlements | None:
    """Load an entitlements file if a path is given."""
    return load_entitlements(path) if path else None
