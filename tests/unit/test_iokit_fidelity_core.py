"""DriverKit fidelity, core rules (issue 12 items 1-5 and 9): queues, the notification port, the
app-side IOKitLib rules, the user-client gate and matching. Each test names its source."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, ClassVar

import pytest

from dkproto.errors import AbortedError, BadArgumentError, DkError, NotPermittedError, UnsupportedError
from dkproto.iokit import (
    IODispatchQueue,
    IOIterator,
    IOService,
    IOUserClient,
    ServiceState,
    async_reference,
    create_action,
    external_method,
    io_connect_call_async_method,
    io_connect_call_method,
    io_iterator_next,
    io_notification_port_create,
    io_notification_port_set_dispatch_queue,
    io_object_release,
    io_service_close,
    io_service_get_matching_service,
    io_service_get_matching_services,
    io_service_matching,
    io_service_name_matching,
    io_service_open,
    kIOConnectMethodVarOutputSize,
    kIOMainPortDefault,
    start_service,
)
from dkproto.iokit.connect import IONotificationPort, RemoteService, UserClientServer
from dkproto.iokit.queue import DispatchDeadlockError
from dkproto.iokit.service import check_dext_entitlements, registered_services, user_client_gate
from dkproto.ioreturn import IOReturn

ALLOW_ANY = "com.apple.developer.driverkit.allow-any-userclient-access"
UC_ACCESS = "com.apple.developer.driverkit.userclient-access"


# ---- item 1: Start runs on the Default queue ------------------------------------------------------

class StartsIO(IOService):
    """Its Start sets off a completion and waits a little: the completion must come after Start."""

    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        self.log: list[str] = ["start begins"]
        self.start_on_queue = self.copy_dispatch_queue().on_queue()
        create_action(self, "Complete").invoke(0)  # e.g. an AsyncIO completing at once
        time.sleep(0.05)
        self.log.append("start ends")
        self.done = threading.Event()
        self.register_service()

    def Complete(self, action: Any, status: int) -> None:
        self.log.append("completion")
        self.done.set()


def test_start_runs_on_the_default_queue_and_completions_wait_for_it() -> None:
    """IOService.iig (every call into the driver is serialised on its Default queue);
    driverkit.md 10: a completion invoked during Start runs after Start returns."""
    svc = start_service(StartsIO(), None)
    assert svc.start_on_queue  # Start ran on the service's Default queue
    assert svc.done.wait(5)
    assert svc.log == ["start begins", "start ends", "completion"]
    svc.terminate()
    assert svc.wait_terminated(5)


def test_failed_start_raises_in_the_caller_and_frees() -> None:
    class Fails(IOService):
        def start(self, provider: IOService | None) -> None:
            super().start(provider)
            raise BadArgumentError("no pipes")

    svc = Fails()
    with pytest.raises(BadArgumentError, match="no pipes"):
        start_service(svc, None)
    assert svc.state is ServiceState.FREED


# ---- item 2: Cancel and DispatchSync ----------------------------------------------------------------

def test_cancel_drops_queued_blocks_and_runs_the_handler_after_the_block_in_flight() -> None:
    """xnu iokit/DriverKit/IODispatchQueue.iig ``Cancel``: "Stops the queue from dequeuing work, and on
    completion of any block currently being executed, invokes a callback block"."""
    q = IODispatchQueue("cancel")
    ran: list[str] = []
    started, release = threading.Event(), threading.Event()

    def in_flight() -> None:
        started.set()
        release.wait(5)
        ran.append("in flight")

    q.dispatch_async(in_flight)
    for i in range(5):
        q.dispatch_async(ran.append, f"queued {i}")
    assert started.wait(5)
    handled = threading.Event()
    q.cancel(lambda: (ran.append("handler"), handled.set()))
    release.set()
    assert handled.wait(5)
    q.drain()
    assert ran == ["in flight", "handler"]  # the queued blocks never ran
    with pytest.raises(DkError):
        q.dispatch_async(ran.append, "after")


