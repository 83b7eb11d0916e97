"""The shell commands of the docs: every fenced ``sh`` block of ``README.md`` and ``docs/*.md``.

Used by ``tests/unit/test_doc_commands.py`` (host) and ``tests/lab/test_doc_commands_lab.py``
(inside the lab VM) to run each command as written. The rules, which readers of the docs see
as comments in the blocks themselves:

* Each line is one command (a trailing ``\\`` continues it; a ``for ...; do`` loop runs to its
  ``done``). ``#`` starts a comment, outside quotes.
* A comment line ``# in the lab: dkproto lab run [-d DEVICE]... -- <command>`` (then any note)
  says that the
  commands after it in the block need a device: they run inside the lab VM with those devices
  up, exactly as that ``lab run`` would provide them. A command written as
  ``dkproto lab run [-d DEVICE]... -- CMD`` runs there too.
* A comment line ``# not run here: REASON`` marks the commands after it in the block as
  illustrative (hardware, an interactive program, hours of fuzzing); the reason is required.
* ``# on the host:`` switches back.
* The commands of a block run one after the other in one scratch folder that holds the
  repository's files (so a block may write a file and read it in its next command).
* ``pip install`` steps and the lab's ``prepare --install`` are what ``.ci/run`` does before
  the tests; they are checked to be there, not run again. ``python -m pytest ARGS`` is checked
  with ``--collect-only``: its paths must exist, and a count quoted in its comment (``352
  tests``) must be the number collected.
* A trailing comment ``(exit status N)`` states a non-zero exit status; otherwise a command must
  exit 0.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: What ``.ci/run`` runs before the tests (checked by the host test).
CI_STEPS = ("pip install", "dkproto lab prepare")

_LAB_DIRECTIVE = re.compile(r"^#\s*in the lab:\s*(?P<cmd>dkproto lab run\b.*?-- <command>)(?:\s.*)?$")
_SKIP_DIRECTIVE = re.compile(r"^#\s*not run here:\s*(?P<reason>\S.*?)\s*$")
_HOST_DIRECTIVE = re.compile(r"^#\s*on the host:?\s*$")
_EXIT = re.compile(r"\(exit status (\d+)\)")
_BLOCK = re.compile(r"^```sh[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


@dataclass
class DocCommand:
    """One command of a doc, and where it runs."""

    file: str  # relative to the repository
    line: int  # 1-based line of the command's first line
    block: int  # index of its block in the file
    text: str  # the shell text, comments and continuations removed
    comment: str = ""
    where: str = "host"  # host | lab | ci | pytest | skip
    devices: tuple[str, ...] = ()  # lab devices (names or files)
    reason: str = ""  # why not run here
    exit_status: int = 0
    steps: list[str] = field(default_factory=list)  # for where="ci": the steps .ci/run must hold

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def doc_files(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def split_comment(line: str) -> tuple[str, str]:
    """``(command, comment)``: ``#`` at the start of a word, outside quotes, starts the comment."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"':
                continue
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def lab_run_parts(text: str) -> tuple[tuple[str, ...], str] | None:
    """``(devices, inner command)`` of ``dkproto lab run [-d D]... -- CMD``; ``None`` otherwise."""
    if not text.startswith("dkproto lab run"):
        return None
    words = shlex.split(text)
    if "--" not in words:
        return None
    cut = words.index("--")
    opts, inner = words[3:cut], words[cut + 1:]
    devices = []
    i = 0
    while i < len(opts):
        if opts[i] in ("-d", "--device") and i + 1 < len(opts):
            devices.append(opts[i + 1])
            i += 2
        elif opts[i].startswith("--device="):
            devices.append(opts[i].split("=", 1)[1])
            i += 1
        else:
            i += 1 + (opts[i] in ("--timeout", "--udcs"))
    return tuple(devices), shlex.join(inner)


def _logical_lines(body: str, first_line: int) -> list[tuple[int, str]]:
    """``(line number, text)`` with continuations joined and ``for``/``while`` loops whole."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for n, raw in enumerate(body.splitlines(), start=first_line):
        if pending is not None:
            start, acc = pending
            code, comment = split_comment(raw)
            acc = acc + " " + code.strip()
            if acc.endswith("\\"):
                pending = (start, acc[:-1].rstrip())
                continue
            if re.match(r"^(for|while)\b", acc) and not re.search(r"\bdone\b", acc):
                pending = (start, acc)
                continue
            out.append((start, acc + (f"  # {comment}" if comment else "")))
            pending = None
            continue
        code, comment = split_comment(raw)
        if code.endswith("\\"):
            pending = (n, code[:-1].rstrip())
            continue
        if re.match(r"^\s*(for|while)\b", code) and not re.search(r"\bdone\b", code):
            pending = (n, code.strip())
            continue
        out.append((n, raw))
    if pending is not None:
        out.append(pending)
    return out


def commands(path: Path, root: Path = REPO) -> list[DocCommand]:
    """Every command of one doc file, classified (see the module doc)."""
    text = path.read_text()
    rel = str(path.relative_to(root))
    out: list[DocCommand] = []
    for b, m in enumerate(_BLOCK.finditer(text)):
        first = text.count("\n", 0, m.start(1)) + 1
        mode, devices, reason = "host", (), ""
        for n, raw in _logical_lines(m.group(1), first):
            code, comment = split_comment(raw)
            code = code.strip()
            if not code:
                if d := _LAB_DIRECTIVE.match("#" + comment if comment else ""):
                    parts = lab_run_parts(d["cmd"].replace("<command>", "true"))
                    mode, devices, reason = "lab", parts[0] if parts else (), ""
                elif d := _SKIP_DIRECTIVE.match("#" + comment if comment else ""):
                    mode, devices, reason = "skip", (), d["reason"]
                elif _HOST_DIRECTIVE.match("#" + comment if comment else ""):
                    mode, devices, reason = "host", (), ""
                continue
            cmd = DocCommand(rel, n, b, code, comment, where=mode, devices=devices, reason=reason)
            if e := _EXIT.search(comment):
                cmd.exit_status = int(e.group(1))
            if mode == "host":
                _classify(cmd)
            out.append(cmd)
    return out


def _classify(cmd: DocCommand) -> None:
    segments = [s.strip() for s in cmd.text.split("&&")]
    ci = [s for s in segments if s.startswith(CI_STEPS)]
    rest = [s for s in segments if not s.startswith(CI_STEPS)]
    if ci and (not rest or rest == ["python -m pytest --lab"]):
        cmd.where, cmd.steps = "ci", segments
        return
    cmd.steps = ci
    cmd.text = " && ".join(rest)
    if parts := lab_run_parts(cmd.text):
        cmd.where, cmd.devices, cmd.text = "lab", parts[0], parts[1]
    elif cmd.text.startswith("python -m pytest"):
        cmd.where = "pytest"


def all_commands(root: Path = REPO) -> list[DocCommand]:
    return [c for p in doc_files(root) for c in commands(p, root)]


def quoted_test_count(comment: str) -> int | None:
    """The ``N tests`` figure of a pytest command's comment, if any."""
    m = re.search(r"\b([\d,]+) tests\b", comment)
    return int(m.group(1).replace(",", "")) if m else None


def scratch_tree(dest: Path, root: Path = REPO) -> Path:
    """A scratch folder holding the repository's top-level entries as symlinks (files written by
    a command land in the scratch folder, not in the repository)."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.name.startswith(".") and entry.name not in (".ci",):
            continue
        link = dest / entry.name
        if not link.exists():
            link.symlink_to(entry)
    return dest
