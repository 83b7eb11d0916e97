"""IOService lifecycle, guards, links, properties, terminate; OSAction and IODispatchQueue."""

from __future__ import annotations

import threading

import pytest

from dkproto.errors import (
    BadArgumentError,
    DkError,
    NoDeviceError,
    NotFoundError,
    NotPermittedError,
    StateError,
    UnsupportedError,
)
from dkproto.iokit import IODispatchQueue, IOService, OSAction, ServiceState, create_action, start_service
from dkproto.iokit.connect import io_service_open
from dkproto.iokit.memory import IOBufferMemoryDescriptor, IOMemoryDescriptor
from dkproto.iokit.queue import DispatchDeadlockError
from dkproto.iokit.service import kIOServiceSearchPropertyParents, user_client_gate
from dkproto.iokit.status import check_ioreturn, ioreturn_of, is_stall, is_timeout
from dkproto.ioreturn import IOReturn


class Recorder(IOService):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.events = log

    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        self.events.append(f"start {type(self).__name__}")
        self.register_service()

    def stop(self, provider: IOService | None) -> None:
        self.events.append(f"stop {type(self).__name__}")
        super().stop(provider)

    def free(self) -> None:
        self.events.append(f"free {type(self).__name__}")
        super().free()


class Nub(Recorder):
    pass


class Driver(Recorder):
    pass


def test_lifecycle_order_and_states() -> None:
    log: list[str] = []
    nub = start_service(Nub(log), None)
    drv = Driver(log)
    assert drv.state is ServiceState.CREATED
    start_service(drv, nub)
    assert drv.state is ServiceState.STARTED and drv.is_registered
    assert drv.get_provider() is nub and nub.get_clients() == [drv]
    nub.terminate()
    assert nub.is_inactive
    assert nub.wait_terminated(5)
    assert drv.state is ServiceState.FREED and nub.state is ServiceState.FREED
    # clients stop before their provider; each is freed after its stop
    assert log == ["start Nub", "start Driver", "stop Driver", "free Driver", "stop Nub", "free Nub"]


def test_terminate_is_asynchronous() -> None:
    gate = threading.Event()
    log: list[str] = []

    class Slow(Recorder):
        def stop(self, provider: IOService | None) -> None:
            gate.wait(5)
            super().stop(provider)

    s = start_service(Slow(log), None)
    s.terminate()
    assert s.state is ServiceState.TERMINATING  # returned before stop ran
    s.terminate()  # again: nothing
    gate.set()
    assert s.wait_terminated(5)
    assert s.state is ServiceState.FREED


def test_guards_name_method_and_state() -> None:
    s = IOService()
    with pytest.raises(StateError, match=r"IOService.register_service: called in state 'created', needs started"):
        s.register_service()
    with pytest.raises(StateError, match="IOService.stop: called in state 'created'"):
        s.stop(None)
    s.init()
    with pytest.raises(StateError, match="init: called in state 'initialized'"):
        s.init()
    s.start(None)
    with pytest.raises(StateError, match="start: called in state 'started'"):
        s.start(None)
    with pytest.raises(StateError, match="free: called in state 'started'"):
        s.free()
    e = StateError("x")
    assert e.ioreturn == IOReturn.kIOReturnNotOpen  # StateError is a NotOpenError


def test_start_without_super_is_reported() -> None:
    class Forgetful(IOService):
        def start(self, provider: IOService | None) -> None:
            pass

    with pytest.raises(StateError, match=r"must call super\(\).start\(provider\) first"):
        start_service(Forgetful(), None)


def test_failed_start_frees() -> None:
    class Failing(IOService):
        def start(self, provider: IOService | None) -> None:
            super().start(provider)
            raise NoDeviceError("gone")

    f = Failing()
    with pytest.raises(NoDeviceError):
        start_service(f, None)
    assert f.state is ServiceState.FREED


