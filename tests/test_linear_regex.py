"""Every regular expression applied to data runs in linear time.

The patterns are found, not listed: every compiled pattern at module level in
``j1filter.convert`` and ``j1filter.runtime``, the ``pattern`` of every transform of the shipped
mappings, and their field-name wildcards. Each is run (fullmatch, match, search) on long
strings built from its own characters, the shape that makes a backtracking pattern
quadratic (``"1" * 20_000 + "x"`` took 12 s in the old ``double`` pattern).
"""

from __future__ import annotations

import importlib
import itertools
import pkgutil
import re
import time
from collections.abc import Iterator
from fnmatch import translate
from typing import Any

import pytest

import j1filter.convert
import j1filter.runtime
from j1filter.language.loader import load_mappings

N = 2000
#: Linear work on 2,000 characters takes well under a millisecond; quadratic, a tenth of a
#: second or more (the old double pattern: 0.16 s).
LIMIT_SECONDS = 0.05
BASE_CHARS = '01aAxe .-:/\\"%@_+,T'


def _patterns_in(value: Any) -> Iterator[re.Pattern]:
    if isinstance(value, re.Pattern):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _patterns_in(item)


def data_patterns() -> dict[str, tuple[re.Pattern, tuple[str, ...]]]:
    """name -> (pattern, the operations the code applies it with)."""
    found: dict[str, tuple[re.Pattern, tuple[str, ...]]] = {}
    every = ("fullmatch", "match", "search")
    for package in (j1filter.convert, j1filter.runtime):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                for n, pattern in enumerate(_patterns_in(value)):
                    found[f"{info.name}.{name}[{n}]"] = pattern, every
    for spec in load_mappings():
        calls = [c for rule in spec.rules for c in rule.transforms]
        calls += [c for field in spec.fields for c in field.transforms]
        for call in calls:
            if "pattern" in call.params:  # extract, by_key: applied to data
                pattern = re.compile(call.params["pattern"])
                found[f"{spec.name}: {call.name} {call.params['pattern']}"] = pattern, every
        for field in spec.fields:
            key = field.path.rsplit(".", 1)[-1]
            if "*" in key or "?" in key:
                # FieldTable.lookup matches a key from its start (a search would be quadratic)
                found[f"{spec.name}: field {field.path}"] = re.compile(translate(key)), ("match",)
    return found


PATTERNS = data_patterns()


_SPECIAL = set(".^$*+?{}[]|()\\")
_QUANTIFIERS = set("*+?{")


def _source(pattern: re.Pattern) -> str:
    """A pattern's text (a bytes pattern's as Latin-1, one character per byte)."""
    return pattern.pattern.decode("latin-1") if isinstance(pattern.pattern, bytes) else pattern.pattern


def literal_prefix(pattern: re.Pattern) -> str:
    """The literal text the pattern starts with, if any (so the hostile part is reached):
    plain characters and escaped punctuation, up to the first construct or quantified item."""
    text, chars, i = _source(pattern), [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and not text[i + 1].isalnum():
            char, width = text[i + 1], 2
        elif text[i] not in _SPECIAL:
            char, width = text[i], 1
        else:
            break
        if i + width < len(text) and text[i + width] in _QUANTIFIERS:
            break  # the item may repeat or be absent: not a fixed prefix
        chars.append(char)
        i += width
    return "".join(chars)


@pytest.mark.parametrize(
    "pattern, prefix",
    [
        (r"CVE-\d{4}", "CVE-"),
        (r"\(?CVSS:", ""),
        (r"https?://", "http"),
        (r"ab*c", "a"),
        (r"a\.b(c)", "a.b"),
        (r"[0-9]+", ""),
    ],
)
def test_literal_prefix(pattern, prefix):
    assert literal_prefix(re.compile(pattern)) == prefix


def hostile_strings(pattern: re.Pattern) -> Iterator[str | bytes]:
    """Long texts of the pattern's own characters (bytes for a bytes pattern)."""
    alphabet = sorted(set(BASE_CHARS) | {c for c in _source(pattern) if c.isprintable()})
    as_bytes = isinstance(pattern.pattern, bytes)
    for prefix in dict.fromkeys(("", literal_prefix(pattern))):
        for a, b in itertools.product(alphabet, repeat=2):
            body = a * N if a == b else (a + b) * (N // 2)
            for text in (prefix + body + "\x00", prefix + body):
                yield text.encode("latin-1") if as_bytes else text


def test_patterns_were_found():
    names = " ".join(PATTERNS)
    for expected in ("_JAVA_DOUBLE", "_ISO", "_SERVER_HOST", "_URI", "_WINDOWS_ARG", "extract"):
        assert expected in names


def _seconds(operation, text):
    start = time.perf_counter()
    operation(text)
    return time.perf_counter() - start


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_runs_in_linear_time(name):
    pattern, operations = PATTERNS[name]
    for text in hostile_strings(pattern):
        for operation in operations:
            elapsed = min(_seconds(getattr(pattern, operation), text) for _ in range(3))  # no hiccups
            assert elapsed < LIMIT_SECONDS, (
                f"{name}: {elapsed:.2f} s for {operation}({text[:30]!r}... {len(text)} chars)"
            )
