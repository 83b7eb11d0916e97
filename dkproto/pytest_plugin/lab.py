"""The lab tier of dkproto's pytest plugin.

With ``--lab`` on the host, every selected test marked ``lab`` is replaced by a proxy item.
The first proxy to run boots ONE lab VM for the whole session; inside it,
``python -m pytest <the lab node ids>`` runs in the same directory and virtual environment
and records each test's outcome in a JSON-lines report on the results share. Each proxy then
reports the in-VM outcome: passed, failed (with the in-VM failure text), skipped (with the
in-VM reason; a test skipped in the VM is never counted as passed), xfailed, or an error
carrying the console tail when the VM itself failed.

Inside the VM (``DKPROTO_LAB=1``) the tests run for real and the fixtures below drive the
device side: :func:`lab_gadget` binds a gadget definition and yields its
:class:`~dkproto.lab.gadget.Gadget` controls.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "LabProxyItem",
    "lab_capture",
    "lab_definitions",
    "lab_gadget",
    "lab_makereport",
    "lab_session_items",
    "pytest_report_to_lab",
]

REPORT_ENV = "DKPROTO_LAB_REPORT"
_STATE = pytest.StashKey[dict[str, Any]]()


def inside_lab() -> bool:
    """True when this pytest runs inside the lab VM."""
    return os.environ.get("DKPROTO_LAB") == "1"


# --------------------------------------------------------------------------------------------------
# host side: proxies


class LabVMError(Exception):
    """The lab VM failed (boot, timeout) before it reported this test."""


class LabProxyItem(pytest.Item):
    """Stands on the host for a lab test that runs inside the session's VM."""

    def __init__(self, *, original_nodeid: str, original_info: tuple[Any, int | None, str], **kw: Any) -> None:
        super().__init__(**kw)
        self.original_nodeid = original_nodeid
        self._nodeid = original_nodeid
        self._info = original_info

    def runtest(self) -> None:
        state = self.config.stash[_STATE]
        if state.get("outcomes") is None:
            _run_lab_session(self.config, state)
        rec = state["outcomes"].get(self.original_nodeid)
        if rec is None:
            if state.get("error"):
                raise LabVMError(state["error"])
            raise LabVMError(f"the lab VM did not report {self.original_nodeid} "
                             f"(it stopped early: see the console tail in the first lab failure)")
        self.user_properties.append(("lab_duration", rec.get("duration", 0.0)))
        outcome = rec["outcome"]
        if outcome == "passed":
            return
        if outcome == "skipped":
            raise pytest.skip.Exception(f"[in lab VM] {rec.get('reason', '')}", _use_item_location=True)
        if outcome == "xfailed":
            pytest.xfail(f"[in lab VM] {rec.get('reason', '')}")
        raise LabTestFailure(rec.get("text", "failed in the lab VM"), rec.get("when", "call"))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, LabTestFailure):
            return f"[failed inside the lab VM, {excinfo.value.when}]\n{excinfo.value.text}"
        if isinstance(excinfo.value, LabVMError):
            return f"[lab VM error] {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        path, lineno, name = self._info
        return path, lineno if lineno is not None else 0, f"[lab] {name}"


class LabTestFailure(Exception):
    """A lab test failed in the VM; carries the in-VM failure text."""

    def __init__(self, text: str, when: str) -> None:
        super().__init__(text)
        self.text = text
        self.when = when


