"""The two error families: mapping files (fatal, at load) and records (per document)."""

from __future__ import annotations

from dataclasses import dataclass


class J1FilterError(ValueError):
    """Root of every error j1filter raises on purpose."""


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


class MappingError(J1FilterError):
    """A mapping file is invalid. Carries every problem found, one per line of the message."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class TransformError(J1FilterError):
    """A transform refused a value. The message says what was wrong with it."""
