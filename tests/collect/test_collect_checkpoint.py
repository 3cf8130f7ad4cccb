"""Incremental runs with --checkpoint: high-water mark, overlap, deletions, duplicates, crash safety."""

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
from collect_helpers import ACCOUNT_ID, BASE_BEGIN_MS, FAST_OPTIONS, TOKEN, Collect, make_entities, make_entity

from j1filter.collect._timestamps import iso_from_ms, timestamp_ms
from j1filter.collect.checkpoint import (
    Checkpoint,
    CheckpointError,
    DeliveryTracker,
    SeenVersion,
    incremental_query,
    load_checkpoint,
    save_checkpoint,
)
from j1filter.collect.simulator import Fault, Simulator

REPO_ROOT = Path(__file__).resolve().parents[2]
QUERY = "FIND (Finding | Alert | Vulnerability)"
LAST_BEGIN_MS = BASE_BEGIN_MS + 24 * 60_000  # entity 24 of make_entities(25)


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
    "query", ["FIND Finding THAT HAS Host", "FIND Finding AS f RETURN f._id", "FIND Finding LIMIT 5", "MATCH x"]
)
def test_incremental_query_refuses_what_it_cannot_narrow_safely(query: str) -> None:
    with pytest.raises(ValueError, match="--checkpoint needs a query"):
        incremental_query(query, 0)


def test_checkpoint_round_trips_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    saved = Checkpoint(QUERY, 1_714_629_171_488, {"a": SeenVersion(3, False, 1_714_629_171_488)}, 1_714_700_000_000)
    save_checkpoint(path, saved)
    assert load_checkpoint(path, QUERY) == saved
    assert [entry.name for entry in tmp_path.iterdir()] == ["state.json"]
    assert json.loads(path.read_text())["watermark"] == "2024-05-02T05:52:51.488Z"


def test_a_checkpoint_of_another_query_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_checkpoint(path, Checkpoint("FIND Finding", 5, {}, None))
    assert load_checkpoint(path, QUERY) == Checkpoint(QUERY)


def test_a_corrupt_checkpoint_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"format": 1, "query": ')
    with pytest.raises(CheckpointError, match="not a valid j1filter checkpoint"):
        load_checkpoint(path, QUERY)


def test_tracker_drops_versions_already_written_but_keeps_tombstones() -> None:
    tracker = DeliveryTracker(Checkpoint(QUERY), overlap_ms=0)
    assert tracker.should_write(make_entity(1, version=2))
    assert not tracker.should_write(make_entity(1, version=2))
    assert not tracker.should_write(make_entity(1, version=1))  # older than what was written
    assert tracker.should_write(make_entity(1, version=2, deleted=True))  # same version, now deleted
    assert tracker.should_write(make_entity(1, version=3))
    no_version = make_entity(2)
    del no_version["entity"]["_version"]
    assert tracker.should_write(no_version) and tracker.should_write(no_version)


def test_tracker_watermark_is_the_highest_begin_on_and_recent_keeps_the_overlap() -> None:
    tracker = DeliveryTracker(Checkpoint(QUERY), overlap_ms=5 * 60_000)
    for item in make_entities(10):  # _beginOn one minute apart, ISO and epoch mixed
        tracker.should_write(item)
    checkpoint = tracker.next_checkpoint(now_ms=0)
    assert checkpoint.watermark_ms == BASE_BEGIN_MS + 9 * 60_000
    assert sorted(checkpoint.recent) == sorted(item["id"] for item in make_entities(10)[4:])


# -- over HTTP -------------------------------------------------------------------------


def test_incremental_runs_fetch_only_changes_and_deletions(
    collect: Collect, simulator: Simulator, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "j1.checkpoint"

    first = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    assert first.code == 0 and len(first.ids) == 25
    assert simulator.graphql_requests()[0].j1ql == QUERY
    assert simulator.graphql_requests()[0].include_deleted is True
    assert json.loads(checkpoint.read_text())["watermark_ms"] == LAST_BEGIN_MS

    second = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    assert second.code == 0 and second.stdout == b""  # the overlap was re-read and dropped
    since = iso_from_ms(LAST_BEGIN_MS - 15 * 60_000)
    assert simulator.graphql_requests()[-1].j1ql == f"{QUERY} WITH _beginOn > date({since})"
    assert "15 duplicates dropped" in second.stderr  # entities 10..24

    later = LAST_BEGIN_MS + 60_000
    simulator.entities[3] = make_entity(3, version=2, begin_ms=later)
    simulator.entities[5] = make_entity(5, version=2, begin_ms=later, deleted=True)
    simulator.entities.append(make_entity(30, begin_ms=later))
    third = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    assert third.code == 0
    assert third.items == [simulator.entities[3], simulator.entities[5], simulator.entities[-1]]
    assert json.loads(checkpoint.read_text())["watermark_ms"] == later


def test_a_failed_run_keeps_the_checkpoint_and_the_rerun_loses_nothing(
    collect: Collect, simulator: Simulator, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "j1.checkpoint"
    assert collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint)).code == 0
    before = checkpoint.read_bytes()

    later = LAST_BEGIN_MS + 60_000
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
            "j1filter.collect.cli",
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
