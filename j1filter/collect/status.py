"""The health signal a monitor reads: a small JSON file, replaced atomically after every
collection (and when one starts), next to the checkpoint by default.

    {"format": 1, "pid": 4242, "state": "idle",
     "last_success": "2026-12-03T07:00:00.000Z", "last_success_kind": "incremental",
     "last_counts": {"pages": 3, "written": 512, "deletions": 2, "repeats": 0},
     "last_attempt": "...", "next_run": "...", "consecutive_failures": 0,
     "last_error": null | {"at": "...", "message": "..."}, "updated": "..."}

`state` is ``collecting`` while a collection runs, ``idle`` after a success and ``failing``
after a failure. A monitor alerts when ``last_success`` is older than two intervals, or when
``consecutive_failures`` grows (see docs/collector-service.md).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ._timestamps import iso_from_ms
from .checkpoint import fsync_directory

FORMAT_VERSION = 1


def status_path_for(checkpoint: Path) -> Path:
    """The default status file: ``<checkpoint>.status.json``."""
    return checkpoint.with_name(checkpoint.name + ".status.json")


@dataclass
class StatusFile:
    """Writes the status; a failure to write it is reported, never fatal (the data matters more)."""

    path: Path
    mode: int = 0o600
    document: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.document = {
            "format": FORMAT_VERSION,
            "pid": os.getpid(),
            "state": "starting",
            "last_success": None,
            "last_success_kind": None,
            "last_counts": None,
            "last_attempt": None,
            "next_run": None,
            "consecutive_failures": 0,
            "last_error": None,
            "updated": None,
        }
        self.document.update(self._kept_from_last_run())

    def _kept_from_last_run(self) -> dict[str, Any]:
        """The last success and the failure count survive a restart (a crash loop stays visible)."""
        try:
            previous = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        if not isinstance(previous, dict) or previous.get("format") != FORMAT_VERSION:
            return {}
        kept = ("last_success", "last_success_kind", "last_counts", "consecutive_failures", "last_error")
        return {key: previous[key] for key in kept if key in previous}

    def started(self, now_ms: int) -> None:
        self._write(now_ms, state="collecting", last_attempt=iso_from_ms(now_ms))

    def succeeded(self, now_ms: int, kind: str, counts: dict[str, int], next_ms: int | None) -> None:
        self._write(
            now_ms,
            state="idle",
            last_success=iso_from_ms(now_ms),
            last_success_kind=kind,
            last_counts=counts,
            consecutive_failures=0,
            next_run=iso_from_ms(next_ms) if next_ms is not None else None,
        )

    def failed(self, now_ms: int, message: str, next_ms: int | None) -> None:
        self._write(
            now_ms,
            state="failing",
            consecutive_failures=_count(self.document.get("consecutive_failures")) + 1,
            last_error={"at": iso_from_ms(now_ms), "message": message},
            next_run=iso_from_ms(next_ms) if next_ms is not None else None,
        )

    def _write(self, now_ms: int, **changes: Any) -> None:
        self.document.update(changes, updated=iso_from_ms(now_ms))
        text = orjson.dumps(self.document, option=orjson.OPT_INDENT_2) + b"\n"
        directory = self.path.parent
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(handle, "wb") as stream:
                os.fchmod(stream.fileno(), self.mode)
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        fsync_directory(directory)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