def replace_lab_items(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put a :class:`LabProxyItem` in place of each lab test (host side, with ``--lab``)."""
    state: dict[str, Any] = {"nodeids": [], "outcomes": None}
    config.stash[_STATE] = state
    for i, item in enumerate(items):
        if item.get_closest_marker("lab") is None:
            continue
        assert item.parent is not None  # a test item always has its module or class
        proxy = LabProxyItem.from_parent(item.parent, name=item.name, original_nodeid=item.nodeid,
                                         original_info=item.reportinfo())
        for mark in item.iter_markers():
            if mark.name in ("skip", "skipif", "xfail", "usefixtures", "parametrize"):
                continue  # evaluated in the VM; on the host they would mask the VM's outcome
            proxy.own_markers.append(mark)
            proxy.keywords[mark.name] = mark
        items[i] = proxy
        state["nodeids"].append(item.nodeid)


def _run_lab_session(config: pytest.Config, state: dict[str, Any]) -> None:
    import shutil
    import tempfile

    from dkproto.errors import DkError
    from dkproto.lab.vm import run

    nodeids: list[str] = state["nodeids"]
    state["outcomes"] = {}
    timeout = float(config.getoption("--lab-timeout"))
    # hypothesis's pytest plugin costs about 8 s of imports over 9p under TCG; lab tests do not
    # need it (a test that imports hypothesis still works).
    argv = [sys.executable, "-m", "pytest", "--lab", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q", "-rN",
            "--rootdir", str(config.rootpath)]
    inifile = config.inipath
    if inifile is not None:
        argv += ["-c", str(inifile)]
    argv += nodeids
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"dkproto lab: booting one VM for {len(nodeids)} lab test(s)")
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def ready(boot_s: float) -> None:
        timings["boot"] = boot_s

    echo = sys.stdout.buffer if config.getoption("--lab-echo") else None
    # Our own results folder: when the VM fails part-way (a timeout, a crash), the tests it
    # already reported keep their outcomes and only the others carry the VM's error.
    share = Path(tempfile.mkdtemp(prefix="dkproto-lab-"))
    result = None
    try:
        try:
            result = run(argv, devices=_session_devices(), timeout=timeout, cwd=str(config.invocation_params.dir),
                         precompile=[config.rootpath / "tests", config.rootpath / "devices"],
                         env={REPORT_ENV: "/run/dklab/report.jsonl"}, results_dir=share, on_ready=ready,
                         echo=echo, udcs=int(config.getoption("--lab-udcs")))
        except DkError as exc:
            tail = getattr(exc, "console_tail", "")
            state["error"] = f"{exc}\n--- lab console (last lines) ---\n{tail}"
        report = share / "report.jsonl"
        if report.exists():
            for line in report.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut by the VM's end
                state["outcomes"][rec["nodeid"]] = rec
            keep = config.getoption("--lab-report")
            if keep:
                shutil.copyfile(report, keep)
        if result is not None and not state["outcomes"]:
            out = result.output.decode(errors="replace")[-4000:]
            state["error"] = (f"the in-VM pytest reported no test (exit status {result.returncode}); "
                              f"its output:\n{out}")
    finally:
        shutil.rmtree(share, ignore_errors=True)
    state["seconds"] = time.monotonic() - t0
    if result is None:
        return
    state["boot_seconds"] = timings.get("boot", result.boot_seconds)
    state["marks"] = result.marks
    state["first_test_seconds"] = result.marks[0][0] if result.marks else None
    state["in_vm_pytest_status"] = result.returncode


def _session_devices() -> list[str]:
    """The devices attached for a pytest lab session: every QEMU device (gadgets are bound by tests)."""
    from dkproto.lab.devices import load_definitions

    return [d.name for d in load_definitions().values() if d.kind == "qemu"]


def lab_makereport(item: LabProxyItem, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """A proxy's call reports the test's in-VM time (setup to teardown), not the host's wait:
    so ``--durations`` ranks lab tests by what they cost (the first proxy waits for the whole VM
    session)."""
    if call.when != "call":
        return
    state = item.config.stash.get(_STATE, {})
    rec = (state.get("outcomes") or {}).get(item.original_nodeid)
    if rec is not None:
        report.duration = float(rec.get("duration", 0.0))


def lab_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line with the lab's boot and run time (host side)."""
    state = config.stash.get(_STATE, None)
    if not state or state.get("outcomes") is None:
        return
    if state.get("error") and not state["outcomes"]:
        terminalreporter.write_line("dkproto lab: the lab VM failed; every lab test failed with its console tail")
        return
    n = len(state["outcomes"])
    if state.get("error"):
        terminalreporter.write_line(f"dkproto lab: the lab VM failed after {n} of {len(state['nodeids'])} "
                                    f"test(s) reported; the others failed with its console tail")
    first = state.get("first_test_seconds")
    first_text = f", first test started at {first:.1f} s" if first is not None else ""
    terminalreporter.write_line(
        f"dkproto lab: {n} test(s) ran in one VM: boot {state.get('boot_seconds', 0):.1f} s{first_text}, "
        f"whole lab session {state.get('seconds', 0):.1f} s")


# --------------------------------------------------------------------------------------------------
# guest side: the outcome report


class _OutcomeWriter:
    """Writes one JSON line per test (inside the VM) combining setup, call and teardown."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.current: dict[str, dict[str, Any]] = {}
        self.started: dict[str, tuple[float, ...]] = {}
        try:
            self.console: int | None = os.open("/dev/console", os.O_WRONLY | os.O_NOCTTY)
        except OSError:
            self.console = None

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        """Tell the host (on the console) that a test starts: it timestamps the line."""
        self.started[nodeid] = _cpu_snapshot()
        if self.console is not None:
            from dkproto.lab.guest_init import MARK

            os.write(self.console, f"\n{MARK}test {nodeid}\n".encode())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rec = self.current.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed",
                                                      "duration": 0.0})
        rec["duration"] += report.duration
        if report.when == "teardown" and report.nodeid in self.started:
            rec.update(_cpu_spent(self.started.pop(report.nodeid), _cpu_snapshot()))
        if rec["outcome"] != "passed":
            pass  # keep the first non-pass outcome
        elif hasattr(report, "wasxfail"):
            rec["outcome"] = "xfailed" if report.skipped else "passed"
            rec["reason"] = report.wasxfail
        elif report.skipped:
            rec["outcome"] = "skipped"
            lr = report.longrepr
            rec["reason"] = lr[2] if isinstance(lr, tuple) else str(lr)
        elif report.failed:
            rec["outcome"] = "failed"
            rec["when"] = report.when
            rec["text"] = report.longreprtext
        if report.when == "teardown":
            with open(self.path, "a") as f:
                f.write(json.dumps(self.current.pop(report.nodeid)) + "\n")


def _cpu_snapshot() -> tuple[float, ...]:
    """(wall, this process's CPU, its reaped children's CPU, the guest's busy and total CPU time
    over every CPU) in seconds, for :func:`_cpu_spent`."""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = total = 0.0
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        total = sum(fields[:8]) / hz
        busy = total - (fields[3] + fields[4]) / hz  # minus idle and iowait
    except (OSError, ValueError, IndexError):
        pass
    return (time.monotonic(), me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime, busy, total)


def _cpu_spent(before: tuple[float, ...], after: tuple[float, ...]) -> dict[str, float]:
    """Where a test's time went, from two :func:`_cpu_snapshot` s: ``wall`` (setup to teardown),
    ``cpu_pytest`` (the in-VM pytest process), ``cpu_children`` (the processes it ran and
    reaped), ``cpu_guest`` (every guest CPU busy: all processes, the kernel, the device-side programs) and
    ``guest_idle`` (guest CPU time spent idle: waiting on sleeps, timeouts, the bus)."""
    d = [a - b for a, b in zip(after, before)]
    return {"wall": round(d[0], 3), "cpu_pytest": round(d[1], 3), "cpu_children": round(d[2], 3),
            "cpu_guest": round(d[3], 3), "guest_idle": round(d[4] - d[3], 3)}


def pytest_report_to_lab(config: pytest.Config) -> None:
    """Inside the VM, register the outcome writer when the host asked for a report."""
    path = os.environ.get(REPORT_ENV)
    if path and inside_lab():
        config.pluginmanager.register(_OutcomeWriter(path), "dkproto-lab-report")


# --------------------------------------------------------------------------------------------------
# guest side: fixtures


@pytest.fixture(scope="session")
def lab_definitions() -> dict[str, Any]:
    """Every lab device definition, by name (``devices/lab`` and ``DKPROTO_LAB_DEVICES``)."""
    from dkproto.lab.devices import load_definitions

    return load_definitions()


@pytest.fixture
def lab_gadget(lab_definitions: dict[str, Any]) -> Iterator[Callable[..., Any]]:
    """Factory: ``g = lab_gadget("hid-keyboard")`` creates and binds that gadget in the VM.

    The argument is a definition name or the path of a definition file (``....json``).

    Returns the :class:`~dkproto.lab.gadget.Gadget` (device-side controls: ``send_report``,
    ``read_report``, ``serial``, ``unplug``/``replug``, ``ffs``, ``host_nodes``...), already
    configured by the host. Every gadget made is unbound and removed after the test.
    Outside the lab the test is skipped.
    """
    if not inside_lab():
        pytest.skip("lab_gadget works inside the lab VM only (run pytest with --lab)")
    from dkproto.lab.gadget import Gadget

    made: list[Gadget] = []

    def make(name: str, *, udc: str | None = None, bind: bool = True, wait: float = 10.0) -> Gadget:
        if name.endswith(".json"):
            from dkproto.lab.devices import load_definition

            definition = load_definition(Path(name))
        elif name in lab_definitions:
            definition = lab_definitions[name]
        else:
            raise LookupError(f"no lab device named {name!r} (known: {', '.join(sorted(lab_definitions))})")
        g = Gadget(definition, udc=udc, instance=f"{definition.name}-{len(made)}")
        made.append(g)
        g.create()
        if bind:
            g.bind(wait=wait)
        return g

    yield make
    for g in reversed(made):
        g.remove()


@pytest.fixture
def lab_capture(lab_definitions: dict[str, Any]) -> Iterator[Callable[..., Any]]:
    """Factory: ``live = lab_capture("descriptors/hackrf-one.json")`` serves a captured
    descriptor set over USB/IP and attaches it (``usbip attach``) in the VM.

    The argument is a ``capture`` definition name or the path of a corpus-format JSON file.
    Returns a :class:`~dkproto.lab.usbip.LiveCapture` (``.bus``, ``.address``, ``.sysfs``,
    ``.server.requests``); every capture is detached after the test.
    """
    if not inside_lab():
        pytest.skip("lab_capture works inside the lab VM only (run pytest with --lab)")
    from contextlib import ExitStack

    from dkproto.lab.usbip import serve_capture

    with ExitStack() as stack:

        def make(source: str) -> Any:
            target: Any = lab_definitions[source] if source in lab_definitions else Path(source)
            return stack.enter_context(serve_capture(target))

        yield make


@pytest.fixture(scope="session")
def lab_session_items() -> list[str]:
    """Names of the QEMU devices attached for the whole lab session."""
    return _session_devices()
