"""``IOService``: lifecycle with explicit state and guards, provider/client links, properties.

Lifecycle (driverkit.md 3.2, 8.1 item 7)::

    created --init()--> initialized --start(provider)--> started --terminate()--> terminating
       started/terminating --stop(provider)--> stopped --free()--> freed

``start`` calls ``super().start(provider)`` **first** (``Start(provider, SUPERDISPATCH)``),
sets up, then calls ``register_service()``. ``stop`` quiesces, cancels async work, then calls
``super().stop(provider)`` **last**. ``terminate`` is asynchronous: it returns at once, then,
on the service's default queue, terminates the clients, calls ``stop(provider)`` and ``free()``.
A method called out of its state raises :class:`~dkproto.errors.StateError` naming the method
and the state (style lesson 9).
"""

from __future__ import annotations

import enum
import functools
import itertools
import logging
import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from dkproto.errors import (
    BadArgumentError,
    DkError,
    NotFoundError,
    NotPermittedError,
    StateError,
    UnsupportedError,
)
from dkproto.iokit.queue import IODispatchQueue, kIOServiceDefaultQueueName
from dkproto.ioreturn import IOReturn

if TYPE_CHECKING:
    from dkproto.iokit.user_client import IOUserClient

__all__ = [
    "IOService",
    "ServiceState",
    "check_dext_entitlements",
    "guard",
    "kIOServicePowerCapabilityLow",
    "kIOServicePowerCapabilityOff",
    "kIOServicePowerCapabilityOn",
    "kIOServiceSearchPropertyParents",
    "registered_services",
    "start_service",
    "user_client_gate",
]

kIOServiceSearchPropertyParents = 1
kIOServicePowerCapabilityOff = 0x0
kIOServicePowerCapabilityOn = 0x2
kIOServicePowerCapabilityLow = 0x10000

ENT_ALLOW_ANY_USERCLIENT = "com.apple.developer.driverkit.allow-any-userclient-access"
ENT_USERCLIENT_ACCESS = "com.apple.developer.driverkit.userclient-access"

_log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


class ServiceState(enum.Enum):
    """Where an :class:`IOService` is in its life."""

    CREATED = "created"
    INITIALIZED = "initialized"
    STARTED = "started"
    TERMINATING = "terminating"
    STOPPED = "stopped"
    FREED = "freed"


def guard(*states: ServiceState) -> Callable[[F], F]:
    """Decorator: the method may run only in ``states``; otherwise StateError naming both."""
    allowed = frozenset(states)
    names = "/".join(s.value for s in states)

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: IOService, *args: Any, **kw: Any) -> Any:
            if self._state not in allowed:
                raise StateError(f"{type(self).__name__}.{fn.__name__}: called in state "
                                 f"'{self._state.value}', needs {names}")
            return fn(self, *args, **kw)

        return wrapper  # type: ignore[return-value]

    return deco


_ids = itertools.count(0x100000001)
_classes: dict[str, type[IOService]] = {}
#: The registered services of this process by registry entry ID: what an app matches against
#: (``IOServiceGetMatchingServices``). Weak: a service nobody holds any more leaves it.
_registry: weakref.WeakValueDictionary[int, IOService] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


def _unregister(service: IOService) -> None:
    with _registry_lock:
        _registry.pop(service._registry_id, None)


def registered_services() -> list[IOService]:
    """The registered (``RegisterService``), started services of this process, oldest first.

    dkproto's stand-in for the kernel's IORegistry of published services, which
    :func:`~dkproto.iokit.connect.io_service_get_matching_services` searches.
    """
    with _registry_lock:
        found = [s for _, s in sorted(_registry.items())]
    return [s for s in found if s._registered and s._state is ServiceState.STARTED]


