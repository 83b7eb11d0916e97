"""A clone alone passes its tests: nothing in the repository points outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from corpus_path import HID_DIR, ORACLE_DIR, REPO, USB_DIR

#: Paths of one particular machine, or of folders beside the clone that a user's clone lacks.
#: Spelt in pieces so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join([
        r"(?:^|[^A-Za-z0-9_.~])/" + r"(?:work|Users|home)/[A-Za-z]",  # a developer's home or work folder
        r"\.\./" + r"shared\b",  # the reference folder beside a developer's clone
        r"[A-Za-z]:\\" + r"Users\\",  # a Windows home folder
    ])
)
SKIP_SUFFIXES = {".lsusb", ".rdesc", ".ids", ".img", ".bin"}


def _repo_files() -> list[Path]:
    """Every file git tracks or would track (untracked but not ignored); the tree if not a checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=REPO, capture_output=True, check=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}
        names = [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                 if p.is_file() and not skip & set(p.relative_to(REPO).parts)]
    return [REPO / n for n in names if (REPO / n).is_file()]


def test_no_file_names_a_path_outside_the_repository() -> None:
    hits = []
    files = _repo_files()
    assert len(files) > 100
    for path in files:
        if path.suffix in SKIP_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()[:120]}")
    assert hits == []


def test_the_pattern_catches_what_it_is_for() -> None:
    bad = ["x = Path('/" + "work/shared/corpus')", "see ../" + "shared/corpus/usb", "/" + "home/alice/x",
           "cd /" + "Users/bob", "C:\\" + "Users\\carol"]
    good = ["/dev/ttyGS0", "/sys/kernel/debug/hid", "mount /root/proc", "descriptors/oracle/usb/x.lsusb",
            "shared/data/usb.ids", "https://example.org/work/x"]
    assert [s for s in bad if not OUTSIDE.search(s)] == []
    assert [s for s in good if OUTSIDE.search(s)] == []


def test_every_capture_has_its_kernel_oracle_in_the_repository() -> None:
    usb = sorted(USB_DIR.glob("*.json"))
    hid = sorted(HID_DIR.glob("*.json"))
    assert len(usb) == 34 and len(hid) == 69
    missing = [f"usb/{p.stem}.lsusb" for p in usb if not (ORACLE_DIR / "usb" / f"{p.stem}.lsusb").is_file()]
    missing += [f"hid/{p.stem}.rdesc" for p in hid if not (ORACLE_DIR / "hid" / f"{p.stem}.rdesc").is_file()]
    assert missing == []
    assert (ORACLE_DIR / "README.md").is_file()
