"""The hardware-in-the-loop tier of dkproto's pytest plugin: device markers, fixtures, record and replay.

A test names its device with a marker and takes what it needs as fixtures::

    @pytest.mark.dk_device("1209:0001")          # usb://1209:0001 (or any transport URL)
    def test_echo(dk_user_client):               # the example driver started, its app's connection
        ...

Where the device comes from, per test (reference: ``docs/hil.md``):

* live (default): the device the marker names, or ``--dk-url URL`` for every test. A device that
  is not attached skips the test with a reason naming it; ``--dk-hw`` makes that a failure.
* ``--dk-record DIR``: live, and every transport the test opens is recorded
  (:func:`dkproto.transport.record.recording`) into ``DIR/<sanitized node id>.jsonl``.
* ``--dk-replay DIR``: no hardware; every transport the test opens is served from
  ``DIR/<sanitized node id>.jsonl`` (:func:`dkproto.transport.replay.replaying`). A missing
  recording skips the test (fails it with ``--dk-hw``). A replay mismatch fails the test with
  the mismatch message as its failure text.
* fallback: a test marked ``dk_recordings("recordings")`` (a folder relative to the test file)
  whose device is not attached replays its committed recording from there when one exists,
  so an example suite runs anywhere; without a recording it skips.

Every option has an environment fallback (``DKPROTO_URL``, ``DKPROTO_HW=1``,
``DKPROTO_RECORD_DIR``, ``DKPROTO_REPLAY_DIR``, ``DKPROTO_REPLAY_STRICT``). They differ from
the process-wide single-file ``DKPROTO_RECORD`` / ``DKPROTO_REPLAY`` of
:mod:`dkproto.transport.record`, which the plugin refuses to combine with its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

__all__ = [
    "DEVICE_MARKERS",
    "FIXTURES",
    "STRICTNESS",
    "HilConfig",
    "dk_driver",
    "dk_mode",
    "dk_transport",
    "dk_url",
    "dk_usb_device",
    "dk_user_client",
    "hil_addoption",
    "hil_configure",
    "hil_makereport",
    "hil_terminal_summary",
    "recording_name",
    "target_url",
]

#: Marker name -> the scheme a bare ``VID:PID`` (or, for serial, a bare path) gets.
DEVICE_MARKERS: dict[str, str] = {"dk_device": "usb", "dk_hid": "hid", "dk_serial": "serial"}
#: The fixtures that make a test a hardware-in-the-loop test (besides the markers).
FIXTURES = ("dk_url", "dk_transport", "dk_usb_device", "dk_driver", "dk_user_client")
#: ``--dk-replay-strict`` values (see :func:`dkproto.transport.replay.replaying`).
STRICTNESS = ("exact", "order", "endpoints")

_HW_HINT = "run with --dk-hw to fail instead, or --dk-replay DIR"
_CONFIG = pytest.StashKey["HilConfig"]()
_ITEM = pytest.StashKey["_ItemState"]()


# --------------------------------------------------------------------------------------------------
# options


def hil_addoption(parser: pytest.Parser) -> None:
    """The ``--dk-*`` options (group ``dkproto``)."""
    group = parser.getgroup("dkproto")
    group.addoption("--dk-url", metavar="URL", default=None,
                    help="device for every hardware test, over its dk_device/dk_hid/dk_serial marker "
                         "(env DKPROTO_URL)")
    group.addoption("--dk-hw", action="store_true", default=None,
                    help="a device (or, with --dk-replay, a recording) that is missing fails the test "
                         "instead of skipping it (env DKPROTO_HW=1)")
    group.addoption("--dk-record", metavar="DIR", default=None,
                    help="record every hardware test's transports into DIR/<test id>.jsonl "
                         "(env DKPROTO_RECORD_DIR)")
    group.addoption("--dk-replay", metavar="DIR", default=None,
                    help="run every hardware test from DIR/<test id>.jsonl, no hardware needed "
                         "(env DKPROTO_REPLAY_DIR)")
    group.addoption("--dk-replay-strict", metavar="MODE", default=None, choices=STRICTNESS,
                    help="replay strictness: exact, order (default) or endpoints (env DKPROTO_REPLAY_STRICT)")


@dataclass
class HilConfig:
    """The options in force (command line over environment)."""

    url: str | None = None
    hw: bool = False
    record_dir: Path | None = None
    replay_dir: Path | None = None
    strict: str | None = None  # None: the marker's, else "order"
    recorded: list[tuple[str, Path, str]] = field(default_factory=list)  # nodeid, file, outcome
    replayed: list[tuple[str, Path, str]] = field(default_factory=list)
    missing: list[tuple[str, Path]] = field(default_factory=list)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "yes", "true", "on")


def hil_configure(config: pytest.Config) -> None:
    """Resolve the options, check they go together, register the markers."""
    for name, scheme in DEVICE_MARKERS.items():
        config.addinivalue_line(
            "markers", f"{name}(URL_OR_VID_PID, *, driver='driver.py', client_type=0, strict=None): the device "
                       f"a hardware test runs against (bare VID:PID means {scheme}://VID:PID; see docs/hil.md)")
    config.addinivalue_line("markers", "dk_recordings(DIR): committed recordings (DIR relative to the test file) "
                                       "replayed when the device is not attached")

    def opt(name: str, env: str) -> str | None:
        value = config.getoption(name)
        if value is None:
            value = os.environ.get(env) or None
        return str(value) if value is not None else None

    hil = HilConfig()
    hil.url = opt("--dk-url", "DKPROTO_URL")
    hw = config.getoption("--dk-hw")
    hil.hw = bool(hw) if hw is not None else _env_flag("DKPROTO_HW")
    record, replay = opt("--dk-record", "DKPROTO_RECORD_DIR"), opt("--dk-replay", "DKPROTO_REPLAY_DIR")
    hil.strict = opt("--dk-replay-strict", "DKPROTO_REPLAY_STRICT")
    if hil.strict is not None and hil.strict not in STRICTNESS:
        raise pytest.UsageError(f"DKPROTO_REPLAY_STRICT={hil.strict!r}: expected one of {', '.join(STRICTNESS)}")
    if record and replay:
        raise pytest.UsageError("--dk-record and --dk-replay (or DKPROTO_RECORD_DIR and DKPROTO_REPLAY_DIR) "
                                "exclude each other: record with the device, replay without it")
    if record or replay:
        for var in ("DKPROTO_RECORD", "DKPROTO_REPLAY"):
            if os.environ.get(var):
                raise pytest.UsageError(
                    f"{var} is set (the process-wide single-file {'recording' if var.endswith('RECORD') else 'replay'}"
                    f") and so is --dk-{'record' if record else 'replay'}: use one or the other")
    base = config.invocation_params.dir
    if record:
        hil.record_dir = (base / record).resolve()
    if replay:
        hil.replay_dir = (base / replay).resolve()
        if not hil.replay_dir.is_dir() and hil.hw:
            raise pytest.UsageError(f"--dk-replay {replay}: no such folder")
    config.stash[_CONFIG] = hil


# --------------------------------------------------------------------------------------------------
# what a test runs against


def _usage(message: str) -> NoReturn:
    """A test that uses the plugin wrongly fails with one line (no traceback into the plugin)."""
    pytest.fail(message, pytrace=False)


def recording_name(nodeid: str) -> str:
    """The recording file name of a test: its node id made a safe file name, plus ``.jsonl``.

    ``devices/vendor-bulk/test_vendor_bulk.py::test_echo[64]`` becomes
    ``devices_vendor-bulk_test_vendor_bulk.py__test_echo_64.jsonl``. Names longer than 150
    characters are cut and end with a hash of the whole node id.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.replace("::", "__")).strip("_.") or "test"
    if len(name) > 150:
        name = name[:140] + "-" + hashlib.sha1(nodeid.encode()).hexdigest()[:9]
    return name + ".jsonl"


