"""pytest hooks: the ``--lab`` option and the ``lab`` marker; the ``--dk-*`` options and ``dk_*`` markers.

Tests marked ``lab`` need the QEMU lab (see ``docs/lab.md``). Without ``--lab`` they are
skipped with a reason that says how to run them. With ``--lab`` on the host they run inside
one lab VM for the whole session (:mod:`dkproto.pytest_plugin.lab`); inside that VM
(``DKPROTO_LAB=1``) they run for real.

Hardware-in-the-loop tests (markers ``dk_device``/``dk_hid``/``dk_serial``, fixtures ``dk_*``,
options ``--dk-url``, ``--dk-hw``, ``--dk-record``, ``--dk-replay``, ``--dk-replay-strict``) are
:mod:`dkproto.pytest_plugin.hil`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from dkproto.pytest_plugin.hil import hil_addoption, hil_configure, hil_makereport, hil_terminal_summary
from dkproto.pytest_plugin.lab import (
    LabProxyItem,
    inside_lab,
    lab_makereport,
    lab_terminal_summary,
    pytest_report_to_lab,
    replace_lab_items,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dkproto")
    group.addoption(
        "--lab",
        action="store_true",
        default=False,
        help="run tests marked 'lab' inside one QEMU lab VM for the session",
    )
    group.addoption("--lab-timeout", type=float, default=1200.0,
                    help="seconds the lab VM may run before it is killed (default 1200)")
    group.addoption("--lab-udcs", type=int, default=4,
                    help="dummy_hcd controllers in the lab VM, i.e. gadgets bound at once (default 4)")
    group.addoption("--lab-report", metavar="FILE", default=None,
                    help="write the lab tests' outcomes, durations and CPU use (JSON lines) to FILE")
    group.addoption("--lab-echo", action="store_true", default=False,
                    help="show the in-VM pytest output as it runs")
    hil_addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs the QEMU lab VM (run with --lab)")
    pytest_report_to_lab(config)
    hil_configure(config)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--lab"):
        skip = pytest.mark.skip(reason="lab test: run with --lab (boots the QEMU lab, see docs/lab.md)")
        for item in items:
            if "lab" in item.keywords:
                item.add_marker(skip)
        return
    if inside_lab():
        return
    replace_lab_items(config, items)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lab_terminal_summary(terminalreporter, config)
    hil_terminal_summary(terminalreporter, config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if isinstance(report, pytest.TestReport):
        hil_makereport(item, call, report)
        if isinstance(item, LabProxyItem):
            lab_makereport(item, call, report)
    return report
