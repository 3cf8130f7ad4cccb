"""At-least-once, end to end, with real processes over HTTP (issue 7, item 4).

The shipped pipeline commands run again and again against the simulator while J1 changes,
each run stopped at a random moment (while collecting, or just after the collector exited),
by SIGTERM or SIGKILL, hitting the collector, the filter, the consumer or all of them:

- pipe form (Logstash's `pipe` input): `j1filter collect ... | j1filter --line-buffered | consumer`,
  the consumer appending each line it takes to a file, slower than the collector;
- spool form (timer + Filebeat/Logstash file input): `j1filter collect ... --map --spool DIR`,
  where every renamed `*.ndjson` counts as delivered (the shipper's registry takes over).

Then clean runs as the schedule makes them. The union of what was delivered must hold every
entity at its current version: for the spool form after one scheduled run; for the pipe form
after the next full collection (an output lost downstream of a finished collector is re-sent
by the next incremental when it changed since the last full snapshot, else by the next full
one). J1FILTER_SLOW_TESTS=1 runs 200 iterations instead of 8.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from collect_helpers import ACCOUNT_ID, TOKEN, make_entity

from j1filter.collect._timestamps import timestamp_ms
from j1filter.collect.simulator import Simulator

REPO_ROOT = Path(__file__).resolve().parents[2]
SLOW = os.environ.get("J1FILTER_SLOW_TESTS") == "1"
ITERATIONS = 200 if SLOW else 8
ENV = {**os.environ, "J1_API_TOKEN": TOKEN, "J1_ACCOUNT_ID": ACCOUNT_ID, "PYTHONPATH": str(REPO_ROOT)}
J1FILTER = [sys.executable, "-m", "j1filter"]
# a consumer slower than the collector (as Logstash under back-pressure): it takes 0.3 s to
# get to the first line, then 10 ms a line
SLOW_CONSUMER = (
    'IFS= read -r line || exit 0; sleep 0.3; printf "%s\\n" "$line";'
    ' while IFS= read -r line; do sleep 0.01; printf "%s\\n" "$line"; done'
)


def collect_command(sim: Simulator, state: Path, *extra: str) -> list[str]:
    # the shipped option set; the loop makes every third run a full one with --full (as the schedule
    # would every --full-interval), and the overlap shrinks to the test's pace (15 min would cover
    # the whole test and hide a wrong incremental base)
    return [
        *J1FILTER, "collect", "--once", "--full-interval", "1h", "--overlap", "50ms",
        "--checkpoint", str(state / "checkpoint.json"),
        "--endpoint", sim.url, "--rate-limit", "0", "--timeout", "5", "--max-retry-wait", "0.05", "--quiet", *extra,
    ]  # fmt: skip


class PipeForm:
    """`collect | j1filter --line-buffered | consumer` as three processes."""

    name = "pipe"

    def __init__(self, sim: Simulator, state: Path) -> None:
        self.sim, self.state = sim, state
        self.delivered = state / "delivered.ndjson"

    def start(self, *extra: str) -> list[subprocess.Popen[bytes]]:
        collector = subprocess.Popen(
            collect_command(self.sim, self.state, *extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=ENV,
        )
        mapper = subprocess.Popen(
            [*J1FILTER, "--line-buffered", "--quiet"],
            stdin=collector.stdout, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV,
        )  # fmt: skip
        with open(self.delivered, "ab") as sink:
            consumer = subprocess.Popen(["sh", "-c", SLOW_CONSUMER], stdin=mapper.stdout, stdout=sink)
        assert collector.stdout and mapper.stdout
        collector.stdout.close()
        mapper.stdout.close()
        return [collector, mapper, consumer]

    def documents(self) -> list[dict[str, Any]]:
        if not self.delivered.exists():
            return []
        return [
            orjson.loads(line) for line in self.delivered.read_bytes().splitlines() if line.endswith(b"}")
        ]


class SpoolForm:
    """`collect --map --spool DIR`; a renamed spool file is what a shipper reads."""

    name = "spool"

    def __init__(self, sim: Simulator, state: Path) -> None:
        self.sim, self.state = sim, state
        self.spool = state / "spool"
        self.spool.mkdir()

    def start(self, *extra: str) -> list[subprocess.Popen[bytes]]:
        command = collect_command(self.sim, self.state, "--map", "--spool", str(self.spool), *extra)
        return [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)]

    def documents(self) -> list[dict[str, Any]]:
        documents = []
        for path in sorted(self.spool.glob("*.ndjson")):
            lines = path.read_bytes().splitlines()
            assert all(line.endswith(b"}") for line in lines), (
                f"{path.name}: a renamed spool file is complete"
            )
            documents.extend(orjson.loads(line) for line in lines)
        return documents


def stop_at_random(
    processes: list[subprocess.Popen[bytes]], sim: Simulator, rng: random.Random, *, after_exit: bool = False
) -> str:
    """Stop the pipeline at a random moment; returns what was done, for the failure message."""
    how = rng.choice([signal.SIGTERM, signal.SIGKILL])
    if after_exit or rng.random() < 0.4:  # just after the collector finished: the hand-over is the risk
        processes[0].wait(timeout=30)
        victims = processes[1:] or processes
        moment = "after the collector exited"
    else:  # at any moment of the collection (about 0.4 s once the first request is in)
        asked = len(sim.requests)
        deadline = time.monotonic() + 10
        while len(sim.requests) == asked and time.monotonic() < deadline and processes[0].poll() is None:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.5))
        victims = rng.choice([processes[:1], processes[1:2], processes[-1:], processes])
        moment = "while collecting"
    for process in victims:
        if process.poll() is None:
            process.send_signal(how)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a survivor whose reader died: ends at its next write
            process.kill()
            process.wait()
    return f"{how.name} {moment}"


def current_versions(sim: Simulator) -> dict[str, str]:
    return {item["id"]: str(item["entity"]["_version"]) for item in sim.entities}


def delivered_versions(documents: list[dict[str, Any]]) -> set[tuple[str, str]]:
    found = set()
    for doc in documents:
        assert "error" not in doc, doc.get("error")
        found.add((doc["event"]["id"], doc["jupiter_one"]["asset"]["entity"]["_version"]))
    return found


def missing(form: PipeForm | SpoolForm, sim: Simulator) -> list[str]:
    delivered = delivered_versions(form.documents())
    return [
        f"{key[-4:]}@v{version}"
        for key, version in current_versions(sim).items()
        if (key, version) not in delivered
    ]


@pytest.mark.parametrize("form_class", [PipeForm, SpoolForm], ids=["pipe", "spool"])
def test_nothing_is_lost_whatever_is_stopped_when(
    tmp_path: Path, form_class: type[PipeForm | SpoolForm]
) -> None:
    rng = random.Random(f"at-least-once-{form_class.name}")
    entities = [make_entity(index) for index in range(24)]
    with Simulator(entities, token=TOKEN, account_id=ACCOUNT_ID, page_size=3) as sim:
        sim.page_delay = 0.03  # eight pages: a collection takes long enough to be cut anywhere
        form = form_class(sim, tmp_path)
        stops = []
        runs = ITERATIONS // 2
        for iteration in range(runs):
            for _ in range(rng.randint(1, 3)):  # J1 changes between runs
                sim.update(rng.choice(entities)["id"], {"revision": rng.randint(1, 10**6)})
            processes = form.start(*(["--full"] if iteration % 4 == 0 else []))
            # the last one is always the case of the issue: stopped right after the collector finished
            stops.append(stop_at_random(processes, sim, rng, after_exit=iteration == runs - 1))

        clean = form.start()  # the next scheduled run (an incremental one), undisturbed
        assert [process.wait(timeout=60) for process in clean] == [0] * len(clean)
        if isinstance(form, SpoolForm):
            assert missing(form, sim) == [], f"lost after {stops}"
        else:  # differential: everything changed since the last full snapshot came again
            state = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
            since = state["full_started_ms"] - 50
            changed = [
                item for item in sim.entities if (timestamp_ms(item["entity"]["_beginOn"]) or 0) > since
            ]
            lost = set(missing(form, sim)) & {f"{i['id'][-4:]}@v{i['entity']['_version']}" for i in changed}
            assert not lost, f"changed since the last full snapshot, lost after {stops}"
        full = form.start("--full")  # the schedule's next full collection
        assert [process.wait(timeout=60) for process in full] == [0] * len(full)
        assert missing(form, sim) == [], f"lost after {stops}"
    assert not list(tmp_path.glob("spool/.*.part")), "a clean run leaves no partial spool file"
