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
    share = Path(tempfile.mkdtemp())
    child_env = dict(os.environ, DKPROTO_LAB="1", DKPROTO_LAB_REPORT=str(share / "report.jsonl"))
    child_env.pop("PYTEST_ADDOPTS", None)
    if on_ready:
        on_ready(0.5)
    res = subprocess.run(argv, cwd=cwd, env=child_env, capture_output=True)
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
