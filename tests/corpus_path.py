"""Where the shared corpus is: ``$DKPROTO_CORPUS``, else ``../shared/corpus`` beside the clone.

CI runs in a fresh clone with a copy of ``shared/`` beside it; developers' machines have it at
``/work/shared``. A missing corpus is an error (the corpus tests are the done-when of the
descriptor and HID issues), never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def corpus_root() -> Path:
    """The corpus folder (``usb/``, ``hid/``, ``oracle/``)."""
    env = os.environ.get("DKPROTO_CORPUS")
    candidates = [Path(env)] if env else [REPO.parent / "shared" / "corpus", Path("/work/shared/corpus")]
    for cand in candidates:
        if (cand / "usb").is_dir() and (cand / "oracle").is_dir():
            return cand
    raise RuntimeError(
        "the shared corpus is not found: set DKPROTO_CORPUS or put shared/ beside the clone "
        f"(tried {', '.join(str(c) for c in candidates)})"
    )


CORPUS = corpus_root()
