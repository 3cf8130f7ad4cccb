#!/usr/bin/env python3
"""Instructions per entity, counted by callgrind: the benchmark's deterministic measure.

Runs ``python -m j1filter`` under ``valgrind --tool=callgrind`` on the first ``--low`` and
the first ``--high`` entities of the benchmark corpus (same seed, so one is a prefix of the
other) and prints (instructions(high) - instructions(low)) / (high - low): the cost of one
entity once its programs are compiled, start-up and compilation cancelled out.

    ./dev bench --instructions                # entities 2,201 to 6,200 (the default)
    .venv/bin/python bench/instructions.py --low 2200 --high 6200 [--cwd DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import REPO, make_corpus


def instructions(python: str, corpus: Path, cwd: Path, out: Path) -> int:
    """Total instructions (Ir) of one run of the filter over ``corpus``."""
    with open(corpus, "rb") as stdin:
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python, "-m", "j1filter", "-q"],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=cwd,
            env=dict(os.environ, PYTHONHASHSEED="0"),
            check=True,
        )
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise SystemExit(f"no instruction total in {out}")
    return int(match[1])


def per_entity(python: str, low: int, high: int, seed: int = 1, cwd: Path = REPO) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        counts = []
        for n in (low, high):
            corpus = Path(tmp) / f"corpus-{n}.ndjson"
            make_corpus(corpus, n, seed)
            counts.append(instructions(python, corpus, cwd, Path(tmp) / f"callgrind-{n}.out"))
    return (counts[1] - counts[0]) / (high - low)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--low", type=int, default=2200)
    parser.add_argument("--high", type=int, default=6200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cwd", type=Path, default=REPO, help="the checkout whose j1filter runs")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    value = per_entity(sys.executable, args.low, args.high, args.seed, args.cwd)
    print(f"instructions per entity (callgrind, entities {args.low + 1:,} to {args.high:,}): {value:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
