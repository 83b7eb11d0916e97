"""Every shell command in the fenced ``sh`` blocks of README.md and docs/*.md runs as written.

The rules are in ``tests/doc_commands.py``. Here, on the host: the commands that need no device
run in a scratch folder holding the repository; ``python -m pytest`` commands are collected
(paths exist, quoted test counts are true); the steps ``.ci/run`` performs are found there; an
illustrative command carries its reason. Commands that need a device run in the lab tier
(``tests/lab/test_doc_commands_lab.py``), which also checks that every lab device they name
exists.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import doc_commands as dc

ALL = dc.all_commands()
HOST = [c for c in ALL if c.where == "host"]
PYTEST = [c for c in ALL if c.where == "pytest"]


def _env(scratch: Path) -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="120", HOME=str(scratch))
    env.pop("DKPROTO_RECORD", None)
    env.pop("DKPROTO_REPLAY", None)
    bindir = str(Path(sys.executable).parent)  # the python and dkproto of this environment
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def test_the_docs_have_commands_and_every_one_is_classified() -> None:
    assert len(ALL) > 60, "the collector lost the docs' commands"
    for c in ALL:
        assert c.where in ("host", "lab", "ci", "pytest", "skip"), c
        if c.where == "skip":
            assert len(c.reason) >= 10, f"{c.id}: 'not run here' needs a reason a reader can act on"
    # Each kind occurs: a rule that stops matching would otherwise hide commands.
    assert {c.where for c in ALL} >= {"host", "lab", "ci", "pytest", "skip"}


def test_the_lab_commands_name_lab_devices_or_files() -> None:
    from dkproto.lab.devices import definition_from_file, load_definitions

    known = load_definitions()
    for c in ALL:
        for d in c.devices:
            if d not in known:
                definition_from_file(dc.REPO / d)  # raises if neither a definition nor a capture file


def test_ci_steps_are_what_ci_runs() -> None:
    ci = (dc.REPO / ".ci" / "run").read_text()
    segments = {s.strip() for line in ci.splitlines() if not line.lstrip().startswith("#")
                for s in line.split("&&")}
    for c in ALL:
        for step in c.steps:
            if step == "pip install .":
                assert "pip install -e '.[test,lab]'" in segments, c.id  # what 'pip install .' does, and more
            else:
                assert step in segments, f"{c.id}: {step!r} is not in .ci/run"


@pytest.mark.parametrize("cmd", PYTEST, ids=[c.id for c in PYTEST])
def test_pytest_command_collects(cmd: dc.DocCommand, tmp_path: Path) -> None:
    # As written (the shell expands its globs), plus --collect-only; one -q, for the "N tests collected" line.
    args = " ".join(w for w in cmd.text.split()[3:] if w != "-q")
    line = f"python -m pytest --collect-only -q -p no:cacheprovider {args}"
    proc = subprocess.run(["bash", "-c", line], cwd=dc.REPO, capture_output=True, text=True, timeout=300,
                          env=_env(tmp_path), check=False)
    assert proc.returncode == 0, f"{cmd.id}: {cmd.text}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    m = re.search(r"^(\d+) tests? collected", proc.stdout, re.MULTILINE) or re.search(r"^(\d+)/\d+ tests collected",
                                                                               proc.stdout, re.MULTILINE)
    assert m, proc.stdout[-500:]
    collected = int(m.group(1))
    assert collected > 0
    quoted = dc.quoted_test_count(cmd.comment)
    if quoted is not None:
        assert quoted == collected, f"{cmd.id}: the doc says {quoted} tests, {collected} are collected"


def _blocks(cmds: list[dc.DocCommand]) -> dict[tuple[str, int], list[dc.DocCommand]]:
    out: dict[tuple[str, int], list[dc.DocCommand]] = {}
    for c in cmds:
        out.setdefault((c.file, c.block), []).append(c)
    return out


HOST_BLOCKS = _blocks(HOST)


@pytest.mark.parametrize("key", list(HOST_BLOCKS), ids=[f"{f}#{b}" for f, b in HOST_BLOCKS])
def test_host_commands_run_as_written(key: tuple[str, int], tmp_path: Path) -> None:
    scratch = dc.scratch_tree(tmp_path / "repo")
    for cmd in HOST_BLOCKS[key]:
        proc = subprocess.run(["bash", "-c", cmd.text], cwd=scratch, capture_output=True, text=True, timeout=300,
                              env=_env(tmp_path), stdin=subprocess.DEVNULL, check=False)
        assert proc.returncode == cmd.exit_status, (
            f"{cmd.id}: {cmd.text}\nexit {proc.returncode}, the doc says {cmd.exit_status}\n"
            f"stdout: {proc.stdout[-1500:]}\nstderr: {proc.stderr[-1500:]}")
        assert "Traceback (most recent call last)" not in proc.stderr, f"{cmd.id}: {proc.stderr[-2000:]}"


def test_collector_rules() -> None:
    """The collector itself, on a made-up doc."""
    doc = """# T

```sh
dkproto dump x   # a comment with 'quotes' # and hashes
echo 'a # not a comment' \\
    b
# not run here: needs a real Logitech receiver
dkproto hid watch 046d:c52b
# in the lab: dkproto lab run -d ffs-vendor -d descriptors/hackrf-one -- <command>
dkproto ctrl usb://1d6b:0117 0xc0 0x01 0 0 2
# on the host
dkproto lint x   # (exit status 1)
for h in a b; do
    echo $h; done
pip install . && dkproto dump
dkproto lab run -d cdc-acm -- dkproto serial list
python -m pytest -q tests/unit   # 12 tests
```
"""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "docs").mkdir()
        (root / "README.md").write_text(doc)
        got = dc.all_commands(root)
    summary = [(c.line, c.where, c.text, c.devices, c.exit_status) for c in got]
    assert summary == [
        (4, "host", "dkproto dump x", (), 0),
        (5, "host", "echo 'a # not a comment' b", (), 0),
        (8, "skip", "dkproto hid watch 046d:c52b", (), 0),
        (10, "lab", "dkproto ctrl usb://1d6b:0117 0xc0 0x01 0 0 2", ("ffs-vendor", "descriptors/hackrf-one"), 0),
        (12, "host", "dkproto lint x", (), 1),
        (13, "host", "for h in a b; do echo $h; done", (), 0),
        (15, "host", "dkproto dump", (), 0),
        (16, "lab", "dkproto serial list", ("cdc-acm",), 0),
        (17, "pytest", "python -m pytest -q tests/unit", (), 0),
    ]
    assert got[2].reason == "needs a real Logitech receiver"
    assert got[6].steps == ["pip install ."]
    assert dc.quoted_test_count(got[8].comment) == 12


def test_lab_md_lists_every_lab_device() -> None:
    """docs/lab.md's device table names exactly the devices 'dkproto lab devices' lists."""
    from dkproto.lab.devices import load_definitions

    text = (dc.REPO / "docs" / "lab.md").read_text()
    table = text[text.index("| name | kind | what |"):]
    table = table[:table.index("\n\n")]
    named = {n for row in table.splitlines()[2:] for n in re.findall(r"`([a-z0-9][a-z0-9_.-]*)`", row.split("|")[1])}
    assert named == set(load_definitions()), (sorted(named - set(load_definitions())),
                                              sorted(set(load_definitions()) - named))
