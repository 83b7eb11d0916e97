"""The README opens with the two commands, and CI runs the second one verbatim."""

from __future__ import annotations

import re

from corpus_path import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block, "README has no opening sh block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_install_run_and_test_commands() -> None:
    install_run, test = _readme_commands()
    assert install_run == "pip install . && dkproto dump"
    assert "python -m pytest" in test


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test = _readme_commands()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in [line.strip() for line in ci if not line.lstrip().startswith("#")]
