"""Every shipped .conf loads on the oldest Logstash the documentation names (8.0).

Logstash's config grammar accepts a comment between two entries of a hash only from 8.15.0 on
(elastic/logstash#16058; before it, `hashentries` allowed whitespace alone between entries),
and before that release a comment could not end the file without a newline either. The rule
kept here is simpler than the old grammar: no comment anywhere inside a hash (`=> { ... }`),
and every file ends with a newline. Comments in plugin blocks, sections and arrays are fine.
"""

from __future__ import annotations

import re

import pytest
from ls_helpers import REPO, conf_files

OLDEST_LOGSTASH = "8.0"


def comments_in_hashes(text: str) -> list[int]:
    """Line numbers of comments inside a hash literal. Strings and the regular expressions of
    `=~`/`!~` are skipped, so a `#` or a brace inside them counts for nothing."""
    found: list[int] = []
    stack: list[str] = []  # "hash" or "block", one per open brace
    previous = ""  # the last significant token
    i, line = 0, 1
    while i < len(text):
        char = text[i]
        if char == "\n":
            line += 1
            i += 1
        elif char.isspace():
            i += 1
        elif char == "#":
            if "hash" in stack:
                found.append(line)
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif char in "\"'" or (char == "/" and previous in ("=~", "!~")):
            end = i + 1
            while end < len(text) and text[end] != char:
                end += 2 if text[end] == "\\" else 1
            line += text.count("\n", i, end + 1)
            i, previous = end + 1, "value"
        elif char == "{":
            stack.append("hash" if previous == "=>" else "block")
            i, previous = i + 1, "{"
        elif char == "}":
            if stack:
                stack.pop()
            i, previous = i + 1, "}"
        else:
            token = re.match(r"=>|=~|!~|[^\s{}#\"'=!]+|.", text[i:])[0]  # type: ignore[index]
            i, previous = i + len(token), token
    return found


def test_the_rule_bites():
    between = 'filter { mutate { add_field => {\n  "a" => "1"\n  # why\n  "b" => "2"\n} } }\n'
    assert comments_in_hashes(between) == [3]
    nested = "input { http_poller { urls => { j1 => {\n  method => post\n  # x\n  url => 'u'\n} } } }\n"
    assert comments_in_hashes(nested) == [3]
    fine = (
        "# top\ninput { # section\n  http_poller { # plugin\n    urls => { j1 => 'u' } # after the hash\n"
        "    tags => [ # array\n 'a' ] } }\n"
        "filter { if [m] =~ /a#b{/ { mutate { add_field => { 'k' => 'x # y {' } } } }\n"
    )
    assert comments_in_hashes(fine) == []


@pytest.mark.parametrize("path", conf_files(), ids=lambda p: p.name)
def test_no_comment_inside_a_hash(path):
    text = path.read_text()
    assert not comments_in_hashes(text), (
        f"{path.name}: comments inside a hash at lines {comments_in_hashes(text)}; "
        f"Logstash before 8.15 refuses them (the documentation names {OLDEST_LOGSTASH})"
    )
    assert text.endswith("\n"), f"{path.name}: a last line without a newline fails before Logstash 8.15"


def test_the_documentation_names_this_oldest_version():
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"Logstash **{OLDEST_LOGSTASH} or later" in readme
    assert "Logstash 8.x/9.x" in (REPO / "logstash" / "README.md").read_text()
