"""Every error j1filter raises on purpose, grouped by cause (one tree for the whole package).

    J1FilterError
    ├── ConfigurationError   the setup is wrong: options, files, names, state (exit code 2)
    │   ├── UsageError       a command line that cannot be run
    │   ├── MappingError     a mapping file is invalid; lists every problem, located
    │   ├── ParameterError   a transform's parameters cannot be used (becomes a MappingError problem)
    │   ├── AssetNameError   a data stream name or schedule the engine would refuse
    │   └── CheckpointError  the collector's checkpoint cannot be read or written
    ├── DataError            one record cannot be mapped as it is (never fatal to a stream)
    │   ├── TransformError   a transform refused a value
    │   └── TooDeepError     nesting beyond the supported depth
    └── RemoteError          the J1 API failed or answered out of contract (one safe line)
        ├── AuthError, QueryError, MalformedResponseError
        └── RunawayPagingError, ResponseTooLargeError

None of them is a ValueError: a caller's ``except ValueError`` never swallows one by accident.
The command line turns each family into its exit code in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


class J1FilterError(Exception):
    """Root of every error j1filter raises on purpose."""


# --- the setup is wrong -------------------------------------------------------------------


class ConfigurationError(J1FilterError):
    """A usage or configuration problem the user fixes before running again (exit code 2)."""


class UsageError(ConfigurationError):
    """A command line that cannot be run: a misspelt subcommand, options that contradict."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a mapping file, located to the character."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    where: str  # e.g. "rules[2].transform"
    what: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.where}: {self.what}"
        return f"{text} ({self.hint})" if self.hint else text


class MappingError(ConfigurationError):
    """A mapping file is invalid. Carries every problem found, one per line of the message."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ParameterError(ConfigurationError):
    """A transform factory refused its parameters; the compiler reports it, located, as one
    problem of a MappingError."""


class AssetNameError(ConfigurationError):
    """A data stream type, dataset or namespace the engine would refuse, or a bad schedule."""


class CheckpointError(ConfigurationError):
    """The checkpoint file cannot be read or written."""


# --- one record -------------------------------------------------------------------------


class DataError(J1FilterError):
    """One record cannot be mapped as it is; it becomes an error document, the stream goes on."""


class TransformError(DataError):
    """A transform refused a value. The message says what was wrong with it."""


class TooDeepError(DataError):
    """A value nests deeper than the supported depth."""


# --- the remote API -----------------------------------------------------------------------


class RemoteError(J1FilterError):
    """A collection failed at or because of the J1 API; ``str()`` is one line, safe to show."""


#: The collector's historical name for the family.
CollectError = RemoteError


class AuthError(RemoteError):
    """HTTP 401/403: retrying cannot help."""


class QueryError(RemoteError):
    """J1 refused or failed the query (GraphQL errors, a FAILED deferred job)."""


class MalformedResponseError(RemoteError):
    """An answer that is not the queryV1 shape this client expects."""


class RunawayPagingError(RemoteError):
    """The cursor cycles, or paging goes on past the configured caps."""


class ResponseTooLargeError(RemoteError):
    """One answer is larger than --max-response-bytes."""
