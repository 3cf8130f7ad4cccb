"""``j1filter explain [FILE]``: for each entity, every output field with its value and the
rule that set it; ``--all`` also the rules that did not fire and why; ``--json`` for tools;
``--code`` the generated programs the filter runs for these entities.

The explanation comes from the same generated code the filter runs, built with trace
calls (see :mod:`j1filter.runtime.codegen`), so it cannot disagree with the filter.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import orjson

from ..io.jsontext import json_text
from ..io.output import LineWriter
from ..io.stops import EXIT_OK
from ..language.spec import Condition
from ..protocol import Unit, line_units, map_unit
from ..runtime.codegen import CONDITION, FIRED
from ..runtime.compiler import CompiledMappings, CompiledRule, EntityKind, static_match
from ..runtime.mapper import Mapper
from .main import new_parser
from .options import add_mapping_options, mapper_from_args

ENGINE = "j1filter"  # the label of fields the engine writes itself
ENGINE_FIELDS = (
    "@timestamp",
    "ecs.",
    "data_stream.",
    "event.original",
    "event.dataset",
    "event.module",
    "error.",
    "tags",
)
VALUE_WIDTH = 100  # longer values are cut (with an ellipsis)
ALIGN_AT = 72  # the rule column starts here unless the field and value are longer


@dataclass
class Explanation:
    """One entity: its document, who wrote each field, and every rule's outcome."""

    number: int
    where: str
    doc: dict[str, Any]
    fields: list[tuple[str, Any, str]] = field(default_factory=list)  # (field, value, set by)
    writers: dict[str, list[CompiledRule]] = field(default_factory=dict)  # field -> the rules that set it
    outcomes: list[tuple[CompiledRule, str, str]] = field(default_factory=list)  # (rule, outcome, detail)


def explain_lines(mapper: Mapper, lines: Iterable[bytes], name: str = "line") -> Iterator[Explanation]:
    """One explanation per document the filter writes for these lines (the same line protocol)."""
    number = 0
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        for unit in line_units(line, f"{name} {line_no}"):
            number += 1
            yield explain_unit(mapper, unit, number)


def explain_entity(mapper: Mapper, raw: Any, number: int = 1, where: str = "line 1") -> Explanation:
    return explain_unit(mapper, Unit(json_text(raw), where, entity=raw), number)


def explain_unit(mapper: Mapper, unit: Unit, number: int) -> Explanation:
    traced: list[tuple[int, str, str]] = []
    trace = None if unit.error_kind else lambda i, outcome, detail: traced.append((i, outcome, detail))
    doc = map_unit(mapper, unit, trace).doc
    return _explain_doc(mapper.mappings, number, unit.where, doc, traced, unit.entity)


def _explain_doc(
    compiled: CompiledMappings,
    number: int,
    where: str,
    doc: dict[str, Any],
    traced: list[tuple[int, str, str]],
    raw: Any,
) -> Explanation:
    explanation = Explanation(number, where, doc)
    seen = {i for i, _, _ in traced}
    writers: dict[str, list[CompiledRule]] = {}
    for i, outcome, detail in traced:
        rule = compiled.rules[i]
        explanation.outcomes.append((rule, outcome, detail))
        if outcome == FIRED:
            target = ".".join(rule.rule.to)
            if rule.rule.mode != "append":
                writers[target] = []
            writers.setdefault(target, []).append(rule)
    kind = _kind(raw)
    for rule in compiled.rules:
        if rule.index not in seen and kind is not None:
            explanation.outcomes.append((rule, CONDITION, _static_reason(compiled, rule, kind)))
    explanation.outcomes.sort(key=lambda item: item[0].index)
    for path, value in _leaves(doc):
        explanation.fields.append((path, value, _set_by(compiled, path, writers, doc)))
        rules = _writers_of(path, writers)
        if rules:
            explanation.writers[path] = rules
    return explanation


def _kind(raw: Any) -> EntityKind | None:
    entity = raw.get("entity") if isinstance(raw, dict) else None
    if not isinstance(entity, dict):
        return None

    def texts(key: str) -> frozenset[str]:
        value = entity.get(key)
        items = value if isinstance(value, list) else [value]
        return frozenset(v for v in items if isinstance(v, str))

    return EntityKind(texts("_class"), texts("_type"), texts("_integrationType"))


def _static_reason(compiled: CompiledMappings, rule: CompiledRule, kind: EntityKind) -> str:
    spec = next(s for s in compiled.specs if rule.rule in s.rules)
    if not static_match(spec.when, kind):
        return f"file {spec.name} applies when {_describe(spec.when)}"
    return f"when {_describe(rule.rule.when)}"


def _describe(cond: Condition) -> str:
    parts = [
        f"{label} {'/'.join(sorted(values))}"
        for label, values in (
            ("class", cond.classes),
            ("not class", cond.not_classes),
            ("type", cond.types),
            ("not type", cond.not_types),
            ("integration_type", cond.integration_types),
        )
        if values
    ]
    return ", ".join(parts)