def _normalize(spec: Any, scheme: str, marker: str) -> str:
    if not isinstance(spec, str) or not spec.strip():
        _usage(f"@pytest.mark.{marker}(...) takes a transport URL or VID:PID, got {spec!r}")
    text = str(spec).strip()
    if "://" in text:
        return text
    if scheme == "serial" and text.startswith("/"):
        return f"serial://{text}"
    from dkproto.transport.url import parse_vid_pid

    if parse_vid_pid(text) is not None:
        return f"{scheme}://{text}"
    _usage(f"@pytest.mark.{marker}({text!r}): not a transport URL (SCHEME://...) nor a VID:PID")


@dataclass
class _Target:
    url: str | None
    source: str  # "dk_device", "dk_hid", "dk_serial", "--dk-url" or "" (none)
    marker: pytest.Mark | None

    def kwarg(self, name: str, default: Any = None) -> Any:
        return self.marker.kwargs.get(name, default) if self.marker is not None else default

    @property
    def label(self) -> str:
        return f"{self.source} {self.url}" if self.source else str(self.url)


def _target(item: pytest.Item, hil: HilConfig) -> _Target:
    marker: pytest.Mark | None = None
    for mark in item.iter_markers():
        if mark.name in DEVICE_MARKERS:
            marker = mark
            break
    if hil.url:
        return _Target(hil.url, "--dk-url", marker)
    if marker is None:
        return _Target(None, "", None)
    if len(marker.args) != 1:
        _usage(f"{item.nodeid}: @pytest.mark.{marker.name}(...) takes one URL or VID:PID, "
                                f"got {len(marker.args)} arguments")
    return _Target(_normalize(marker.args[0], DEVICE_MARKERS[marker.name], marker.name), marker.name, marker)


