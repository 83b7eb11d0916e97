"""The docs' commands that need a device, run inside the lab VM as ``dkproto lab run`` would.

The commands under a ``# in the lab: dkproto lab run -d ... -- <command>`` line (and
each ``dkproto lab run -d ... -- CMD`` written out) run here, one device set at a time (each
set brought up once, its commands in doc order, each block in its own scratch folder), with the
named devices provided by the agent's own :func:`dkproto.lab.agent.provide` (gadgets with
their peers, captures over USB/IP, files made into devices), in a scratch folder holding the
repository. Every one must exit as its doc says. See ``tests/doc_commands.py`` for the rules.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import doc_commands as dc

pytestmark = pytest.mark.lab

LAB = [c for c in dc.all_commands() if c.where == "lab"]


def _groups() -> dict[str, list[dc.DocCommand]]:
    """The commands that need the same devices, in doc order, keyed by those devices (each
    device set is brought up once)."""
    out: dict[str, list[dc.DocCommand]] = {}
    for c in LAB:
        out.setdefault(" ".join(c.devices) or "(default set)", []).append(c)
    return out


GROUPS = _groups()


def test_the_docs_have_lab_commands() -> None:
    assert len(LAB) >= 15, [c.id for c in LAB]


@pytest.mark.parametrize("key", list(GROUPS))
def test_lab_commands_run_as_written(key: str, tmp_path: Path) -> None:
    from dkproto.lab.agent import provide
    from dkproto.lab.devices import load_definitions, select

    cmds = GROUPS[key]
    names = [str(dc.REPO / d) if "/" in d else d for d in cmds[0].devices]
    definitions = select(names or None, load_definitions())  # no -d: the default set, as lab run
    env = dict(os.environ, NO_COLOR="1", COLUMNS="120")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    with provide([d for d in definitions if d.kind != "qemu"], settle=20.0) as missing:
        assert not missing, f"{key}: devices not on the bus: {missing}"
        ran: set[str] = set()
        for cmd in cmds:
            if cmd.text in ran:
                continue  # the docs repeat a few commands (dump -d of the same capture): run once per device set
            ran.add(cmd.text)
            # one scratch folder per block: a block may write a file and read it back
            scratch = dc.scratch_tree(tmp_path / f"{cmd.file.replace('/', '_')}-{cmd.block}")
            proc = subprocess.run(["bash", "-c", cmd.text], cwd=scratch, capture_output=True, text=True,
                                  timeout=180, env=env, stdin=subprocess.DEVNULL, check=False)
            assert proc.returncode == cmd.exit_status, (
                f"{cmd.id}: {cmd.text}\nexit {proc.returncode}, the doc says {cmd.exit_status}\n"
                f"stdout: {proc.stdout[-1500:]}\nstderr: {proc.stderr[-1500:]}")
            assert "Traceback (most recent call last)" not in proc.stderr, f"{cmd.id}: {proc.stderr[-2000:]}"
