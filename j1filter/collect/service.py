"""`collect --interval`: a collection every interval, for as long as the process runs.

One guard per collection: whatever a collection raises (a hostile answer, a full disk, a file
removed under it, refused credentials, a bug) becomes one located, escaped log line and a
``failing`` status; the checkpoint stays where it was (it moves only after a whole collection
was handed over), and the next collection runs on schedule, later after repeated failures
(a bounded back-off). Only a stop signal (`Stopped`, a BaseException) ends the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .collector import Collector, describe
from .status import StatusFile

log = logging.getLogger("j1filter.collect")

#: After repeated failures the wait doubles, up to the interval or this, whichever is longer.
MAX_BACKOFF_SECONDS = 3600.0


@dataclass(frozen=True)
class Clock:
    """Wall time in epoch ms (for the status file), monotonic seconds and sleep: injectable."""

    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def backoff(interval: float, failures: int) -> float:
    """Seconds from one collection's start to the next: the interval, doubled per failure in a
    row, never more than max(interval, MAX_BACKOFF_SECONDS)."""
    if failures <= 0:
        return interval
    return min(interval * 2.0 ** (failures - 1), max(interval, MAX_BACKOFF_SECONDS))


def collect_forever(
    collector: Collector,
    interval: float,
    *,
    status: StatusFile | None = None,
    clock: Clock = Clock(),
    runs: int | None = None,
) -> None:
    """Collect every `interval` seconds, start to start; `runs` bounds the loop (tests only)."""
    failures = 0
    done = 0
    while runs is None or done < runs:
        started = clock.monotonic()
        _report(status, "started", clock.wall_ms())
        try:
            summary = collector.collect_once()
        except Exception as error:  # noqa: BLE001 - the per-collection guard (stop signals pass)
            failures += 1
            message = describe(error)
            wait = backoff(interval, failures)
            log.error(
                "collection failed, the checkpoint did not move; next collection in %.3g s: %s", wait, message
            )
            _report(status, "failed", clock.wall_ms(), message, _next_ms(clock, started, wait))
        else:
            failures = 0
            wait = interval
            next_ms = _next_ms(clock, started, wait)
            _report(status, "succeeded", clock.wall_ms(), summary.kind, summary.counts(), next_ms)
        done += 1
        clock.sleep(max(0.0, started + wait - clock.monotonic()))


def collect_once(collector: Collector, *, status: StatusFile | None = None, clock: Clock = Clock()) -> None:
    """One collection (`--once`): the status file says how it went; a failure is raised."""
    _report(status, "started", clock.wall_ms())
    try:
        summary = collector.collect_once()
    except Exception as error:
        _report(status, "failed", clock.wall_ms(), describe(error), None)
        raise
    _report(status, "succeeded", clock.wall_ms(), summary.kind, summary.counts(), None)


def _next_ms(clock: Clock, started: float, wait: float) -> int:
    return clock.wall_ms() + int(max(0.0, started + wait - clock.monotonic()) * 1000)


def _report(status: StatusFile | None, event: str, *details: object) -> None:
    """status.started / .succeeded / .failed(*details), if there is a status file."""
    if status is None:
        return
    try:
        getattr(status, event)(*details)
    except OSError as error:  # a full disk must not stop the collections themselves
        log.warning("cannot write the status file %s: %s", status.path, error.strerror or error)
