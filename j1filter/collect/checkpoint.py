"""Incremental collection state for `j1filter collect --checkpoint FILE`.

A checkpoint remembers, for one J1QL query:

- ``watermark_ms``: the highest ``_beginOn`` (J1's "this version was written" time) seen by
  the last collection that ran to the end;
- ``recent``: ``_id -> [_version, _deleted, _beginOn ms]`` for the entities inside the
  overlap window, because the next run asks for that window again and must not write them
  twice.

The next run asks for ``_beginOn > watermark - overlap`` with ``includeDeleted``, and
`DeliveryTracker` drops any entity whose ``(_version, _deleted)`` was already written. A
tombstone that keeps its version still counts as new, so deletions are never swallowed.

The file is JSON, replaced atomically (temp file, fsync, rename) and only after a whole
collection has been written and flushed: a crash leaves the old checkpoint, so the next
run repeats work but loses nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from j1filter.collect._timestamps import iso_from_ms, timestamp_ms

log = logging.getLogger("j1filter.collect")

FORMAT_VERSION = 1
DAY_MS = 86_400_000
# J1 keeps soft-deleted entities 7 days; a longer gap between runs can miss deletions.
DELETED_RETENTION_WARNING_MS = 6 * DAY_MS

_SIMPLE_FIND = re.compile(r"^\s*(FIND\s+.+?)(?:\s+WITH\s+(.+?))?\s*$", re.IGNORECASE | re.DOTALL)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_UNSUPPORTED_WORDS = re.compile(r"\b(THAT|RETURN|LIMIT|SKIP|ORDER|AS)\b", re.IGNORECASE)


class CheckpointError(Exception):
    """The checkpoint file cannot be read or written."""


@dataclass(frozen=True)
class SeenVersion:
    version: int
    deleted: bool
    begin_ms: int | None


@dataclass
class Checkpoint:
    query: str
    watermark_ms: int | None = None
    recent: dict[str, SeenVersion] = field(default_factory=dict)
    saved_at_ms: int | None = None


def incremental_query(query: str, since_ms: int) -> str:
    """`query` narrowed to entities written after `since_ms`.

    Only ``FIND <classes> [WITH <conditions>]`` can be narrowed safely; the user's own
    conditions are kept, parenthesised, after the time filter.
    """
    match = _SIMPLE_FIND.match(query)
    if not match or _UNSUPPORTED_WORDS.search(_QUOTED.sub("''", query)):
        raise ValueError(
            "--checkpoint needs a query of the form 'FIND <classes> [WITH <conditions>]'"
            " (no THAT, RETURN, AS, ORDER, LIMIT or SKIP)"
        )
    find, conditions = match.groups()
    time_filter = f"_beginOn > date({iso_from_ms(since_ms)})"
    return f"{find} WITH {time_filter}" + (f" AND ({conditions})" if conditions else "")


def load_checkpoint(path: Path, query: str) -> Checkpoint:
    """The checkpoint for `query`; an empty one when the file is missing or was made for another query."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Checkpoint(query)
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error.strerror}") from None
    try:
        checkpoint = _from_json(json.loads(raw))
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(
            f"checkpoint {path} is not a valid j1filter checkpoint ({error}); delete it to start over"
        ) from None
    if checkpoint.query != query:
        log.warning("checkpoint %s belongs to another query; starting a full collection", path)
        return Checkpoint(query)
    _warn_if_stale(checkpoint, path)
    return checkpoint


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Replace `path` atomically: readers see the old or the new checkpoint, never half of one."""
    text = json.dumps(_to_json(checkpoint), indent=1, sort_keys=True)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_directory(directory)
    except OSError as error:
        raise CheckpointError(f"cannot write checkpoint {path}: {error.strerror}") from None


class DeliveryTracker:
    """Decides which entities to write and computes the checkpoint to save afterwards."""

    def __init__(self, checkpoint: Checkpoint, overlap_ms: int) -> None:
        self._previous = checkpoint
        self._overlap_ms = overlap_ms
        self._written: dict[str, SeenVersion] = dict(checkpoint.recent)
        self._max_begin_ms = checkpoint.watermark_ms

    def since_ms(self) -> int | None:
        """Lower bound for this run's `_beginOn` filter, or None for a full collection."""
        if self._previous.watermark_ms is None:
            return None
        return self._previous.watermark_ms - self._overlap_ms

    def should_write(self, item: dict[str, Any]) -> bool:
        """True unless this `_id` was already written at this `_version` (and deletion state) or later.

        Entities without a usable `_id`/`_version` are always written: twice beats never.
        """
        entity = item["entity"]
        begin_ms = timestamp_ms(entity.get("_beginOn"))
        if begin_ms is not None and (self._max_begin_ms is None or begin_ms > self._max_begin_ms):
            self._max_begin_ms = begin_ms
        entity_id, version = entity.get("_id"), entity.get("_version")
        if not isinstance(entity_id, str) or not isinstance(version, int) or isinstance(version, bool):
            return True
        current = SeenVersion(version, entity.get("_deleted") is True, begin_ms)
        previous = self._written.get(entity_id)
        if previous is not None and (current.version, current.deleted) <= (previous.version, previous.deleted):
            return False
        self._written[entity_id] = current
        return True

    def next_checkpoint(self, now_ms: int) -> Checkpoint:
        """The checkpoint after this run, keeping only entities the next run may see again."""
        watermark = self._max_begin_ms
        recent: dict[str, SeenVersion] = {}
        if watermark is not None:
            floor = watermark - self._overlap_ms
            recent = {
                key: seen for key, seen in self._written.items() if seen.begin_ms is not None and seen.begin_ms >= floor
            }
        return Checkpoint(self._previous.query, watermark, recent, now_ms)


def _to_json(checkpoint: Checkpoint) -> dict[str, Any]:
    watermark = checkpoint.watermark_ms
    return {
        "format": FORMAT_VERSION,
        "query": checkpoint.query,
        "watermark_ms": watermark,
        "watermark": iso_from_ms(watermark) if watermark is not None else None,  # for humans
        "saved_at_ms": checkpoint.saved_at_ms,
        "recent": {key: [seen.version, seen.deleted, seen.begin_ms] for key, seen in checkpoint.recent.items()},
    }


def _from_json(document: dict[str, Any]) -> Checkpoint:
    if document.get("format") != FORMAT_VERSION:
        raise ValueError(f"unknown format {document.get('format')!r}")
    recent = {
        key: SeenVersion(int(version), bool(deleted), begin)
        for key, (version, deleted, begin) in document["recent"].items()
    }
    watermark = document["watermark_ms"]
    return Checkpoint(
        query=str(document["query"]),
        watermark_ms=int(watermark) if watermark is not None else None,
        recent=recent,
        saved_at_ms=document.get("saved_at_ms"),
    )


def _warn_if_stale(checkpoint: Checkpoint, path: Path) -> None:
    if checkpoint.saved_at_ms is None:
        return
    age_ms = time.time() * 1000 - checkpoint.saved_at_ms
    if age_ms > DELETED_RETENTION_WARNING_MS:
        log.warning(
            "checkpoint %s is %.1f days old and J1 keeps deleted entities only 7 days: some deletions"
            " may have been missed; delete the checkpoint to run a full collection",
            path,
            age_ms / DAY_MS,
        )


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable where the platform allows it."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
