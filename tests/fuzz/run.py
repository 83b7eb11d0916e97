"""Run dkproto's fuzz harnesses under atheris/libFuzzer, one harness (one process) at a time.

    python tests/fuzz/run.py usb_walker --runs 100000          # one harness
    python tests/fuzz/run.py --all --seconds 120                # every harness, 2 minutes each
    python tests/fuzz/run.py hid_codec --replay crash-1234      # run files through a harness
    python tests/fuzz/run.py hid_codec --minimize crash-1234 -o tests/fuzz/regressions/hid_codec/x

Each harness runs in its own ``harness.py`` subprocess, seeded from the repository's own data
(``seeds.py``) in a work folder (``--workdir``; default a temporary folder removed at the end).
Crashers (``crash-*``, ``timeout-*``, ``oom-*``) are written to ``--crashes`` (default
``.fuzz/crashes/<harness>/`` in the repository; ``.fuzz/`` is git-ignored). At the end a summary
line per harness gives the inputs executed, exec/s and the crashes found; the exit status is
non-zero when any harness crashed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import seeds
import targets

HARNESS_PY = HERE / "harness.py"
DEFAULT_CRASHES = REPO / ".fuzz" / "crashes"

_DONE = re.compile(r"^#(\d+)\s+DONE\b.*?exec/s: (\d+)", re.MULTILINE)
_DONE_RUNS = re.compile(r"^Done (\d+) runs in (\d+) second", re.MULTILINE)
_PROGRESS = re.compile(r"^#(\d+)\s+(?:pulse|NEW|REDUCE|INITED|DONE)\b.*?exec/s: (\d+)", re.MULTILINE)
_EXECUTED = re.compile(r"^stat::number_of_executed_units:\s*(\d+)", re.MULTILINE)
_CRASH_PREFIXES = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")


@dataclass
class Result:
    """What one harness run did."""

    harness: str
    returncode: int
    runs: int
    seconds: float
    exec_per_s: float
    crashes: list[str]
    log: Path

    @property
    def crashed(self) -> bool:
        return self.returncode != 0 or bool(self.crashes)


def libfuzzer_args(harness: str, *, runs: int | None, seconds: int | None, rss_mb: int, timeout: int,
                   max_len: int | None = None) -> list[str]:
    """The libFuzzer options of one run (no corpus folders)."""
    h = targets.HARNESSES[harness]
    args = [f"-rss_limit_mb={rss_mb}", f"-timeout={timeout}", f"-max_len={max_len or h.max_len}",
            "-print_final_stats=1", "-detect_leaks=0"]
    if runs is not None:
        args.append(f"-runs={runs}")
    if seconds is not None:
        args.append(f"-max_total_time={seconds}")
    return args


def parse_stats(output: str, wall: float) -> tuple[int, float, float]:
    """``(inputs executed, seconds, exec/s)`` from libFuzzer's output.

    ``#N DONE ... exec/s: X`` and ``Done N runs in S second(s)`` when the run ended normally;
    the last progress line otherwise (a crash ends the run without them).
    """
    runs, secs, rate = 0, wall, 0.0
    done = _DONE_RUNS.findall(output)
    if done:
        runs, secs = int(done[-1][0]), float(done[-1][1])
    final = _DONE.findall(output)
    if final:
        runs = max(runs, int(final[-1][0]))
        rate = float(final[-1][1])
    if not runs:
        executed = _EXECUTED.findall(output)
        progress = _PROGRESS.findall(output)
        if executed:
            runs = int(executed[-1])
        elif progress:
            runs, rate = int(progress[-1][0]), float(progress[-1][1])
    if runs and (not rate or secs >= 2):
        rate = runs / max(secs, 1.0) if secs else runs / max(wall, 1e-3)
    return runs, secs, rate


def run_harness(harness: str, *, workdir: Path, crashes: Path, runs: int | None, seconds: int | None,
                rss_mb: int, timeout: int, extra: list[str] | None = None, quiet: bool = False,
                ignore: list[str] | None = None) -> Result:
    """Seed and run one harness in a subprocess; its output goes to ``workdir/<harness>.log``."""
    workdir = workdir.resolve()
    corpus = workdir / "corpus" / harness
    seed_dir = workdir / "seeds" / harness
    if not seed_dir.exists():
        seeds.write_seeds(harness, seed_dir, max_len=targets.HARNESSES[harness].max_len)
    corpus.mkdir(parents=True, exist_ok=True)
    dict_path = workdir / "dict" / f"{harness}.dict"
    dict_args = [f"-dict={dict_path}"] if seeds.write_dictionary(harness, dict_path) else []
    out_dir = crashes / harness
    out_dir.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in out_dir.iterdir()}
    cmd = [sys.executable, str(HARNESS_PY), harness, str(corpus), str(seed_dir),
           *libfuzzer_args(harness, runs=runs, seconds=seconds, rss_mb=rss_mb, timeout=timeout),
           f"-artifact_prefix={out_dir}{os.sep}", *dict_args, *(extra or [])]
    log = workdir / f"{harness}.log"
    env = dict(os.environ, DKFUZZ_TMP=str(workdir / "tmp" / harness), DKFUZZ_IGNORE="\n".join(ignore or []))
    if not quiet:
        print(f"== {harness}: {' '.join(cmd[2:])}", flush=True)
    start = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=workdir, check=False)
    wall = time.monotonic() - start
    output = log.read_text(errors="replace")
    n, secs, rate = parse_stats(output, wall)
    found = sorted(p.name for p in out_dir.iterdir() if p.name not in before and p.name.startswith(_CRASH_PREFIXES))
    if proc.returncode and not quiet:
        tail = output[output.rfind("=== Uncaught") if "=== Uncaught" in output else max(0, len(output) - 3000):]
        print(tail[:4000], flush=True)
    return Result(harness, proc.returncode, n, secs, rate, [str(out_dir / c) for c in found], log)


def summary(results: list[Result]) -> str:
    """One line per harness."""
    lines = [f"{'harness':<18} {'inputs':>10} {'seconds':>8} {'exec/s':>8}  crashes"]
    for r in results:
        what = ", ".join(r.crashes) if r.crashes else ("none" if not r.returncode else f"exit {r.returncode}")
        lines.append(f"{r.harness:<18} {r.runs:>10,} {r.seconds:>8.0f} {r.exec_per_s:>8.0f}  "
                     f"{len(r.crashes) or (1 if r.returncode else 0)} ({what})")
    return "\n".join(lines)


def replay(harness: str, files: list[str]) -> int:
    """Run files through the harness (libFuzzer replays each once); returns the exit status."""
    cmd = [sys.executable, str(HARNESS_PY), harness, *libfuzzer_args(harness, runs=None, seconds=None,
                                                                        rss_mb=2048, timeout=30), *files]
    # A replayed input takes every check, sampled ones included (targets.ALL_CHECKS).
    return subprocess.run(cmd, check=False, env=dict(os.environ, DKFUZZ_ALL_CHECKS="1")).returncode


def minimize(harness: str, crash: str, output: str | None, seconds: int) -> int:
    """libFuzzer's -minimize_crash=1 on one crasher, for ``seconds``."""
    out = output or f"{crash}.min"
    cmd = [sys.executable, str(HARNESS_PY), harness, "-minimize_crash=1", f"-max_total_time={seconds}",
           f"-exact_artifact_path={out}", "-rss_limit_mb=2048", "-timeout=30", crash]
    # Every check on every input: a shorter input may hash out of a sampled check's subset.
    rc = subprocess.run(cmd, check=False, env=dict(os.environ, DKFUZZ_ALL_CHECKS="1")).returncode
    print(f"minimized input: {out}")
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("harness", nargs="?", choices=sorted(targets.HARNESSES), help="the harness to run")
    ap.add_argument("--all", action="store_true", help="run every harness, one after the other")
    ap.add_argument("--runs", type=int, default=None, help="inputs per harness (-runs)")
    ap.add_argument("--seconds", type=int, default=None, help="time per harness (-max_total_time)")
    ap.add_argument("--rss-mb", type=int, default=2048, help="memory limit per harness (-rss_limit_mb)")
    ap.add_argument("--timeout", type=int, default=10, help="seconds one input may take (-timeout)")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="seeds, corpus and logs (default: a temporary folder, removed at the end)")
    ap.add_argument("--crashes", type=Path, default=DEFAULT_CRASHES, help="where crashers go (per harness)")
    ap.add_argument("--replay", nargs="+", metavar="FILE", help="run these files through the harness and exit")
    ap.add_argument("--minimize", metavar="CRASH", help="minimize one crasher (-minimize_crash=1) and exit")
    ap.add_argument("-o", "--output", help="with --minimize: where the minimized input goes")
    ap.add_argument("--ignore", action="append", default=[], metavar="TEXT",
                    help="swallow exceptions whose type, message or traceback contains TEXT (explore past a "
                         "known finding; repeatable)")
    ap.add_argument("--list", action="store_true", help="list the harnesses")
    ap.add_argument("libfuzzer", nargs="*", default=[], help="extra libFuzzer options, after --")
    args = ap.parse_args(argv)
    if args.list:
        for h in targets.HARNESSES.values():
            print(f"{h.name:<18} {h.summary}")
        return 0
    if args.harness and args.replay:
        return replay(args.harness, args.replay)
    if args.harness and args.minimize:
        return minimize(args.harness, args.minimize, args.output, args.seconds or 60)
    names = sorted(targets.HARNESSES) if args.all else [args.harness] if args.harness else []
    if not names:
        ap.error("name a harness or pass --all")
    if args.runs is None and args.seconds is None:
        args.seconds = 60
    own = args.workdir is None
    # Absolute: the harness subprocess runs with the work folder as its current directory.
    workdir = Path(tempfile.mkdtemp(prefix="dkfuzz-work-")) if own else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for name in names:
            results.append(run_harness(name, workdir=workdir, crashes=args.crashes, runs=args.runs,
                                       seconds=args.seconds, rss_mb=args.rss_mb, timeout=args.timeout,
                                       extra=args.libfuzzer, ignore=args.ignore))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        print(summary(results))
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs and corpus in {workdir}")
    return 1 if any(r.crashed for r in results) or len(results) < len(names) else 0


if __name__ == "__main__":
    sys.exit(main())
