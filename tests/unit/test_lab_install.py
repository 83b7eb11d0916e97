"""``dkproto lab prepare --install``: which packages are missing, and how installing them fails."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from dkproto.errors import MissingToolError, NotPermittedError
from dkproto.lab import kernel


def test_missing_packages_names_the_debian_package_of_each_missing_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    present = {"qemu-system-x86_64", "apt-get", "dpkg-deb"}

    def fake_find(name: str) -> str:
        if name in present:
            return f"/usr/bin/{name}"
        raise MissingToolError(name)

    monkeypatch.setattr(kernel, "find_tool", fake_find)
    assert kernel.missing_packages() == ["busybox-static", "kmod", "usbutils", "usbip", "tshark"]
    assert kernel.missing_packages(include_optional=False) == ["busybox-static", "kmod"]


def test_install_nothing_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("ran a command"))
    kernel.install_packages([])


def test_install_needs_root_and_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel.os, "geteuid", lambda: 1000)
    with pytest.raises(NotPermittedError, match="sudo dkproto lab prepare --install"):
        kernel.install_packages(["busybox-static"])


def test_install_runs_update_then_install_and_reports_apt_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        rc = 100 if "install" in cmd else 0
        return subprocess.CompletedProcess(cmd, rc, "", "E: Unable to locate package kmod\n")

    monkeypatch.setattr(kernel.os, "geteuid", lambda: 0)
    monkeypatch.setattr(kernel.shutil, "which", lambda name, **kw: f"/usr/bin/{name}")
    monkeypatch.setattr(kernel.subprocess, "run", fake_run)
    with pytest.raises(MissingToolError, match="status 100: E: Unable to locate package kmod"):
        kernel.install_packages(["kmod"])
    assert calls[0][1:] == ["update", "-q"]
    assert calls[1][1:] == ["install", "-y", "-q", "--no-install-recommends", "kmod"]


def test_update_only_refreshes_the_lists_without_installing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(kernel.os, "geteuid", lambda: 0)
    monkeypatch.setattr(kernel.shutil, "which", lambda name, **kw: f"/usr/bin/{name}")
    monkeypatch.setattr(kernel.subprocess, "run", fake_run)
    kernel.install_packages([], update_only=True)
    assert [c[1:] for c in calls] == [["update", "-q"]]
