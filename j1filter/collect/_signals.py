"""Stop requests (SIGTERM, SIGINT, SIGHUP) that never cut a line in half.

`stop_on_signals()` turns each signal into a `Stopped` exception raised in the main thread,
except inside `critical()` sections (writing a batch of whole lines, committing a spool file
and the checkpoint): there the request waits until the section ends. Exit code: 128 + signal.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stopped(BaseException):
    """A stop request; BaseException so that no `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _State:
    depth = 0
    pending: int | None = None


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state.depth:
        _state.pending = signum
        return
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Install the handlers for the duration (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _handler) for signum in STOP_SIGNALS}
    _state.pending = None
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def critical() -> Iterator[None]:
    """Defer stop requests until the block is done; then honour the first one."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        pending = _state.pending
        if not _state.depth and pending is not None:
            _state.pending = None
            raise Stopped(pending)
