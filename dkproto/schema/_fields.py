"""Building blocks for descriptor schemas: the wire type comes from the spec name's prefix.

``f("bcdUSB")`` is ``"bcdUSB" / Int16ul``; ``f("bmAttributes", 4)`` forces a width for the
few fields whose Hungarian prefix does not say it (``bmAttributes`` of a USB 2.0 Extension
capability is 32 bits). Everything here compiles with Construct's ``.compile()``; custom
Adapters are avoided on purpose so the hot path stays compiled (values stay plain ints and
the *meaning* functions turn them into text).

Anchor: python-usb-protocol ``types/descriptor.py`` (``DescriptorField.__rtruediv__``).
"""

from __future__ import annotations

import io as _io
import itertools as _itertools
import re as _re
import struct as _struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass as _dataclass
from dataclasses import field as _field
from typing import Any

from construct import Array as _Array
from construct import Bytes, Construct, Int8ul, Int16ul, Int32ul, Struct
from construct import BytesInteger as _BytesInteger
from construct import Container as _Container
from construct import FormatField as _FormatField
from construct import IfThenElse as _IfThenElse
from construct import ListContainer as _ListContainer
from construct import Renamed as _Renamed
from construct import Struct as _Struct
from construct.core import Bytes as _BytesCls
from construct.core import GreedyBytes as _GreedyBytes
from construct.core import Pass as _Pass
from construct.expr import ExprMixin as _ExprMixin

from dkproto.schema.registry import Meaning, Schema

__all__ = [
    "HEADER",
    "bcd",
    "compiled",
    "f",
    "fixed_size",
    "make_schema",
    "uuid_str",
]

_WIDTH = {1: Int8ul, 2: Int16ul, 4: Int32ul}


def f(name: str, width: int | None = None) -> Construct:
    """A little-endian integer field typed from its USB prefix.

    ``b``, ``i``, ``bm`` are 1 byte; ``w``, ``id``, ``bcd`` are 2; ``dw`` is 4. ``width``
    overrides (for ``bmAttributes`` of 4 bytes).
    """
    if width is None:
        if name.startswith("dw"):
            width = 4
        elif name.startswith(("w", "id", "bcd")):
            width = 2
        elif name.startswith(("b", "i")):
            width = 1
        else:
            raise ValueError(f"field {name!r}: no width from its prefix; give one")
    return name / _WIDTH[width]


#: ``bLength`` and ``bDescriptorType``, the first two fields of every descriptor.
HEADER: tuple[Construct, ...] = (f("bLength"), f("bDescriptorType"))


def bcd(value: int) -> str:
    """A binary-coded decimal release number as lsusb prints it (0x0210 -> "2.10")."""
    return f"{value >> 8:x}.{value & 0xFF:02x}"


def uuid_str(raw: bytes) -> str:
    """A 16-byte UUID in USB (little-endian first three groups) order, as text."""
    import uuid

    return "{" + str(uuid.UUID(bytes_le=bytes(raw))) + "}"


_COMPILED: dict[int, Any] = {}


def compiled(struct: Construct) -> Any:
    """``struct.compile()``, cached; the struct itself when it does not compile."""
    key = id(struct)
    found = _COMPILED.get(key)
    if found is None:
        try:
            found = struct.compile()
        except Exception:  # noqa: BLE001 - construct raises assorted errors for uncompilable parts
            found = struct
        _COMPILED[key] = (found, struct)  # keep struct alive so its id is not reused
        return found
    return found[0]


def fixed_size(struct: Construct) -> int | None:
    """The struct's size when it does not depend on the data, else None."""
    try:
        return int(struct.sizeof())
    except Exception:  # noqa: BLE001 - SizeofError and friends for variable layouts
        return None


def make_schema(
    key: str,
    name: str,
    fields: tuple[Construct, ...],
    meanings: Mapping[str, Meaning] | None = None,
    spec: str = "",
) -> Schema:
    """A :class:`~dkproto.schema.registry.Schema` whose struct is ``HEADER + fields``."""
    return Schema(key=key, name=name, struct=Struct(*HEADER, *fields), meanings=dict(meanings or {}), spec=spec)