class IOService:
    """``IOService``: the base of every driver and nub in the mirror.

    Attributes:
        properties: the registry properties (``CopyProperties``/``SetProperties``).
        dext_entitlements: the dext's entitlements, or None when no bundle was loaded
            (then the user-client gate of driverkit.md 2.8 is not simulated).
    """

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        _classes.setdefault(cls.__name__, cls)

    def __init__(self) -> None:
        self._state = ServiceState.CREATED
        self._provider: IOService | None = None
        self._clients: list[IOService] = []
        self._lock = threading.RLock()
        self.properties: dict[str, Any] = {}
        self._name = type(self).__name__
        self._registry_id = next(_ids)
        self._registered = False
        self._queues: dict[str, IODispatchQueue] = {}
        self._terminated = threading.Event()
        #: (method, exception) for each ``stop``/``free`` override that raised during ``terminate``.
        self.terminate_errors: list[tuple[str, BaseException]] = []
        self.dext_entitlements: dict[str, Any] | None = None
        self.log = logging.getLogger(f"dkproto.iokit.{type(self).__name__}")

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def state(self) -> ServiceState:
        """The lifecycle state."""
        return self._state

    @guard(ServiceState.CREATED)
    def init(self) -> bool:
        """``init()``: allocate ivars (plain attributes here); override, call super first."""
        self._state = ServiceState.INITIALIZED
        return True

    @guard(ServiceState.INITIALIZED)
    def start(self, provider: IOService | None) -> None:
        """``Start(IOService *provider)``: call ``super().start(provider)`` first.

        Links this service as a client of ``provider``. Raise a DkError to fail the start.
        """
        self._provider = provider
        if provider is not None:
            provider._attach_client(self)
        self._state = ServiceState.STARTED

    @guard(ServiceState.STARTED, ServiceState.TERMINATING)
    def stop(self, provider: IOService | None) -> None:
        """``Stop(IOService *provider)``: quiesce and cancel, then call ``super().stop(provider)`` last."""
        if provider is not None and provider is not self._provider:
            raise BadArgumentError(f"{type(self).__name__}.stop: {provider!r} is not this service's provider")
        if self._provider is not None:
            self._provider._detach_client(self)
        self._registered = False
        _unregister(self)
        self._state = ServiceState.STOPPED

    @guard(ServiceState.CREATED, ServiceState.INITIALIZED, ServiceState.STOPPED)
    def free(self) -> None:
        """``free()``: release ivars, then ``super().free()``. Releases the service's queues: the
        blocks already queued still run (they retain their queue), then the queues' threads end."""
        for q in self._queues.values():
            q._release()
        _unregister(self)
        self._state = ServiceState.FREED
        self._terminated.set()

    @guard(ServiceState.STARTED)
    def register_service(self) -> None:
        """``RegisterService()``: make the service visible for matching and to apps
        (``IOServiceGetMatchingServices`` finds it from now on, until ``stop``)."""
        self._registered = True
        with _registry_lock:
            _registry[self._registry_id] = self

    @property
    def is_registered(self) -> bool:
        """True after ``register_service`` (until stop)."""
        return self._registered

    def terminate(self, options: int = 0) -> None:
        """``Terminate(uint64_t options)``: asynchronous; clients first, then ``stop``, then ``free``.

        Returns at once. Calling it again while terminating does nothing. Use
        :meth:`wait_terminated` to wait for the end.
        """
        with self._lock:
            if self._state in (ServiceState.TERMINATING, ServiceState.STOPPED, ServiceState.FREED):
                return
            if self._state is not ServiceState.STARTED:
                raise StateError(f"{type(self).__name__}.terminate: called in state '{self._state.value}', "
                                 "needs started")
            self._state = ServiceState.TERMINATING
        self.copy_dispatch_queue().dispatch_async(self._finish_terminate)

    def _finish_terminate(self) -> None:
        """Clients first, then ``stop``, then ``free``; always ends freed, even when an override raises.

        An exception from ``stop`` or ``free`` is kept in :attr:`terminate_errors` (the runner
        reports it) instead of leaving the service half-stopped and its waiters stalled.
        """
        try:
            for client in list(self._clients):
                if client.state is ServiceState.STARTED:
                    client.terminate()
            for client in list(self._clients):
                client.wait_terminated(10.0)
            self._run_override("stop", self.stop, self._provider)
            if self._state is not ServiceState.STOPPED:
                if not self.terminate_errors:
                    self.log.error("%s.stop returned without calling super().stop(provider)", type(self).__name__)
                IOService.stop(self, self._provider)
        finally:
            if self._state is not ServiceState.FREED:
                self._run_override("free", self.free)
                if not self._freed():  # free() may have returned without calling super().free()
                    IOService.free(self)

    def _run_override(self, name: str, method: Callable[..., Any], *args: Any) -> None:
        try:
            method(*args)
        except BaseException as exc:  # noqa: BLE001 - the user's override (even sys.exit): kept, reported
            self.terminate_errors.append((name, exc))

    def wait_terminated(self, timeout: float | None = 5.0) -> bool:
        """Wait until the service is freed after ``terminate`` (no DriverKit counterpart)."""
        return self._terminated.wait(timeout)

    def _freed(self) -> bool:
        """True once ``free`` has run (read after calling an override, which may change the state)."""
        return self._state is ServiceState.FREED

    @property
    def is_inactive(self) -> bool:
        """``isInactive()``: true from ``terminate`` on."""
        return self._state in (ServiceState.TERMINATING, ServiceState.STOPPED, ServiceState.FREED)

    # ---- links -----------------------------------------------------------------------------
    def _attach_client(self, client: IOService) -> None:
        with self._lock:
            if client not in self._clients:
                self._clients.append(client)

    def _detach_client(self, client: IOService) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)

    def get_provider(self) -> IOService | None:
        """``GetProvider()``: the provider this service was started on."""
        return self._provider

    def get_clients(self) -> list[IOService]:
        """The services started on this one (``getClientIterator``)."""
        return list(self._clients)

    # ---- properties ------------------------------------------------------------------------
    def set_name(self, name: str) -> None:
        """``SetName(name)``."""
        self._name = name

    def get_name(self) -> str:
        """The registry name (class name by default)."""
        return self._name

    def get_registry_entry_id(self) -> int:
        """``GetRegistryEntryID(&id)``: a unique 64-bit id."""
        return self._registry_id

    def copy_properties(self) -> dict[str, Any]:
        """``CopyProperties(&properties)``: a copy of the property table."""
        return dict(self.properties)

    def set_properties(self, properties: dict[str, Any]) -> None:
        """``SetProperties(properties)``: merge ``properties`` into the table."""
        self.properties.update(properties)

    def set_property(self, key: str, value: Any) -> None:
        """``setProperty(key, value)``."""
        self.properties[key] = value

    def search_property(self, name: str, plane: str = "IOService", options: int = 0) -> Any:
        """``SearchProperty(name, plane, options, &prop)``; ``kIOServiceSearchPropertyParents`` walks providers.

        Raises:
            NotFoundError: the property is nowhere on the searched path.
        """
        svc: IOService | None = self
        while svc is not None:
            if name in svc.properties:
                return svc.properties[name]
            if not options & kIOServiceSearchPropertyParents:
                break
            svc = svc._provider
        raise NotFoundError(f"SearchProperty: no property {name!r} on {self.get_name()}"
                            + (" or its providers" if options & kIOServiceSearchPropertyParents else ""))

    def copy_provider_properties(self) -> dict[str, Any]:
        """``CopyProviderProperties``: the provider's property table."""
        return self._provider.copy_properties() if self._provider is not None else {}

    # ---- queues ----------------------------------------------------------------------------
    def copy_dispatch_queue(self, name: str = kIOServiceDefaultQueueName) -> IODispatchQueue:
        """``CopyDispatchQueue(name, &queue)``: the named queue; "Default" always exists."""
        q = self._queues.get(name)
        if q is None:
            if name != kIOServiceDefaultQueueName:
                raise NotFoundError(f"CopyDispatchQueue: {type(self).__name__} has no queue {name!r}")
            q = self._queues[name] = IODispatchQueue(f"{type(self).__name__}.{name}")
        return q

    def set_dispatch_queue(self, name: str, queue: IODispatchQueue) -> None:
        """``SetDispatchQueue(name, queue)``; names other than Default must be in ``QUEUE_NAMES``."""
        if name != kIOServiceDefaultQueueName and name not in getattr(self, "QUEUE_NAMES", ()):
            raise BadArgumentError(f"SetDispatchQueue: queue {name!r} is not declared (QUEUENAME) "
                                   f"in {type(self).__name__}.QUEUE_NAMES")
        self._queues[name] = queue

    # ---- user clients ----------------------------------------------------------------------
    def new_user_client(self, client_type: int) -> IOUserClient:
        """``NewUserClient(uint32_t type, IOUserClient **userClient)``: override to ``create`` one.

        The default fails with kIOReturnError, as DriverKit's ``IOService::NewUserClient_Impl``
        does (xnu iokit/Kernel/IOUserServer.cpp).
        """
        raise DkError(f"{type(self).__name__}.NewUserClient: this service makes no user clients "
                      "(override new_user_client)", ioreturn=IOReturn.kIOReturnError)

    def create(self, provider: IOService, properties_key: str) -> IOService:
        """``Create(provider, propertiesKey, &result)``: instantiate and start a service described
        by the dictionary ``self.properties[properties_key]`` (``IOClass``, ``IOUserClass``).

        As xnu's ``IOService::Create_Impl`` (iokit/Kernel/IOUserServer.cpp): ``provider`` must be
        this service (else kIOReturnUnsupported); the property must be a dictionary (else
        kIOReturnBadArgument) naming the kernel class in ``IOClass`` (else kIOReturnBadArgument);
        the new service gets a copy of it plus this service's ``CFBundleIdentifier``.
        ``IOUserClass`` is looked up in this class's module first, then among all IOService
        subclasses. The new service is inited and started on ``provider``.

        Raises:
            UnsupportedError: ``provider`` is not this service.
            BadArgumentError: no such dictionary, or no ``IOClass``/``IOUserClass`` string in it.
            NotFoundError: no IOService subclass is called ``IOUserClass``.
        """
        if provider is not self:
            raise UnsupportedError(f"Create: the provider must be the service itself ({type(self).__name__}), "
                                   f"not {provider!r}")
        desc = self.properties.get(properties_key)
        if not isinstance(desc, dict):
            raise BadArgumentError(f"Create: {type(self).__name__} has no dictionary property {properties_key!r}")
        if not isinstance(desc.get("IOClass"), str):
            raise BadArgumentError(f"Create: {properties_key} has no IOClass string (the kernel class, "
                                   "IOUserUserClient for a user client, IOUserService otherwise)")
        cls_name = desc.get("IOUserClass")
        if not isinstance(cls_name, str):
            raise BadArgumentError(f"Create: {properties_key} has no IOUserClass string")
        cls = resolve_class(cls_name, type(self))
        svc = cls()
        svc.properties.update({k: v for k, v in desc.items()})
        if "CFBundleIdentifier" in self.properties:  # gIOModuleIdentifierKey, copied by Create_Impl
            svc.properties["CFBundleIdentifier"] = self.properties["CFBundleIdentifier"]
        svc.dext_entitlements = self.dext_entitlements
        return start_service(svc, provider)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} {self._state.value}>"


