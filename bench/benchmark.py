#!/usr/bin/env python3
"""Throughput benchmark: j1filter end to end vs a bare orjson loads+dumps loop.

Generates a realistic corpus (the bundled sample entities, varied: ids, timestamps in both
ISO and epoch-ms renderings, IPs, severities), then runs, each as its own process reading
the same file and writing to /dev/null:

  baseline   for line in file: out.write(orjson.dumps(orjson.loads(line)) + b"\\n")
  j1filter   python -m j1filter < corpus > /dev/null

and prints documents/s for both, their ratio, and each run's peak memory (max RSS). A
second j1filter run on a tenth of the corpus shows whether memory grows with input size.

Then, per kind with a hand-written reference mapper (bench/handwritten.py; a test keeps its
output byte-equal to j1filter's), a corpus of that kind alone, run the same way by the
orjson loop, the hand-written mapper and j1filter: j1filter's docs per CPU second (less
sensitive to other work on the machine than wall time) as a ratio to both.
Then ``j1filter --workers N`` on the whole corpus: docs/s, the ratio to one process, and
peak memory of the parent and of each worker.

Then peak memory (max RSS of the child process) for input shaped to stress it:

  huge lines      a dozen lines of 12 MB each: one 12 MB text field, or 12 MB of small values
  many kinds      entities of 8,000 distinct kinds (distinct ``_type``): one plan per kind

    ./dev bench                 # 100,000 entities (default)
    ./dev bench --entities 300000 --repeat 3
    ./dev bench --no-memory     # throughput only
    ./dev bench --workers 4     # the workers run with 4 processes (default 2)
    ./dev bench --no-memory --against a4a8545 --repeat 3   # and the first release, alternated
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "j1filter" / "samples" / "entities.ndjson"

BASELINE = """
import sys, orjson
out = open(sys.argv[2], "wb")
with open(sys.argv[1], "rb") as f:
    for line in f:
        out.write(orjson.dumps(orjson.loads(line)) + b"\\n")
"""


HANDWRITTEN = """
import os, sys, time
sys.path.insert(0, sys.argv[4])
from handwritten import MAPPERS
fn, out = MAPPERS[sys.argv[3]], open(sys.argv[2], "wb")
with open(sys.argv[1], "rb") as f:
    for n, line in enumerate(f):
        if n % 512 == 0:  # the clock once per batch, as j1filter reads it once per block
            ms = time.time_ns() // 1_000_000
            now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
        out.write(fn(line, now) + b"\\n")
