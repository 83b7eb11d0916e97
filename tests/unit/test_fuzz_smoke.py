"""The fuzz harnesses (tests/fuzz/) run, and every saved regression input stays fixed.

* each harness runs briefly under atheris/libFuzzer in a subprocess (at most 3,000 inputs or
  6 seconds, 1 GB of memory): it must exit 0 and have executed a fair number of inputs;
* every file of ``tests/fuzz/regressions/<harness>/`` is replayed in-process through the
  harness's target: it may raise a DkError (the target catches those) and nothing else.

See docs/reliability.md, "Fuzzing".
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

FUZZ_DIR = Path(__file__).resolve().parents[1] / "fuzz"
sys.path.insert(0, str(FUZZ_DIR))  # the harness modules import each other by plain name

import run
import targets

REGRESSIONS = FUZZ_DIR / "regressions"
#: Fewer inputs than this in a smoke run means the harness is broken or hopelessly slow.
MIN_INPUTS = 150


def _regression_files() -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for harness in sorted(targets.HARNESSES):
        folder = REGRESSIONS / harness
        if folder.is_dir():
            out.extend((harness, p) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith("."))
    return out


@pytest.mark.parametrize("harness", sorted(targets.HARNESSES))
def test_harness_runs(harness: str, tmp_path: Path) -> None:
    result = run.run_harness(harness, workdir=tmp_path, crashes=tmp_path / "crashes", runs=3000, seconds=6,
                             rss_mb=1024, timeout=10, quiet=True)
    log = result.log.read_text(errors="replace")
    assert result.returncode == 0 and not result.crashes, f"{harness} crashed:\n{log[-4000:]}"
    assert result.runs > MIN_INPUTS, f"{harness} executed only {result.runs} inputs:\n{log[-2000:]}"


@pytest.mark.parametrize(("harness", "path"), _regression_files(),
                         ids=[f"{h}/{p.name}" for h, p in _regression_files()])
def test_regression_input(harness: str, path: Path) -> None:
    # The target returns for anything dkproto handled (a DkError included); any other exception,
    # or a RoundTripError, is the bug the file was saved for, back again.
    targets.HARNESSES[harness].target(path.read_bytes())


def test_regressions_name_known_harnesses() -> None:
    if REGRESSIONS.is_dir():
        unknown = {p.name for p in REGRESSIONS.iterdir() if p.is_dir()} - set(targets.HARNESSES)
        assert not unknown, f"regression folders for no harness: {unknown}"