def test_a_dispatch_sync_dropped_by_cancel_is_aborted() -> None:
    """IODispatchQueue.iig ``Cancel`` drops queued work; a waiting DispatchSync caller must not hang:
    dkproto gives it kIOReturnAborted (what DriverKit does here is [unconfirmed]; the stricter choice)."""
    q = IODispatchQueue("sync-cancel")
    release = threading.Event()
    q.dispatch_async(release.wait, 5)
    box: dict[str, BaseException] = {}

    def caller() -> None:
        try:
            q.dispatch_sync(lambda: "never")
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            box["exc"] = exc

    t = threading.Thread(target=caller)
    t.start()
    time.sleep(0.05)
    q.cancel()
    release.set()
    t.join(5)
    assert isinstance(box.get("exc"), AbortedError)
    assert box["exc"].ioreturn == IOReturn.kIOReturnAborted  # type: ignore[attr-defined]


def test_dispatch_sync_onto_the_running_queue_fails_loudly() -> None:
    """IODispatchQueue.iig ``DispatchSync``: onto the queue the caller runs on, a dext deadlocks;
    dkproto raises DispatchDeadlockError carrying kIOReturnError instead of running it inline."""
    q = IODispatchQueue("self")
    with pytest.raises(DispatchDeadlockError) as e:
        q.dispatch_sync(lambda: q.dispatch_sync(lambda: 1))
    assert e.value.ioreturn == IOReturn.kIOReturnError
    box: list[BaseException] = []
    q.dispatch_async(lambda: box.append(pytest.raises(DispatchDeadlockError, q.dispatch_sync, int).value))
    q.drain()
    assert isinstance(box[0], DispatchDeadlockError)


def test_dispatch_sync_chain_back_onto_a_held_queue_fails() -> None:
    """IODispatchQueue.iig ``OnQueue``: true for every queue of a DispatchSync chain ("OnQueue can
    return true for more than one queue in a given context"); A -> B -> A deadlocks in a dext."""
    a, b = IODispatchQueue("A"), IODispatchQueue("B")
    seen: dict[str, bool] = {}

    def on_b() -> None:
        seen["a"], seen["b"] = a.on_queue(), b.on_queue()
        a.dispatch_sync(int)

    with pytest.raises(DispatchDeadlockError):
        a.dispatch_sync(lambda: b.dispatch_sync(on_b))
    assert seen == {"a": True, "b": True}
    assert a.dispatch_sync(lambda: b.dispatch_sync(lambda: 7)) == 7  # A -> B alone is fine
    assert not a.on_queue()


def test_free_lets_queued_blocks_run() -> None:
    """A block retains its queue until it completes (IODispatchQueue.iig ``DispatchAsync``): freeing the
    service is not ``Cancel``; an OSAction cancel handler queued by Stop still runs."""
    handled = threading.Event()

    class Cancels(IOService):
        def start(self, provider: IOService | None) -> None:
            super().start(provider)
            self.action = create_action(self, "Complete")

        def Complete(self, action: Any) -> None:
            pass

        def stop(self, provider: IOService | None) -> None:
            self.action.cancel(handled.set)  # runs on the Default queue after this block
            super().stop(provider)

    svc = start_service(Cancels(), None)
    svc.terminate()
    assert svc.wait_terminated(5)
    assert handled.wait(5)


# ---- item 3: IONotificationPort ------------------------------------------------------------------------

def test_notification_port_delivers_nothing_until_a_queue_is_set() -> None:
    """IOKitLib.c ``IONotificationPortSetDispatchQueue``: delivery needs a dispatch source on the wake
    port; messages sent before wait in the Mach port and are delivered, in order, once it is set."""
    port = io_notification_port_create()
    got: list[tuple[Any, ...]] = []
    ref = async_reference(lambda refcon, result, *a: got.append((refcon, int(result), *a)), "r")
    port.deliver(ref, 0, [1])
    port.deliver(ref, 0, [2])
    time.sleep(0.05)
    assert got == []
    q = IODispatchQueue("app")
    io_notification_port_set_dispatch_queue(port, q)
    q.drain()
    assert got == [("r", 0, 1), ("r", 0, 2)]
    io_notification_port_set_dispatch_queue(port, None)  # dispatch source cancelled: messages wait again
    port.deliver(ref, 0, [3])
    q.drain()
    assert len(got) == 2
    io_notification_port_set_dispatch_queue(port, q)
    q.drain()
    assert got[-1] == ("r", 0, 3)
    port.deliver(ref, 0, [4])
    port.destroy()  # IONotificationPortDestroy: the port and what waits in it are gone
    q.drain()
    assert got[-1] == ("r", 0, 4)  # posted to the queue before Destroy
    port.deliver(ref, 0, [5])
    q.drain()
    assert ("r", 0, 5) not in got
    with pytest.raises(BadArgumentError):
        IONotificationPort().set_dispatch_queue("main")  # type: ignore[arg-type]