def resolve_class(name: str, near: type | None = None) -> type[IOService]:
    """The IOService subclass called ``name``: from ``near``'s module first, then any subclass."""
    if near is not None:
        mod = sys.modules.get(near.__module__)
        cand = getattr(mod, name, None) if mod is not None else None
        if isinstance(cand, type) and issubclass(cand, IOService):
            return cand
    cls = _classes.get(name)
    if cls is None:
        raise NotFoundError(f"no IOService subclass named {name!r} (IOUserClass)")
    return cls


def start_service(service: IOService, provider: IOService | None) -> IOService:
    """What the kernel does after matching: ``init()``, then ``Start(provider)``, on the service's
    Default queue; the caller waits for it.

    In DriverKit every call into a driver (Start, Stop, completions, ExternalMethod,
    NewUserClient...) is serialised on its Default ``IODispatchQueue`` (IOService.iig;
    driverkit.md 10), so a completion the driver's Start sets off runs after Start returns.

    Checks that the overrides called super (a port would otherwise hang or leak): a start
    that returns without reaching ``started`` is an error, and a failed start frees the
    service.
    """
    return service.copy_dispatch_queue().dispatch_sync(_start_on_queue, service, provider)  # type: ignore[no-any-return]


def _start_on_queue(service: IOService, provider: IOService | None) -> IOService:
    if service.state is ServiceState.CREATED and not service.init():
        service.free()
        raise DkError(f"{type(service).__name__}.init returned false")
    try:
        service.start(provider)
    except BaseException:
        if service.state is ServiceState.STARTED:
            IOService.stop(service, provider)
        if service.state in (ServiceState.INITIALIZED, ServiceState.STOPPED):
            service._run_override("free", service.free)  # the start failure is the one raised
            if not service._freed():
                IOService.free(service)
        raise
    if service.state is not ServiceState.STARTED:
        raise StateError(f"{type(service).__name__}.start returned in state '{service.state.value}': "
                         "it must call super().start(provider) first (Start(provider, SUPERDISPATCH))")
    return service


