"""IOUserClient dispatch: every check and error code pinned to driverkit.md section 2."""

from __future__ import annotations

import threading

import pytest

from dkproto.errors import BadArgumentError, DkError, NotOpenError, UnsupportedError
from dkproto.iokit import (
    IODispatchQueue,
    IOService,
    IOUserClient,
    IOUserClientMethodArguments,
    IOUserClientMethodDispatch,
    async_reference,
    describe_dispatch_table,
    external_method,
    io_connect_call_async_scalar_method,
    io_connect_call_method,
    io_connect_call_scalar_method,
    io_connect_call_struct_method,
    io_connect_map_memory64,
    io_notification_port_create,
    io_notification_port_set_dispatch_queue,
    io_service_close,
    io_service_open,
    kIOConnectMethodVarOutputSize,
    start_service,
)
from dkproto.iokit.action import OSAction
from dkproto.iokit.memory import IOBufferMemoryDescriptor, IOMemoryDescriptor
from dkproto.iokit.user_client import (
    check_dispatch,
    kIOUserClientAsyncArgumentsCountMax,
    kIOUserClientMemoryReadOnly,
    kIOUserClientScalarArrayCountMax,
)
from dkproto.ioreturn import IOReturn

VAR = 0xFFFFFFFF
SUCCESS = 0
BAD = 0xE00002C2
NOCOMPLETION = 0xE00002EA


def test_constants_match_reference() -> None:
    from dkproto.iokit import user_client as uc

    assert uc.kIOUserClientVariableStructureSize == 0xFFFFFFFF
    assert kIOUserClientScalarArrayCountMax == 16
    assert kIOUserClientAsyncArgumentsCountMax == 16
    assert uc.kIOUserClientAsyncReferenceCountMax == 16
    assert uc.kIOUserClientMethodArgumentsCurrentVersion == 2
    assert kIOUserClientMemoryReadOnly == 1
    assert uc.kIOUserClientInlineStructureMax == 4096
    assert kIOConnectMethodVarOutputSize == -3
    assert int(IOReturn.kIOReturnBadArgument) == BAD
    assert int(IOReturn.kIOReturnNoCompletion) == NOCOMPLETION


def test_argument_field_order_matches_header() -> None:
    names = list(IOUserClientMethodArguments.__dataclass_fields__)
    assert names == ["version", "selector", "completion", "scalar_input", "scalar_input_count", "structure_input",
                     "structure_input_descriptor", "scalar_output", "scalar_output_count", "structure_output",
                     "structure_output_descriptor", "structure_output_maximum_size"]
    assert list(IOUserClientMethodDispatch.__dataclass_fields__) == [
        "function", "check_completion_exists", "check_scalar_input_count", "check_structure_input_size",
        "check_scalar_output_count", "check_structure_output_size"]


def fn(target, reference, args):
    return 0


def args(**kw) -> IOUserClientMethodArguments:
    return IOUserClientMethodArguments(**kw)


@pytest.mark.parametrize("cce,completion,expected", [
    (1, True, SUCCESS), (1, False, BAD), (0, False, SUCCESS), (0, True, BAD),
    (VAR, True, SUCCESS), (VAR, False, SUCCESS),
    (2, True, BAD), (2, False, BAD),  # any other value fails: C compares against the bool
])
def test_check_completion_exists(cce: int, completion: bool, expected: int) -> None:
    action = OSAction(None, lambda *a: None, name="x") if completion else None
    d = IOUserClientMethodDispatch(fn, check_completion_exists=cce)
    assert check_dispatch(d, args(completion=action)) == expected


@pytest.mark.parametrize("check,count,expected", [(2, 2, SUCCESS), (2, 1, BAD), (2, 3, BAD), (0, 0, SUCCESS),
                                                 (0, 1, BAD), (VAR, 7, SUCCESS)])
def test_check_scalar_input_count_exact(check: int, count: int, expected: int) -> None:
    d = IOUserClientMethodDispatch(fn, check_scalar_input_count=check)
    assert check_dispatch(d, args(scalar_input=(1,) * count, scalar_input_count=count)) == expected


@pytest.mark.parametrize("check,data,expected", [(4, b"abcd", SUCCESS), (4, b"abc", BAD), (4, b"abcde", BAD),
                                                (0, None, SUCCESS), (VAR, b"x" * 100, SUCCESS)])
def test_check_structure_input_size_inline(check: int, data: bytes | None, expected: int) -> None:
    d = IOUserClientMethodDispatch(fn, check_structure_input_size=check)
    assert check_dispatch(d, args(structure_input=data)) == expected


