"""Small models of the Elasticsearch side, read from the shipped bundle (not restated here):

- `DataStream`: bulk `create` with an explicit `_id` (a second `create` of an id is a 409 and
  keeps the first document), the id built by the rule in logstash/j1-collector.conf, capped
  as its `j1_cap_document_id` filter caps it;
- `LatestView`: the latest transform of logstash/elasticsearch/transform-latest.json
  (unique_key, sort and retention_policy), evaluated at a given time.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

LOGSTASH = Path(__file__).resolve().parents[2] / "logstash"
_FIELD_REF = re.compile(r"%\{((?:\[[^\]]+\])+)\}")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def field_value(doc: dict[str, Any], path: str) -> Any:
    """`a.b.c` or `[a][b][c]` in a nested document (None when absent)."""
    names = re.findall(r"\[([^\]]+)\]", path) if path.startswith("[") else path.split(".")
    value: Any = doc
    for name in names:
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    return value


#: The Ruby code of every shipped pipeline's id cap (filter id `j1_cap_document_id`), the one
#: text `capped` below implements: an id longer than 512 bytes becomes its SHA-256 (hex).
CAP_CODE = (
    'id = event.get("[@metadata][_id]").to_s; '
    'event.set("[@metadata][_id]", Digest::SHA256.hexdigest(id)) if id.bytesize > 512'
)
MAX_ID_BYTES = 512
_CAP_FILTER = re.compile(
    r'ruby\s*\{\s*id\s*=>\s*"j1_cap_document_id"\s*init\s*=>\s*\'require "digest"\'\s*code\s*=>\s*\'([^\']*)\''
)


def capped(doc_id: str) -> str:
    """What CAP_CODE does to one id (Ruby's `bytesize` is the UTF-8 length)."""
    raw = doc_id.encode()
    return hashlib.sha256(raw).hexdigest() if len(raw) > MAX_ID_BYTES else doc_id


@dataclass(frozen=True)
class IdRule:
    """The document-id rule of a Logstash pipeline: a base template, set when its fields exist,
    then a suffix template applied when the suffix's own field exists, then the id cap."""

    base: str
    suffix: str

    @classmethod
    def from_conf(cls, path: Path = LOGSTASH / "j1-collector.conf") -> IdRule:
        text = path.read_text()
        (base,) = re.findall(r'add_field\s*=>\s*\{\s*"\[@metadata\]\[_id\]"\s*=>\s*"([^"]+)"', text)
        (suffix,) = re.findall(r'replace\s*=>\s*\{\s*"\[@metadata\]\[_id\]"\s*=>\s*"([^"]+)"', text)
        assert _CAP_FILTER.findall(text) == [CAP_CODE], f"{path.name}: not the shared id cap"
        return cls(base, suffix)

    def document_id(self, doc: dict[str, Any]) -> str | None:
        base = self._render(self.base, doc, {})
        if base is None:
            return None  # error documents: a content hash in the real pipeline
        with_suffix = self._render(self.suffix, doc, {"[@metadata][_id]": base})
        return capped(with_suffix if with_suffix is not None else base)

    @staticmethod
    def _render(template: str, doc: dict[str, Any], metadata: dict[str, str]) -> str | None:
        missing = False

        def value(match: re.Match[str]) -> str:
            nonlocal missing
            ref = match.group(1)
            found = metadata.get(ref, field_value(doc, ref))
            if found is None:
                missing = True
                return ""
            return str(found)

        rendered = _FIELD_REF.sub(value, template)
        return None if missing else rendered


@dataclass
class DataStream:
    id_rule: IdRule = field(default_factory=IdRule.from_conf)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    conflicts: int = 0

    def create(self, doc: dict[str, Any]) -> bool:
        """Bulk `create`: False (409) when the id exists; the stored document stays as it was."""
        doc_id = self.id_rule.document_id(doc)
        assert doc_id is not None, f"a j1filter document without an id: {json.dumps(doc)[:300]}"
        if doc_id in self.documents:
            self.conflicts += 1
            return False
        self.documents[doc_id] = doc
        return True


@dataclass
class LatestTransform:
    """A continuous latest transform: `ingest` what the source gained, `view` the destination."""

    unique_key: tuple[str, ...]
    sort: str
    retention_field: str
    max_age_ms: int
    _latest: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_asset(cls, path: Path = LOGSTASH / "elasticsearch" / "transform-latest.json") -> LatestTransform:
        body = json.loads(path.read_text())
        retention = body["retention_policy"]["time"]
        number, unit = _DURATION.match(retention["max_age"]).groups()  # type: ignore[union-attr]
        return cls(
            tuple(body["latest"]["unique_key"]),
            body["latest"]["sort"],
            retention["field"],
            int(number) * _UNITS_MS[unit],
        )

    def ingest(self, doc: dict[str, Any]) -> None:
        """A new source document: it becomes its key's latest when its sort value is greater."""
        key = tuple(field_value(doc, name) for name in self.unique_key)
        if any(part is None for part in key):
            return  # a transform skips documents without the key (error documents)
        sort_ms = _ms(field_value(doc, self.sort))
        current = self._latest.get(key)
        if current is None or sort_ms > current[0]:
            self._latest[key] = (sort_ms, doc)

    def view(self, now_ms: int) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The destination index at `now_ms`: per unique key the document with the greatest sort
        value, minus those whose retention field is older than max_age."""
        return {
            key: doc
            for key, (_, doc) in self._latest.items()
            if now_ms - _ms(field_value(doc, self.retention_field)) <= self.max_age_ms
        }


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
