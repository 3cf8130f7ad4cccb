"""Writing lines out: whole lines only, counted as they really leave; and a progress line.

:class:`LineWriter` writes a batch of lines straight to the file descriptor, so that it
knows how many bytes the reader took before it went away, and counts only the lines that
left complete. A write is never cut by a stop signal (see :mod:`.stops`).
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable
from typing import BinaryIO, TextIO

from .stops import GUARD, StopGuard


def _fileno(sink: BinaryIO) -> int | None:
    try:
        return sink.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None


class LineWriter:
    """Writes lines (without their newline) and counts those that were written whole."""

    def __init__(self, sink: BinaryIO, guard: StopGuard = GUARD):
        self.sink = sink
        self.guard = guard
        self.lines = 0
        self._sent = 0
        self._fd = _fileno(sink)
        if self._fd is not None:
            sink.flush()  # whatever went through the buffered file before us goes first

    def write(self, lines: list[bytes]) -> int:
        """Write ``lines``, each followed by a newline; return how many left whole. Raises
        BrokenPipeError (after counting) when the reader has gone."""
        if not lines:
            return 0
        return self.write_block(b"\n".join([*lines, b""]), len(lines))  # one copy, ending in a newline

    def write_block(self, data: bytes | memoryview, count: int | None = None) -> int:
        """Write ``data``, whole lines that each end in a newline (no newline inside a line;
        ``count`` of them, if known); return how many left whole. ``data`` may be a view (of
        the workers' shared memory, which later jobs reuse): a file descriptor gets it as it
        is, any other file object a copy, since it may keep what it is given."""
        self._sent = 0
        with self.guard.writing():
            try:
                self._send(data)
            finally:
                if self._sent == len(data) and count is not None:
                    whole = count
                else:  # cut short (or not counted yet): the newlines that went out
                    whole = (data if data.__class__ is bytes else bytes(data)).count(b"\n", 0, self._sent)
                self.lines += whole
        return whole

    def _send(self, data: bytes | memoryview) -> None:
        if self._fd is None:  # a file object of the caller's, which may keep what it is given
            self.sink.write(data if data.__class__ is bytes else bytes(data))  # a view's memory is reused
            self.sink.flush()
            self._sent = len(data)
            return
        view = memoryview(data)
        while self._sent < len(data):  # a pipe may take part of it: write the rest
            self._sent += os.write(self._fd, view[self._sent :])

    def write_text(self, text: str) -> int:
        """Write a text of whole lines (a table, a report); return the lines written."""
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return self.write([line.encode("utf-8") for line in lines])


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 line``, ``2 lines``, ``1,024 documents``."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"


class Progress:
    """A progress line on stderr, rewritten in place, only when stderr is a terminal.

    It appears after ``delay`` seconds (short runs stay quiet) and then at most every
    ``every`` seconds; :meth:`clear` removes it before the summary is printed."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool | None = None,
        delay: float = 1.0,
        every: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.clock = clock
        self.started = clock()
        self.next_at = self.started + delay
        self.every = every
        self.shown = False

    def due(self) -> bool:
        """Time to show the line again (cheap enough to ask for every input line)."""
        return self.enabled and self.clock() >= self.next_at

    def show(self, documents: int, errors: int) -> None:
        now = self.clock()
        self.next_at = now + self.every
        rate = documents / max(now - self.started, 1e-9)
        text = f"j1filter: {plural(documents, 'document')}, {rate:,.0f}/s, {plural(errors, 'error')}"
        self._show("\r" + text + "\x1b[K")
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self._show("\r\x1b[K")
            self.shown = False

    def _show(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False  # the terminal went away (SIGHUP): stay silent


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False