def target_url(item: pytest.Item) -> str | None:
    """The URL a test runs against (``--dk-url`` over its marker), or None."""
    return _target(item, item.config.stash[_CONFIG]).url


def _is_hil(item: pytest.Item) -> bool:
    if any(item.get_closest_marker(m) is not None for m in DEVICE_MARKERS):
        return True
    names = getattr(item, "fixturenames", ())
    return any(f in names for f in FIXTURES)


@dataclass
class _ItemState:
    mode: str  # "live", "record", "replay"
    target: _Target
    path: Path | None = None
    replayer: Any = None
    strict: str = "order"
    fallback: bool = False


def _probe(url: str) -> str | None:
    """Open and close ``url``: None when the device is there, else why not (device missing only).

    Other failures (permissions, a bad URL, a missing library) are not a missing device:
    they fail the test with their one-line message.
    """
    from dkproto.errors import DkError, NoDeviceError, NotFoundError
    from dkproto.transport import open_transport

    try:
        transport = open_transport(url, open=True)
    except (NoDeviceError, NotFoundError):
        return "no such device attached"
    except DkError as exc:
        pytest.fail(f"{url}: {exc}", pytrace=False)
    with contextlib.suppress(DkError):
        transport.close()
    return None


def _strictness(hil: HilConfig, target: _Target) -> str:
    if hil.strict:
        return hil.strict
    strict = target.kwarg("strict")
    if strict is None:
        return "order"
    if strict not in STRICTNESS:
        _usage(f"{target.source}(..., strict={strict!r}): expected one of {', '.join(STRICTNESS)}")
    return str(strict)


def _fallback_dir(item: pytest.Item) -> Path | None:
    mark = item.get_closest_marker("dk_recordings")
    if mark is None:
        return None
    if len(mark.args) != 1 or not isinstance(mark.args[0], (str, os.PathLike)):
        _usage(f"{item.nodeid}: @pytest.mark.dk_recordings(DIR) takes one folder")
    return Path(item.path).parent / mark.args[0]


def _missing(hil: HilConfig, what: str, hint: str = _HW_HINT) -> None:
    if hil.hw:
        pytest.fail(f"{what} (--dk-hw)", pytrace=False)
    pytest.skip(f"{what} ({hint})")