# ---- items 4 and 5: the user client and its service ------------------------------------------------------

class FidelityClient(IOUserClient):
    @external_method(0, struct_out=None)
    def maybe_output(self, reference: Any, a: Any) -> None:
        if a.scalar_input_count:
            a.structure_output = b"out"

    @external_method(1, completion=True, struct_out=None)
    def later(self, reference: Any, a: Any) -> None:
        a.completion.retain()
        self.async_completion(a.completion, IOReturn.kIOReturnSuccess, [5])

    def stop(self, provider: IOService | None) -> None:
        type(self).stopped.append(self)
        super().stop(provider)

    stopped: ClassVar[list[IOUserClient]] = []


class FidelityService(IOService):
    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        self.properties["UserClientProperties"] = {"IOClass": "IOUserUserClient", "IOUserClass": "FidelityClient"}
        self.made: list[IOUserClient] = []
        self.register_service()

    def new_user_client(self, client_type: int) -> IOUserClient:
        uc = self.create(self, "UserClientProperties")
        assert isinstance(uc, IOUserClient)
        self.made.append(uc)
        return uc


@pytest.fixture()
def svc():
    s = start_service(FidelityService(), None)
    yield s
    s.terminate()
    assert s.wait_terminated(5)


def test_empty_variable_output_is_underrun(svc: FidelityService) -> None:
    """xnu iokit/Kernel/IOUserClient.cpp ``is_io_connect_method_var_output``: no output object from
    the dext -> kIOReturnUnderrun."""
    c = io_service_open(svc, 0)
    try:
        assert io_connect_call_method(c, 0, [1], output_struct_cnt=kIOConnectMethodVarOutputSize).struct_output == b"out"
        with pytest.raises(DkError) as e:
            io_connect_call_method(c, 0, output_struct_cnt=kIOConnectMethodVarOutputSize)
        assert e.value.ioreturn == IOReturn.kIOReturnUnderrun
    finally:
        io_service_close(c)


def test_async_reference_rules(svc: FidelityService) -> None:
    """IOKitLib.c ``IOConnectCallAsyncMethod``: no variable-output path (the size goes out as an OOL
    buffer > UINT_MAX, which xnu ``is_io_connect_async_method`` refuses with kIOReturnIPCError); an
    empty reference is replaced by ``temp_reference[1]``; ``io_async_ref64_t`` holds 8 words
    (kOSAsyncRef64Count; more: the MIG stub refuses, dkproto says kIOReturnBadArgument)."""
    c = io_service_open(svc, 0)
    port = io_notification_port_create()
    q = IODispatchQueue("app")
    io_notification_port_set_dispatch_queue(port, q)
    try:
        got: list[tuple[Any, ...]] = []
        ref = async_reference(lambda refcon, result, a0: got.append((refcon, int(result), a0)), "ctx")
        with pytest.raises(DkError) as e:
            io_connect_call_async_method(c, 1, port, ref, output_struct_cnt=kIOConnectMethodVarOutputSize)
        assert e.value.ioreturn == IOReturn.kIOReturnIPCError
        with pytest.raises(BadArgumentError):
            io_connect_call_async_method(c, 1, port, ref + [0])  # 9 words
        io_connect_call_async_method(c, 1, port, ref)  # exactly 8
        io_connect_call_async_method(c, 1, port, ref[:3])  # shorter: zero-filled by the kernel
        io_connect_call_async_method(c, 1, port, [])  # empty: substituted; no callback, nothing delivered
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        q.drain()
        assert got == [("ctx", 0, 5), ("ctx", 0, 5)]
    finally:
        port.destroy()
        io_service_close(c)


