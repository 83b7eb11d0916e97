"""pytest hooks: the ``--lab`` option and the ``lab`` marker.

Tests marked ``lab`` need the QEMU lab (see ``docs/lab.md``); without ``--lab`` they are
skipped with a reason that says how to run them.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dkproto")
    group.addoption(
        "--lab",
        action="store_true",
        default=False,
        help="run tests marked 'lab' inside one QEMU lab VM for the session",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs the QEMU lab VM (run with --lab)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--lab"):
        return
    skip = pytest.mark.skip(reason="lab test: run with --lab (boots the QEMU lab, see docs/lab.md)")
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(skip)
