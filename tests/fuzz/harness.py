"""Run one fuzz harness under atheris: ``python tests/fuzz/harness.py NAME [libFuzzer args...]``.

Every dkproto module is imported inside ``atheris.instrument_imports()`` so that libFuzzer's
coverage sees dkproto's branches (and only dkproto's: the standard library and Construct stay
uninstrumented, which keeps the harnesses fast). The remaining arguments go to libFuzzer as is
(corpus folders, ``-runs``, ``-max_total_time``, crash files to replay...). ``run.py`` is the
usual way in.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["dkproto"]):
    import targets


def ignoring(target: Callable[[bytes], None], patterns: list[str]) -> Callable[[bytes], None]:
    """``target``, except that an exception whose type, message or traceback contains one of
    ``patterns`` is swallowed (to explore past a known finding: ``run.py --ignore``)."""

    def run(data: bytes) -> None:
        try:
            target(data)
        except Exception as exc:
            text = "".join(traceback.format_exception(exc))
            if not any(p in text for p in patterns):
                raise

    return run


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.HARNESSES:
        sys.exit(f"usage: {sys.argv[0]} HARNESS [libFuzzer args...]; harnesses: {', '.join(targets.HARNESSES)}")
    harness = targets.HARNESSES[sys.argv[1]]
    # Load the lazily built corpus tables before fuzzing, so their cost is not an input's.
    if harness.name == "hid_codec_corpus":
        targets.fuzz_hid_codec_corpus(b"\0\0")
    elif harness.name == "plist_match":
        targets.match_devices()
    patterns = [p for p in os.environ.get("DKFUZZ_IGNORE", "").split("\n") if p]
    target = ignoring(harness.target, patterns) if patterns else harness.target
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