"""


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def vary(template: dict, rng: random.Random) -> dict:
    """A new entity shaped like ``template``: fresh ids, shifted times, other IPs."""
    entity = json.loads(json.dumps(template))
    new_id = str(uuid.UUID(int=rng.getrandbits(128)))
    entity["id"] = entity["entity"]["_id"] = new_id
    base_ms = 1_700_000_000_000 + rng.randrange(0, 60 * 86_400_000)
    epoch = rng.random() < 0.3  # the legacy rendering
    for key in ("_createdOn", "_beginOn"):
        if key in entity["entity"]:
            ms = base_ms + rng.randrange(0, 86_400_000)
            entity["entity"][key] = ms if epoch else iso(ms)
    props = entity["properties"]
    for key in list(props):
        if key.endswith("On") and isinstance(props[key], (str, int)):
            ms = base_ms + rng.randrange(0, 86_400_000)
            props[key] = ms if epoch else iso(ms)
        elif key in ("deviceLocalIp", "deviceExternalIp"):
            props[key] = f"198.51.100.{rng.randrange(1, 255)}"
    if "numericSeverity" in props and isinstance(props["numericSeverity"], int):
        props["numericSeverity"] = rng.randrange(0, 11)
    return entity


def make_corpus(path: Path, count: int, seed: int, kind: str | None = None) -> int:
    """``count`` entities varied from the samples (those of ``_type`` ``kind`` only, if given)."""
    rng = random.Random(seed)
    templates = [json.loads(line) for line in SAMPLES.read_text().splitlines()]
    if kind is not None:
        templates = [t for t in templates if kind in json.dumps(t["entity"]["_type"])]
    size = 0
    with path.open("w") as out:
        for _ in range(count):
            line = json.dumps(vary(rng.choice(templates), rng), separators=(",", ":")) + "\n"
            size += len(line)
            out.write(line)
    return size


def make_huge_lines(path: Path, count: int, size: int, small_values: bool) -> None:
    """``count`` entities of about ``size`` bytes each: one big text field, or a list of
    many small values (IP addresses in ``targets``, which the mappings convert)."""
    template = json.loads(SAMPLES.read_text().splitlines()[0])
    with path.open("w") as out:
        for n in range(count):
            entity = json.loads(json.dumps(template))
            entity["id"] = f"huge-{n}"
            if small_values:
                ips = size // 16
                entity["properties"]["targets"] = [
                    f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(ips)
                ]
            else:
                entity["properties"]["description"] = "x" * size
            out.write(json.dumps(entity, separators=(",", ":")) + "\n")


def make_many_kinds(path: Path, kinds: int, per_kind: int, seed: int) -> int:
    """Entities of ``kinds`` distinct ``_type`` values, ``per_kind`` of each, interleaved."""
    rng = random.Random(seed)
    templates = [json.loads(line) for line in SAMPLES.read_text().splitlines()]
    with path.open("w") as out:
        for n in range(kinds * per_kind):
            entity = vary(rng.choice(templates), rng)
            entity["entity"]["_type"] = f"bench_kind_{n % kinds}"
            out.write(json.dumps(entity, separators=(",", ":")) + "\n")
    return kinds * per_kind


def memory_scenarios(python: str, tmp: Path, seed: int) -> None:
    j1filter = [python, "-m", "j1filter", "-q"]
    print("peak memory (max RSS of the j1filter process):")
    for label, small_values in (("12 MB text field", False), ("12 MB of small values", True)):
        path = tmp / "huge.ndjson"
        make_huge_lines(path, 12, 12_000_000, small_values)
        seconds, rss = timed(j1filter, path)
        print(f"  a dozen 12 MB lines, {label:<22}: {rss / 1024:>5.0f} MiB  ({seconds:.1f} s)")
    path = tmp / "kinds.ndjson"
    count = make_many_kinds(path, 8000, 2, seed)
    seconds, rss = timed(j1filter, path)
    print(
        f"  8,000 distinct entity kinds ({count:,} entities)  : {rss / 1024:>5.0f} MiB  "
        f"({count / seconds:,.0f} docs/s)"
    )


def timed(cmd: list[str], stdin_path: Path | None = None, cwd: Path = REPO) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process, measured for that child alone."""
    elapsed, _, rss = timed_cpu(cmd, stdin_path, cwd)
    return elapsed, rss


