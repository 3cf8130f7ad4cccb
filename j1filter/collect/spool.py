"""The spool: one file per collection in a directory a shipper reads, complete and on disk before
the checkpoint moves; safe on a shared host (see files.py)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO

from ._timestamps import compact_iso_from_ms
from .checkpoint import CollectionPlan, fsync_directory
from .files import create_new, try_lock


class SpoolOutput:
    """`DIR/.j1-<start>-<kind>-<random>.ndjson.part`, renamed to `DIR/j1-<start>-<kind>.ndjson`
    once complete and on disk; shippers only read `*.ndjson`. The part is a new file (never a
    symlink or an existing name), `file_mode`, and flock'ed while this process writes it."""

    def __init__(self, directory: Path, plan: CollectionPlan, file_mode: int) -> None:
        stamp = compact_iso_from_ms(plan.started_ms)[:-1] + f".{plan.started_ms % 1000:03d}Z"
        self._directory = directory
        self._name = f"j1-{stamp}-{plan.kind}"
        self._part = directory / f".{self._name}-{secrets.token_hex(8)}.ndjson.part"
        self._mode = file_mode
        self._file: BinaryIO | None = None

    def write(self, data: bytes) -> None:
        if self._file is None:
            self._file = create_new(self._part, self._mode)
            try_lock(self._file.fileno())  # a new, random name: nobody else can hold it
        self._file.write(data)

    def commit(self) -> Path | None:
        if self._file is None:
            return None  # nothing collected: no file
        self._file.flush()
        os.fsync(self._file.fileno())
        final = self._publish()
        self._file.close()
        self._file = None
        fsync_directory(self._directory)
        return final

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._part.unlink(missing_ok=True)

    def _publish(self) -> Path:
        """Link the part to the first free final name (a link never replaces a file that may not
        have been shipped yet), then remove the part's name."""
        number = 0
        while True:
            suffix = f"-{number}" if number else ""
            final = self._directory / f"{self._name}{suffix}.ndjson"
            try:
                os.link(self._part, final, follow_symlinks=False)
            except FileExistsError:
                number += 1
                continue
            self._part.unlink()
            return final


def remove_stale_parts(directory: Path) -> int:
    """Delete `.part` files a killed collector left behind (never shipped: nothing to lose).
    A part another live process still holds (its flock) is left alone."""
    removed = 0
    for part in directory.glob(".j1-*.ndjson.part"):
        try:
            descriptor = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:  # a symlink or something odd planted there: remove the name only
            part.unlink(missing_ok=True)
            removed += 1
            continue
        try:
            if try_lock(descriptor):
                part.unlink(missing_ok=True)
                removed += 1
        finally:
            os.close(descriptor)
    return removed