@pytest.fixture(autouse=True)
def dk_mode(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Where a hardware test's device comes from: ``"live"``, ``"record"`` (live and recorded) or
    ``"replay"`` (no hardware); None for other tests. Autouse: it sets that up (see the module doc).

    A test that also plays the device side (a lab gadget) does so only when it is not ``"replay"``.
    """
    item = request.node
    hil = request.config.stash.get(_CONFIG, None)
    if hil is None or not isinstance(item, pytest.Item) or not _is_hil(item):
        yield None
        return
    target = _target(item, hil)
    strict = _strictness(hil, target)
    name = recording_name(item.nodeid)
    label = target.label if target.url else "this test"
    if hil.replay_dir is not None:
        path = hil.replay_dir / name
        if not path.is_file():
            hil.missing.append((item.nodeid, path))
            _missing(hil, f"{label}: no recording {_show(path)}", "record it with --dk-record DIR where the "
                                                                  "device is attached")
        yield from _replay(item, hil, target, path, strict, fallback=False)
        return
    if target.url is not None:
        why = _probe(target.url)
        if why is not None:
            fallback = None if hil.hw or hil.record_dir is not None else _fallback_dir(item)
            if fallback is not None and (fallback / name).is_file():
                yield from _replay(item, hil, target, fallback / name, strict, fallback=True)
                return
            _missing(hil, f"{label}: {why}")
    if hil.record_dir is not None:
        from dkproto.transport.record import recording

        path = hil.record_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        item.stash[_ITEM] = _ItemState("record", target, path, strict=strict)
        with recording(str(path), argv=["pytest", item.nodeid]):  # no machine path in a committed file
            yield "record"
        return
    item.stash[_ITEM] = _ItemState("live", target)
    yield "live"


def _replay(item: pytest.Item, hil: HilConfig, target: _Target, path: Path, strict: str,
            *, fallback: bool) -> Iterator[str]:
    from dkproto.transport.replay import replaying

    state = _ItemState("replay", target, path, strict=strict, fallback=fallback)
    item.stash[_ITEM] = state
    with replaying(str(path), strict=strict) as replayer:
        state.replayer = replayer
        yield "replay"
        left = list(replayer.unconsumed())
        if left and strict == "exact":
            first = left[0]
            pytest.fail(f"{_show(path)}: {len(left)} recorded event(s) were not replayed (strict=exact); "
                        f"the first: seq {getattr(first, 'seq', '?')} {getattr(first, 'op', first)}",
                        pytrace=False)


def _show(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def dk_url(request: pytest.FixtureRequest, dk_mode: str | None) -> str:
    """The device URL in force for this test: ``--dk-url`` (``DKPROTO_URL``), else its marker's."""
    hil = request.config.stash[_CONFIG]
    target = _target(request.node, hil)
    if target.url is None:
        _usage(
            f"{request.node.nodeid} uses a dk_* fixture but names no device: mark it "
            "@pytest.mark.dk_device('VID:PID' or URL) (or dk_hid / dk_serial), or pass --dk-url URL")
    return target.url


@pytest.fixture
def dk_transport(dk_url: str) -> Iterator[Any]:
    """The test's device as an open :class:`~dkproto.transport.Transport`; closed after the test."""
    from dkproto.transport import open_transport

    transport = open_transport(dk_url, open=True)
    try:
        yield transport
    finally:
        transport.close()


@pytest.fixture
def dk_usb_device(dk_transport: Any) -> Iterator[Any]:
    """An :class:`~dkproto.iokit.IOUSBHostDevice` nub over ``dk_transport``, published as on plug-in
    (:func:`dkproto.iokit.usb_host.attach_device`: configured, interface nubs published); terminated after."""
    from dkproto.iokit.service import ServiceState
    from dkproto.iokit.usb_host import attach_device

    device = attach_device(dk_transport)
    try:
        yield device
    finally:
        if device.state is ServiceState.STARTED:
            device.terminate()
        device.wait_terminated(10)


def _driver_path(request: pytest.FixtureRequest) -> Path:
    target = _target(request.node, request.config.stash[_CONFIG])
    here = Path(request.node.path).parent
    driver = target.kwarg("driver")
    if driver is None:
        for mark in request.node.iter_markers():
            if mark.name in DEVICE_MARKERS and "driver" in mark.kwargs:
                driver = mark.kwargs["driver"]
                break
    path = here / (driver if driver is not None else "driver.py")
    if not path.is_file():
        _usage(f"{request.node.nodeid}: dk_driver: no driver file {_show(path)} (name it with "
                                f"@pytest.mark.dk_device(..., driver='path/to/driver.py'), relative to the test file)")
    return path


@pytest.fixture
def dk_driver(request: pytest.FixtureRequest, dk_url: str) -> Iterator[Any]:
    """The driver beside the test file (``driver.py``, or the marker's ``driver=``) matched and started
    on the device, as ``dkproto run`` does (:func:`dkproto.iokit.runner.run_driver`, with its
    Info.plist and entitlements); a :class:`~dkproto.iokit.runner.RunningDriver` (``.driver`` is the
    started IOService). Stopped after the test.

    The driver opens the device itself: do not combine with ``dk_transport`` on the same device.
    Unplug polling is off (its GET_STATUS requests would make recordings depend on timing).
    """
    from dkproto.iokit.runner import run_driver

    running = run_driver(_driver_path(request), dk_url, watch=None)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def dk_user_client(request: pytest.FixtureRequest, dk_driver: Any) -> Iterator[Any]:
    """The driver's user client as its app opens it: ``io_service_open(driver, client_type,
    app_entitlements=<app.entitlements beside the driver>)``, an :class:`~dkproto.iokit.IOConnect`;
    closed after the test. ``client_type`` comes from the marker (default 0)."""
    from dkproto.iokit import io_service_close, io_service_open

    target = _target(request.node, request.config.stash[_CONFIG])
    conn = io_service_open(dk_driver.driver, int(target.kwarg("client_type", 0)),
                           app_entitlements=dk_driver.app_entitlements)
    try:
        yield conn
    finally:
        io_service_close(conn)


# --------------------------------------------------------------------------------------------------
# reports


def _mismatch(exc: BaseException | None) -> BaseException | None:
    """The replay mismatch (or bad session file) in ``exc`` or what it was raised from."""
    seen = 0
    while exc is not None and seen < 20:
        names = {c.__name__ for c in type(exc).__mro__}
        if names & {"ReplayMismatchError", "SessionError"}:
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _user_frame(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """``file:line`` of the innermost frame outside dkproto and pytest (where the test made the call)."""
    pkg = Path(__file__).resolve().parents[1]
    where = ""
    for entry in excinfo.traceback:
        path = Path(str(entry.path))
        if pkg in path.parents or "_pytest" in path.parts or "pluggy" in path.parts:
            continue
        where = f"{_show(path)}:{entry.lineno + 1}"
    return where


def hil_makereport(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """Replay mismatches fail with their message alone; count recorded and replayed tests."""
    state = item.stash.get(_ITEM, None)
    if state is None:
        return
    hil = item.config.stash[_CONFIG]
    if state.mode == "replay" and report.failed:
        exc = _mismatch(call.excinfo.value if call.excinfo is not None else None)
        if exc is None and state.replayer is not None:
            exc = state.replayer.mismatch  # one the code under test caught (a driver's IOReturn)
        if exc is not None:
            where = _user_frame(call.excinfo) if call.excinfo is not None else ""
            origin = "committed recording" if state.fallback else "recording"
            report.longrepr = (f"replay mismatch ({origin} {_show(state.path) if state.path else '?'}, "
                               f"strict={state.strict}"
                               + (f", the test was at {where}" if where else "") + f"):\n{exc}")
    note_outcome(item, report)
    if report.when == "teardown":
        outcome = _outcome(item)
        entry = (item.nodeid, state.path or Path("?"), outcome)
        if state.mode == "record":
            hil.recorded.append(entry)
            if outcome == "skipped" and state.path is not None:
                state.path.unlink(missing_ok=True)  # nothing worth replaying
        elif state.mode == "replay":
            hil.replayed.append(entry)


_OUTCOME = pytest.StashKey[str]()


def _outcome(item: pytest.Item) -> str:
    return item.stash.get(_OUTCOME, "passed")


def note_outcome(item: pytest.Item, report: pytest.TestReport) -> None:
    """Keep the worst outcome of a test's phases (failed > skipped > passed)."""
    if item.stash.get(_ITEM, None) is None:
        return
    now = item.stash.get(_OUTCOME, "passed")
    new = "failed" if report.failed else "skipped" if report.skipped else "passed"
    if new == "failed" or (new == "skipped" and now == "passed"):
        item.stash[_OUTCOME] = new


def hil_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """How many tests recorded or replayed, and where."""
    hil = config.stash.get(_CONFIG, None)
    if hil is None:
        return

    def folders(entries: list[tuple[str, Path, str]]) -> str:
        return ", ".join(sorted({_show(p.parent) for _, p, _ in entries}))

    recorded = [e for e in hil.recorded if e[2] != "skipped"]
    if recorded:
        failed = [e for e in recorded if e[2] == "failed"]
        terminalreporter.write_line(
            f"dkproto hil: {len(recorded)} test(s) recorded into {folders(recorded)}"
            + (f" ({len(failed)} failed; their recordings are kept: "
               + ", ".join(_show(p) for _, p, _ in failed) + ")" if failed else ""))
    replayed = hil.replayed
    if replayed:
        failed = [e for e in replayed if e[2] == "failed"]
        terminalreporter.write_line(
            f"dkproto hil: {len(replayed)} test(s) replayed from {folders(replayed)}"
            + (f" ({len(failed)} failed)" if failed else ""))
    if hil.missing:
        terminalreporter.write_line(f"dkproto hil: {len(hil.missing)} test(s) had no recording in "
                                    f"{folders([(n, p, '') for n, p in hil.missing])}")
