"""The app side of a user client: IOServiceOpen, IOConnectCall*Method, IOServiceClose.

Mirrors IOKitLib (driverkit.md 2.5, 2.6) so app code can be tested against a prototype
before a line of C++ exists, in the same process or from another one:

=====================================  ============================================
dkproto                                 IOKitLib
=====================================  ============================================
``io_service_open(service, type)``      ``IOServiceOpen(service, mach_task_self(), type, &connect)``
``io_service_close(connect)``           ``IOServiceClose(connect)``
``io_connect_call_method``              ``IOConnectCallMethod``
``io_connect_call_scalar_method``       ``IOConnectCallScalarMethod``
``io_connect_call_struct_method``       ``IOConnectCallStructMethod``
``io_connect_call_async_method``        ``IOConnectCallAsyncMethod`` (+ scalar/struct variants)
``io_connect_map_memory64``             ``IOConnectMapMemory64``
``io_notification_port_create``         ``IONotificationPortCreate``
``io_notification_port_set_dispatch_queue``  ``IONotificationPortSetDispatchQueue``
=====================================  ============================================

Differences, kept deliberate: a call that fails raises the DkError for its ``kern_return_t``
(``exc.ioreturn`` is the code) instead of returning it, and outputs are returned instead of
written through pointers. The "kernel" in the middle is :class:`KernelUserClient`, which does
what ``IOUserUserClient::externalMethod`` does: the 4096-byte inline/descriptor split, the
``structureOutputMaximumSize`` rule, output delivered only on success, and oversize
output -> ``kIOReturnBadArgument``.

Another process reaches a service through :class:`UserClientServer` (a
``multiprocessing.connection`` listener on a Unix socket, authenticated with a key) and
:class:`RemoteService`, which ``io_service_open`` accepts like a local service.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from dkproto.errors import (
    BadArgumentError,
    DkError,
    NoDeviceError,
    NotOpenError,
    NotPermittedError,
    StateError,
    UnsupportedError,
    error_for_ioreturn,
)
from dkproto.iokit.action import OSAction
from dkproto.iokit.memory import IOMemoryDescriptor
from dkproto.iokit.queue import IODispatchQueue
from dkproto.iokit.service import IOService, ServiceState, check_dext_entitlements, user_client_gate
from dkproto.iokit.user_client import (
    IOUserClient,
    IOUserClientMethodArguments,
    kIOUserClientInlineStructureMax,
    kIOUserClientScalarArrayCountMax,
    kIOUserClientVariableStructureSize,
)
from dkproto.ioreturn import IOReturn

__all__ = [
    "ENV_UC_ADDRESS",
    "ENV_UC_KEY",
    "MAX_OUTPUT_STRUCT",
    "IOConnect",
    "IOIterator",
    "IONotificationPort",
    "KernelUserClient",
    "MethodResult",
    "RemoteService",
    "UserClientServer",
    "async_reference",
    "io_connect_call_async_method",
    "io_connect_call_async_scalar_method",
    "io_connect_call_async_struct_method",
    "io_connect_call_method",
    "io_connect_call_scalar_method",
    "io_connect_call_struct_method",
    "io_connect_map_memory64",
    "io_iterator_next",
    "io_notification_port_create",
    "io_notification_port_destroy",
    "io_notification_port_set_dispatch_queue",
    "io_object_release",
    "io_service_close",
    "io_service_get_matching_service",
    "io_service_get_matching_services",
    "io_service_matching",
    "io_service_name_matching",
    "io_service_open",
    "kIOAsyncCalloutCount",
    "kIOAsyncCalloutFuncIndex",
    "kIOAsyncCalloutRefconIndex",
    "kIOAsyncReservedIndex",
    "kIOConnectMethodVarOutputSize",
    "kIOMainPortDefault",
    "kIOMasterPortDefault",
    "kIONameMatchKey",
    "kIOPropertyExistsMatchKey",
    "kIOPropertyMatchKey",
    "kIOProviderClassKey",
    "kIORegistryEntryIDKey",
    "kMaxAsyncArgs",
    "kOSAsyncRef64Count",
    "service_matches",
]

kIOConnectMethodVarOutputSize = -3
kOSAsyncRef64Count = 8
kIOAsyncReservedIndex = 0
kIOAsyncCalloutFuncIndex = 1
kIOAsyncCalloutRefconIndex = 2
kIOAsyncCalloutCount = 3
kMaxAsyncArgs = 16

_U64 = (1 << 64) - 1
#: The largest ``outputStructCnt`` dkproto allocates an out-of-line buffer for (64 MiB): a
#: capacity beyond it is refused (kIOReturnBadArgument) rather than exhausting memory.
MAX_OUTPUT_STRUCT = 64 << 20
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MethodResult:
    """What ``IOConnectCallMethod`` writes back: the output scalars and structure."""

    scalar_output: list[int]
    struct_output: bytes


# ---------------------------------------------------------------------------------------------
# notification ports (where async results are delivered)


class IONotificationPort:
    """``IONotificationPortRef``: async results arrive here; they run on its dispatch queue.

    As IOKitLib (``IONotificationPortCreate``, ``IONotificationPortSetDispatchQueue``): the port
    delivers **nothing** until a dispatch queue is set; what the kernel sends before waits in the
    port (the Mach port's message queue) and runs, in order, once a queue is set. Setting
    ``None`` stops delivery again (messages wait); ``destroy`` drops what is waiting. dkproto
    models no run loop (``IONotificationPortGetRunLoopSource``): set a queue.
    """

    def __init__(self) -> None:
        self.queue: IODispatchQueue | None = None
        self._waiting: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        self._destroyed = False

    def deliver(self, reference: Sequence[Any], status: int, args: Sequence[int]) -> None:
        """Run the app callback stored in ``reference`` with IOKitLib's arity rule (driverkit.md 2.6)."""
        callback = reference[kIOAsyncCalloutFuncIndex] if len(reference) > kIOAsyncCalloutFuncIndex else None
        refcon = reference[kIOAsyncCalloutRefconIndex] if len(reference) > kIOAsyncCalloutRefconIndex else None
        if not callable(callback):
            # IOKitLib would call through a NULL function pointer (IODispatchCalloutFromCFMessage)
            _log.warning("IONotificationPort: an async result for a reference with no callback at "
                         "[kIOAsyncCalloutFuncIndex] was dropped (a real app would crash)")
            return
        status = IOReturn.coerce(status)
        n = len(args)
        if n == 0:
            call: tuple[Any, ...] = (refcon, status)
        elif n == 1:
            call = (refcon, status, args[0])
        elif n == 2:
            call = (refcon, status, args[0], args[1])
        else:
            call = (refcon, status, list(args), n)
        with self._lock:
            if self._destroyed:
                return
            queue = self.queue
            if queue is None:  # no dispatch source yet: the message waits in the port
                self._waiting.append((callback, call))
                return
        self._post(queue, callback, call)

    def _post(self, queue: IODispatchQueue, callback: Callable[..., Any], call: tuple[Any, ...]) -> None:
        try:
            queue.dispatch_async(callback, *call)
        except StateError:
            _log.debug("IONotificationPort: the app's queue %r is cancelled; an async result was dropped", queue)

    def set_dispatch_queue(self, queue: IODispatchQueue | None) -> None:
        """``IONotificationPortSetDispatchQueue(port, queue)``: deliver on ``queue`` from now on,
        starting with what waits in the port; ``None`` stops delivery (messages wait again)."""
        if queue is not None and not isinstance(queue, IODispatchQueue):
            raise BadArgumentError(f"IONotificationPortSetDispatchQueue: queue must be an IODispatchQueue "
                                   f"or None, not {type(queue).__name__}")
        with self._lock:
            self.queue = queue
            waiting, self._waiting = (self._waiting, []) if queue is not None else ([], self._waiting)
            for callback, call in waiting:  # under the lock: nothing overtakes them
                self._post(queue, callback, call)  # type: ignore[arg-type]

    def destroy(self) -> None:
        """``IONotificationPortDestroy``: no more deliveries; what waits in the port is dropped.
        The app's queue is the app's: it is not cancelled."""
        with self._lock:
            self._destroyed = True
            self._waiting.clear()
            self.queue = None


def io_notification_port_create(main_port: int = 0) -> IONotificationPort:
    """``IONotificationPortCreate(kIOMainPortDefault)``: delivers nothing until a queue is set."""
    _check_main_port(main_port, "IONotificationPortCreate")
    return IONotificationPort()


def io_notification_port_set_dispatch_queue(port: IONotificationPort, queue: IODispatchQueue | None) -> None:
    """``IONotificationPortSetDispatchQueue(port, queue)``: callbacks run on ``queue``; until it
    is called, async results wait in the port (IOKitLib)."""
    port.set_dispatch_queue(queue)


def io_notification_port_destroy(port: IONotificationPort) -> None:
    """``IONotificationPortDestroy(port)``."""
    port.destroy()


def async_reference(callback: Callable[..., Any] | None, refcon: Any = None) -> list[Any]:
    """``uint64_t ref[kOSAsyncRef64Count]`` with the callback at [1] and refcon at [2].

    The callback's shape follows the number of async arguments the dext sends:
    0 -> ``cb(refcon, result)``, 1 -> ``cb(refcon, result, arg0)``, 2 -> ``cb(refcon, result,
    arg0, arg1)``, 3 or more -> ``cb(refcon, result, args, num_args)``.
    """
    ref: list[Any] = [0] * kOSAsyncRef64Count
    ref[kIOAsyncCalloutFuncIndex] = callback
    ref[kIOAsyncCalloutRefconIndex] = refcon
    return ref


# ---------------------------------------------------------------------------------------------
# the kernel in the middle


def _scalars(values: Sequence[int], what: str) -> tuple[int, ...]:
    """The input scalars as a tuple of ``uint64_t``: anything else is refused, never wrapped."""
    if isinstance(values, (str, bytes, bytearray, memoryview)) or not isinstance(values, Sequence):
        raise BadArgumentError(f"{what}: input scalars must be a sequence of ints, not {type(values).__name__}")
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int):
            raise BadArgumentError(f"{what}: input scalar [{i}] must be an int, not {type(v).__name__} {v!r}")
        if not 0 <= v <= _U64:
            raise BadArgumentError(f"{what}: input scalar [{i}] = {v} is outside uint64_t (0..2**64-1)")
    return tuple(values)


