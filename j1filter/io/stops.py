"""Exit codes and clean stops, the same for every subcommand.

| code | meaning |
|---|---|
| 0 | done; also when the reader closed our output early (``j1filter ... | head -1``) |
| 1 | runtime failure (unreadable input, unwritable output, ``--fail-on-error``, API failure) |
| 2 | usage error, bad configuration or invalid mapping file |
| 128 + N | stopped by signal N after writing complete lines only: 129 SIGHUP, 130 SIGINT, 143 SIGTERM |

The command line turns what a subcommand raises into these codes in one place
(``EXIT_CODES`` in :mod:`j1filter.cli.main`).

A stop signal never cuts a line in half: :class:`StopGuard` turns SIGTERM, SIGINT and
SIGHUP into a :class:`Stopped` exception, raised at once while the program reads or
computes, and held back until the end of a write (see :meth:`StopGuard.writing`). A second
signal during a write that is stuck (a reader that does not read) ends the process at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)


def signal_exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal number."""
    return 128 + signum


class Stopped(BaseException):
    """A stop signal arrived. A BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` guard around one document swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return signal_exit_code(self.signum)


class StopGuard:
    """Stop signals as :class:`Stopped`, never in the middle of a write."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._writes = 0  # depth of `writing()` blocks
        self._raised = False  # Stopped is raised once; then the program finishes up

    @contextmanager
    def installed(self) -> Iterator[StopGuard]:
        """Handle the stop signals while the block runs; restore the previous handlers after.
        Outside the main thread (a library caller's worker) signals cannot be handled: a no-op."""
        self.signum, self._raised = None, False
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """A write that must complete: a signal during it takes effect right after."""
        self._writes += 1
        try:
            yield
        finally:
            self._writes -= 1
        self.check()

    def check(self) -> None:
        """Raise :class:`Stopped` if a signal arrived, outside any write, once."""
        if self.signum is not None and not self._writes and not self._raised:
            self._raised = True
            raise Stopped(self.signum)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and (self._writes or self._raised):
            # Asked again while a write is stuck or the program is finishing up:
            # end now, as the signal's default would.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.signum = signum
        self.check()


#: The guard of this process, installed by the command line (a no-op until then).
GUARD = StopGuard()


def silence_stdout() -> None:
    """The reader went away: point stdout at /dev/null so that the interpreter's final
    flush does not raise a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (captured in tests): nothing to flush
