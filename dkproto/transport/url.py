"""Transport URL parsing: shared helpers; each scheme owns its own grammar and options.

A URL is ``SCHEME://AUTHORITY[/PATH][?KEY=VALUE&...]``. Wrapper schemes stack with ``+``
(``spy+usb://1d6b:0104``). Errors are :class:`~dkproto.errors.URLError` and quote the grammar
of the scheme that rejected the URL.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from dkproto.errors import URLError

__all__ = ["ParsedURL", "QueryOptions", "is_url", "parse_device_id", "parse_url", "parse_vid_pid", "split_scheme", "split_wrapper_url",
           "url_error"]

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9.+-]*)://(.*)$", re.DOTALL)
#: ``VID:PID[:SERIAL]``: hex IDs (optional ``0x``), the PID may be left out (``VID:``), a serial may follow.
_DEVICE_ID_RE = re.compile(r"(?:0[xX])?([0-9A-Fa-f]{1,4}):(?:(?:0[xX])?([0-9A-Fa-f]{1,4}))?(?::(.+))?", re.DOTALL)


def url_error(url: str, problem: str, grammar: str) -> URLError:
    """A URLError whose message says what is wrong and quotes the grammar."""
    return URLError(f"bad transport URL {url!r}: {problem}; expected {grammar}")


def is_url(text: str) -> bool:
    """True when ``text`` starts with ``SCHEME://`` (a transport URL rather than a path or a spec)."""
    return bool(_SCHEME_RE.match(text.strip()))


def split_scheme(url: str, grammar: str = "SCHEME://...") -> tuple[str, str]:
    """Split ``url`` into (lower-case scheme, the rest after ``://``)."""
    if not isinstance(url, str):
        raise URLError(f"a transport URL must be a string, not {type(url).__name__}")
    match = _SCHEME_RE.match(url.strip())
    if not match:
        raise url_error(url, "no 'SCHEME://' at the start", grammar)
    return match.group(1).lower(), match.group(2)


@dataclass(frozen=True)
class ParsedURL:
    """A URL split into parts (no interpretation yet).

    Attributes:
        url: the URL as given.
        scheme: lower-case scheme, including any ``+`` suffix (``serial+loop``).
        authority: text between ``://`` and the first ``/`` or ``?``.
        path: text from the first ``/`` after the authority up to ``?`` (may be empty).
        query: ``key -> value`` (percent-decoded); repeated keys are an error.
    """

    url: str
    scheme: str
    authority: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    raw_query: str = ""


def split_wrapper_url(url: str, wrapper: str, option: str, grammar: str) -> tuple[str, str | None]:
    """``WRAPPER+INNER://REST[?OPTION=VALUE]`` -> (``INNER://REST`` without the option, VALUE or None).

    The option is the wrapper's own (``spy_log``, ``record``); every other option stays in the
    inner URL for the inner scheme to read.

    Raises:
        URLError: not ``WRAPPER+INNER://``.
    """
    scheme, rest = split_scheme(url, grammar)
    head, plus, inner_scheme = scheme.partition("+")
    if head != wrapper or not plus or not inner_scheme:
        raise url_error(url, f"{wrapper} needs an inner scheme after '+'", grammar)
    value = None
    match = re.search(rf"([?&]){re.escape(option)}=([^&]*)(&?)", rest)
    if match:
        value = match.group(2)
        rest = (rest[:match.start()] + (match.group(1) if match.group(3) else "") + rest[match.end():]).rstrip("?")
    return f"{inner_scheme}://{rest}", value