def _entitlement_matches(value: Any, wanted: Any) -> bool:
    """xnu's ``OSObject::iterateObjects`` + ``isEqualTo``: a collection matches when one of its
    members equals ``wanted``, anything else when it equals ``wanted`` itself."""
    members = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
    return any(type(m) is type(wanted) and m == wanted for m in members)


def user_client_gate(service: IOService, app_entitlements: dict[str, Any] | None) -> None:
    """The ``IOUserServer::serviceNewUserClient`` entitlement gate (driverkit.md 2.8), as xnu
    runs it (iokit/Kernel/IOUserServer.cpp), after ``NewUserClient`` made the user client:

    1. the **dext** holds ``com.apple.developer.driverkit.allow-any-userclient-access``: xnu
       checks that the key is present (``getObject``), not its value; or
    2. the **app**'s ``com.apple.developer.driverkit.userclient-access`` is (or, as an array,
       holds) a string equal to the service's ``CFBundleIdentifier`` (``iterateObjects`` +
       ``isEqualTo``): ``true`` does not pass.

    Skipped when ``service.dext_entitlements`` is None (no bundle loaded, like the ``dk``
    boot-arg's disable bit). A present allow-any entitlement whose value is not ``true`` passes,
    as in xnu, with a warning (codesign would grant it as ``true``).

    Raises:
        NotPermittedError: kIOReturnNotPermitted, as IOServiceOpen returns.
    """
    ents = service.dext_entitlements
    if ents is None:
        return
    if ENT_ALLOW_ANY_USERCLIENT in ents:
        if ents[ENT_ALLOW_ANY_USERCLIENT] is not True:
            _log.warning("%s is %r in the dext's entitlements: xnu only checks that it is present",
                         ENT_ALLOW_ANY_USERCLIENT, ents[ENT_ALLOW_ANY_USERCLIENT])
        return
    bundle_id = service.properties.get("CFBundleIdentifier")
    apps = app_entitlements or {}
    if bundle_id is not None and ENT_USERCLIENT_ACCESS in apps \
            and _entitlement_matches(apps[ENT_USERCLIENT_ACCESS], bundle_id):
        return
    raise NotPermittedError(f"UC failed userclient-access check, needed bundle ID {bundle_id!r}: the app's "
                            f"{ENT_USERCLIENT_ACCESS} does not list it and the dext lacks {ENT_ALLOW_ANY_USERCLIENT}")


def check_dext_entitlements(required: Any, entitlements: dict[str, Any] | None) -> bool:
    """xnu's ``IOUserServer::checkEntitlements(entitlements, prop)`` for ``IOServiceDEXTEntitlements``.

    ``required`` absent (None): true. A string: that entitlement is present. An array of strings:
    any one is present. An array of arrays of strings: in some inner array, all are present.
    Presence only (``getObject != NULL``): the value is not looked at. An empty array fails.
    """
    if required is None:
        return True
    if entitlements is None:
        return False
    groups = required if isinstance(required, (list, tuple)) else [required]
    for group in groups:
        names = group if isinstance(group, (list, tuple)) else [group]
        if names and all(isinstance(n, str) and n in entitlements for n in names):
            return True
    return False
