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

import atheris  # noqa: F401 - in the test extra; without it this module must fail, not skip
import pytest

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


#: Regression inputs of findings not fixed in dkproto yet (/tmp/dk/fuzz-findings.md): expected to
#: fail, strictly, so that the fix shows up as an XPASS and the entry is removed with it.
OPEN_FINDINGS: dict[str, tuple[type[BaseException], str]] = {}


def _regression_params() -> list[object]:
    out: list[object] = []
    for harness, path in _regression_files():
        key = f"{harness}/{path.name}"
        marks = []
        if key in OPEN_FINDINGS:
            raises, reason = OPEN_FINDINGS[key]
            marks.append(pytest.mark.xfail(raises=raises, strict=True, reason=reason))
        out.append(pytest.param(harness, path, id=key, marks=marks))
    return out


@pytest.mark.parametrize(("harness", "path"), _regression_params())
def test_regression_input(harness: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The target returns for anything dkproto handled (a DkError included); any other exception,
    # or a RoundTripError, is the bug the file was saved for, back again. Replayed inputs take
    # every check, the sampled ones (renderings, the Construct comparison) included.
    monkeypatch.setattr(targets, "ALL_CHECKS", True)
    targets.HARNESSES[harness].target(path.read_bytes())


def test_regressions_name_known_harnesses() -> None:
    if REGRESSIONS.is_dir():
        unknown = {p.name for p in REGRESSIONS.iterdir() if p.is_dir()} - set(targets.HARNESSES)
        assert not unknown, f"regression folders for no harness: {unknown}"
