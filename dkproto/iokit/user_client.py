"""``IOUserClient``: external methods through a checked dispatch table (driverkit.md section 2).

The dext side. ``external_method(selector, arguments, dispatch, target, reference)`` is
``IOUserClient::ExternalMethod``: the system calls it with ``dispatch=None``; the subclass
picks its table entry, defaults ``target`` to itself and calls super, which runs the checks
of :class:`IOUserClientMethodDispatch` and then ``dispatch.function(target, reference,
arguments)``.

In dkproto the table is **data**: the :func:`external_method` decorator records an
:class:`ExternalMethodSpec` per selector, and the base ``external_method`` does the
subclass's part from it (look-up, unknown selector -> ``kIOReturnBadArgument``: a common
dext convention, e.g. Karabiner's user client, not Apple's sample, which passes a NULL dispatch
to super; driverkit.md 2.2, 2.4, 8.1 item 2). ``describe_dispatch_table(cls)`` returns the
table as plain dicts for a generator (``dkproto export``, roadmap 3).

Return values: a method returns an ``IOReturn``/int, or None for success. A raised
:class:`~dkproto.errors.DkError` becomes its ``ioreturn`` (Python convenience; in C++ you
return the code). Any other exception is logged and becomes ``kIOReturnInternalError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from dkproto.errors import BadArgumentError, DkError, UnsupportedError
from dkproto.iokit.action import OSAction
from dkproto.iokit.memory import IOMemoryDescriptor
from dkproto.iokit.service import IOService
from dkproto.ioreturn import IOReturn

__all__ = [
    "ExternalMethodSpec",
    "IOUserClient",
    "IOUserClientMethodArguments",
    "IOUserClientMethodDispatch",
    "IOUserClientMethodFunction",
    "check_dispatch",
    "describe_dispatch_table",
    "external_method",
    "kIOUserClientAsyncArgumentsCountMax",
    "kIOUserClientAsyncReferenceCountMax",
    "kIOUserClientInlineStructureMax",
    "kIOUserClientMemoryReadOnly",
    "kIOUserClientMethodArgumentsCurrentVersion",
    "kIOUserClientScalarArrayCountMax",
    "kIOUserClientVariableStructureSize",
]

kIOUserClientScalarArrayCountMax = 16
kIOUserClientAsyncArgumentsCountMax = 16
kIOUserClientAsyncReferenceCountMax = 16
kIOUserClientVariableStructureSize = 0xFFFFFFFF
kIOUserClientMethodArgumentsCurrentVersion = 2
kIOUserClientMemoryReadOnly = 0x1
#: ``io_struct_inband_t`` is ``char[4096]``: larger structures travel as memory descriptors.
kIOUserClientInlineStructureMax = 4096

_SUCCESS = int(IOReturn.kIOReturnSuccess)
_BAD = int(IOReturn.kIOReturnBadArgument)
_NOCOMPLETION = int(IOReturn.kIOReturnNoCompletion)
_VAR = kIOUserClientVariableStructureSize
_log = logging.getLogger(__name__)

#: ``IOUserClientMethodFunction(OSObject *target, void *reference, IOUserClientMethodArguments *)``.
IOUserClientMethodFunction = Callable[[Any, Any, "IOUserClientMethodArguments"], Any]


@dataclass(slots=True, eq=False)
class IOUserClientMethodArguments:
    """``IOUserClientMethodArguments`` (fields in the header's order, snake_case).

    ``structure_input`` is set for inline input (<= 4096 bytes), ``structure_input_descriptor``
    otherwise. ``scalar_output`` has room for ``scalar_output_count`` values; a method may lower
    the count. A method returns structure output either by assigning ``structure_output``
    (bytes, like a new OSData) or by writing into ``structure_output_descriptor`` when the
    caller supplied one (output larger than 4096 bytes).
    """

    version: int = kIOUserClientMethodArgumentsCurrentVersion
    selector: int = 0
    completion: OSAction | None = None
    scalar_input: Sequence[int] = ()
    scalar_input_count: int = 0
    structure_input: bytes | None = None
    structure_input_descriptor: IOMemoryDescriptor | None = None
    scalar_output: list[int] = field(default_factory=list)
    scalar_output_count: int = 0
    structure_output: bytes | None = None
    structure_output_descriptor: IOMemoryDescriptor | None = None
    structure_output_maximum_size: int = 0

    def structure_input_bytes(self) -> bytes:
        """The input structure whichever way it came (inline OSData or mapped descriptor)."""
        if self.structure_input is not None:
            return self.structure_input
        if self.structure_input_descriptor is not None:
            return self.structure_input_descriptor.read_bytes()
        return b""


@dataclass(slots=True, frozen=True)
class IOUserClientMethodDispatch:
    """``IOUserClientMethodDispatch``: ``function`` then the five uint32 checks, in order.

    ``kIOUserClientVariableStructureSize`` (0xFFFFFFFF) means "don't check"; any other value
    is an exact equality check. ``check_completion_exists`` is 1 (must have), 0 (must not) or
    0xFFFFFFFF (don't care).
    """

    function: IOUserClientMethodFunction | None
    check_completion_exists: int = _VAR
    check_scalar_input_count: int = _VAR
    check_structure_input_size: int = _VAR
    check_scalar_output_count: int = _VAR
    check_structure_output_size: int = _VAR


def _size_of(shape: Any) -> int:
    """A check value from an int, None (don't care) or a fixed-size Construct struct."""
    if shape is None:
        return _VAR
    if isinstance(shape, bool):
        raise BadArgumentError(f"@external_method: a size must be an int, None or a Construct struct, not {shape!r}")
    if isinstance(shape, int):
        if not 0 <= shape <= 0xFFFFFFFF:
            raise BadArgumentError(f"@external_method: size {shape} does not fit uint32")
        return shape
    sizeof = getattr(shape, "sizeof", None)
    if callable(sizeof):
        try:
            return int(sizeof())
        except Exception as exc:
            raise BadArgumentError(f"@external_method: structure schema {shape!r} has no fixed size") from exc
    raise BadArgumentError(f"@external_method: a size must be an int, None or a Construct struct, not {shape!r}")


@dataclass(slots=True, frozen=True)
class ExternalMethodSpec:
    """One row of a user client's dispatch table, as data (what ``dkproto export`` reads).

    Attributes:
        selector: the 0-based selector.
        name: the Python method name (the C++ static function's name when ported).
        dispatch: the ``IOUserClientMethodDispatch`` checks (function = the unbound method).
        struct_in_schema / struct_out_schema: Construct structs, if declared, for the app header.
        doc: the method's docstring.
    """

    selector: int
    name: str
    dispatch: IOUserClientMethodDispatch
    struct_in_schema: Any = None
    struct_out_schema: Any = None
    doc: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The row as plain data: names and the five check values."""
        d = self.dispatch
        return {
            "selector": self.selector,
            "name": self.name,
            "checkCompletionExists": d.check_completion_exists,
            "checkScalarInputCount": d.check_scalar_input_count,
            "checkStructureInputSize": d.check_structure_input_size,
            "checkScalarOutputCount": d.check_scalar_output_count,
            "checkStructureOutputSize": d.check_structure_output_size,
            "structInSchema": getattr(self.struct_in_schema, "name", None) or (
                repr(self.struct_in_schema) if self.struct_in_schema is not None else None),
            "structOutSchema": getattr(self.struct_out_schema, "name", None) or (
                repr(self.struct_out_schema) if self.struct_out_schema is not None else None),
            "doc": self.doc,
        }


_SPEC_ATTR = "__dk_external_method__"
Fn = TypeVar("Fn", bound=Callable[..., Any])


def external_method(selector: int, *, scalar_in: int | None = None, struct_in: Any = None,
                    scalar_out: int | None = None, struct_out: Any = None,
                    completion: bool | None = False) -> Callable[[Fn], Fn]:
    """Declare a method of an :class:`IOUserClient` subclass as external method ``selector``.

    The method is called as ``method(self, reference, arguments)``, the shape of
    ``IOUserClientMethodFunction(target, reference, arguments)``.

    Args:
        selector: the 0-based selector.
        scalar_in / scalar_out: exact scalar counts (``checkScalarInputCount``,
            ``checkScalarOutputCount``); None = don't check.
        struct_in / struct_out: exact structure sizes (``checkStructureInputSize``,
            ``checkStructureOutputSize``) as an int or a fixed-size Construct struct (kept as
            the schema); None = ``kIOUserClientVariableStructureSize``.
        completion: True: must be called with IOConnectCallAsync* (``checkCompletionExists`` 1);
            False: must not (0, the default); None: either (0xFFFFFFFF).
    """
    if not isinstance(selector, int) or isinstance(selector, bool) or not 0 <= selector < 1 << 64:
        raise BadArgumentError(f"@external_method: selector must be a uint64, not {selector!r}")
    for label, n in (("scalar_in", scalar_in), ("scalar_out", scalar_out)):
        if n is not None and not 0 <= n <= kIOUserClientScalarArrayCountMax:
            raise BadArgumentError(f"@external_method({selector}): {label}={n} exceeds "
                                   f"kIOUserClientScalarArrayCountMax ({kIOUserClientScalarArrayCountMax})")
    cce = _VAR if completion is None else int(bool(completion))
    in_size, out_size = _size_of(struct_in), _size_of(struct_out)

    def deco(fn: Fn) -> Fn:
        spec = ExternalMethodSpec(
            selector=selector,
            name=fn.__name__,
            dispatch=IOUserClientMethodDispatch(
                function=fn,
                check_completion_exists=cce,
                check_scalar_input_count=_VAR if scalar_in is None else scalar_in,
                check_structure_input_size=in_size,
                check_scalar_output_count=_VAR if scalar_out is None else scalar_out,
                check_structure_output_size=out_size,
            ),
            struct_in_schema=None if struct_in is None or isinstance(struct_in, int) else struct_in,
            struct_out_schema=None if struct_out is None or isinstance(struct_out, int) else struct_out,
            doc=(fn.__doc__ or "").strip(),
        )
        setattr(fn, _SPEC_ATTR, spec)
        return fn

    return deco


def check_dispatch(dispatch: IOUserClientMethodDispatch, arguments: IOUserClientMethodArguments) -> int:
    """The checks ``IOUserClient::ExternalMethod`` runs before calling ``dispatch.function``.

    Returns ``kIOReturnSuccess`` when every check passes, else ``kIOReturnBadArgument``
    (driverkit.md 2.4: the README of Apple's sample "Communicating between a DriverKit extension
    and a client app" states it; xnu's ``IOUserClient2022::dispatchExternalMethod`` does the same).
    """
    cce = dispatch.check_completion_exists
    if cce != _VAR and cce != (arguments.completion is not None):
        return _BAD
    n = dispatch.check_scalar_input_count
    if n != _VAR and n != arguments.scalar_input_count:
        return _BAD
    n = dispatch.check_structure_input_size
    if n != _VAR:
        if arguments.structure_input is not None:
            size = len(arguments.structure_input)
        elif arguments.structure_input_descriptor is not None:
            size = arguments.structure_input_descriptor.get_length()
        else:
            size = 0
        if n != size:
            return _BAD
    n = dispatch.check_scalar_output_count
    if n != _VAR and n != arguments.scalar_output_count:
        return _BAD
    n = dispatch.check_structure_output_size
    if n != _VAR and n != arguments.structure_output_maximum_size:
        return _BAD
    return _SUCCESS


def _call(client: IOUserClient, fn: Any, target: Any, reference: Any, arguments: IOUserClientMethodArguments) -> int:
    try:
        result = fn(target, reference, arguments)
    except DkError as exc:
        return int(exc.ioreturn)
    except Exception as exc:
        client.errors.append(exc)
        client.log.exception("external method %d raised", arguments.selector)
        return int(IOReturn.kIOReturnInternalError)
    if result is None:
        return _SUCCESS
    return int(result) & 0xFFFFFFFF


def _struct_in_size(a: IOUserClientMethodArguments) -> int:
    if a.structure_input is not None:
        return len(a.structure_input)
    if a.structure_input_descriptor is not None:
        return a.structure_input_descriptor.get_length()
    return 0


def _check_lines(d: IOUserClientMethodDispatch, pad: str) -> list[str]:
    """Source lines running a dispatch row's non-wildcard checks (``a`` is the arguments)."""
    checks = [
        (d.check_completion_exists, "(a.completion is not None)", True),
        (d.check_scalar_input_count, "a.scalar_input_count", False),
        (d.check_structure_input_size, "_struct_in_size(a)", False),
        (d.check_scalar_output_count, "a.scalar_output_count", False),
        (d.check_structure_output_size, "a.structure_output_maximum_size", False),
    ]
    return [f"{pad}if {int(want)} != {expr}: return {_BAD}" for want, expr, _ in checks if want != _VAR]


def _call_lines(call: str, client: str, pad: str) -> list[str]:
    """Source lines calling a row's function and turning its result or exception into an IOReturn."""
    return [f"{pad}try:", f"{pad}    r = {call}", f"{pad}except DkError as exc:",
            f"{pad}    return int(exc.ioreturn)", f"{pad}except Exception as exc:",
            f"{pad}    return _call({client}, _raise, exc, None, a)",
            f"{pad}if not r: return {_SUCCESS}", f"{pad}return int(r) & 0xFFFFFFFF"]


def _compile(d: IOUserClientMethodDispatch, selector: int) -> Callable[..., int]:
    """One table row as a function running exactly its non-wildcard checks, then the method.

    Equivalent to :func:`check_dispatch` followed by the call (the unit tests run both);
    generated once per row at class creation, like Construct's compiled parsers, because
    this is the hot path. Only integers from the row are written into the source.
    """
    lines = ["def run(client, target, a, reference):", *_check_lines(d, "    ")]
    if d.function is None:
        lines.append(f"    return {_NOCOMPLETION}")
    else:
        lines += _call_lines("fn(target, reference, a)", "client", "    ")
    ns: dict[str, Any] = {"fn": d.function, "DkError": DkError, "_call": _call, "_raise": _reraise,
                          "_struct_in_size": _struct_in_size}
    exec(compile("\n".join(lines), f"<dispatch selector {selector}>", "exec"), ns)  # noqa: S102
    return ns["run"]  # type: ignore[no-any-return]


def _reraise(exc: BaseException, reference: Any, arguments: Any) -> Any:
    raise exc


_GENERATED = "__dk_generated__"
_MAX_CHAIN = 32


def _may_generate(cls: type) -> bool:
    """True unless a class between ``cls`` and IOUserClient overrides ``external_method`` by hand."""
    for klass in cls.__mro__:
        if klass is IOUserClient:
            return True
        em = vars(klass).get("external_method")
        if em is not None and not getattr(em, _GENERATED, False):
            return False
    return True


def _compile_class(cls: type, table: dict[int, ExternalMethodSpec]) -> Callable[..., int]:
    """``external_method`` for one class, generated from its table (one frame per dispatch).

    The same checks as :func:`check_dispatch`, written out per selector; anything unusual
    (an explicit ``dispatch`` or ``target``, a subclass instance, a table larger than 32 rows)
    takes the generic path, :meth:`IOUserClient.external_method`.
    """
    ns: dict[str, Any] = {"OWNER": cls, "_generic": IOUserClient.external_method, "DkError": DkError,
                          "_call": _call, "_raise": _reraise, "_struct_in_size": _struct_in_size}
    lines = ["def external_method(self, selector, arguments, dispatch=None, target=None, reference=None):",
             "    if dispatch is not None or target is not None or type(self) is not OWNER:",
             "        return _generic(self, selector, arguments, dispatch, target, reference)"]
    if len(table) > _MAX_CHAIN:
        lines.append("    return _generic(self, selector, arguments, None, None, reference)")
    else:
        lines.append("    a = arguments")
        for sel in sorted(table):
            d = table[sel].dispatch
            lines.append(f"    if selector == {int(sel)}:")
            lines += _check_lines(d, "        ")
            if d.function is None:
                lines.append(f"        return {_NOCOMPLETION}")
                continue
            ns[f"f{int(sel)}"] = d.function
            lines += _call_lines(f"f{int(sel)}(self, reference, a)", "self", "        ")
        lines.append(f"    return {_BAD}")
    exec(compile("\n".join(lines), f"<{cls.__name__}.external_method>", "exec"), ns)  # noqa: S102
    fn = ns["external_method"]
    fn.__doc__ = IOUserClient.external_method.__doc__
    fn.__qualname__ = f"{cls.__name__}.external_method"
    fn.__module__ = cls.__module__
    setattr(fn, _GENERATED, True)
    return fn  # type: ignore[no-any-return]


class IOUserClient(IOService):
    """``IOUserClient``: subclass it, declare methods with :func:`external_method`.

    The dispatch table is built once per class from the decorated methods (``__init_subclass__``,
    no metaclass); two methods claiming one selector is an error at class definition.
    """

    _dispatch_table: ClassVar[dict[int, ExternalMethodSpec]] = {}
    _fast_table: ClassVar[dict[int, Callable[[Any, Any, IOUserClientMethodArguments, Any], int]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        table: dict[int, ExternalMethodSpec] = {}
        for klass in reversed(cls.__mro__):
            own: dict[int, str] = {}
            for attr, value in vars(klass).items():
                spec = getattr(value, _SPEC_ATTR, None)
                if spec is None:
                    continue
                if spec.selector in own:
                    raise BadArgumentError(f"{klass.__name__}: selector {spec.selector} declared by both "
                                           f"{own[spec.selector]} and {attr}")
                own[spec.selector] = attr
                table[spec.selector] = spec  # a subclass's declaration replaces its base's
        cls._dispatch_table = table
        cls._fast_table = {sel: _compile(spec.dispatch, sel) for sel, spec in table.items()}
        if _may_generate(cls):
            cls.external_method = _compile_class(cls, table)  # type: ignore[method-assign]

    def __init__(self) -> None:
        super().__init__()
        self.memory: dict[int, tuple[IOMemoryDescriptor, int]] = {}
        self.errors: list[BaseException] = []

    @classmethod
    def dispatch_table(cls) -> dict[int, ExternalMethodSpec]:
        """The selector -> :class:`ExternalMethodSpec` table (data)."""
        return dict(cls._dispatch_table)

    def external_method(self, selector: int, arguments: IOUserClientMethodArguments,
                        dispatch: IOUserClientMethodDispatch | None = None, target: Any = None,
                        reference: Any = None) -> int:
        """``ExternalMethod(selector, arguments, dispatch, target, reference)``.

        With ``dispatch=None`` (how the system calls it) this does the subclass's part from the
        declared table: an unknown selector gives ``kIOReturnBadArgument``; ``target``
        defaults to ``self``. Then the checks (:func:`check_dispatch`) run; a failed check
        gives ``kIOReturnBadArgument``; ``function is None`` gives ``kIOReturnNoCompletion``;
        otherwise the result of ``function(target, reference, arguments)``.
        Override it to handle selectors yourself, and call super with your own dispatch.
        """
        if dispatch is None:
            try:
                run = self._fast_table[selector]
            except KeyError:
                return _BAD
            return run(self, self if target is None else target, arguments, reference)
        kr = check_dispatch(dispatch, arguments)
        if kr:
            return kr
        if dispatch.function is None:
            return _NOCOMPLETION
        return _call(self, dispatch.function, target if target is not None else self, reference, arguments)

    def async_completion(self, action: OSAction, status: int, async_data: Sequence[int]) -> None:
        """``AsyncCompletion(action, status, asyncData, asyncDataCount)``: at most 16 values.

        Delivered asynchronously to the app's callback (its notification port's queue).
        """
        if len(async_data) > kIOUserClientAsyncArgumentsCountMax:
            raise BadArgumentError(f"AsyncCompletion: {len(async_data)} arguments exceed "
                                   f"kIOUserClientAsyncArgumentsCountMax ({kIOUserClientAsyncArgumentsCountMax})")
        action.invoke(int(status) & 0xFFFFFFFF, [int(v) & 0xFFFFFFFFFFFFFFFF for v in async_data])

    def copy_client_memory_for_type(self, memory_type: int) -> tuple[int, IOMemoryDescriptor]:
        """``CopyClientMemoryForType(type, &options, &memory)``: backs ``IOConnectMapMemory64``.

        Return ``(options, descriptor)``; it must be the same descriptor for a given type.
        The default refuses with kIOReturnUnsupported.
        """
        raise UnsupportedError(f"{type(self).__name__}.CopyClientMemoryForType({memory_type}): not implemented")


def describe_dispatch_table(cls: type[IOUserClient]) -> list[dict[str, Any]]:
    """The user client's dispatch table as a list of plain dicts, sorted by selector."""
    return [cls._dispatch_table[s].as_dict() for s in sorted(cls._dispatch_table)]