def test_check_structure_input_size_uses_descriptor_length() -> None:
    d = IOUserClientMethodDispatch(fn, check_structure_input_size=5000)
    assert check_dispatch(d, args(structure_input_descriptor=IOMemoryDescriptor(bytes(5000)))) == SUCCESS
    assert check_dispatch(d, args(structure_input_descriptor=IOMemoryDescriptor(bytes(4999)))) == BAD


@pytest.mark.parametrize("check,count,expected", [(1, 1, SUCCESS), (1, 2, BAD), (1, 0, BAD), (VAR, 16, SUCCESS)])
def test_check_scalar_output_count_exact(check: int, count: int, expected: int) -> None:
    d = IOUserClientMethodDispatch(fn, check_scalar_output_count=check)
    assert check_dispatch(d, args(scalar_output=[0] * count, scalar_output_count=count)) == expected


@pytest.mark.parametrize("check,size,expected", [(8, 8, SUCCESS), (8, 16, BAD), (8, VAR, BAD), (VAR, 3, SUCCESS)])
def test_check_structure_output_size_exact(check: int, size: int, expected: int) -> None:
    d = IOUserClientMethodDispatch(fn, check_structure_output_size=check)
    assert check_dispatch(d, args(structure_output_maximum_size=size)) == expected


class Client(IOUserClient):
    """A user client exercising every shape."""

    @external_method(0, scalar_in=2, scalar_out=1)
    def add(self, reference, a):
        """Adds two scalars."""
        a.scalar_output[0] = a.scalar_input[0] + a.scalar_input[1]

    @external_method(1, struct_in=4, struct_out=4)
    def reverse(self, reference, a):
        a.structure_output = a.structure_input[::-1]

    @external_method(2)
    def echo_any(self, reference, a):
        data = a.structure_input_bytes()
        a.structure_output = data
        self.saw = (a.structure_input is not None, a.structure_input_descriptor is not None,
                    a.structure_output_maximum_size)

    @external_method(3, struct_out=None)
    def big_out(self, reference, a):
        n = a.scalar_input[0]
        if a.structure_output_descriptor is not None:
            a.structure_output_descriptor.write_bytes(0, bytes(range(256)) * (n // 256))
        else:
            a.structure_output = b"\x01" * n

    @external_method(4, completion=True, scalar_in=1)
    def later(self, reference, a):
        a.completion.retain()
        n = a.scalar_input[0]
        self.async_completion(a.completion, IOReturn.kIOReturnSuccess, list(range(10, 10 + n)))

    @external_method(5, scalar_in=0)
    def fails(self, reference, a):
        return IOReturn.kIOReturnNotReady

    @external_method(6)
    def raises(self, reference, a):
        raise UnsupportedError("not here")

    @external_method(7, scalar_out=None)
    def lower_count(self, reference, a):
        a.scalar_output[0] = 42
        a.scalar_output_count = 1

    @external_method(8)
    def bad_out(self, reference, a):
        a.structure_output = b"x" * 10
        return IOReturn.kIOReturnError

    @external_method(9)
    def oops(self, reference, a):
        raise RuntimeError("bug")

    def copy_client_memory_for_type(self, memory_type: int):
        if memory_type == 0:
            if not hasattr(self, "shared"):
                self.shared = IOBufferMemoryDescriptor.create(0, 64)
            return 0, self.shared
        if memory_type == 1:
            return kIOUserClientMemoryReadOnly, IOMemoryDescriptor(b"ro")
        return super().copy_client_memory_for_type(memory_type)


class Service(IOService):
    def start(self, provider):
        super().start(provider)
        self.properties["UserClientProperties"] = {"IOClass": "IOUserUserClient", "IOUserClass": "Client"}
        self.register_service()

    def new_user_client(self, client_type: int) -> IOUserClient:
        return self.create(self, "UserClientProperties")  # type: ignore[return-value]


def make_port():
    """An app's notification port with its dispatch queue set (IOKitLib delivers nothing before)."""
    port = io_notification_port_create()
    io_notification_port_set_dispatch_queue(port, IODispatchQueue("app"))
    return port


@pytest.fixture()
def conn():
    svc = start_service(Service(), None)
    c = io_service_open(svc, 0)
    yield c
    io_service_close(c)
    svc.terminate()
    assert svc.wait_terminated(5)


def test_direct_external_method_paths() -> None:
    c = start_service(Client(), None)
    a = args(scalar_input=(1, 2), scalar_input_count=2, scalar_output=[0], scalar_output_count=1)
    assert c.external_method(0, a) == SUCCESS and a.scalar_output == [3]
    assert c.external_method(99, args()) == BAD  # unknown selector: BadArgument (a dext convention, e.g. Karabiner)
    none_fn = IOUserClientMethodDispatch(None)
    assert c.external_method(0, args(), none_fn) == NOCOMPLETION  # checks pass, no function
    bad_fn = IOUserClientMethodDispatch(None, check_scalar_input_count=1)
    assert c.external_method(0, args(), bad_fn) == BAD  # the failed check wins over NoCompletion
    seen = []
    own = IOUserClientMethodDispatch(lambda t, r, x: seen.append((t, r)) or 0)
    assert c.external_method(0, args(), own, "target", "ref") == SUCCESS
    assert seen == [("target", "ref")]
    c.external_method(0, args(), own, None, None)
    assert seen[-1] == (c, None)  # target defaults to this


def test_scalar_call_and_count_checks(conn) -> None:
    assert io_connect_call_scalar_method(conn, 0, [40, 2], 1) == [42]
    for bad in ([1], [1, 2, 3]):
        with pytest.raises(BadArgumentError) as e:
            io_connect_call_scalar_method(conn, 0, bad, 1)
        assert e.value.ioreturn == BAD
    with pytest.raises(BadArgumentError):
        io_connect_call_scalar_method(conn, 0, [1, 2], 2)  # outputCnt must be exactly 1
    with pytest.raises(BadArgumentError):
        io_connect_call_scalar_method(conn, 0, list(range(17)), 1)  # > kIOUserClientScalarArrayCountMax
    assert io_connect_call_scalar_method(conn, 0, [2**64 - 1, 2], 1) == [1]  # uint64 wraps as in C


def test_unknown_selector_is_bad_argument(conn) -> None:
    with pytest.raises(BadArgumentError) as e:
        io_connect_call_method(conn, 1234)
    assert e.value.ioreturn == IOReturn.kIOReturnBadArgument


def test_struct_exact_sizes(conn) -> None:
    assert io_connect_call_struct_method(conn, 1, b"abcd", 4) == b"dcba"
    with pytest.raises(BadArgumentError):
        io_connect_call_struct_method(conn, 1, b"abc", 4)
    with pytest.raises(BadArgumentError):
        io_connect_call_struct_method(conn, 1, b"abcd", 8)  # structureOutputMaximumSize != 4
    with pytest.raises(BadArgumentError):
        io_connect_call_struct_method(conn, 1, b"abcd", kIOConnectMethodVarOutputSize)


def test_4096_boundary_input(conn) -> None:
    uc = conn.user_client
    assert io_connect_call_struct_method(conn, 2, b"a" * 4096, 4096) == b"a" * 4096
    assert uc.saw == (True, False, 4096)  # inline OSData
    out = io_connect_call_method(conn, 2, input_struct=b"b" * 4097, output_struct_cnt=kIOConnectMethodVarOutputSize)
    assert out.struct_output == b"b" * 4097
    assert uc.saw == (False, True, VAR)  # descriptor, variable output size


def test_output_larger_than_inline_capacity_is_bad_argument(conn) -> None:
    with pytest.raises(BadArgumentError):
        io_connect_call_method(conn, 2, input_struct=b"x" * 10, output_struct_cnt=4)


def test_ool_output_descriptor(conn) -> None:
    r = io_connect_call_method(conn, 3, [8192], output_struct_cnt=8192)
    assert r.struct_output == bytes(range(256)) * 32
    r = io_connect_call_method(conn, 3, [100], output_struct_cnt=4096)
    assert r.struct_output == b"\x01" * 100


def test_osdata_with_ool_buffer_is_bad_argument(conn) -> None:
    with pytest.raises(BadArgumentError):
        io_connect_call_method(conn, 2, input_struct=b"x", output_struct_cnt=5000)


def test_failure_codes_and_no_output_on_error(conn) -> None:
    with pytest.raises(DkError) as e:
        io_connect_call_method(conn, 5)
    assert e.value.ioreturn == IOReturn.kIOReturnNotReady
    with pytest.raises(UnsupportedError) as e2:
        io_connect_call_method(conn, 6)
    assert e2.value.ioreturn == IOReturn.kIOReturnUnsupported
    with pytest.raises(DkError) as e3:
        io_connect_call_method(conn, 8, output_struct_cnt=100)
    assert e3.value.ioreturn == IOReturn.kIOReturnError
    with pytest.raises(DkError) as e4:
        io_connect_call_method(conn, 9)
    assert e4.value.ioreturn == IOReturn.kIOReturnInternalError
    assert isinstance(conn.user_client.errors[-1], RuntimeError)


def test_dext_may_lower_scalar_output_count(conn) -> None:
    assert io_connect_call_scalar_method(conn, 7, [], 4) == [42]


def test_async_completion_arity(conn) -> None:
    port = make_port()
    got: list[tuple] = []
    ev = threading.Event()

    def cb0(refcon, result):
        got.append(("0", refcon, result))
        ev.set()

    def cb1(refcon, result, a0):
        got.append(("1", refcon, result, a0))
        ev.set()

    def cb2(refcon, result, a0, a1):
        got.append(("2", refcon, result, a0, a1))
        ev.set()

    def cbn(refcon, result, values, n):
        got.append(("n", refcon, result, values, n))
        ev.set()

    for n, cb in ((0, cb0), (1, cb1), (2, cb2), (3, cbn), (16, cbn)):
        ev.clear()
        io_connect_call_async_scalar_method(conn, 4, port, async_reference(cb, n), [n])
        assert ev.wait(5)
    assert got[0] == ("0", 0, 0)
    assert got[1] == ("1", 1, 0, 10)
    assert got[2] == ("2", 2, 0, 10, 11)
    assert got[3] == ("n", 3, 0, [10, 11, 12], 3)
    assert got[4][4] == 16
    with pytest.raises(DkError):  # 17 async args: the dext method raises BadArgument
        io_connect_call_async_scalar_method(conn, 4, port, async_reference(cb0), [17])
    port.destroy()


def test_completion_required_and_forbidden(conn) -> None:
    with pytest.raises(BadArgumentError):
        io_connect_call_scalar_method(conn, 4, [1])  # needs IOConnectCallAsync*
    port = make_port()
    with pytest.raises(BadArgumentError):
        io_connect_call_async_scalar_method(conn, 0, port, async_reference(None), [1, 2], 1)  # must not be async
    port.destroy()


def test_completion_is_asynchronous(conn) -> None:
    port = make_port()
    caller = threading.current_thread()
    where: list[threading.Thread] = []
    ev = threading.Event()
    io_connect_call_async_scalar_method(conn, 4, port,
                                        async_reference(lambda r, s: (where.append(threading.current_thread()),
                                                                      ev.set())), [0])
    assert ev.wait(5)
    assert where[0] is not caller
    port.destroy()


def test_map_memory(conn) -> None:
    view = io_connect_map_memory64(conn, 0)
    view[0:3] = b"abc"
    assert conn.user_client.shared.read_bytes(0, 3) == b"abc"
    assert io_connect_map_memory64(conn, 0).obj is view.obj  # same descriptor for a type
    ro = io_connect_map_memory64(conn, 1)
    assert ro.readonly
    with pytest.raises(UnsupportedError):
        io_connect_map_memory64(conn, 7)


def test_closed_connection(conn) -> None:
    uc = conn.user_client
    io_service_close(conn)
    assert uc.state.value == "freed"  # IOServiceClose -> terminate -> stop -> free
    with pytest.raises(NotOpenError):
        io_connect_call_method(conn, 0, [1, 2], output_cnt=1)


def test_table_is_data() -> None:
    rows = describe_dispatch_table(Client)
    assert [r["selector"] for r in rows] == list(range(10))
    assert rows[0] == {"selector": 0, "name": "add", "checkCompletionExists": 0, "checkScalarInputCount": 2,
                       "checkStructureInputSize": VAR, "checkScalarOutputCount": 1,
                       "checkStructureOutputSize": VAR, "structInSchema": None, "structOutSchema": None,
                       "doc": "Adds two scalars."}
    assert rows[4]["checkCompletionExists"] == 1


def test_construct_schema_sets_size() -> None:
    import construct

    Req = construct.Struct("a" / construct.Int32ul, "b" / construct.Int16ul)

    class C(IOUserClient):
        @external_method(0, struct_in=Req, struct_out=None, completion=None)
        def m(self, reference, a):
            return 0

    d = C.dispatch_table()[0].dispatch
    assert d.check_structure_input_size == 6
    assert d.check_structure_output_size == VAR
    assert d.check_completion_exists == VAR
    assert C.dispatch_table()[0].struct_in_schema is Req


def test_duplicate_selector_rejected() -> None:
    with pytest.raises(BadArgumentError, match="selector 0"):
        class Dup(IOUserClient):
            @external_method(0)
            def a(self, reference, x):
                return 0

            @external_method(0)
            def b(self, reference, x):
                return 0


def test_decorator_validation() -> None:
    with pytest.raises(BadArgumentError):
        external_method(-1)
    with pytest.raises(BadArgumentError):
        external_method(0, scalar_in=17)
    with pytest.raises(BadArgumentError):
        external_method(0, struct_in="four")


def test_subclass_overrides_selector() -> None:
    class Sub(Client):
        @external_method(0, scalar_in=1, scalar_out=1)
        def add_one(self, reference, a):
            a.scalar_output[0] = a.scalar_input[0] + 1

    assert Sub.dispatch_table()[0].name == "add_one"
    assert Sub.dispatch_table()[1].name == "reverse"


def test_compiled_rows_agree_with_check_dispatch() -> None:
    """The generated per-selector fast path gives exactly what check_dispatch + the call give."""
    import itertools

    from dkproto.iokit.user_client import _compile

    class T(IOUserClient):
        pass

    t = T()
    for cce, sic, sis, soc, sos, has_fn in itertools.product((0, 1, VAR, 2), (0, 2, VAR), (0, 4, 5000, VAR),
                                                             (1, VAR), (8, VAR), (True, False)):
        d = IOUserClientMethodDispatch(fn if has_fn else None, cce, sic, sis, soc, sos)
        run = _compile(d, 0)
        for completion, n_in, s_in, n_out, s_max in itertools.product(
                (None, OSAction(None, lambda *x: None, name="c")), (0, 2), (None, b"abcd", bytes(5000)), (1, 2),
                (8, VAR)):
            a = args(completion=completion, scalar_input=(0,) * n_in, scalar_input_count=n_in,
                     scalar_output=[0] * n_out, scalar_output_count=n_out, structure_output_maximum_size=s_max)
            if s_in is not None and len(s_in) > 4096:
                a.structure_input_descriptor = IOMemoryDescriptor(s_in)
            else:
                a.structure_input = s_in
            expected = check_dispatch(d, a) or (NOCOMPLETION if not has_fn else SUCCESS)
            assert run(t, t, a, None) == expected
            assert t.external_method(0, a, d) == expected


def test_generated_class_dispatch_agrees_and_respects_overrides() -> None:
    """The per-class generated external_method gives the generic path's answers, and steps aside
    for hand-written overrides and subclasses."""
    import itertools

    from dkproto.iokit.user_client import IOUserClient as Base

    assert getattr(Client.external_method, "__dk_generated__", False)
    generic = Base.external_method
    c = start_service(Client(), None)
    for sel, n_in, n_out, s_max in itertools.product(range(11), (0, 1, 2), (0, 1, 2), (0, 4, VAR)):
        a1 = args(selector=sel, scalar_input=(1,) * n_in, scalar_input_count=n_in, scalar_output=[0] * n_out,
                  scalar_output_count=n_out, structure_input=b"abcd", structure_output_maximum_size=s_max)
        a2 = args(selector=sel, scalar_input=(1,) * n_in, scalar_input_count=n_in, scalar_output=[0] * n_out,
                  scalar_output_count=n_out, structure_input=b"abcd", structure_output_maximum_size=s_max)
        if sel == 4:
            continue  # async: needs a live completion path
        assert c.external_method(sel, a1) == generic(c, sel, a2), (sel, n_in, n_out, s_max)

    class Custom(Client):
        def external_method(self, selector, arguments, dispatch=None, target=None, reference=None):
            if selector == 100:
                return 0
            return super().external_method(selector, arguments, dispatch, target, reference)

    class More(Custom):
        @external_method(10, scalar_in=0)
        def extra(self, reference, a):
            return IOReturn.kIOReturnNotReady

    assert not getattr(Custom.external_method, "__dk_generated__", False)
    assert More.external_method is Custom.external_method  # a hand-written override is kept
    m = start_service(More(), None)
    assert m.external_method(100, args()) == 0
    assert m.external_method(10, args()) == IOReturn.kIOReturnNotReady  # the subclass's row, via the generic path
    assert m.external_method(0, args(scalar_input=(2, 3), scalar_input_count=2, scalar_output=[0],
                                     scalar_output_count=1)) == 0
