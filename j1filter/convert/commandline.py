"""Split a process command line into its arguments (ECS ``process.args``)."""

from __future__ import annotations

import re
import shlex
from typing import Any

_WINDOWS_HINT = re.compile(r'^\s*"?[A-Za-z]:\\|\\|\.exe\b', re.I)
# An argument as Windows reads it when no backslash precedes a quote: runs of unquoted
# non-blanks and quoted spans, the quotes themselves dropped.
_WINDOWS_ARG = re.compile(r'(?:[^\s"]+|"[^"]*(?:"|$))+')


def split_windows(command_line: str) -> list[str]:
    """Split as Windows' CommandLineToArgvW does: quotes group, and backslashes escape a
    quote only when they come right before it (2n backslashes + quote -> n and a toggle)."""
    args: list[str] = []
    current: list[str] = []
    in_quotes = False
    has_arg = False
    i, n = 0, len(command_line)
    while i < n:
        ch = command_line[i]
        if ch == "\\":
            run = 1
            while i + run < n and command_line[i + run] == "\\":
                run += 1
            if i + run < n and command_line[i + run] == '"':
                current.append("\\" * (run // 2))
                if run % 2:
                    current.append('"')
                    i += run + 1
                else:
                    i += run
                has_arg = True
                continue
            current.append("\\" * run)
            i += run
            has_arg = True
            continue
        if ch == '"':
            in_quotes = not in_quotes
            has_arg = True
        elif ch in " \t" and not in_quotes:
            if has_arg:
                args.append("".join(current))
                current, has_arg = [], False
        else:
            current.append(ch)
            has_arg = True
        i += 1
    if has_arg:
        args.append("".join(current))
    return args


def split_command_line(value: Any) -> list[str] | None:
    """Arguments of a command line, Windows rules when it looks like one; ``None`` when it
    cannot be split (e.g. an unbalanced POSIX quote) or is empty."""
    if not isinstance(value, str) or not value.strip():
        return None
    if _WINDOWS_HINT.search(value):
        if '\\"' not in value:  # fast path: quotes only group, backslashes are literal
            return [arg.replace('"', "") for arg in _WINDOWS_ARG.findall(value)] or None
        return split_windows(value) or None
    try:
        return shlex.split(value) or None
    except ValueError:
        return None
