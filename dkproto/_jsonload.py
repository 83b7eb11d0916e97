"""Loading JSON text that may be hostile: bounded size and nesting, every failure one DecodeError.

``json.loads`` alone raises ``RecursionError`` for deep nesting, ``ValueError`` for a number
past Python's int-string conversion limit (4300 digits) and keeps the last of duplicate keys
silently. :func:`loads` checks the nesting before parsing and turns each of these into a
:class:`~dkproto.errors.DecodeError` naming the source and where in it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

from dkproto.errors import DecodeError

__all__ = ["MAX_DEPTH", "loads"]

#: Deepest nesting of arrays and objects accepted (dkproto's own files nest about 15 deep).
MAX_DEPTH = 64

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line} column {col}"


def _check_depth(text: str, source: str, max_depth: int) -> None:
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if len(brackets) <= 2 * max_depth:
        return
    depth = 0
    for i, ch in enumerate(brackets):
        depth += 1 if ch in "[{" else -1
        if depth > max_depth:
            raise DecodeError(f"JSON nests deeper than {max_depth} arrays/objects (bracket {i + 1} of the "
                              f"file opens level {depth})", descriptor=source, rule="JSON depth")


def loads(
    text: str | bytes,
    *,
    source: str,
    max_bytes: int | None = None,
    max_depth: int = MAX_DEPTH,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """Parse JSON ``text`` from ``source`` (a file name, for the messages).

    Args:
        text: the JSON text (bytes are decoded as UTF-8; a UTF-8 BOM is skipped).
        source: named in every error.
        max_bytes: refuse longer text (None: no bound here; the caller bounded its read).
        max_depth: refuse deeper nesting of arrays and objects.
        object_pairs_hook: called with each object's pairs once duplicate keys were refused;
            its result replaces the object (default: a dict).

    Raises:
        DecodeError: not UTF-8, not JSON, too long, too deep, a duplicate key, or a number
            past Python's int-string conversion limit; the message says where.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}",
                              descriptor=source, rule="JSON") from exc
    elif text.startswith("\ufeff"):
        text = text[1:]
    if max_bytes is not None and len(text) > max_bytes:
        raise DecodeError(f"JSON text is {len(text):,} characters, more than {max_bytes:,}",
                          descriptor=source, rule="JSON size")
    _check_depth(text, source, max_depth)

    def pairs(items: list[tuple[str, Any]]) -> Any:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
        return object_pairs_hook(items) if object_pairs_hook is not None else dict(items)

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except _Duplicate as exc:
        raise DecodeError(f"duplicate key {exc.key!r} in one JSON object (which one counts is ambiguous)",
                          descriptor=source, rule="JSON") from None
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc.msg} ({_where(text, exc.pos)})", descriptor=source,
                          rule="JSON") from exc
    except RecursionError as exc:  # a backstop: _check_depth refuses such nesting first
        raise DecodeError("JSON nests deeper than the interpreter can parse", descriptor=source,
                          rule="JSON depth") from exc
    except DecodeError:
        raise  # from the caller's hook: already says where
    except ValueError as exc:  # a number past sys.get_int_max_str_digits()
        limit = sys.get_int_max_str_digits()
        long = re.search(rf"\d{{{limit + 1},}}", text) if limit else None
        where = f" ({_where(text, long.start())})" if long else ""
        raise DecodeError(f"a number with more than {limit} digits{where}: past Python's "
                          "int-string conversion limit", descriptor=source, rule="JSON number") from exc


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key