def test_open_makes_the_user_client_then_checks_and_terminates_it(svc: FidelityService) -> None:
    """xnu iokit/Kernel/IOUserServer.cpp ``serviceNewUserClient``: ``_NewUserClient`` first, then the
    entitlement checks; on failure ``uc->terminate`` and kIOReturnNotPermitted (driverkit.md 2.8)."""
    svc.dext_entitlements = {"com.apple.developer.driverkit": True}
    svc.properties["CFBundleIdentifier"] = "com.example.dext"
    FidelityClient.stopped.clear()
    with pytest.raises(NotPermittedError) as e:
        io_service_open(svc, 0, app_entitlements={UC_ACCESS: True})  # true is not a bundle ID list
    assert e.value.ioreturn == IOReturn.kIOReturnNotPermitted
    assert len(svc.made) == 1  # NewUserClient ran (and the client's Start) before the check
    refused = svc.made[0]
    assert refused.state is ServiceState.FREED and FidelityClient.stopped == [refused]
    assert svc.get_clients() == []
    c = io_service_open(svc, 0, app_entitlements={UC_ACCESS: ["com.other", "com.example.dext"]})
    io_service_close(c)


def test_user_client_copies_the_bundle_id() -> None:
    """xnu ``IOService::Create_Impl`` copies gIOModuleIdentifierKey (CFBundleIdentifier) into the new
    service's properties."""
    s = FidelityService()
    s.properties["CFBundleIdentifier"] = "com.example.dext"
    start_service(s, None)
    assert s.new_user_client(0).properties["CFBundleIdentifier"] == "com.example.dext"
    with pytest.raises(UnsupportedError):
        s.create(start_service(IOService(), None), "UserClientProperties")
    s.terminate()
    assert s.wait_terminated(5)


def test_gate_rules_as_xnu_checks_them() -> None:
    """xnu ``serviceNewUserClient``: allow-any-userclient-access on the dext is checked for presence
    (``getObject``); the app's userclient-access passes when it is, or as an array holds, a string
    equal to the service's CFBundleIdentifier (``iterateObjects`` + ``isEqualTo``)."""
    s = IOService()
    s.properties["CFBundleIdentifier"] = "com.example.dext"
    s.dext_entitlements = {ALLOW_ANY: True}
    user_client_gate(s, None)
    s.dext_entitlements = {ALLOW_ANY: False}
    user_client_gate(s, None)  # present: xnu lets it through (dkproto logs a warning)
    s.dext_entitlements = {}
    for ok in (["com.example.dext"], "com.example.dext", ("a", "com.example.dext")):
        user_client_gate(s, {UC_ACCESS: ok})
    for bad in (True, [], ["com.example"], {"com.example.dext": True}, None):
        with pytest.raises(NotPermittedError):
            user_client_gate(s, {UC_ACCESS: bad})
    del s.properties["CFBundleIdentifier"]
    with pytest.raises(NotPermittedError):
        user_client_gate(s, {UC_ACCESS: ["com.example.dext"]})


def test_dext_entitlements_check_is_xnus_check_entitlements() -> None:
    """xnu ``IOUserServer::checkEntitlements``: string -> present; array of strings -> any present;
    array of arrays -> all of one inner array present; presence only; an empty array fails."""
    ents = {"a": True, "b": False, "c": 1}
    assert check_dext_entitlements(None, {})
    assert check_dext_entitlements("a", ents) and check_dext_entitlements("b", ents)  # value not looked at
    assert not check_dext_entitlements("z", ents)
    assert check_dext_entitlements(["z", "c"], ents)  # any one
    assert check_dext_entitlements([["a", "z"], ["b", "c"]], ents)
    assert not check_dext_entitlements([["a", "z"]], ents)
    assert not check_dext_entitlements([], ents)
    assert not check_dext_entitlements([[]], ents)


