"""The pytest lab mechanism without a VM: ``dkproto.lab.vm.run`` is replaced by a fake that runs
the in-VM pytest in a subprocess (as the VM would, with DKPROTO_LAB=1) and returns its report,
so the host-side proxies are tested for pass, fail, skip, xfail and a dead VM."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import pytest

pytestmark = pytest.mark.lab

def test_passes():
    assert True

def test_fails():
    assert 1 + 1 == 3, "in-VM arithmetic"

def test_skips():
    pytest.skip("no such device in the VM")

@pytest.mark.xfail(reason="known in-VM bug")
def test_xfails():
    assert False

@pytest.mark.skipif(True, reason="skipif evaluated in the VM")
def test_skipif_in_vm():
    pass
"""

FAKE_VM = """
import os, subprocess, sys, tempfile
from pathlib import Path
import dkproto.lab.vm as vm
from dkproto.lab.vm import LabResult, LabTimeoutError

CALLS = []

def fake_run(argv, *, env=None, keep_results=False, on_ready=None, cwd=None, **kw):
    CALLS.append(argv)
    if os.environ.get("FAKE_VM_DIES"):
        raise LabTimeoutError("the lab did not finish within 5 s: QEMU killed", "kernel: last words")
    share = kw.get("results_dir") or Path(tempfile.mkdtemp())
    child_env = dict(os.environ, DKPROTO_LAB="1", DKPROTO_LAB_REPORT=str(share / "report.jsonl"))
    child_env.pop("PYTEST_ADDOPTS", None)
    if on_ready:
        on_ready(0.5)
    res = subprocess.run(argv, cwd=cwd, env=child_env, capture_output=True)
    if os.environ.get("FAKE_VM_DIES_AFTER"):
        report = share / "report.jsonl"
        lines = report.read_text().splitlines()[:int(os.environ["FAKE_VM_DIES_AFTER"])]
        report.write_text("\\n".join(lines) + "\\n")
        raise LabTimeoutError("the lab did not finish within 5 s: QEMU killed", "kernel: late words")
    return LabResult(returncode=res.returncode, output=res.stdout, results_dir=share, boot_seconds=0.5)

vm.run = fake_run
"""


@pytest.fixture()
def lab_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_in_lab=TESTS)
    pytester.makeconftest(FAKE_VM)
    pytester.makeini("[pytest]\nmarkers =\n    lab: lab\n")
    return pytester


def test_without_lab_every_lab_test_is_skipped_with_the_reason(lab_project: pytest.Pytester) -> None:
    res = lab_project.runpytest("-rs")
    res.assert_outcomes(skipped=5)
    res.stdout.fnmatch_lines(["*lab test: run with --lab (boots the QEMU lab, see docs/lab.md)*"])


def test_in_vm_outcomes_are_reported_on_the_host(lab_project: pytest.Pytester) -> None:
    res = lab_project.runpytest_subprocess("--lab", "-rsxf")
    res.assert_outcomes(passed=1, failed=1, skipped=2, xfailed=1)
    res.stdout.fnmatch_lines([
        "*failed inside the lab VM, call*",
        "*in-VM arithmetic*",
    ])
    res.stdout.fnmatch_lines(["*in lab VM*no such device in the VM*"])
    res.stdout.fnmatch_lines(["*in lab VM*skipif evaluated in the VM*"])
    res.stdout.fnmatch_lines(["*dkproto lab: 5 test(s) ran in one VM*"])


def test_a_dead_vm_fails_every_lab_test_with_the_console_tail(lab_project: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VM_DIES", "1")
    res = lab_project.runpytest_subprocess("--lab")
    res.assert_outcomes(failed=5)
    res.stdout.fnmatch_lines(["*lab VM error*the lab did not finish within 5 s*", "*kernel: last words*"])


def test_selection_boots_for_the_selected_lab_tests_only(lab_project: pytest.Pytester) -> None:
    res = lab_project.runpytest_subprocess("--lab", "-k", "passes or skips")
    res.assert_outcomes(passed=1, skipped=1)
    res.stdout.fnmatch_lines(["*dkproto lab: 2 test(s) ran in one VM*"])


def test_a_vm_dying_late_keeps_the_outcomes_it_reported(lab_project: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VM_DIES_AFTER", "2")  # the VM reported test_passes and test_fails
    res = lab_project.runpytest_subprocess("--lab", "-rf")
    res.assert_outcomes(passed=1, failed=4)
    res.stdout.fnmatch_lines(["*failed inside the lab VM, call*"])
    res.stdout.fnmatch_lines(["*lab VM error*the lab did not finish within 5 s*", "*kernel: late words*"])
    res.stdout.fnmatch_lines(["*the lab VM failed after 2 of 5 test(s) reported*"])


def test_lab_report_and_durations_give_each_tests_in_vm_time(lab_project: pytest.Pytester) -> None:
    out = lab_project.path / "lab-report.jsonl"
    res = lab_project.runpytest_subprocess("--lab", f"--lab-report={out}", "--durations=0", "-vv")
    res.assert_outcomes(passed=1, failed=1, skipped=2, xfailed=1)
    import json

    recs = {r["nodeid"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(recs) == 5
    rec = recs["test_in_lab.py::test_passes"]
    assert rec["outcome"] == "passed"
    for key in ("wall", "cpu_pytest", "cpu_children", "cpu_guest", "guest_idle"):
        assert isinstance(rec[key], float) and rec[key] >= 0.0, (key, rec)
    # the proxy's call reports the in-VM duration, not the host's wait for the whole VM session
    durations = [line for line in res.stdout.lines if line.rstrip().endswith("test_in_lab.py::test_passes")
                 and " call " in line]
    assert durations and float(durations[0].split("s", 1)[0]) < 1.0, res.stdout.str()