def test_stop_without_super_is_completed_by_terminate(caplog: pytest.LogCaptureFixture) -> None:
    class NoSuperStop(IOService):
        def stop(self, provider: IOService | None) -> None:
            pass

    s = start_service(NoSuperStop(), None)
    s.terminate()
    assert s.wait_terminated(5)
    assert "without calling super().stop" in caplog.text


def test_properties_and_search() -> None:
    parent = start_service(IOService(), None)
    parent.set_property("idVendor", 0x1209)
    child = start_service(IOService(), parent)
    child.set_properties({"Mine": 1})
    assert child.copy_properties() == {"Mine": 1}
    assert child.search_property("Mine") == 1
    assert child.search_property("idVendor", options=kIOServiceSearchPropertyParents) == 0x1209
    with pytest.raises(NotFoundError):
        child.search_property("idVendor")
    assert child.copy_provider_properties() == {"idVendor": 0x1209}
    assert child.get_registry_entry_id() != parent.get_registry_entry_id()
    child.set_name("x")
    assert child.get_name() == "x"


def test_queues() -> None:
    s = start_service(IOService(), None)
    q = s.copy_dispatch_queue()
    assert q is s.copy_dispatch_queue("Default")
    with pytest.raises(NotFoundError):
        s.copy_dispatch_queue("Other")
    with pytest.raises(BadArgumentError):
        s.set_dispatch_queue("Other", IODispatchQueue("Other"))

    class WithQueue(IOService):
        QUEUE_NAMES = ("Interrupt",)

    w = WithQueue()
    iq = IODispatchQueue.create("Interrupt")
    w.set_dispatch_queue("Interrupt", iq)
    assert w.copy_dispatch_queue("Interrupt") is iq


def test_new_user_client_default_is_error() -> None:
    """xnu iokit/Kernel/IOUserServer.cpp ``IOService::NewUserClient_Impl``: kIOReturnError."""
    s = start_service(IOService(), None)
    with pytest.raises(DkError) as e:
        s.new_user_client(0)
    assert e.value.ioreturn == IOReturn.kIOReturnError
    s.register_service()
    with pytest.raises(DkError) as e:
        io_service_open(s, 0)
    assert e.value.ioreturn == IOReturn.kIOReturnError


def test_open_requires_registered_started_service() -> None:
    s = start_service(IOService(), None)
    with pytest.raises(NoDeviceError, match="not registered"):
        io_service_open(s, 0)


def test_create_errors() -> None:
    """xnu iokit/Kernel/IOUserServer.cpp ``IOService::Create_Impl``: provider must be this
    (kIOReturnUnsupported); the key must name a dictionary (kIOReturnBadArgument) with an
    ``IOClass`` string (kIOReturnBadArgument)."""
    s = start_service(IOService(), None)
    with pytest.raises(BadArgumentError):
        s.create(s, "UserClientProperties")
    s.properties["UserClientProperties"] = {"IOUserClass": "IOService"}
    with pytest.raises(BadArgumentError, match="IOClass"):
        s.create(s, "UserClientProperties")
    s.properties["UserClientProperties"] = {"IOClass": "IOUserUserClient", "IOUserClass": "NoSuchClass"}
    with pytest.raises(NotFoundError, match="NoSuchClass"):
        s.create(s, "UserClientProperties")
    other = start_service(IOService(), None)
    with pytest.raises(UnsupportedError):
        s.create(other, "UserClientProperties")


def test_user_client_gate() -> None:
    s = IOService()
    user_client_gate(s, None)  # no bundle: not simulated
    s.dext_entitlements = {}
    s.properties["CFBundleIdentifier"] = "com.example.dext"
    with pytest.raises(NotPermittedError) as e:
        user_client_gate(s, {})
    assert e.value.ioreturn == 0xE00002E2
    user_client_gate(s, {"com.apple.developer.driverkit.userclient-access": ["com.example.dext"]})
    user_client_gate(s, {"com.apple.developer.driverkit.userclient-access": "com.example.dext"})
    with pytest.raises(NotPermittedError):
        user_client_gate(s, {"com.apple.developer.driverkit.userclient-access": ["com.other"]})
    s.dext_entitlements = {"com.apple.developer.driverkit.allow-any-userclient-access": True}
    user_client_gate(s, None)