def test_dext_entitlements_of_the_user_client_at_open(svc: FidelityService) -> None:
    svc.dext_entitlements = {ALLOW_ANY: True}
    svc.properties["UserClientProperties"]["IOServiceDEXTEntitlements"] = ["com.example.a", "com.example.b"]
    with pytest.raises(NotPermittedError, match="IOServiceDEXTEntitlements"):
        io_service_open(svc, 0, app_entitlements={"com.example.c": True})
    assert svc.made[-1].state is ServiceState.FREED
    io_service_close(io_service_open(svc, 0, app_entitlements={"com.example.b": False}))


# ---- item 9: finding a service by matching ------------------------------------------------------------

class MatchMe(IOService):
    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        self.register_service()


def test_matching_finds_registered_services_by_the_kernels_rules() -> None:
    """IOKitLib ``IOServiceGetMatchingServices`` / xnu ``IOService::matchPassive``: IOProviderClass is a
    kernel class (metaCast), IONameMatch the service's name (a dext's is its IOUserClass),
    IOPropertyMatch a subset of its properties; only registered services are found."""
    a = MatchMe()
    a.properties.update({"IOClass": "IOUserService", "IOUserClass": "MatchMe", "Serial": "fidelity-A"})
    start_service(a, None)
    hidden = start_service(IOService(), None)  # started, never registered
    hidden.properties["Serial"] = "fidelity-A"
    it = io_service_get_matching_services(kIOMainPortDefault, {"IOPropertyMatch": {"Serial": "fidelity-A"}})
    assert isinstance(it, IOIterator)
    assert io_iterator_next(it) is a and io_iterator_next(it) is None
    assert io_object_release(it) == 0
    names = list(iter(io_service_get_matching_services(0, io_service_name_matching("MatchMe")).next, None))
    assert a in names
    # the dext's own class is not a kernel class: IOServiceMatching("MatchMe") finds nothing, as on macOS
    assert a not in list(iter(io_service_get_matching_services(0, io_service_matching("MatchMe")).next, None))
    by_class = io_service_matching("IOUserService")
    by_class["IOPropertyMatch"] = [{"Serial": "nope"}, {"Serial": "fidelity-A"}]  # an array: any one
    assert io_service_get_matching_service(0, by_class) is a
    assert io_service_get_matching_service(0, {"IOPropertyExistsMatch": ["Nope", "Serial"],
                                                "IORegistryEntryID": a.get_registry_entry_id()}) is a
    assert io_service_get_matching_service(0, {"IOPropertyMatch": {"Serial": "fidelity-B"}}) is None
    with pytest.raises(BadArgumentError):
        io_service_get_matching_services(0, None)
    with pytest.raises(BadArgumentError):
        io_service_get_matching_services(1, io_service_matching("IOService"))
    a.terminate()
    assert a.wait_terminated(5)
    assert a not in registered_services()  # stopped services leave the registry
    assert io_service_get_matching_service(0, {"IOPropertyMatch": {"Serial": "fidelity-A"}}) is None
    hidden.terminate()
    assert hidden.wait_terminated(5)


def test_an_app_process_matches_through_the_main_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """An app started by ``dkproto run --process`` (DKPROTO_UC_ADDRESS/KEY set) matches against the
    driver process's registry, as a macOS app asks the kernel; the result opens like a service."""
    s = FidelityService()
    s.properties["Serial"] = "fidelity-remote"
    start_service(s, None)
    server = UserClientServer(s)
    try:
        monkeypatch.setenv("DKPROTO_UC_ADDRESS", server.address)
        monkeypatch.setenv("DKPROTO_UC_KEY", server.authkey.hex())
        found = [x for x in iter(io_service_get_matching_services(
            0, {"IOPropertyMatch": {"Serial": "fidelity-remote"}}).next, None) if isinstance(x, RemoteService)]
        assert len(found) == 1 and found[0].get_registry_entry_id() == s.get_registry_entry_id()
        assert found[0].get_name() == "FidelityService"
        c = io_service_open(found[0], 0)
        assert io_connect_call_method(c, 0, [1], output_struct_cnt=kIOConnectMethodVarOutputSize).struct_output == b"out"
        io_service_close(c)
    finally:
        monkeypatch.delenv("DKPROTO_UC_ADDRESS")
        server.close()
        s.terminate()
        assert s.wait_terminated(5)
    assert "DKPROTO_UC_ADDRESS" not in os.environ