def _leaves(doc: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in doc.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _set_by(
    compiled: CompiledMappings, path: str, writers: dict[str, list[CompiledRule]], doc: dict[str, Any]
) -> str:
    if path == "event.kind" and doc["event"].get("kind") == "pipeline_error" and "error" in doc:
        return f"{ENGINE} (error flag)"
    rules = _writers_of(path, writers)
    if rules:
        return ", ".join(f"{r.rule.location.file}:{r.rule.location.line} {r.rule.id}" for r in rules)
    if path.startswith("jupiter_one.asset."):
        raw = path[len("jupiter_one.asset.") :]
        coerced = next(
            (f for group in compiled.fields for f in group if fnmatchcase(raw, f.field.path)), None
        )
        if coerced is not None:
            loc = coerced.field.location
            return (
                f"{ENGINE} (raw entity; {'/'.join(s.name for s in coerced.steps)} by {loc.file}:{loc.line})"
            )
        return f"{ENGINE} (raw entity)"
    if path.startswith(ENGINE_FIELDS):
        return ENGINE
    return "?"


def _writers_of(path: str, writers: dict[str, list[CompiledRule]]) -> list[CompiledRule]:
    """The rules that wrote ``path``, or the object holding it (``url`` for ``url.domain``)."""
    while path not in writers and "." in path:
        path = path.rsplit(".", 1)[0]
    return writers.get(path, [])


def _value_text(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def render_text(explanation: Explanation, show_all: bool) -> str:
    doc = explanation.doc
    entity = doc.get("jupiter_one", {}).get("asset", {}).get("entity", {})
    head = f"# entity {explanation.number} ({explanation.where})"
    kind = " ".join(f"{k}={orjson.dumps(entity[k]).decode()}" for k in ("_class", "_type") if k in entity)
    lines = [f"{head}: {kind}" if kind else head]
    rows = [(f"{path} = {_value_text(value)}", by) for path, value, by in explanation.fields]
    width = min(max((len(left) for left, _ in rows), default=0), ALIGN_AT)
    lines += [f"{left.ljust(width)}   {by}" for left, by in rows]
    if show_all:
        lines.append("# rules that did not fire")
        if not explanation.outcomes:
            lines.append("(none ran: the input is not an entity)")
        for rule, outcome, detail in explanation.outcomes:
            if outcome != FIRED:
                lines.append(f"{rule.label}: {outcome}" + (f" ({detail})" if detail else ""))
    return "\n".join(lines) + "\n"


def render_json(explanation: Explanation) -> bytes:
    return orjson.dumps(
        {
            "entity": explanation.number,
            "where": explanation.where,
            "fields": [
                {
                    "field": path,
                    "value": value,
                    "set_by": by,
                    "rules": [
                        {"file": r.rule.location.file, "line": r.rule.location.line, "id": r.rule.id}
                        for r in explanation.writers.get(path, [])
                    ],
                }
                for path, value, by in explanation.fields
            ],
            "rules": [
                {
                    "file": r.rule.location.file,
                    "line": r.rule.location.line,
                    "id": r.rule.id,
                    "outcome": outcome,
                    "detail": detail,
                }
                for r, outcome, detail in explanation.outcomes
            ],
        }
    )


def program_listing(mapper: Mapper, lines: Iterable[bytes]) -> str:
    """The generated programs the filter runs for these entities, each under its name."""
    for line_no, line in enumerate(lines, 1):
        if line.strip():
            for unit in line_units(line, f"line {line_no}"):
                map_unit(mapper, unit)
    return "\n".join(f"# {p.filename}\n{p.source}" for p in mapper.runtime.cached_programs())


def _parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "j1filter explain",
        "For each entity read (FILE or stdin), print every output field with its value "
        "and the rule that set it (file:line rule-id).",
    )
    parser.add_argument("input", nargs="?", metavar="FILE", help="read this file instead of stdin")
    add_mapping_options(parser)
    parser.add_argument("--all", action="store_true", help="also list the rules that did not fire, and why")
    parser.add_argument("--json", action="store_true", help="one JSON object per entity (all rule outcomes)")
    parser.add_argument("--code", action="store_true", help="print the generated program(s) instead")
    return parser


def explain_main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    mapper = mapper_from_args(args)
    try:
        if args.input:
            with open(args.input, "rb") as source:
                lines = source.read().splitlines()
        else:
            lines = sys.stdin.buffer.read().splitlines()
    except OSError as exc:  # the exit-code table reports it; this says what explain expects
        exc.add_note(
            "explain reads raw J1 entities, one JSON document per line, from FILE or stdin, as the "
            "filter does:\n  j1filter explain entities.ndjson   or   j1filter collect --once | j1filter explain"
        )
        raise
    # Whole lines only, even on a stop signal; a closed output ends the run with 0 (see .stops).
    out = LineWriter(sys.stdout.buffer)
    if args.code:
        out.write_text(program_listing(mapper, lines))
    else:
        for explanation in explain_lines(mapper, lines):
            if args.json:
                out.write([render_json(explanation)])
            else:
                out.write_text(render_text(explanation, args.all) + "\n")
    return EXIT_OK
