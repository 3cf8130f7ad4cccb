"""One collection: J1 pages in, NDJSON out (raw entities or, with a mapper, ECS documents),
then the checkpoint.

Each page is written (and flushed) as soon as it arrives, whole lines only. The checkpoint
moves only after the collection's output was handed over for good: flushed to the pipe, or
fsync'd and renamed into the spool. No entity is ever dropped because an earlier run wrote
it; within one collection a bounded window of recent ids drops repeats from shifting pages.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from ..errors import J1FilterError
from ..io.jsontext import json_bytes
from ..io.output import LineWriter, plural
from ..io.stops import GUARD
from ._timestamps import iso_from_ms, timestamp_ms
from .checkpoint import (
    Checkpoint,
    CollectionPlan,
    load_checkpoint,
    plan_collection,
    save_checkpoint,
)
from .client import ClientStats, J1Client
from .files import DEFAULT_FILE_MODE
from .secrets import escape_controls
from .spool import SpoolOutput

if TYPE_CHECKING:
    from ..runtime.mapper import Mapper

log = logging.getLogger("j1filter.collect")

DEFAULT_QUERY = "FIND (Finding | Alert | Vulnerability)"
HOUR_MS = 3_600_000
CLOCK_SKEW_MS = 5 * 60_000  # a `_beginOn` later than now + this is reported as "in the future"


@dataclass(frozen=True)
class CollectOptions:
    query: str = DEFAULT_QUERY
    checkpoint_path: Path | None = None
    overlap_ms: int = 15 * 60 * 1000
    full_interval_ms: int = 24 * HOUR_MS
    force_full: bool = False
    dedupe_window: int = 100_000
    spool_dir: Path | None = None
    file_mode: int = DEFAULT_FILE_MODE
    mapper: Mapper | None = field(default=None, compare=False)
    clock_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000, compare=False)


@dataclass
class CollectionSummary:
    kind: str = ""
    pages: int = 0
    written: int = 0
    deletions: int = 0
    duplicates: int = 0
    failed_entities: int = 0  # written as error documents by the per-entity guard
    spool_file: Path | None = None

    def counts(self) -> dict[str, int]:
        return {
            "pages": self.pages,
            "written": self.written,
            "deletions": self.deletions,
            "repeats": self.duplicates,
            "failed_entities": self.failed_entities,
        }


class Progress:
    """Progress lines on the `j1filter.collect` logger: at most one every `every` seconds, plus a summary."""

    def __init__(
        self, stats: ClientStats, every: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stats = stats
        self._every = every
        self._clock = clock
        self._started = self._last_report = clock()

    def page(self, summary: CollectionSummary) -> None:
        if self._clock() - self._last_report >= self._every:
            self._last_report = self._clock()
            log.info("page %d: %s", summary.pages, self._counts(summary))

    def done(self, summary: CollectionSummary) -> None:
        log.info(
            "%s collection complete: %s, %s",
            summary.kind,
            plural(summary.pages, "page"),
            self._counts(summary),
        )

    def _counts(self, summary: CollectionSummary) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        return (
            f"{plural(summary.written, 'entity', 'entities')} written ({summary.written / elapsed:.0f}/s)"
            f" of which {plural(summary.deletions, 'deletion')}, {plural(summary.duplicates, 'repeat')} dropped,"
            f" {plural(self._stats.retries, 'retry', 'retries')}, {elapsed:.1f} s"
        )


class Collector:
    """Runs collections on the schedule; without a checkpoint file the state lives in memory
    (so a `--interval` loop still alternates full and incremental collections)."""

    def __init__(self, client: J1Client, out: BinaryIO, options: CollectOptions) -> None:
        self._client = client
        self._out = out
        self._options = options
        self._memory = Checkpoint(options.query)
        self._force_full = options.force_full  # --full: the first collection only

    def collect_once(self) -> CollectionSummary:
        """Run one collection to the end; raises `CollectError` (after flushing what arrived) on failure."""
        options = self._options
        checkpoint = (
            load_checkpoint(options.checkpoint_path, options.query)
            if options.checkpoint_path
            else self._memory
        )
        plan = plan_collection(
            checkpoint,
            options.clock_ms(),
            full_interval_ms=options.full_interval_ms,
            overlap_ms=options.overlap_ms,
            force_full=self._force_full,
        )
        log.info("%s collection%s", plan.kind, f" ({plan.reason})" if plan.reason else "")
        summary = CollectionSummary(kind=plan.kind)
        with self._output(plan) as output:
            self._run(plan, output, summary)
            with GUARD.writing():  # a stop request now waits for the hand-over to finish
                summary.spool_file = output.commit()
                after = plan.after(checkpoint)
                if options.checkpoint_path:
                    save_checkpoint(options.checkpoint_path, after)
                self._memory = after
                self._force_full = False
        return summary

    def _run(self, plan: CollectionPlan, output: _Output, summary: CollectionSummary) -> None:
        render = _Renderer(plan, self._options.mapper)
        recent = _RecentIds(self._options.dedupe_window)
        audit = _TimeAudit(self._options.clock_ms)
        progress = Progress(self._client.stats)
        # Full collections ask for deleted entities too: that is how a tombstone reaches the
        # latest view even when J1 did not give the deletion a new `_beginOn`.
        for page in self._client.pages(plan.j1ql, include_deleted=True):
            chunks = []
            for position, item in enumerate(page.items, start=1):
                where = f"page {page.number} entity {position}"
                try:  # one guard per entity: whatever fails, this entity becomes an error document
                    entity = item.get("entity") if isinstance(item, dict) else None
                    if isinstance(entity, dict):
                        audit.check(entity)
                        if recent.repeat(entity):
                            summary.duplicates += 1
                            continue
                        summary.deletions += entity.get("_deleted") is True
                    chunks.append(render.line(item, where))
                except Exception as error:  # noqa: BLE001 - the rest of the page goes on
                    summary.failed_entities += 1
                    chunks.append(render.failed(item, where, error))
            if chunks:
                output.write(b"".join(chunks))  # whole lines only, even when a stop arrives mid-write
            summary.pages += 1
            summary.written += len(chunks)
            progress.page(summary)
        audit.report()
        if summary.failed_entities:
            log.warning(
                "%s could not be written as collected and became error documents (error.message says why)",
                plural(summary.failed_entities, "entity", "entities"),
            )
        progress.done(summary)

    @contextmanager
    def _output(self, plan: CollectionPlan) -> Iterator[_Output]:
        output: _Output = (
            SpoolOutput(self._options.spool_dir, plan, self._options.file_mode)
            if self._options.spool_dir
            else _StreamOutput(self._out)
        )
        try:
            yield output
        except BaseException:
            output.abort()
            raise


def collect_once(client: J1Client, out: BinaryIO, options: CollectOptions) -> CollectionSummary:
    """One collection with a fresh collector (the schedule state comes from the checkpoint file)."""
    return Collector(client, out, options).collect_once()


# -- pieces ---------------------------------------------------------------------------------


class _Output(Protocol):
    def write(self, data: bytes) -> None: ...

    def commit(self) -> Path | None: ...

    def abort(self) -> None: ...


class _StreamOutput:
    """stdout (a pipe to the filter or Logstash), written per page by the filter's own
    line writer: straight to the file descriptor, never cut by a stop signal."""

    def __init__(self, out: BinaryIO) -> None:
        self._writer = LineWriter(out)

    def write(self, data: bytes) -> None:
        self._writer.write_block(data)

    def commit(self) -> Path | None:
        return None

    def abort(self) -> None:
        pass


class _Renderer:
    """One item -> its output bytes: the raw line with `_collection`, or, with a mapper, the
    ECS documents the filter would write for that very line (the same line protocol, without
    writing and parsing the line in between)."""

    def __init__(self, plan: CollectionPlan, mapper: Mapper | None) -> None:
        self._meta = {
            "started": iso_from_ms(plan.started_ms),
            "kind": plan.kind,
            "snapshot": iso_from_ms(plan.snapshot_ms),
        }
        self._mapper = mapper
        from ..protocol import encode_value  # imported here: the mappings only with --map

        self._encode_value = encode_value

    def line(self, item: dict[str, Any], where: str) -> bytes:
        value = dict(item, _collection=self._meta)
        if self._mapper is None:
            return json_bytes(value) + b"\n"
        return b"".join(doc + b"\n" for doc, _ in self._encode_value(self._mapper, value, where))

    def failed(self, item: object, where: str, error: Exception) -> bytes:
        """The line for an item that `line` could not write: what can be kept of it, and why."""
        message = f"{where}: cannot write this entity as collected ({describe(error)})"
        kept = _kept_fields(item)
        if self._mapper is not None:
            original = _json_or_none(item)
            doc = self._mapper.error_document(
                original.decode() if original else json_bytes(kept).decode(), [message]
            )
            return json_bytes(doc) + b"\n"
        return json_bytes(dict(kept, _collection=self._meta, error={"message": [message]})) + b"\n"


def describe(error: BaseException) -> str:
    """One escaped line naming the error and, for one that is not j1filter's own, where it was raised."""
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - an exception whose text cannot be rendered
        text = "(no description)"
    text = escape_controls(text[:300])
    if isinstance(error, J1FilterError):
        return text
    frames = traceback.extract_tb(error.__traceback__)
    place = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}: {text}{place}"