def parse_url(url: str, grammar: str) -> ParsedURL:
    """Parse ``url``; raise a URLError quoting ``grammar`` when it is not URL-shaped."""
    scheme, rest = split_scheme(url, grammar)
    rest, _, raw_query = rest.partition("?")
    if "#" in raw_query or "#" in rest:
        raise url_error(url, "fragments ('#') are not allowed", grammar)
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    query: dict[str, str] = {}
    if raw_query:
        try:
            pairs = parse_qsl(raw_query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise url_error(url, f"query {raw_query!r} is not KEY=VALUE&...", grammar) from None
        for key, value in pairs:
            if key in query:
                raise url_error(url, f"option {key!r} given twice", grammar)
            query[key] = value
    return ParsedURL(url=url, scheme=scheme, authority=unquote(authority), path=unquote(path),
                     query=query, raw_query=raw_query)


def parse_device_id(text: str, *, pid_optional: bool = False,
                    serial: bool = False) -> tuple[int, int | None, str | None] | None:
    """THE ``VID:PID[:SERIAL]`` parser (URLs, ``dkproto hid`` device specs, ``-d`` selectors).

    VID and PID are hex (1 to 4 digits, optional ``0x``); surrounding blanks are ignored.

    Args:
        text: the text to parse.
        pid_optional: accept ``VID:`` (lsusb's ``-d VID:``); the PID is then ``None``.
        serial: accept ``VID:PID:SERIAL``; otherwise a third part does not match.

    Returns:
        ``(vid, pid, serial)`` (``pid`` and ``serial`` may be ``None``), or ``None`` when the text
        is not that shape.
    """
    match = _DEVICE_ID_RE.fullmatch(text.strip())
    if not match or (match.group(2) is None and not pid_optional) or (match.group(3) is not None and not serial):
        return None
    pid = int(match.group(2), 16) if match.group(2) is not None else None
    return int(match.group(1), 16), pid, match.group(3)


def parse_vid_pid(text: str) -> tuple[int, int] | None:
    """``"1d6b:0104"`` -> ``(0x1d6b, 0x0104)`` (hex, optional ``0x``); ``None`` if not that shape."""
    found = parse_device_id(text)
    if found is None or found[1] is None:
        return None
    return found[0], found[1]


class QueryOptions:
    """Typed access to a URL's ``?key=value`` options; unknown keys are errors.

    Call the typed getters for every option the scheme knows, then :meth:`finish`, which
    raises for anything left over (with the grammar), so a typo never passes silently.
    """

    def __init__(self, parsed: ParsedURL, grammar: str) -> None:
        self.parsed = parsed
        self.grammar = grammar
        self._left = dict(parsed.query)

    def error(self, problem: str) -> URLError:
        """A URLError for this URL."""
        return url_error(self.parsed.url, problem, self.grammar)

    def str(self, key: str, default: str | None = None) -> str | None:
        """A string option."""
        return self._left.pop(key, default)

    def int(self, key: builtins.str, default: int | None = None, *, lo: int | None = None, hi: int | None = None,
            base: int = 0) -> int | None:
        """An integer option (decimal, or ``0x`` hex with ``base=0``), range-checked."""
        if key not in self._left:
            return default
        text = self._left.pop(key)
        try:
            value = int(text, base)
        except ValueError:
            raise self.error(f"option {key}={text!r} is not an integer") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(f"option {key}={value} is out of range {lo}..{hi}")
        return value

    def float(self, key: builtins.str, default: float | None = None) -> float | None:
        """A number option."""
        if key not in self._left:
            return default
        text = self._left.pop(key)
        try:
            return float(text)
        except ValueError:
            raise self.error(f"option {key}={text!r} is not a number") from None

    def bool(self, key: builtins.str, default: bool | None = None) -> bool | None:
        """A boolean option: 1/0, true/false, yes/no, on/off."""
        if key not in self._left:
            return default
        text = self._left.pop(key).lower()
        if text in ("1", "true", "yes", "on", ""):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise self.error(f"option {key}={text!r} is not a boolean (1/0, true/false)")

    def choice(self, key: builtins.str, choices: Mapping[builtins.str, object], default: object = None) -> object:
        """An option whose text must be one of ``choices`` (case-insensitive); returns the mapped value."""
        if key not in self._left:
            return default
        text = self._left.pop(key)
        for name, value in choices.items():
            if name.lower() == text.lower():
                return value
        raise self.error(f"option {key}={text!r} is not one of {', '.join(choices)}")

    def rest(self) -> dict[builtins.str, builtins.str]:
        """Options not taken yet (for schemes that pass them through), and forget them."""
        left, self._left = self._left, {}
        return left

    def finish(self) -> None:
        """Raise URLError if options are left that the scheme did not take."""
        if self._left:
            raise self.error(f"unknown option(s) {', '.join(sorted(self._left))}")
