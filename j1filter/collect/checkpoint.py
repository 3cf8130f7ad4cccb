"""Collection state for `j1filter collect --checkpoint FILE`, and the schedule it drives.

The state is OUR clock, never entity data. A checkpoint records, for one J1QL query:

- ``full_started_ms``: when the last *completed* full snapshot started;
- ``last_started_ms`` / ``last_kind``: the last completed collection of either kind.

A collection is **full** (everything, deleted entities included) when there is no such
snapshot, when the snapshot is `full_interval` old, or when asked; otherwise it is
**incremental** and asks for ``_beginOn > (full_started - overlap)``: every incremental
re-reads everything changed since the last full snapshot ("differential"). So an output lost
after a collection ended (consumer killed, process killed after the collector exited) is
delivered again by the next incremental, and a lost full snapshot by the next full one;
an entity's `_beginOn`, however wrong, can never move any watermark.

The file is JSON, replaced atomically (temp file, fsync, rename, fsync dir) and only after a
whole collection's output was written and flushed (or, with a spool, fsync'd and renamed).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from ..errors import CheckpointError
from ._timestamps import MAX_RENDERABLE_MS, MIN_RENDERABLE_MS, iso_from_ms

log = logging.getLogger("j1filter.collect")

FORMAT_VERSION = 2
Kind = Literal["full", "incremental"]

_SIMPLE_FIND = re.compile(r"^\s*(FIND\s+.+?)(?:\s+WITH\s+(.+?))?\s*$", re.IGNORECASE | re.DOTALL)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_UNSUPPORTED_WORDS = re.compile(r"\b(THAT|RETURN|LIMIT|SKIP|ORDER|AS)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Checkpoint:
    query: str
    full_started_ms: int | None = None
    last_started_ms: int | None = None
    last_kind: Kind | None = None


@dataclass(frozen=True)
class CollectionPlan:
    """What one collection asks J1 for, and the metadata its lines carry."""

    kind: Kind
    started_ms: int
    snapshot_ms: int  # start of the full snapshot that opened this cycle
    j1ql: str
    reason: str

    def after(self, checkpoint: Checkpoint) -> Checkpoint:
        """The checkpoint to save once this collection's output is safely handed over."""
        full_started = self.started_ms if self.kind == "full" else checkpoint.full_started_ms
        return Checkpoint(checkpoint.query, full_started, self.started_ms, self.kind)


def incremental_query(query: str, since_ms: int) -> str:
    """`query` narrowed to entities written after `since_ms`.

    Only ``FIND <classes> [WITH <conditions>]`` can be narrowed safely; the user's own
    conditions are kept, parenthesised, after the time filter. Raises ValueError otherwise.
    """
    match = _SIMPLE_FIND.match(query)
    if not match or _UNSUPPORTED_WORDS.search(_QUOTED.sub("''", query)):
        raise ValueError(
            "incremental collections need a query of the form 'FIND <classes> [WITH <conditions>]'"
            " (no THAT, RETURN, AS, ORDER, LIMIT or SKIP)"
        )
    find, conditions = match.groups()
    time_filter = f"_beginOn > date({iso_from_ms(since_ms)})"
    return f"{find} WITH {time_filter}" + (f" AND ({conditions})" if conditions else "")


def can_narrow(query: str) -> bool:
    try:
        incremental_query(query, 0)
    except ValueError:
        return False
    return True


def plan_collection(
    checkpoint: Checkpoint,
    now_ms: int,
    *,
    full_interval_ms: int,
    overlap_ms: int,
    force_full: bool = False,
) -> CollectionPlan:
    """Full or incremental, per the schedule in the module docstring."""
    query, full_started = checkpoint.query, checkpoint.full_started_ms
    reason = ""
    if force_full:
        reason = "--full"
    elif full_started is None:
        reason = "no completed full snapshot yet"
    elif full_started > now_ms:
        reason = "the checkpoint's full snapshot lies in the future (clock changed?)"
    elif now_ms - full_started >= full_interval_ms:
        reason = "the last full snapshot is --full-interval old"
    elif not can_narrow(query):
        reason = "the query cannot be narrowed to recent changes"
    if reason or full_started is None:
        return CollectionPlan("full", now_ms, now_ms, query, reason)
    since = full_started - overlap_ms
    return CollectionPlan("incremental", now_ms, full_started, incremental_query(query, since), "")


def load_checkpoint(path: Path, query: str) -> Checkpoint:
    """The checkpoint for `query`; an empty one when the file is missing, made for another
    query, or written by j1filter's first format (which recorded entity times, not ours)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Checkpoint(query)
    except OSError as error:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {error.strerror}; fix its permissions or pass another --checkpoint"
        ) from None
    try:
        document = orjson.loads(raw)
        if isinstance(document, dict) and document.get("format") == 1:
            log.info("checkpoint %s has the old format: starting with a full collection", path)
            return Checkpoint(query)
        checkpoint = _from_json(document)
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(
            f"checkpoint {path} is not a valid j1filter checkpoint ({_short(error)});"
            " delete it to start over with a full collection"
        ) from None
    if checkpoint.query != query:
        log.warning("checkpoint %s belongs to another query; starting with a full collection", path)
        return Checkpoint(query)
    return checkpoint


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Replace `path` atomically: readers see the old or the new checkpoint, never half of one."""
    text = orjson.dumps(_to_json(checkpoint), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        fsync_directory(directory)
    except OSError as error:
        raise CheckpointError(f"cannot write checkpoint {path}: {error.strerror}") from None


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable where the platform allows it."""
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


def _to_json(checkpoint: Checkpoint) -> dict[str, Any]:
    full, last = checkpoint.full_started_ms, checkpoint.last_started_ms
    return {
        "format": FORMAT_VERSION,
        "query": checkpoint.query,
        "full_started_ms": full,
        "last_started_ms": last,
        "last_kind": checkpoint.last_kind,
        # for humans only
        "full_started": iso_from_ms(full) if full is not None else None,
        "last_started": iso_from_ms(last) if last is not None else None,
    }


def _from_json(document: object) -> Checkpoint:
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    if document.get("format") != FORMAT_VERSION:
        raise ValueError(f"unknown format {str(document.get('format'))[:20]!r}")
    query = document["query"]
    if not isinstance(query, str):
        raise ValueError("query is not a string")
    kind = document.get("last_kind")
    if kind not in (None, "full", "incremental"):
        raise ValueError("last_kind is not 'full' or 'incremental'")
    return Checkpoint(query, _time(document, "full_started_ms"), _time(document, "last_started_ms"), kind)


def _time(document: dict[str, Any], key: str) -> int | None:
    value = document.get(key)
    if value is None:
        return None
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not MIN_RENDERABLE_MS <= value <= MAX_RENDERABLE_MS
    ):
        raise ValueError(f"{key} is not a time in epoch milliseconds")
    return value


def _short(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 80 else text[:77] + "..."