def _kept_fields(item: object) -> dict[str, Any]:
    """The id and the entity's short scalar metadata: enough to find the entity in J1."""
    if not isinstance(item, dict):
        return {}
    kept: dict[str, Any] = {}
    if isinstance(item.get("id"), str):
        kept["id"] = item["id"][:1024]
    entity = item.get("entity")
    if isinstance(entity, dict):
        kept["entity"] = {
            key[:128]: value[:1024] if isinstance(value, str) else value
            for key, value in entity.items()
            if isinstance(key, str)
            and (key.startswith("_") or key == "displayName")
            and (isinstance(value, (str, bool)) or (isinstance(value, int) and abs(value) < 2**63))
        }
    return kept


def _json_or_none(value: object) -> bytes | None:
    try:
        return json_bytes(value)
    except Exception:  # noqa: BLE001 - the caller keeps what it can instead
        return None


class _RecentIds:
    """The last `size` entities written in this collection, as fixed-size digests of the id and
    of (version, deleted): repeats from shifting pages are dropped, and memory stays bounded
    whatever the number of entities or the size of an id (ENTRY_BYTES a slot at most)."""

    #: Upper bound of one slot (two 16-byte digests in an OrderedDict): measured 263 bytes in a
    #: window of 100, 173 in one of 10,000 (CPython 3.11). The default window: 30 MB at most.
    ENTRY_BYTES = 300

    def __init__(self, size: int) -> None:
        self._size = size
        self._seen: OrderedDict[bytes, bytes] = OrderedDict()

    def repeat(self, entity: dict[str, Any]) -> bool:
        entity_id = entity.get("_id")
        if self._size <= 0 or not isinstance(entity_id, str):
            return False
        key = _digest(entity_id)
        version = entity.get("_version")
        shown = str(version)[:200] if isinstance(version, (int, str)) else type(version).__name__
        state = _digest(f"{shown}|{entity.get('_deleted') is True}")
        if self._seen.get(key) == state:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = state
        self._seen.move_to_end(key)
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return False


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class _TimeAudit:
    """Counts entities whose `_beginOn` is in the future or unreadable; one stderr line per collection."""

    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self._clock_ms = clock_ms
        self._latest_ms = clock_ms() + CLOCK_SKEW_MS
        self.future = self.unreadable = 0
        self._example = ""

    def check(self, entity: dict[str, Any]) -> None:
        value = entity.get("_beginOn")
        moment = timestamp_ms(value)
        if moment is not None and moment > self._latest_ms:  # a long collection: look at the clock again
            self._latest_ms = self._clock_ms() + CLOCK_SKEW_MS
        if moment is not None and moment <= self._latest_ms:
            return
        if moment is None:
            self.unreadable += 1
        else:
            self.future += 1
        if not self._example:
            self._example = f"_id {str(entity.get('_id'))[:80]!r} has _beginOn {str(value)[:40]!r}"

    def report(self) -> None:
        if self.future or self.unreadable:
            log.warning(
                "%s with a _beginOn in the future and %s with an unreadable one (first: %s);"
                " written as they are, they move no watermark",
                plural(self.future, "entity", "entities"),
                plural(self.unreadable, "entity", "entities"),
                self._example,
            )