def table(names: Mapping[int, str]) -> Callable[[Any, Any], str | None]:
    """A meaning that looks the value up in ``names``."""

    def meaning(value: Any, _container: Any) -> str | None:
        return names.get(value)

    return meaning


def bytes_field(name: str, size: Any) -> Construct:
    """A fixed or ``this``-sized run of raw bytes (UUIDs, bitmaps)."""
    return name / Bytes(size)


# -- fast parse path --------------------------------------------------------------------
#
# Construct's compiled parsers unpack one field at a time and build a context next to the
# result; for descriptors (a run of little-endian integers, then maybe an array, a few
# conditional fields and a byte tail) one ``struct.unpack_from`` per run of integers is
# several times faster. ``fast_parser(struct)`` turns a Struct into such a plan when every
# part is understood (FormatField, BytesInteger, Bytes, GreedyBytes, Array of those or of
# Structs, IfThenElse, Pass); anything else, or any failure while running the plan, falls
# back to Construct's own interpreted parser, which stays the reference: tests check that
# both agree on every corpus descriptor, and building always goes through Construct.

class _Unsupported(Exception):
    pass


@_dataclass(frozen=True)
class Finish:
    """How a :func:`fast_builder` function ends, once every field is in a local variable.

    Attributes:
        params: the function's parameters after ``raw``.
        lines: ``(container_expression, greedy) -> lines``: the code (unindented) that returns
            the result; ``container_expression`` builds the ``Container`` of the fields,
            ``greedy`` maps the name of each top-level ``GreedyBytes`` field to the local
            variable holding its bytes; ``pos`` holds the bytes consumed, ``n`` is ``len(raw)``.
        namespace: names those lines use.
    """

    params: tuple[str, ...]
    lines: Callable[[str, dict[str, str]], list[str]]
    namespace: Mapping[str, Any] = _field(default_factory=dict)


#: ``this['name']`` in the ``repr`` of a Construct expression
_THIS_FIELD = _re.compile(r"this\['([A-Za-z0-9_]+)'\]")


def _plan_element(sc: Construct) -> tuple[Any, ...]:
    if isinstance(sc, _FormatField):
        return ("fmt", sc.fmtstr)
    if isinstance(sc, _BytesInteger):
        if not isinstance(sc.signed, bool) or not isinstance(sc.swapped, bool):
            raise _Unsupported
        return ("bint", sc.length, sc.signed, sc.swapped)
    if sc is _GreedyBytes:
        return ("greedy",)
    if sc is _Pass:
        return ("pass",)
    if isinstance(sc, _BytesCls):
        return ("bytes", sc.length)
    if isinstance(sc, _Array):
        if getattr(sc, "discard", False):
            raise _Unsupported
        inner = sc.subcon
        if isinstance(inner, _FormatField) and inner.fmtstr[0] in "<" and len(inner.fmtstr) == 2:
            return ("array_fmt", sc.count, inner.fmtstr[1], inner.length)
        if isinstance(inner, _Struct):
            return ("array_struct", sc.count, _plan(inner))
        return ("array_elem", sc.count, _plan_element(inner))
    if isinstance(sc, _IfThenElse):
        return ("if", sc.condfunc, _plan_element(sc.thensubcon), _plan_element(sc.elsesubcon))
    raise _Unsupported