def _struct(data: Any, what: str) -> bytes:
    """The input structure's bytes: a bytes-like object (or None for none); ints and text are refused."""
    if data is None:
        return b""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BadArgumentError(f"{what}: the input structure must be bytes-like, not {type(data).__name__}"
                               + (" (bytes(n) would be n zero bytes: pass bytes(n) if that is meant)"
                                  if isinstance(data, int) else ""))
    return bytes(data)


def _count(value: Any, name: str, what: str, hi: int) -> int:
    """An output capacity: an int in 0..hi (``kIOConnectMethodVarOutputSize`` is checked by the caller)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadArgumentError(f"{what}: {name} must be an int, not {type(value).__name__} {value!r}")
    if not 0 <= value <= hi:
        raise BadArgumentError(f"{what}: {name} {value} is outside 0..{hi}")
    return value


class KernelUserClient:
    """What ``IOUserUserClient`` does in the kernel between IOKitLib and the dext.

    Args:
        client: the started dext-side :class:`IOUserClient`.
    """

    def __init__(self, client: IOUserClient) -> None:
        self.client = client
        self.closed = False

    def call(self, selector: int, scalar_input: Sequence[int], struct_input: bytes, output_cnt: int,
             output_struct_cnt: int, completion: OSAction | None) -> tuple[int, list[int], bytes]:
        """One ``IOConnectCallMethod``: returns ``(kr, scalars, struct)``; outputs empty unless kr is 0."""
        if self.closed or self.client.state is not ServiceState.STARTED:
            return int(IOReturn.kIOReturnNotOpen if self.closed else IOReturn.kIOReturnNoDevice), [], b""
        args = IOUserClientMethodArguments(selector=selector, completion=completion,
                                           scalar_input=tuple(scalar_input), scalar_input_count=len(scalar_input),
                                           scalar_output=[0] * output_cnt, scalar_output_count=output_cnt)
        if len(struct_input) <= kIOUserClientInlineStructureMax:
            args.structure_input = bytes(struct_input) if struct_input else None
        else:
            args.structure_input_descriptor = IOMemoryDescriptor(bytes(struct_input), read_only=True)
        inline_out = True
        if output_struct_cnt == kIOConnectMethodVarOutputSize:
            args.structure_output_maximum_size = kIOUserClientVariableStructureSize
        elif output_struct_cnt > kIOUserClientInlineStructureMax:
            args.structure_output_descriptor = IOMemoryDescriptor(bytearray(output_struct_cnt))
            args.structure_output_maximum_size = output_struct_cnt
            inline_out = False
        else:
            args.structure_output_maximum_size = output_struct_cnt
        queue = self.client.copy_dispatch_queue()
        kr = queue.dispatch_sync(self.client.external_method, selector, args, None, None, None)
        if kr != IOReturn.kIOReturnSuccess:
            return kr, [], b""
        n = min(args.scalar_output_count, output_cnt)
        scalars = [int(v) & _U64 for v in args.scalar_output[:n]]
        if args.structure_output is not None:
            if not inline_out:
                return int(IOReturn.kIOReturnBadArgument), [], b""  # OSData given with an OOL buffer
            out = bytes(args.structure_output)
            if output_struct_cnt != kIOConnectMethodVarOutputSize and len(out) > output_struct_cnt:
                return int(IOReturn.kIOReturnBadArgument), [], b""
            return kr, scalars, out
        if output_struct_cnt == kIOConnectMethodVarOutputSize:
            # xnu is_io_connect_method_var_output: no OSData from the dext -> kIOReturnUnderrun
            return int(IOReturn.kIOReturnUnderrun), [], b""
        if args.structure_output_descriptor is not None:
            # xnu is_io_connect_method: the size reported for OOL output is the caller's descriptor size.
            return kr, scalars, args.structure_output_descriptor.read_bytes()
        return kr, scalars, b""


def _async_reference_words(reference: Sequence[Any]) -> list[Any]:
    """The async reference as the kernel keeps it: ``io_async_ref64_t``, 8 words, zero-filled.

    IOKitLib substitutes a one-word reference for an empty one (``IOConnectCallAsyncMethod``:
    ``temp_reference``); more than ``kOSAsyncRef64Count`` (8) words do not fit the kernel's type
    (the MIG stub refuses them; xnu's legacy paths return kIOReturnBadArgument).
    """
    if isinstance(reference, (str, bytes, bytearray)) or not isinstance(reference, Sequence):
        raise BadArgumentError(f"IOConnectCallAsyncMethod: reference must be a sequence (async_reference), "
                               f"not {type(reference).__name__}")
    if len(reference) > kOSAsyncRef64Count:
        raise BadArgumentError(f"IOConnectCallAsyncMethod: referenceCnt {len(reference)} exceeds "
                               f"kOSAsyncRef64Count ({kOSAsyncRef64Count}, io_async_ref64_t)")
    words = list(reference) if reference else [0]  # IOKitLib: reference NULL, count 0 -> temp_reference[1]
    return words + [0] * (kOSAsyncRef64Count - len(words))


class IOConnect:
    """``io_connect_t``: an open connection to a user client (local or remote)."""

    def __init__(self, kernel: KernelUserClient | None = None, remote: _RemoteConnection | None = None,
                 conn_id: int = 0) -> None:
        self._kernel = kernel
        self._remote = remote
        self._conn_id = conn_id
        self.closed = False
        self._actions: list[OSAction] = []
        self._maps: dict[int, memoryview] = {}

    @property
    def user_client(self) -> IOUserClient | None:
        """The dext-side user client when it lives in this process (tests look at it)."""
        return self._kernel.client if self._kernel is not None else None

    def _call(self, selector: int, scalar_input: Sequence[int], struct_input: bytes, output_cnt: int,
              output_struct_cnt: int, port: IONotificationPort | None, reference: Sequence[Any] | None
              ) -> MethodResult:
        what = "IOConnectCallMethod"
        if self.closed:
            raise NotOpenError(f"{what}: the connection is closed (IOServiceClose)")
        if isinstance(selector, bool) or not isinstance(selector, int) or not 0 <= selector <= 0xFFFFFFFF:
            raise BadArgumentError(f"{what}: selector {selector!r} is not a uint32_t")
        sin = _scalars(scalar_input, what)
        if len(sin) > kIOUserClientScalarArrayCountMax:
            raise BadArgumentError(f"{what}: {len(sin)} input scalars, more than "
                                   f"kIOUserClientScalarArrayCountMax ({kIOUserClientScalarArrayCountMax})")
        output_cnt = _count(output_cnt, "outputCnt", what, kIOUserClientScalarArrayCountMax)
        if output_struct_cnt != kIOConnectMethodVarOutputSize:
            output_struct_cnt = _count(output_struct_cnt, "outputStructCnt", what, MAX_OUTPUT_STRUCT)
        struct_input = _struct(struct_input, what)
        if reference is not None:
            what = "IOConnectCallAsyncMethod"
            if output_struct_cnt == kIOConnectMethodVarOutputSize:
                # IOKitLib's async call has no variable-output path: the size (size_t)-3 goes out as an
                # out-of-line buffer larger than UINT_MAX, which xnu's is_io_connect_async_method refuses.
                raise error_for_ioreturn(IOReturn.kIOReturnIPCError,
                                         f"{what}: kIOConnectMethodVarOutputSize is not allowed on an async call "
                                         "(IOKitLib has no variable-size output for IOConnectCallAsync*)")
            reference = _async_reference_words(reference)
        if self._remote is not None:
            kr, scalars, out = self._remote.call(self._conn_id, selector, sin, struct_input, output_cnt,
                                                 output_struct_cnt, port, reference)
        else:
            assert self._kernel is not None
            action = None
            if reference is not None:
                action = self._make_action(port, reference)
            kr, scalars, out = self._kernel.call(selector, sin, struct_input, output_cnt,
                                                 output_struct_cnt, action)
        if kr != IOReturn.kIOReturnSuccess:
            name = type(self.user_client).__name__ if self.user_client is not None else "user client"
            raise error_for_ioreturn(kr, f"IOConnectCallMethod({name}, selector {selector}) failed")
        return MethodResult(scalars, out)

    def _make_action(self, port: IONotificationPort | None, reference: Sequence[Any]) -> OSAction:
        if port is None:
            raise BadArgumentError("IOConnectCallAsyncMethod: no wake port (IONotificationPortGetMachPort)")
        ref = _async_reference_words(reference)

        def kernel_completion(action: OSAction, status: int, args: Sequence[int]) -> None:
            port.deliver(ref, status, args)

        # The kernel's KernelCompletion action: delivered on its own queue, then to the port.
        action = OSAction(self, kernel_completion, queue=_kernel_queue(), name="KernelCompletion")
        self._actions.append(action)
        return action

    def close(self) -> None:
        """``IOServiceClose``: terminate the user client (its ``stop`` runs); pending actions abort."""
        if self.closed:
            return
        self.closed = True
        for action in self._actions:
            action.aborted()
        if self._remote is not None:
            self._remote.close_connection(self._conn_id)
        elif self._kernel is not None:
            self._kernel.closed = True
            client = self._kernel.client
            if client.state is ServiceState.STARTED:
                client.terminate()
                client.wait_terminated(10.0)


_kq: IODispatchQueue | None = None


def _kernel_queue() -> IODispatchQueue:
    global _kq
    if _kq is None or _kq.is_cancelled:
        _kq = IODispatchQueue("kernel")
    return _kq


def io_service_open(service: IOService | RemoteService, client_type: int = 0, *,
                    app_entitlements: dict[str, Any] | None = None) -> IOConnect:
    """``IOServiceOpen(service, mach_task_self(), type, &connect)``.

    In xnu's order (``IOUserServer::serviceNewUserClient``, iokit/Kernel/IOUserServer.cpp): the
    service's ``new_user_client(type)`` runs first (on its Default queue; it normally
    ``create``s one from ``UserClientProperties``, whose Start runs), then the entitlement gate
    (:func:`~dkproto.iokit.service.user_client_gate`, then the user client's
    ``IOServiceDEXTEntitlements``); on failure the new user client is terminated and the call
    returns kIOReturnNotPermitted.

    ``app_entitlements`` is dkproto's: the app's entitlements (what the kernel reads from the
    app's code signature). ``service`` is what :func:`io_iterator_next` returned, or (dkproto
    convenience, not Apple's) a service object or :class:`RemoteService` handed over directly.

    Raises:
        NotPermittedError: the entitlement gate refused (kIOReturnNotPermitted).
        DkError: the service makes no user clients (the default ``NewUserClient``: kIOReturnError).
        UnsupportedError: ``new_user_client`` returned something that is not an IOUserClient.
        NoDeviceError: the service is not started (terminated, unplugged).
    """
    if isinstance(service, RemoteService):
        return service.open(client_type, app_entitlements)
    if not isinstance(service, IOService):
        raise BadArgumentError(f"IOServiceOpen: {service!r} is not an io_service_t (IOIteratorNext gives one)")
    if service.state is not ServiceState.STARTED or not service.is_registered:
        raise NoDeviceError(f"IOServiceOpen: {service.get_name()} is {service.state.value}"
                            + ("" if service.is_registered else " and not registered (RegisterService)"))
    if isinstance(client_type, bool) or not isinstance(client_type, int) or not 0 <= client_type <= 0xFFFFFFFF:
        raise BadArgumentError(f"IOServiceOpen: type {client_type!r} is not a uint32_t")
    try:
        client = service.copy_dispatch_queue().dispatch_sync(service.new_user_client, client_type)
    except (KeyboardInterrupt, DkError):
        raise
    except Exception as exc:  # the dext's NewUserClient (or the client's Start) raised
        from dkproto.iokit.status import user_code_error

        path = getattr(sys.modules.get(type(service).__module__), "__file__", None)
        raise user_code_error(exc, f"IOServiceOpen({type(service).__name__})", path) from exc
    if not isinstance(client, IOUserClient):
        _terminate_refused(client)
        raise UnsupportedError(f"IOServiceOpen: {type(service).__name__}.new_user_client returned "
                               f"{type(client).__name__}, not an IOUserClient (kernel object must be IOUserUserClient)")
    try:
        user_client_gate(service, app_entitlements)
        if client.dext_entitlements is not None and not check_dext_entitlements(
                client.properties.get("IOServiceDEXTEntitlements"), app_entitlements or {}):
            raise NotPermittedError("UC entitlements check failed: the app lacks the user client's "
                                    f"IOServiceDEXTEntitlements {client.properties.get('IOServiceDEXTEntitlements')!r}")
    except NotPermittedError:
        _terminate_refused(client)
        raise
    return IOConnect(kernel=KernelUserClient(client))


def _terminate_refused(client: Any) -> None:
    """What xnu does with a user client it refuses: ``terminate``; dkproto waits for its Stop."""
    if isinstance(client, IOService) and client.state is ServiceState.STARTED:
        client.terminate()
        client.wait_terminated(10.0)


def io_service_close(connect: IOConnect) -> None:
    """``IOServiceClose(connect)``: the kernel terminates the user client, whose ``stop`` runs."""
    connect.close()


def io_connect_call_method(connect: IOConnect, selector: int, input: Sequence[int] = (),
                           input_struct: bytes = b"", output_cnt: int = 0, output_struct_cnt: int = 0
                           ) -> MethodResult:
    """``IOConnectCallMethod(connect, selector, input, inputCnt, inputStruct, inputStructCnt,
    output, &outputCnt, outputStruct, &outputStructCnt)``.

    ``output_cnt`` and ``output_struct_cnt`` are the caller's capacities; pass
    ``kIOConnectMethodVarOutputSize`` (-3) for a variable-size output structure.

    Raises:
        DkError: the subclass for the returned kern_return_t (``exc.ioreturn``).
    """
    return connect._call(selector, input, input_struct, output_cnt, output_struct_cnt, None, None)


def io_connect_call_scalar_method(connect: IOConnect, selector: int, input: Sequence[int] = (),
                                  output_cnt: int = 0) -> list[int]:
    """``IOConnectCallScalarMethod(connect, selector, input, inputCnt, output, &outputCnt)``."""
    return connect._call(selector, input, b"", output_cnt, 0, None, None).scalar_output


def io_connect_call_struct_method(connect: IOConnect, selector: int, input_struct: bytes = b"",
                                  output_struct_cnt: int = 0) -> bytes:
    """``IOConnectCallStructMethod(connect, selector, inputStruct, inputStructCnt, outputStruct, &cnt)``."""
    return connect._call(selector, (), input_struct, 0, output_struct_cnt, None, None).struct_output


def io_connect_call_async_method(connect: IOConnect, selector: int, wake_port: IONotificationPort,
                                 reference: Sequence[Any], input: Sequence[int] = (), input_struct: bytes = b"",
                                 output_cnt: int = 0, output_struct_cnt: int = 0) -> MethodResult:
    """``IOConnectCallAsyncMethod(connect, selector, wake_port, reference, referenceCnt, ...)``.

    ``reference`` is :func:`async_reference` (``uint64_t[kOSAsyncRef64Count]``); the dext's
    ``AsyncCompletion`` later calls the callback on the port's queue.
    """
    return connect._call(selector, input, input_struct, output_cnt, output_struct_cnt, wake_port, reference)


def io_connect_call_async_scalar_method(connect: IOConnect, selector: int, wake_port: IONotificationPort,
                                        reference: Sequence[Any], input: Sequence[int] = (),
                                        output_cnt: int = 0) -> list[int]:
    """``IOConnectCallAsyncScalarMethod``."""
    return connect._call(selector, input, b"", output_cnt, 0, wake_port, reference).scalar_output


def io_connect_call_async_struct_method(connect: IOConnect, selector: int, wake_port: IONotificationPort,
                                        reference: Sequence[Any], input_struct: bytes = b"",
                                        output_struct_cnt: int = 0) -> bytes:
    """``IOConnectCallAsyncStructMethod``."""
    return connect._call(selector, (), input_struct, 0, output_struct_cnt, wake_port, reference).struct_output


def io_connect_map_memory64(connect: IOConnect, memory_type: int, options: int = 0) -> memoryview:
    """``IOConnectMapMemory64(connect, type, task, &address, &size, options)``: the dext's buffer.

    In-process only (the view shares the dext's bytes); read-only if the dext said
    ``kIOUserClientMemoryReadOnly``.
    """
    if connect.closed:
        raise NotOpenError("IOConnectMapMemory64: the connection is closed")
    client = connect.user_client
    if client is None:
        raise UnsupportedError("IOConnectMapMemory64: shared memory across processes is not emulated")
    opts, md = client.copy_dispatch_queue().dispatch_sync(client.copy_client_memory_for_type, memory_type)
    if md is None:
        raise BadArgumentError(f"CopyClientMemoryForType({memory_type}) returned no descriptor")
    client.memory[memory_type] = (md, opts)
    view: memoryview = md.create_mapping().view()
    from dkproto.iokit.user_client import kIOUserClientMemoryReadOnly

    return view.toreadonly() if opts & kIOUserClientMemoryReadOnly else view


# ---------------------------------------------------------------------------------------------
# finding a service: matching dictionaries against the registry of running services

#: ``kIOMainPortDefault`` (``kIOMasterPortDefault``): the only main port (0, MACH_PORT_NULL).
kIOMainPortDefault = 0
kIOMasterPortDefault = kIOMainPortDefault
kIOProviderClassKey = "IOProviderClass"
kIONameMatchKey = "IONameMatch"
kIOPropertyMatchKey = "IOPropertyMatch"
kIOPropertyExistsMatchKey = "IOPropertyExistsMatch"
kIORegistryEntryIDKey = "IORegistryEntryID"
#: The environment variables ``dkproto run --process`` sets for the app process: where the
#: running driver's process (this app's "kernel") answers.
ENV_UC_ADDRESS = "DKPROTO_UC_ADDRESS"
ENV_UC_KEY = "DKPROTO_UC_KEY"


def _check_main_port(main_port: Any, what: str) -> None:
    if isinstance(main_port, bool) or main_port != kIOMainPortDefault:
        raise BadArgumentError(f"{what}: mainPort must be kIOMainPortDefault (0), not {main_port!r}")


def io_service_matching(name: str) -> dict[str, Any]:
    """``IOServiceMatching(name)``: ``{IOProviderClass: name}``, a *kernel* class.

    As on macOS, a dext's own class (its ``IOUserClass``) is not a kernel class: its service is
    an ``IOUserService`` (or the personality's ``IOClass``), so an app finds a dext by name,
    :func:`io_service_name_matching`, or by ``IOPropertyMatch``.
    """
    if not isinstance(name, str):
        raise BadArgumentError(f"IOServiceMatching: name must be a string, not {type(name).__name__}")
    return {kIOProviderClassKey: name}


def io_service_name_matching(name: str) -> dict[str, Any]:
    """``IOServiceNameMatching(name)``: ``{IONameMatch: name}``; a dext's service is named after its
    ``IOUserClass`` (xnu ``IOUserServer::serviceAttach``), which is what Apple's sample app matches."""
    if not isinstance(name, str):
        raise BadArgumentError(f"IOServiceNameMatching: name must be a string, not {type(name).__name__}")
    return {kIONameMatchKey: name}


def _kernel_classes(service: IOService) -> set[str]:
    """The class names ``IOProviderClass`` can match (xnu ``metaCast``): the personality's kernel
    ``IOClass`` and dkproto's mirrors of Apple classes in the service's class chain (not the
    driver's own Python classes, which are dext classes)."""
    names = {k.__name__ for k in type(service).__mro__ if k.__module__.startswith("dkproto.iokit.")}
    io_class = service.properties.get("IOClass")
    if isinstance(io_class, str):
        names.add(io_class)
        names.add("IOService")
    return names


def _one_or_many(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def service_matches(service: IOService, matching: dict[str, Any]) -> bool:
    """Whether ``service`` passes ``matching`` as xnu's ``IOService::matchPassive`` would.

    ``IOProviderClass`` (kernel class, :func:`_kernel_classes`); ``IONameMatch`` (a string or an
    array of strings, any equal to the service's name); ``IOPropertyMatch`` (a dictionary, or an
    array of dictionaries of which one must match, compared with
    :func:`~dkproto.iokit.matching.compare_properties`); ``IOPropertyExistsMatch`` (a key, or an
    array of keys of which one must exist); ``IORegistryEntryID``. Any other key is compared for
    equality with the service's property (a family's ``matchPropertyTable`` does that for its
    keys; dkproto's stricter stand-in for every other key).
    """
    from dkproto.iokit.matching import compare_properties

    props = service.properties
    for key, want in matching.items():
        if key == kIOProviderClassKey:
            if want not in _kernel_classes(service):
                return False
        elif key == kIONameMatchKey:
            if service.get_name() not in [n for n in _one_or_many(want) if isinstance(n, str)]:
                return False
        elif key == kIOPropertyMatchKey:
            tables = [t for t in _one_or_many(want) if isinstance(t, dict)]
            if not any(compare_properties(t, props, []) for t in tables):
                return False
        elif key == kIOPropertyExistsMatchKey:
            if not any(isinstance(k, str) and k in props for k in _one_or_many(want)):
                return False
        elif key == kIORegistryEntryIDKey:
            if want != service.get_registry_entry_id():
                return False
        elif key not in props or props[key] != want:
            return False
    return True


class IOIterator:
    """``io_iterator_t``: the services a matching call found, in registry order."""

    def __init__(self, services: Sequence[IOService | RemoteService]) -> None:
        self._services = list(services)
        self._next = 0
        self.released = False

    def next(self) -> IOService | RemoteService | None:
        """``IOIteratorNext``: the next service, None (IO_OBJECT_NULL) at the end."""
        if self.released or self._next >= len(self._services):
            return None
        self._next += 1
        return self._services[self._next - 1]

    def reset(self) -> None:
        """``IOIteratorReset``: start again from the first service."""
        self._next = 0

    def __repr__(self) -> str:
        return f"IOIterator({len(self._services)} services, at {self._next})"


def _main_port_connection() -> _RemoteConnection | None:
    """The running driver's process this app was started for (``dkproto run --process``), if any."""
    global _main_conn
    address, key = os.environ.get(ENV_UC_ADDRESS), os.environ.get(ENV_UC_KEY)
    if not address or not key:
        return None
    with _main_conn_lock:
        if _main_conn is None or _main_conn._dead or _main_conn.address != address:
            try:
                authkey = bytes.fromhex(key)
            except ValueError as exc:
                raise BadArgumentError(f"{ENV_UC_KEY} is not hex") from exc
            _main_conn = _RemoteConnection(address, authkey)
        return _main_conn


_main_conn: _RemoteConnection | None = None
_main_conn_lock = threading.Lock()


def io_service_get_matching_services(main_port: int, matching: dict[str, Any] | None) -> IOIterator:
    """``IOServiceGetMatchingServices(kIOMainPortDefault, matching, &iterator)``: every registered
    (``RegisterService``) service that passes ``matching`` (:func:`service_matches`).

    dkproto's registry is the services registered in this process
    (:func:`~dkproto.iokit.service.registered_services`), and, in an app process started by
    ``dkproto run --process`` (``DKPROTO_UC_ADDRESS``/``DKPROTO_UC_KEY`` set), those of the driver's
    process, reached over its socket (as :class:`RemoteService`).

    Raises:
        BadArgumentError: ``matching`` is not a dictionary (IOKitLib: kIOReturnBadArgument), or
            ``main_port`` is not ``kIOMainPortDefault``.
    """
    from dkproto.iokit.service import registered_services

    _check_main_port(main_port, "IOServiceGetMatchingServices")
    if not isinstance(matching, dict):
        raise BadArgumentError(f"IOServiceGetMatchingServices: matching must be a dictionary "
                               f"(IOServiceMatching...), not {type(matching).__name__}")
    found: list[IOService | RemoteService] = [s for s in registered_services() if service_matches(s, matching)]
    conn = _main_port_connection()
    if conn is not None:
        reply = conn.request(("match", dict(matching)))
        if reply[0] == "err":
            raise error_for_ioreturn(reply[1], reply[2])
        found += [RemoteService(conn.address, conn.authkey, registry_id=rid, connection=conn, name=name)
                  for rid, name in reply[1]]
    return IOIterator(found)


def io_service_get_matching_service(main_port: int, matching: dict[str, Any] | None
                                    ) -> IOService | RemoteService | None:
    """``IOServiceGetMatchingService(kIOMainPortDefault, matching)``: the first match, or None."""
    return io_service_get_matching_services(main_port, matching).next()


def io_iterator_next(iterator: IOIterator) -> IOService | RemoteService | None:
    """``IOIteratorNext(iterator)``: the next service, None (IO_OBJECT_NULL) when done."""
    if not isinstance(iterator, IOIterator):
        raise BadArgumentError(f"IOIteratorNext: {iterator!r} is not an io_iterator_t")
    return iterator.next()


def io_object_release(obj: Any) -> int:
    """``IOObjectRelease(object)``: drops the app's reference (an iterator stops yielding);
    kIOReturnSuccess. Services and connections are not freed by it (IOServiceClose closes)."""
    if isinstance(obj, IOIterator):
        obj.released = True
    return int(IOReturn.kIOReturnSuccess)


# ---------------------------------------------------------------------------------------------
# across processes


class UserClientServer:
    """Serve a started service's user clients to other processes over a Unix socket.

    Args:
        service: the registered service whose ``new_user_client`` apps open.
        address: socket path (default: a new path under the temp dir).
        authkey: shared secret (default: random; hand it to :class:`RemoteService`).
    """

    def __init__(self, service: IOService, address: str | None = None, authkey: bytes | None = None) -> None:
        import tempfile

        self.service = service
        #: the ``dkproto-uc-*`` folder made for the socket (removed by :meth:`close`), if any
        self._folder = None if address else tempfile.mkdtemp(prefix="dkproto-uc-")
        self.address = address or os.path.join(self._folder or "", "uc.sock")
        self.authkey = authkey or secrets.token_bytes(16)
        try:
            self._listener = Listener(self.address, family="AF_UNIX", authkey=self.authkey)
        except OSError as exc:
            self._remove_folder()
            cls = NotPermittedError if isinstance(exc, PermissionError) else DkError
            raise cls(f"UserClientServer: cannot listen on {self.address}: {exc.strerror or exc}",
                      backend_code=exc.errno) from exc
        except BaseException:
            self._remove_folder()
            raise
        self._thread = threading.Thread(target=self._accept, name="UserClientServer", daemon=True)
        self._closed = False
        self._conns: list[Connection] = []
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError):
                if self._closed:
                    return
                continue
            except Exception as exc:  # noqa: BLE001 - authentication failure and the like
                _log.warning("UserClientServer: refused a connection (%s: %s)", type(exc).__name__, exc)
                continue
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), name="UserClientServer.conn", daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        connects: dict[int, IOConnect] = {}
        ids = itertools.count(1)
        send_lock = threading.Lock()

        def send(msg: tuple[Any, ...]) -> None:
            with send_lock:
                try:
                    conn.send(msg)
                except (OSError, EOFError):
                    pass

        try:
            while True:
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    break
                except Exception as exc:  # noqa: BLE001 - an unpicklable message: answered, not fatal
                    send(("err", int(IOReturn.kIOReturnBadArgument), f"UserClientServer: bad message ({exc})"))
                    continue
                try:
                    self._handle(msg, connects, ids, send)
                except Exception as exc:  # noqa: BLE001 - a malformed request or a bug: answered, the link lives on
                    bad = isinstance(exc, (TypeError, ValueError, IndexError, KeyError))
                    code = IOReturn.kIOReturnBadArgument if bad else IOReturn.kIOReturnError
                    send(("err", int(code), f"UserClientServer: {type(exc).__name__}: {exc}"))
        finally:
            for c in connects.values():  # the app died or hung up: close what it left open
                c.close()
            conn.close()

    def _handle(self, msg: Any, connects: dict[int, IOConnect], ids: Iterator[int],
                send: Callable[[tuple[Any, ...]], None]) -> None:
        """Answer one request of an app (``open``, ``call``, ``close``)."""
        op = msg[0]
        if op == "open":  # ("open", type, entitlements[, registry ID from a "match"])
            client_type, ents = msg[1], msg[2]
            try:
                c = io_service_open(self._service_for(msg[3] if len(msg) > 3 else None), client_type,
                                    app_entitlements=ents)
            except DkError as exc:
                send(("err", int(exc.ioreturn), str(exc)))
                return
            cid = next(ids)
            connects[cid] = c
            send(("ok", cid))
        elif op == "call":
            _, cid, selector, sin, sstruct, ocnt, oscnt, async_id = msg
            found = connects.get(cid)
            if found is None:
                send(("ret", int(IOReturn.kIOReturnNotOpen), [], b"", "no such connection"))
                return
            port = None
            ref = None
            if async_id is not None:
                port = _RelayPort(send, async_id)
                ref = async_reference(port.relay)
            try:
                r = found._call(selector, sin, sstruct, ocnt, oscnt, port, ref)
                send(("ret", 0, r.scalar_output, r.struct_output, ""))
            except DkError as exc:
                send(("ret", int(exc.ioreturn), [], b"", str(exc)))
        elif op == "match":  # IOServiceGetMatchingServices from the app's process
            from dkproto.iokit.service import registered_services

            matching = msg[1]
            if not isinstance(matching, dict):
                send(("err", int(IOReturn.kIOReturnBadArgument), "IOServiceGetMatchingServices: not a dictionary"))
                return
            send(("ok", [(s.get_registry_entry_id(), s.get_name()) for s in registered_services()
                         if service_matches(s, matching)]))
        elif op == "close":
            gone = connects.pop(msg[1], None)
            if gone is not None:
                gone.close()
            send(("closed", msg[1]))
        else:
            send(("err", int(IOReturn.kIOReturnUnsupported), f"UserClientServer: unknown request {op!r}"))

    def _service_for(self, registry_id: Any) -> IOService:
        """The service an app opens: the served one, or a registered one the app matched."""
        if registry_id is None:
            return self.service
        from dkproto.iokit.service import registered_services

        for s in registered_services():
            if s.get_registry_entry_id() == registry_id:
                return s
        raise NoDeviceError(f"IOServiceOpen: no registered service with registry ID {registry_id!r} "
                            "(it stopped since IOServiceGetMatchingServices)")

    def close(self) -> None:
        """Stop accepting; existing connections end when their apps hang up."""
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass
        import socket

        for conn in self._conns:  # wake each serving thread; it closes its own connection
            try:
                dup = socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
                dup.shutdown(socket.SHUT_RDWR)
                dup.close()
            except OSError:
                pass
        try:
            os.unlink(self.address)
        except OSError:
            pass
        self._remove_folder()

    def _remove_folder(self) -> None:
        if self._folder is not None:
            try:
                os.rmdir(self._folder)
            except OSError:
                pass
            self._folder = None


class _RelayPort(IONotificationPort):
    """Server side stand-in for the app's wake port: forwards completions over the socket."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None], async_id: int) -> None:
        self.send = send
        self.async_id = async_id

    def relay(self, refcon: Any, status: int, *rest: Any) -> None:  # pragma: no cover - not used
        pass

    def deliver(self, reference: Sequence[Any], status: int, args: Sequence[int]) -> None:
        self.send(("async", self.async_id, int(status), list(args)))


class _RemoteConnection:
    def __init__(self, address: str, authkey: bytes) -> None:
        from multiprocessing import AuthenticationError

        self.address = address
        self.authkey = authkey
        try:
            self.conn = Client(address, family="AF_UNIX", authkey=authkey)
        except AuthenticationError as exc:
            raise NotPermittedError(f"IOServiceOpen: the user-client server at {address} refused the key") from exc
        except (OSError, EOFError) as exc:
            raise NoDeviceError(f"IOServiceOpen: cannot reach the user-client server at {address}: {exc}") from exc
        self._replies: list[Any] = []
        self._cv = threading.Condition()
        self._pending: dict[int, tuple[IONotificationPort, list[Any]]] = {}
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._dead = False
        threading.Thread(target=self._reader, name="RemoteService.reader", daemon=True).start()

    def _reader(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                with self._cv:
                    self._dead = True
                    self._cv.notify_all()
                return
            if msg[0] == "async":
                _, aid, status, args = msg
                entry = self._pending.get(aid)
                if entry is not None:
                    entry[0].deliver(entry[1], status, args)
            else:
                with self._cv:
                    self._replies.append(msg)
                    self._cv.notify_all()

    def request(self, msg: tuple[Any, ...]) -> Any:
        with self._send_lock:
            try:
                self.conn.send(msg)
            except (OSError, EOFError) as exc:
                raise NoDeviceError(f"user-client server went away: {exc}") from exc
            with self._cv:
                while not self._replies and not self._dead:
                    self._cv.wait()
                if not self._replies:
                    raise NoDeviceError("user-client server went away")
                return self._replies.pop(0)

    def call(self, cid: int, selector: int, sin: tuple[int, ...], sstruct: bytes, ocnt: int, oscnt: int,
             port: IONotificationPort | None, reference: Sequence[Any] | None) -> tuple[int, list[int], bytes]:
        aid = None
        if reference is not None:
            if port is None:
                raise BadArgumentError("IOConnectCallAsyncMethod: no wake port")
            aid = next(self._ids)
            self._pending[aid] = (port, list(reference))
        reply = self.request(("call", cid, selector, sin, sstruct, ocnt, oscnt, aid))
        if reply[0] == "err":
            raise error_for_ioreturn(reply[1], reply[2])
        _, kr, scalars, out, _msg = reply
        return kr, scalars, out

    def close_connection(self, cid: int) -> None:
        try:
            self.request(("close", cid))
        except NoDeviceError:
            pass


class RemoteService:
    """A service in another process, as ``io_service_open`` sees it.

    Made by :func:`io_service_get_matching_services` in an app process started by
    ``dkproto run --process`` (Apple's path), or directly from a socket address and key: dkproto
    convenience, not Apple's (then it opens the service the :class:`UserClientServer` serves).

    Args:
        address: the :class:`UserClientServer` socket path.
        authkey: its key.
        registry_id: the matched service's registry entry ID (None: the served service).
    """

    def __init__(self, address: str, authkey: bytes, *, registry_id: int | None = None,
                 connection: _RemoteConnection | None = None, name: str = "") -> None:
        self.address = address
        self.authkey = authkey
        self.registry_id = registry_id
        self.name = name
        self._conn: _RemoteConnection | None = connection

    def get_name(self) -> str:
        """The service's name in the other process (set when found by matching)."""
        return self.name

    def get_registry_entry_id(self) -> int | None:
        """``IORegistryEntryGetRegistryEntryID``: set when found by matching."""
        return self.registry_id

    def open(self, client_type: int, app_entitlements: dict[str, Any] | None) -> IOConnect:
        """``IOServiceOpen`` across the socket."""
        if self._conn is None or self._conn._dead:
            self._conn = _RemoteConnection(self.address, self.authkey)
        msg: tuple[Any, ...] = ("open", client_type, app_entitlements)
        if self.registry_id is not None:
            msg += (self.registry_id,)
        reply = self._conn.request(msg)
        if reply[0] == "err":
            raise error_for_ioreturn(reply[1], reply[2])
        return IOConnect(remote=self._conn, conn_id=reply[1])

    def __repr__(self) -> str:
        return f"RemoteService({self.name or 'served service'!s} at {self.address})"
