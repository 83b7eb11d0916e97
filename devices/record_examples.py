"""Record the examples' hardware suites in the lab, against each example's own gadget.

    python devices/record_examples.py                    # vendor-bulk, hid-keyboard-leds, cdc-acm-serial
    python devices/record_examples.py vendor-bulk        # some of them

For each example: boot the lab with ``devices/<example>/gadget.json`` bound, run
``python -m pytest devices/<example> --dk-record $DKPROTO_LAB_RESULTS/<example>`` in it (the
lab's own writes vanish at power-off; the results share does not), and, when every test passed,
replace ``devices/<example>/recordings/`` with what was recorded. Needs the lab (``dkproto lab
prepare``); one boot per example. See docs/hil.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("vendor-bulk", "hid-keyboard-leds", "cdc-acm-serial")


def record(example: str, timeout: float) -> int:
    from dkproto.lab.devices import load_definition
    from dkproto.lab.vm import run

    definition = load_definition(ROOT / "devices" / example / "gadget.json")
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-rA",
            f"devices/{example}", "--dk-hw", "--dk-record", f"/run/dklab/{example}"]
    with tempfile.TemporaryDirectory(prefix="dkproto-record-") as share:
        result = run(argv, devices=[definition.name], timeout=timeout, cwd=str(ROOT), echo=sys.stdout.buffer,
                     results_dir=Path(share))
        made = sorted((Path(share) / example).glob("*.jsonl"))
        if result.returncode != 0 or not made:
            print(f"record_examples: {example}: pytest exited with {result.returncode}, {len(made)} recording(s); "
                  f"devices/{example}/recordings left as it was", file=sys.stderr)
            return result.returncode or 1
        target = ROOT / "devices" / example / "recordings"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for path in made:
            shutil.copyfile(path, target / path.name)
        print(f"record_examples: {example}: {len(made)} recording(s) in {target.relative_to(ROOT)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("examples", nargs="*", metavar="EXAMPLE", help=f"any of {', '.join(EXAMPLES)} (default: all)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per lab run (default 900)")
    args = parser.parse_args()
    unknown = [e for e in args.examples if e not in EXAMPLES]
    if unknown:
        parser.error(f"no example {', '.join(unknown)} (known: {', '.join(EXAMPLES)})")
    status = 0
    for example in args.examples or EXAMPLES:
        status = record(example, args.timeout) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
