"""One collection: J1 pages in, deduplicated NDJSON out, then the checkpoint.

Each page is written and flushed as soon as it arrives (Logstash's pipe input reads line
by line), so a failure part-way leaves everything received so far on the output. The
checkpoint moves only after the last page was flushed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from j1filter.collect.checkpoint import Checkpoint, DeliveryTracker, incremental_query, load_checkpoint, save_checkpoint
from j1filter.collect.client import ClientStats, J1Client

log = logging.getLogger("j1filter.collect")

DEFAULT_QUERY = "FIND (Finding | Alert | Vulnerability)"


@dataclass(frozen=True)
class CollectOptions:
    query: str = DEFAULT_QUERY
    checkpoint_path: Path | None = None
    overlap_ms: int = 15 * 60 * 1000


@dataclass
class CollectionSummary:
    pages: int = 0
    written: int = 0
    duplicates: int = 0


class Progress:
    """Progress lines on the `j1filter.collect` logger: at most one every `every` seconds, plus a summary."""

    def __init__(self, stats: ClientStats, every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._stats = stats
        self._every = every
        self._clock = clock
        self._started = self._last_report = clock()

    def page(self, summary: CollectionSummary) -> None:
        if self._clock() - self._last_report >= self._every:
            self._last_report = self._clock()
            log.info("page %d: %s", summary.pages, self._counts(summary))

    def done(self, summary: CollectionSummary) -> None:
        log.info("collection complete: %d pages, %s", summary.pages, self._counts(summary))

    def _counts(self, summary: CollectionSummary) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        return (
            f"{summary.written} entities written ({summary.written / elapsed:.0f}/s),"
            f" {summary.duplicates} duplicates dropped, {self._stats.retries} retries, {elapsed:.1f} s"
        )


def collect_once(client: J1Client, out: BinaryIO, options: CollectOptions) -> CollectionSummary:
    """Run one collection to the end; raises `CollectError` (after flushing what arrived) on failure."""
    checkpoint = (
        load_checkpoint(options.checkpoint_path, options.query)
        if options.checkpoint_path
        else Checkpoint(options.query)
    )
    tracker = DeliveryTracker(checkpoint, options.overlap_ms)
    since_ms = tracker.since_ms()
    j1ql = options.query if since_ms is None else incremental_query(options.query, since_ms)
    # Deletions only matter to incremental runs: a full run simply lacks the deleted entities.
    include_deleted = options.checkpoint_path is not None

    summary = CollectionSummary()
    progress = Progress(client.stats)
    for page in client.pages(j1ql, include_deleted=include_deleted):
        lines = [_ndjson_line(item) for item in page.items if tracker.should_write(item)]
        if lines:
            out.write(b"".join(lines))
            out.flush()
        summary.pages += 1
        summary.written += len(lines)
        summary.duplicates += len(page.items) - len(lines)
        progress.page(summary)

    if options.checkpoint_path:
        save_checkpoint(options.checkpoint_path, tracker.next_checkpoint(now_ms=int(time.time() * 1000)))
    progress.done(summary)
    return summary


def _ndjson_line(item: dict[str, Any]) -> bytes:
    text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate from an \ud800-style escape: keep it escaped
        return json.dumps(item, separators=(",", ":")).encode("ascii") + b"\n"
