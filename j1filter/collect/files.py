"""Files on a shared host: created without following symlinks or reusing a name, owner-only by
default, and one lock per piece of state so that two collectors never share it.

- `create_new(path, mode)` opens a file that did not exist (``O_CREAT|O_EXCL|O_NOFOLLOW``) and
  sets exactly `mode` (the umask cannot widen or narrow it).
- `StateLock` holds ``flock`` on ``<name>.lock`` for the life of the process: a second
  collector on the same checkpoint or spool directory fails with "in use by pid N".
- `require_writable_directory` is the start-up check: exit 2 with what to do, before any request.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import BinaryIO

from ..errors import ConfigurationError

#: Spool and state files: owner read/write only, unless --file-mode says otherwise.
DEFAULT_FILE_MODE = 0o600
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def create_new(path: Path, mode: int = DEFAULT_FILE_MODE) -> BinaryIO:
    """A new file at `path`, opened for writing; raises FileExistsError if anything (a file, a
    symlink) is there already."""
    descriptor = os.open(path, _NEW_FILE_FLAGS, mode)
    try:
        os.fchmod(descriptor, mode)
        return os.fdopen(descriptor, "wb")
    except BaseException:
        os.close(descriptor)
        raise


def try_lock(descriptor: int) -> bool:
    """An exclusive, non-blocking flock on `descriptor`: False when another process holds it."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EACCES):
            return False
        raise
    return True


class StateLock:
    """An exclusive lock on `path` (a ``.lock`` file) held until `release` or the process ends."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        try:
            self._descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise ConfigurationError(
                f"cannot create the lock file {path} for {what}: {error.strerror}; check the directory's"
                " owner and mode"
            ) from None
        if not try_lock(self._descriptor):
            holder = _read_pid(self._descriptor)
            os.close(self._descriptor)
            raise ConfigurationError(
                f"{what} is in use by pid {holder or '(unknown)'}: another j1filter collect runs on it;"
                " stop that one or give each collector its own checkpoint and spool directory"
            )
        os.ftruncate(self._descriptor, 0)
        os.pwrite(self._descriptor, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._descriptor >= 0:
            os.close(self._descriptor)  # closing drops the flock
            self._descriptor = -1


def _read_pid(descriptor: int) -> str:
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


def require_writable_directory(directory: Path, option: str) -> None:
    """Raise ConfigurationError (exit 2) unless `directory` exists and this user can create files in it."""
    hint = f"create it for the collector's user, e.g. install -d -m 0750 -o j1filter {directory}"
    if not directory.exists():
        raise ConfigurationError(f"{option}: the directory {directory} does not exist; {hint}")
    if not directory.is_dir():
        raise ConfigurationError(f"{option}: {directory} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"{option}: cannot create files in {directory} (not writable, or a read-only file system); {hint}"
        )
