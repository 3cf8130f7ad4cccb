#!/usr/bin/env python3
"""Instructions per entity, counted by callgrind: the benchmark's deterministic measure.

Runs ``python -m j1filter`` under ``valgrind --tool=callgrind`` on the first ``--low`` and
the first ``--high`` entities of the benchmark corpus (same seed, so one is a prefix of the
other) and prints (instructions(high) - instructions(low)) / (high - low): the cost of one
entity once its programs are compiled, start-up and compilation cancelled out.

    .venv/bin/python bench/instructions.py --low 2200 --high 6200 [--cwd DIR]
    .venv/bin/python bench/instructions.py --hand-written   # also per kind: j1filter / hand-written

With ``--hand-written``, the same for each kind that has a reference mapper
(bench/handwritten.py), on a corpus of that kind alone: j1filter's instructions per entity
against the hand-written mapper's.
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
from benchmark import HANDWRITTEN, REPO, make_corpus


def instructions(python: str, corpus: Path, cwd: Path, out: Path, kind: str | None = None) -> int:
    """Total instructions (Ir) of one run of the filter over ``corpus`` (with ``kind``: of the
    hand-written mapper of that kind)."""
    command = [python, "-m", "j1filter", "-q"]
    if kind is not None:
        command = [python, "-c", HANDWRITTEN, str(corpus), os.devnull, kind, str(REPO / "bench")]
    with open(corpus, "rb") as stdin:
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
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


def per_entity(
    python: str,
    low: int,
    high: int,
    seed: int = 1,
    cwd: Path = REPO,
    kind: str | None = None,
    hand_written: bool = False,
) -> float:
    """Instructions per entity between the ``low``-th and the ``high``-th entity of the corpus
    (of ``kind`` alone, if given), by j1filter or by the hand-written mapper of ``kind``."""
    with tempfile.TemporaryDirectory() as tmp:
        counts = []
        for n in (low, high):
            corpus = Path(tmp) / f"corpus-{n}.ndjson"
            make_corpus(corpus, n, seed, kind=kind)
            out = Path(tmp) / f"callgrind-{n}.out"
            counts.append(instructions(python, corpus, cwd, out, kind if hand_written else None))
    return (counts[1] - counts[0]) / (high - low)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--low", type=int, default=2200)
    parser.add_argument("--high", type=int, default=6200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cwd", type=Path, default=REPO, help="the checkout whose j1filter runs")
    parser.add_argument(
        "--hand-written", action="store_true", help="also per kind against its reference mapper"
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    value = per_entity(sys.executable, args.low, args.high, args.seed, args.cwd)
    print(f"instructions per entity (callgrind, entities {args.low + 1:,} to {args.high:,}): {value:,.0f}")
    if args.hand_written:
        from handwritten import MAPPERS

        for kind in MAPPERS:
            ours = per_entity(sys.executable, args.low, args.high, args.seed, args.cwd, kind)
            theirs = per_entity(
                sys.executable, args.low, args.high, args.seed, args.cwd, kind, hand_written=True
            )
            print(
                f"  {kind}: j1filter {ours:,.0f}, hand-written {theirs:,.0f} per entity; "
                f"hand-written/j1filter {theirs / ours:.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
