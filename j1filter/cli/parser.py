"""The argument parser every subcommand uses: long options are never abbreviated (a typo must
not silently pick another option), and a mistyped long option gets "did you mean", as a
mistyped subcommand does. The suggestion names only the parser's own options, never a value
the user typed (an unknown argument may be a secret typed in the wrong place)."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn


class CommandParser(argparse.ArgumentParser):
    def __init__(self, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(**kwargs)
        self._suggestion = ""

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self._suggestion = self.did_you_mean(unknown)
            self.error("unrecognized arguments: " + " ".join(unknown))
        return parsed

    def did_you_mean(self, words: Sequence[str]) -> str:
        """`did you mean `--namespace`?` for the unknown long options close to a real one."""
        options = [name for name in self._option_string_actions if name.startswith("--")]
        guesses = [
            close[0]
            for word in words
            if word.startswith("--")
            and (close := difflib.get_close_matches(word.split("=", 1)[0], options, n=1, cutoff=0.6))
        ]
        return f"did you mean {' and '.join(f'`{guess}`' for guess in guesses)}?" if guesses else ""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        suggestion = f"\n{self._suggestion}" if self._suggestion else ""
        self.exit(2, f"{self.prog}: error: {message}{suggestion}\n")