def timed_cpu(cmd: list[str], stdin_path: Path | None = None, cwd: Path = REPO) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (KiB) of one child process.
    ``python -m j1filter`` imports the package found in ``cwd`` first."""
    with open(stdin_path or os.devnull, "rb") as stdin, open(os.devnull, "wb") as devnull:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdin=stdin, stdout=devnull, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{cmd[:3]} in {cwd} failed with exit code {child.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def contender(python: str, label: str, kind: str, corpus: Path) -> tuple[list[str], Path | None]:
    """The command of one contender of the per-kind comparison, and the file for its stdin."""
    if label == "orjson":
        return [python, "-c", BASELINE, str(corpus), os.devnull], None
    if label == "hand-written":
        return [python, "-c", HANDWRITTEN, str(corpus), os.devnull, kind, str(REPO / "bench")], None
    return [python, "-m", "j1filter", "-q"], corpus


def hand_written_comparison(python: str, tmp: Path, entities: int, repeat: int, seed: int) -> None:
    """Per kind with a reference mapper: orjson loop, hand-written mapper, j1filter. Each runs
    on the corpus of the kind and on its first tenth: docs per CPU second end to end, and once
    started (the extra entities over the extra CPU time: start-up and compilation cancel out,
    as in bench/instructions.py)."""
    sys.path.insert(0, str(REPO / "bench"))
    from handwritten import MAPPERS

    tenth = max(entities // 10, 1)
    print(
        f"per kind, {entities:,} entities of that kind, docs per CPU second (user + system; "
        f"best of {repeat}, alternated); once started: ({entities:,} - {tenth:,}) entities over "
        "the difference in CPU time of the two runs:"
    )
    for kind in MAPPERS:
        corpora = {entities: tmp / f"{kind}.ndjson", tenth: tmp / f"{kind}.tenth.ndjson"}
        for count, path in corpora.items():
            make_corpus(path, count, seed, kind=kind)  # the same seed: the tenth is a prefix

        best: dict[tuple[str, int], float] = {}
        for _ in range(repeat):
            for label in ("orjson", "hand-written", "j1filter"):
                for count, path in corpora.items():
                    seconds = timed_cpu(*contender(python, label, kind, path))[1]
                    best[label, count] = min(best.get((label, count), seconds), seconds)
        rate = {label: entities / best[label, entities] for label in ("orjson", "hand-written", "j1filter")}
        started = {
            label: (entities - tenth) / max(best[label, entities] - best[label, tenth], 1e-9)
            for label in rate
        }
        print(
            f"  {kind:<30}: orjson {rate['orjson']:>8,.0f}, hand-written {rate['hand-written']:>7,.0f}, "
            f"j1filter {rate['j1filter']:>7,.0f} docs/s; j1filter/hand-written "
            f"{rate['j1filter'] / rate['hand-written']:.2f}, hand-written/orjson "
            f"{rate['hand-written'] / rate['orjson']:.2f}, j1filter/orjson {rate['j1filter'] / rate['orjson']:.2f}",
            flush=True,
        )
        print(
            f"  {'  once started':<30}: orjson {started['orjson']:>8,.0f}, hand-written "
            f"{started['hand-written']:>7,.0f}, j1filter {started['j1filter']:>7,.0f} docs/s; "
            f"j1filter/hand-written {started['j1filter'] / started['hand-written']:.2f}, "
            f"j1filter/orjson {started['j1filter'] / started['orjson']:.2f}",
            flush=True,
        )


def workers_comparison(python: str, corpus: Path, entities: int, workers: int, repeat: int) -> None:
    """``--workers N`` against one process on the same corpus, alternated; peak memory."""
    one, many, parent_rss, worker_rss = [], [], 0, 0
    for _ in range(repeat):
        one.append(timed([python, "-m", "j1filter", "-q"], corpus)[0])
        seconds, rss, hwm = timed_with_children(
            [python, "-m", "j1filter", "-q", "--workers", str(workers)], corpus
        )
        many.append(seconds)
        parent_rss, worker_rss = max(parent_rss, rss), max(worker_rss, hwm)
    print(
        f"j1filter --workers {workers:<6}: {entities / min(many):>10,.0f} docs/s  ({min(many):.2f} s), "
        f"{min(one) / min(many):.2f} x one process ({entities / min(one):,.0f} docs/s); peak memory "
        f"{parent_rss / 1024:.0f} MiB parent, {worker_rss / 1024:.0f} MiB per worker "
        "(RSS, pages shared with the parent counted)",
        flush=True,
    )


def timed_with_children(cmd: list[str], stdin_path: Path) -> tuple[float, int, int]:
    """Wall seconds and peak RSS (KiB) of one child process, and the largest peak RSS of its
    own children (VmHWM in /proc, read while they live)."""
    with open(stdin_path, "rb") as stdin, open(os.devnull, "wb") as devnull:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdin=stdin, stdout=devnull, cwd=REPO)
        children_peak = 0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            children_peak = max(children_peak, _children_peak_kib(child.pid))
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed with exit code {child.returncode}")
    return elapsed, usage.ru_maxrss, children_peak


def _children_peak_kib(pid: int) -> int:
    peak = 0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0
    for child in children:
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak


def export_ref(ref: str, dest: Path) -> str:
    """The files of git commit ``ref`` in ``dest`` (nothing else is touched); its short id."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", f"{ref}^{{commit}}"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit], cwd=REPO, check=True, capture_output=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"--against {ref}: not a commit of this repository ({exc})") from None
    dest.mkdir()
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return commit