def test_osaction_delivers_on_target_queue_never_inline() -> None:
    s = start_service(IOService(), None)
    got: list[tuple] = []
    done = threading.Event()

    class T(IOService):
        def CompleteAsyncIO(self, action, status, n, ts):
            got.append((action, status, n, ts, threading.current_thread().name))
            done.set()

    t = start_service(T(), s)
    a = create_action(t, "CompleteAsyncIO", 16)
    assert a.get_reference() == bytearray(16)
    assert create_action(t, "CompleteAsyncIO").get_reference() is None
    a.invoke(0, 5, 123)
    assert got == []  # never inside the submitting call
    assert done.wait(5)
    assert got[0][:4] == (a, 0, 5, 123) and "T.Default" in got[0][4]
    with pytest.raises(BadArgumentError):
        create_action(t, "NoSuchMethod")


def test_osaction_cancel() -> None:
    q = IODispatchQueue("t")
    calls: list[str] = []
    a = OSAction(None, lambda action, x: calls.append(x), queue=q)
    a.invoke("before")
    cancelled = threading.Event()
    a.cancel(cancelled.set)
    a.invoke("after")
    assert cancelled.wait(5)
    q.drain()
    assert calls == ["before"]  # in-flight ran, later ones dropped
    aborted: list[int] = []
    a.set_aborted_handler(lambda: aborted.append(1))
    a.aborted()
    assert aborted == [1]


def test_queue_serial_sync_cancel() -> None:
    q = IODispatchQueue("serial")
    order: list[int] = []
    for i in range(50):
        q.dispatch_async(order.append, i)
    assert q.dispatch_sync(lambda: len(order)) == 50
    assert order == list(range(50))
    with pytest.raises(DispatchDeadlockError):  # a dext deadlocks: DispatchSync onto the running queue
        q.dispatch_sync(lambda: q.dispatch_sync(lambda: "inline"))
    with pytest.raises(ZeroDivisionError):
        q.dispatch_sync(lambda: 1 / 0)
    q.dispatch_async(lambda: 1 / 0)
    q.drain()
    assert isinstance(q.errors[-1], ZeroDivisionError)
    fired = threading.Event()
    q.cancel(fired.set)
    assert fired.wait(5)
    with pytest.raises(StateError):
        q.dispatch_async(print)


def test_memory_descriptors() -> None:
    b = IOBufferMemoryDescriptor.create(3, 8)
    assert b.get_length() == 8 and b.get_capacity() == 8
    b.set_length(4)
    m = b.create_mapping()
    assert m.get_length() == 4
    m.view()[:] = b"abcd"
    assert b.read_bytes() == b"abcd"
    with pytest.raises(BadArgumentError):
        b.set_length(9)
    with pytest.raises(BadArgumentError):
        b.create_mapping(offset=2, length=3)
    ro = IOMemoryDescriptor(b"xy", read_only=True)
    with pytest.raises(NotPermittedError):
        ro.write_bytes(0, b"z")
    assert ro.create_mapping().view().readonly
    assert ro.get_address_range().length == 2


def test_status_helpers() -> None:
    assert is_stall(0xE0005000) and is_stall(0xE000404F) and not is_stall(0xE00002D6)
    assert is_timeout(0xE00002D6) and is_timeout(0xE0004051) and is_timeout(-536870186)
    assert ioreturn_of(NoDeviceError("x")) == 0xE00002C0
    assert ioreturn_of(TimeoutError()) == 0xE00002D6
    assert ioreturn_of(ValueError()) == 0xE00002C2
    assert ioreturn_of(OSError()) == 0xE00002CA
    assert ioreturn_of(RuntimeError()) == 0xE00002BC
    check_ioreturn(0)
    with pytest.raises(DkError) as e:
        check_ioreturn(0xE0005000)
    assert type(e.value).__name__ == "PipeStalledError" and e.value.ioreturn == 0xE0005000