def _plan(struct: Construct) -> list[tuple[Any, ...]]:
    if not isinstance(struct, _Struct):
        raise _Unsupported
    steps: list[tuple[Any, ...]] = []
    run_fmt = ""
    run_names: list[str] = []

    def flush() -> None:
        nonlocal run_fmt, run_names
        if run_names:
            steps.append(("fixed", _struct.Struct("<" + run_fmt), tuple(run_names)))
            run_fmt, run_names = "", []

    for sc in struct.subcons:
        if not isinstance(sc, _Renamed) or not sc.name:
            raise _Unsupported
        inner = sc.subcon
        if isinstance(inner, _FormatField) and inner.fmtstr[0] == "<":
            run_fmt += inner.fmtstr[1:]
            run_names.append(sc.name)
            continue
        flush()
        steps.append(("named", sc.name, _plan_element(inner)))
    flush()
    return steps


class _Gen:
    """Turns a plan into the source of one Python function (like Construct's compiler, but with
    one ``unpack_from`` per run of integers). Expressions built from ``this`` become code through
    their ``repr`` (``this['bLength'] - 2``); other callables are called with the container."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.consts: dict[str, Any] = {}
        self.funcs: list[str] = []
        self.counter = 0
        #: in "locals" mode: field name -> the local variable holding its value
        self.locals: dict[str, str] | None = None

    def const(self, value: Any) -> str:
        self.counter += 1
        name = f"K{self.counter}"
        self.consts[name] = value
        return name

    def expr(self, param: Any) -> str:
        if isinstance(param, int):
            return repr(param)
        if isinstance(param, _ExprMixin):
            text = repr(param)
            if "this" in text and "<" not in text.replace("<<", "").replace("< ", "").replace("<=", ""):
                if self.locals is None:
                    return text
                local = self.locals
                text = _THIS_FIELD.sub(lambda m: local.get(m.group(1), m.group(0)), text)
                if "this" in text:
                    raise _Unsupported  # a field not parsed yet, or the parent's: not in locals mode
                return text
        if callable(param) and self.locals is None:
            return f"{self.const(param)}(this)"
        raise _Unsupported

    def element(self, el: tuple[Any, ...], target: str, ind: str, out: list[str]) -> None:
        kind = el[0]
        if kind == "fmt":
            s = _struct.Struct(el[1])
            out.append(f"{ind}if pos + {s.size} > n: raise Short")
            out.append(f"{ind}{target} = {self.const(s)}.unpack_from(raw, pos)[0]; pos += {s.size}")
        elif kind == "greedy":
            out.append(f"{ind}{target} = raw[pos:]; pos = n")
        elif kind == "pass":
            out.append(f"{ind}{target} = None")
        elif kind == "bytes":
            out.append(f"{ind}c = {self.expr(el[1])}")
            out.append(f"{ind}if c < 0 or pos + c > n: raise Short")
            out.append(f"{ind}{target} = raw[pos:pos + c]; pos += c")
        elif kind == "bint":
            out.append(f"{ind}c = {self.expr(el[1])}")
            out.append(f"{ind}if c <= 0 or pos + c > n: raise Short")
            out.append(f"{ind}{target} = int.from_bytes(raw[pos:pos + c], "
                       f"{'little' if el[3] else 'big'!r}, signed={bool(el[2])}); pos += c")
        elif kind == "array_fmt":
            out.append(f"{ind}c = {self.expr(el[1])}")
            out.append(f"{ind}if c < 0 or pos + c * {el[3]} > n: raise Short")
            out.append(f"{ind}{target} = ListContainer(unpack_from('<%d{el[2]}' % c, raw, pos)); pos += c * {el[3]}")
        elif kind == "array_struct":
            # each item is parsed by its own function, which sees the parent as ``this._``; in
            # "locals" mode there is no parent container yet: it gets None, and an item layout
            # that reads its parent fails there and goes where Short goes
            count = self.expr(el[1])
            outer, self.locals = self.locals, None
            sub = self.function(el[2], nested=True)
            self.locals = outer
            out.append(f"{ind}c = {count}")
            out.append(f"{ind}if c < 0: raise Short")
            out.append(f"{ind}{target} = ListContainer()")
            out.append(f"{ind}for _i in range(c):")
            out.append(f"{ind}    item, pos = {sub}(raw, pos, n, {'this' if outer is None else 'None'})")
            out.append(f"{ind}    {target}.append(item)")
        elif kind == "array_elem":
            out.append(f"{ind}c = {self.expr(el[1])}")
            out.append(f"{ind}if c < 0: raise Short")
            out.append(f"{ind}{target} = ListContainer()")
            out.append(f"{ind}for _i in range(c):")
            self.element(el[2], "item", ind + "    ", out)
            out.append(f"{ind}    {target}.append(item)")
        elif kind == "if":
            out.append(f"{ind}if {self.expr(el[1])}:")
            self.element(el[2], target, ind + "    ", out)
            out.append(f"{ind}else:")
            self.element(el[3], target, ind + "    ", out)
        else:
            raise _Unsupported

    def function_locals(self, steps: list[tuple[Any, ...]], finish: Finish | None = None) -> str:
        """The top-level parser with every value in a local variable and the ``Container`` built
        once at the end (``Container(name=value, ...)``): about twice as fast as filling it field by
        field. Raises _Unsupported for layouts that need a container while parsing.

        ``finish`` (see :func:`fast_builder`) replaces the ending: the function then takes the
        extra parameters it names and returns what its lines return, or None on any failure."""
        self.counter += 1
        name = f"parse{self.counter}"
        self.locals = {}
        params = "raw" if finish is None else ", ".join(("raw", *finish.params))
        out = [f"def {name}({params}):", "  try:", "    n = len(raw)"]
        names: list[str] = []
        greedy: dict[str, str] = {}  # field name -> the local holding a GreedyBytes tail
        first = True
        for step in steps:
            if step[0] == "fixed":
                targets = []
                for field_name in step[2]:
                    local = f"v{len(names)}"
                    names.append(field_name)
                    self.locals[field_name] = local
                    targets.append(local)
                s = self.const(step[1])
                # no length test: unpack_from raises struct.error for too few bytes, which goes
                # where Short goes (the reference parser, or None)
                if first:
                    out.append(f"    {', '.join(targets)}, = {s}.unpack_from(raw); pos = {step[1].size}")
                else:
                    out.append(f"    {', '.join(targets)}, = {s}.unpack_from(raw, pos); pos += {step[1].size}")
            else:
                if first:
                    out.append("    pos = 0")
                local = f"v{len(names)}"
                if step[2][0] == "greedy":
                    greedy[step[1]] = local
                self.element(step[2], local, "    ", out)
                names.append(step[1])
                self.locals[step[1]] = local
            first = False
        if first:
            out.append("    pos = 0")
        if not all(n.isidentifier() and not n.startswith("_") for n in names) or len(set(names)) != len(names):
            raise _Unsupported
        args = ", ".join(f"{n}={self.locals[n]}" for n in names)
        if finish is None:
            out.append(f"    return Container({args}), pos")
            out.append("  except Exception:")
            out.append("    return reference(raw)")
        else:
            out.extend("    " + line for line in finish.lines(f"Container({args})", greedy))
            out.append("  except Exception:")
            out.append("    return None")
        self.funcs.append("\n".join(out))
        self.locals = None
        return name

    def function(self, steps: list[tuple[Any, ...]], nested: bool = False) -> str:
        self.counter += 1
        name = f"parse{self.counter}"
        if nested:
            out = [f"def {name}(raw, pos, n, parent):", "    this = Container()", "    this['_'] = parent"]
        else:
            # the top level: (raw) -> (Container, consumed); any failure goes to Construct
            out = [f"def {name}(raw):", "  try:", "    n = len(raw)", "    pos = 0", "    this = Container()"]
        for index, step in enumerate(steps):
            if step[0] == "fixed":
                s = self.const(step[1])
                names = self.const(step[2])
                out.append(f"    if pos + {step[1].size} > n: raise Short")
                if index == 0 and not nested:  # the usual start: build the container in one go
                    out[out.index("    this = Container()")] = "    pass"
                    out.append(f"    this = Container(zip({names}, {s}.unpack_from(raw))); pos = {step[1].size}")
                    continue
                out.append(f"    od_update(this, zip({names}, {s}.unpack_from(raw, pos))); pos += {step[1].size}")
            else:
                self.element(step[2], "v", "    ", out)
                out.append(f"    this[{step[1]!r}] = v")
        if nested:
            out.append("    del this['_']")
            out.append("    return this, pos")
        else:
            out.append("    return this, pos")
            out.append("  except Exception:")
            out.append("    return reference(raw)")
        self.funcs.append("\n".join(out))
        return name


def _generate(steps: list[tuple[Any, ...]], reference: Callable[[bytes], tuple[Any, int]] | None = None,
              ) -> Callable[[bytes], tuple[Any, int]]:
    gen = _Gen()
    try:
        top = gen.function_locals(steps)
    except _Unsupported:
        gen = _Gen()
        top = gen.function(steps)

    def no_reference(raw: bytes) -> tuple[Any, int]:
        raise _Unsupported

    fn: Callable[[bytes], tuple[Any, int]] = _compile(gen, top, {"reference": reference or no_reference})
    return fn


#: numbers the generated functions' file names
_SERIAL = _itertools.count(1)


def _compile(gen: _Gen, top: str, extra: Mapping[str, Any]) -> Any:
    """Compile ``gen``'s functions with their namespace; returns the function named ``top``."""
    namespace: dict[str, Any] = {
        "Container": _Container, "ListContainer": _ListContainer, "Short": _Unsupported,
        "unpack_from": _struct.unpack_from, "od_update": dict.update, **extra, **gen.consts,
    }
    # a file name per generated function, so that profiles tell them apart
    code = compile("\n\n".join(gen.funcs), f"<fast parser {next(_SERIAL)}{': ' + gen.label if gen.label else ''}>",
                   "exec")
    exec(code, namespace)  # noqa: S102 - source generated above from a plan
    return namespace[top]