def compare(
    python: str, corpus: Path, entities: int, repeat: int, ref_dir: Path, ref: str, base_rate: float
) -> None:
    """This checkout against ``ref`` on the same corpus, runs alternated; best of ``repeat``."""
    this_runs, ref_runs = [], []
    for _ in range(repeat):
        this_runs.append(timed_cpu([python, "-m", "j1filter", "-q"], corpus))
        ref_runs.append(timed_cpu([python, "-m", "j1filter", "-q"], corpus, cwd=ref_dir))
    _this_wall, ref_wall = min(r[0] for r in this_runs), min(r[0] for r in ref_runs)
    this_cpu, ref_cpu = min(r[1] for r in this_runs), min(r[1] for r in ref_runs)
    print(
        f"j1filter at {ref:<12}: {entities / ref_wall:>10,.0f} docs/s  ({ref_wall:.2f} s), "
        f"ratio {entities / ref_wall / base_rate:.2f}"
    )
    print(
        f"CPU time this / {ref:<8}: {this_cpu / ref_cpu:.2f}  ({this_cpu:.2f} s / {ref_cpu:.2f} s, "
        "best of each; below 1 is faster)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best is reported")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory scenarios")
    parser.add_argument("--workers", type=int, default=2, help="processes of the workers run (default: 2)")
    parser.add_argument(
        "--against",
        metavar="REF",
        help="also run git commit REF (e.g. a4a8545, the first release) on the same corpus, "
        "alternated with this checkout; REF runs with this environment's packages",
    )
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        small, corpus = Path(tmp) / "small.ndjson", Path(tmp) / "corpus.ndjson"
        make_corpus(small, max(args.entities // 10, 1), args.seed)
        size = make_corpus(corpus, args.entities, args.seed)
        print(
            f"corpus: {args.entities:,} entities, {size / 1e6:.1f} MB "
            f"({size / args.entities:,.0f} bytes/entity), Python {sys.version.split()[0]}"
        )
        _, small_rss = timed([python, "-m", "j1filter", "-q"], small)
        base = min(timed([python, "-c", BASELINE, str(corpus), os.devnull])[0] for _ in range(args.repeat))
        runs = [timed([python, "-m", "j1filter", "-q"], corpus) for _ in range(args.repeat)]
        best = min(t for t, _ in runs)
        rss = max(r for _, r in runs)
        base_rate, rate = args.entities / base, args.entities / best
        print(f"orjson loads+dumps loop : {base_rate:>10,.0f} docs/s  ({base:.2f} s)")
        print(f"j1filter end to end     : {rate:>10,.0f} docs/s  ({best:.2f} s)")
        print(f"ratio j1filter/orjson   : {rate / base_rate:.2f}")
        print(
            f"peak memory (max RSS)   : {rss / 1024:.0f} MiB for {args.entities:,} entities, "
            f"{small_rss / 1024:.0f} MiB for {max(args.entities // 10, 1):,}",
            flush=True,
        )
        if args.against:
            ref = export_ref(args.against, Path(tmp) / "ref")
            compare(python, corpus, args.entities, args.repeat, Path(tmp) / "ref", ref, base_rate)
        if args.workers > 1:
            workers_comparison(python, corpus, args.entities, args.workers, args.repeat)
        hand_written_comparison(python, Path(tmp), max(args.entities // 2, 1), args.repeat, args.seed)
        if not args.no_memory:
            corpus.unlink()
            memory_scenarios(python, Path(tmp), args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
