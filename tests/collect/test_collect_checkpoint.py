"""The schedule and --checkpoint: full and differential incremental collections, poison, corruption, crash safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from collect_helpers import (
    ACCOUNT_ID,
    FAST_OPTIONS,
    TOKEN,
    Collect,
    make_entity,
)
from faults import Fault, Simulator

from j1filter.collect._timestamps import iso_from_ms, timestamp_ms
from j1filter.collect.checkpoint import (
    Checkpoint,
    CheckpointError,
    incremental_query,
    load_checkpoint,
    plan_collection,
    save_checkpoint,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
QUERY = "FIND (Finding | Alert | Vulnerability)"


# -- pure parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-02T05:52:51.488Z", 1_714_629_171_488),
        ("2024-05-01T22:52:51.488-07:00", 1_714_629_171_488),
        ("2024-05-02T05:52:51", 1_714_629_171_000),
        (1_714_629_171_488, 1_714_629_171_488),
        (1_714_629_171_488.0, 1_714_629_171_488),
        ("1714629171488", 1_714_629_171_488),
        ("yesterday", None),
        (True, None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_begin_on_is_read_from_iso_strings_and_epoch_numbers(value: object, expected: int | None) -> None:
    assert timestamp_ms(value) == expected


def test_iso_rendering_round_trips() -> None:
    assert iso_from_ms(1_714_629_171_488) == "2024-05-02T05:52:51.488Z"
    assert timestamp_ms(iso_from_ms(1_714_629_171_007)) == 1_714_629_171_007


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (QUERY, f"{QUERY} WITH _beginOn > date(2024-05-02T05:52:51.488Z)"),
        (
            "find Finding with severity = 'high' or open = true",
            "find Finding WITH _beginOn > date(2024-05-02T05:52:51.488Z) AND (severity = 'high' or open = true)",
        ),
        (
            "FIND Finding WITH name = 'return as that'",
            "FIND Finding WITH _beginOn > date(2024-05-02T05:52:51.488Z) AND (name = 'return as that')",
        ),
    ],
)
def test_incremental_query_adds_the_time_filter(query: str, expected: str) -> None:
    assert incremental_query(query, 1_714_629_171_488) == expected


@pytest.mark.parametrize(
    "query",
    ["FIND Finding THAT HAS Host", "FIND Finding AS f RETURN f._id", "FIND Finding LIMIT 5", "MATCH x"],
)
def test_queries_that_cannot_be_narrowed_are_refused(query: str) -> None:
    with pytest.raises(ValueError, match="need a query of the form"):
        incremental_query(query, 0)
    assert plan_collection(_checkpoint(query, full=NOW - HOUR), NOW, **SCHEDULE).kind == "full"


NOW = 1_800_000_000_000
HOUR = 3_600_000
SCHEDULE = {"full_interval_ms": 24 * HOUR, "overlap_ms": 15 * 60_000}


def _checkpoint(query: str = QUERY, *, full: int | None) -> Checkpoint:
    return Checkpoint(query, full, full, "full" if full is not None else None)


@pytest.mark.parametrize(
    ("full", "force", "kind", "reason"),
    [
        (None, False, "full", "no completed full snapshot yet"),
        (NOW - HOUR, False, "incremental", ""),
        (NOW - 24 * HOUR + 1, False, "incremental", ""),
        (NOW - 24 * HOUR, False, "full", "the last full snapshot is --full-interval old"),
        (NOW - HOUR, True, "full", "--full"),
        (NOW + HOUR, False, "full", "the checkpoint's full snapshot lies in the future (clock changed?)"),
    ],
)
def test_the_schedule_picks_full_or_incremental_from_our_own_clock(
    full: int | None, force: bool, kind: str, reason: str
) -> None:
    plan = plan_collection(_checkpoint(full=full), NOW, force_full=force, **SCHEDULE)
    assert (plan.kind, plan.reason, plan.started_ms) == (kind, reason, NOW)
    if kind == "full":
        assert (plan.j1ql, plan.snapshot_ms) == (QUERY, NOW)
        assert plan.after(_checkpoint(full=full)) == Checkpoint(QUERY, NOW, NOW, "full")
    else:
        assert full is not None
        base = iso_from_ms(full - 15 * 60_000)
        assert (plan.j1ql, plan.snapshot_ms) == (f"{QUERY} WITH _beginOn > date({base})", full)
        assert plan.after(_checkpoint(full=full)) == Checkpoint(QUERY, full, NOW, "incremental")


def test_checkpoint_round_trips_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    saved = Checkpoint(QUERY, NOW - HOUR, NOW, "incremental")
    save_checkpoint(path, saved)
    assert load_checkpoint(path, QUERY) == saved
    assert [entry.name for entry in tmp_path.iterdir()] == ["state.json"]
    assert json.loads(path.read_text())["full_started"] == iso_from_ms(NOW - HOUR)


def test_a_checkpoint_of_another_query_or_the_old_format_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_checkpoint(path, Checkpoint("FIND Finding", NOW, NOW, "full"))
    assert load_checkpoint(path, QUERY) == Checkpoint(QUERY)
    path.write_text(json.dumps({"format": 1, "query": QUERY, "watermark_ms": 4102444800000, "recent": {}}))
    assert load_checkpoint(path, QUERY) == Checkpoint(QUERY)  # the old, entity-time watermark is dropped


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"format": 2}',
        b'{"format": 3, "query": "FIND Finding"}',
        b'{"format": 2, "query": 5}',
        b'{"format": 2, "query": "FIND (Finding | Alert | Vulnerability)", "full_started_ms": "soon"}',
        b'{"format": 2, "query": "FIND (Finding | Alert | Vulnerability)", "full_started_ms": 1e20}',
        b'{"format": 2, "query": "FIND (Finding | Alert | Vulnerability)", "full_started_ms": 100000000000000000000}',
        b'{"format": 2, "query": "FIND (Finding | Alert | Vulnerability)", "last_kind": "partial"}',
    ],
)
def test_a_corrupt_checkpoint_is_an_error_that_says_what_to_do(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(
        CheckpointError, match=r"is not a valid j1filter checkpoint .*; delete it to start over"
    ):
        load_checkpoint(path, QUERY)


# -- over HTTP -------------------------------------------------------------------------


def test_first_full_then_differential_incrementals_then_full_again(
    collect: Collect, simulator: Simulator, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "j1.checkpoint"
    first = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    assert first.code == 0 and len(first.ids) == 25
    (meta,) = {json.dumps(c) for c in first.collections}
    started = json.loads(meta)["started"]
    assert json.loads(meta) == {"started": started, "kind": "full", "snapshot": started}
    state = json.loads(checkpoint.read_text())
    assert (state["full_started"], state["last_kind"]) == (started, "full")

    # J1 changes after the snapshot: every incremental re-reads all changes since the snapshot
    # (no cross-run dedupe), so a lost incremental output is delivered again by the next one
    changed_at = timestamp_ms(started) + 1  # type: ignore[operator]
    simulator.entities[3] = make_entity(3, version=2, begin_ms=changed_at)
    simulator.entities[5] = make_entity(5, version=2, begin_ms=changed_at, deleted=True)
    for _ in range(2):
        again = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
        assert again.code == 0
        assert again.items == [simulator.entities[3], simulator.entities[5]]
        assert {c["kind"] for c in again.collections} == {"incremental"}
        assert {c["snapshot"] for c in again.collections} == {started}
    base = iso_from_ms(timestamp_ms(started) - 15 * 60_000)  # type: ignore[operator]
    assert simulator.graphql_requests()[-1].j1ql == f"{QUERY} WITH _beginOn > date({base})"

    forced = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint), "--full")
    assert len(forced.ids) == 25 and {c["kind"] for c in forced.collections} == {"full"}
    assert json.loads(checkpoint.read_text())["full_started"] == forced.collections[0]["started"]


@pytest.mark.parametrize(
    ("begin_on", "reported"),
    [
        ("2099-01-01T00:00:00.000Z", True),
        ("10000-01-01T00:00:00Z", True),
        (1e20, True),
        (10**20, True),
        ("garbage", True),
        ("9" * 5000, True),
        (-5, False),
        ("-62135596800001", False),
    ],
)
def test_a_poisoned_begin_on_moves_nothing_and_is_reported_once(
    collect: Collect, simulator: Simulator, tmp_path: Path, begin_on: object, reported: bool
) -> None:
    checkpoint = tmp_path / "j1.checkpoint"
    simulator.entities[7]["entity"]["_beginOn"] = begin_on
    simulator.entities[8]["entity"]["_beginOn"] = begin_on
    first = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    assert first.code == 0 and len(first.ids) == 25
    warnings = [line for line in first.stderr.splitlines() if "_beginOn in the future" in line]
    assert len(warnings) == reported and all("2 entities" in line for line in warnings), first.stderr
    assert json.loads(checkpoint.read_text())["full_started"] == first.collections[0]["started"]
    # the next collection is an ordinary incremental that still sees later changes
    simulator.entities[9] = make_entity(9, version=2, begin_ms=int(time.time() * 1000) + 1000)
    second = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    assert second.code == 0 and simulator.entities[9]["id"] in second.ids


def test_a_failed_run_keeps_the_checkpoint_and_the_rerun_loses_nothing(
    collect: Collect, simulator: Simulator, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "j1.checkpoint"
    assert collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint)).code == 0
    before = checkpoint.read_bytes()

    later = int(time.time() * 1000) + 1000
    changed = [make_entity(index, version=2, begin_ms=later + index) for index in range(6)]
    simulator.entities[:6] = changed
    simulator.add_fault(Fault.graphql_error("Internal server error"), after=2)
    crashed = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    assert crashed.code == 1
    assert crashed.items == changed[:4]  # two pages out before page 3 failed
    assert checkpoint.read_bytes() == before

    rerun = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    assert rerun.code == 0
    assert {*crashed.ids, *rerun.ids} == {item["id"] for item in changed}
    assert len(rerun.ids) == 6  # at worst repeated, never lost


def test_a_killed_run_keeps_the_checkpoint_and_the_rerun_loses_nothing(
    collect: Collect, simulator: Simulator, tmp_path: Path
) -> None:
    """A real crash: the process is SIGKILLed while it waits for page 3."""
    checkpoint = tmp_path / "j1.checkpoint"
    simulator.add_fault(Fault.slow(30), after=2)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "j1filter",
            "collect",
            *FAST_OPTIONS,
            "--timeout",
            "60",
            "--endpoint",
            simulator.url,
            "--checkpoint",
            str(checkpoint),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "J1_API_TOKEN": TOKEN, "J1_ACCOUNT_ID": ACCOUNT_ID},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    received = _read_lines(process, count=4, timeout=15)
    _wait_for(lambda: simulator.pending_faults() == 0, timeout=15)  # page 3 has been asked for
    process.kill()
    process.wait(timeout=10)
    assert len(received) == 4  # pages 1 and 2 were flushed before the crash
    assert not checkpoint.exists()

    rerun = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    assert rerun.code == 0
    assert {json.loads(line)["id"] for line in received} <= set(rerun.ids)
    assert len(rerun.ids) == 25 and checkpoint.exists()


def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def _read_lines(process: subprocess.Popen[bytes], count: int, timeout: float) -> list[bytes]:
    """Up to `count` lines of the child's stdout, waiting at most `timeout` seconds."""
    lines: list[bytes] = []

    def reader() -> None:
        assert process.stdout is not None
        while len(lines) < count and (line := process.stdout.readline()):
            lines.append(line)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    return lines