def fast_builder(struct: Construct, finish: Finish, label: str = "") -> Callable[..., Any] | None:
    """A generated function ``(raw, *finish.params)`` that parses ``raw`` like :func:`fast_parser`'s
    generated code and then runs ``finish.lines``; it returns None when the bytes do not parse
    (too short, a negative count...) instead of asking Construct. None when the layout is not one
    the generated code handles with local variables (the caller then uses :func:`fast_parser`).

    Not cached: the caller keeps it (one per schema and ending).
    """
    try:
        steps = _plan(struct)
        gen = _Gen(label)
        top = gen.function_locals(steps, finish)
    except _Unsupported:
        return None
    fn: Callable[..., Any] = _compile(gen, top, finish.namespace)
    return fn


_FAST: dict[int, tuple[Callable[[bytes], tuple[Any, int]], Any]] = {}


def fast_parser(struct: Construct) -> Callable[[bytes], tuple[Any, int]]:
    """A function ``raw -> (Container, bytes consumed)`` for ``struct`` (cached).

    Uses generated code with one ``struct.unpack_from`` per run of integer fields when the
    layout allows it; anything else, and any bytes the generated code refuses, go to
    Construct's interpreted parser, which raises whatever Construct raises for bad bytes.
    """
    key = id(struct)
    found = _FAST.get(key)
    if found is not None:
        return found[0]
    # The reference is Construct's *interpreted* parser: its compiled code skips some length
    # checks (a short BytesInteger reads what is there), which would accept truncated bytes.
    def reference(raw: bytes) -> tuple[Any, int]:
        stream = _io.BytesIO(raw)
        obj = struct.parse_stream(stream)
        obj.pop("_io", None)
        return obj, stream.tell()

    fn: Callable[[bytes], tuple[Any, int]]
    try:
        steps = _plan(struct)
    except _Unsupported:
        fn = reference
    else:
        try:
            fn = _generate(steps, reference)
        except _Unsupported:
            fn = reference

    _FAST[key] = (fn, struct)
    return fn
