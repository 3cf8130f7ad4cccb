"""Human-readable views of the mappings: the field table and the transform table."""

from __future__ import annotations

from ..language.loader import source_text
from ..language.spec import Condition, MappingSpec, TransformCall
from ..convert.registry import builtin_transforms


def _condition(cond: Condition) -> str:
    parts = []
    for label, values in (("class", cond.classes), ("not class", cond.not_classes),
                          ("type", cond.types), ("integration", cond.integration_types)):
        if values:
            parts.append(f"{label} {'/'.join(sorted(values))}")
    parts += [f"has {'.'.join(p)}" for p in cond.has]
    parts += [f"no {'.'.join(p)}" for p in cond.missing]
    return ", ".join(parts)


def _transforms(calls: tuple[TransformCall, ...]) -> str:
    return " → ".join(call.name for call in calls)


def field_table(specs: list[MappingSpec]) -> str:
    """Markdown: one row per rule, in the order rules run."""
    rows = ["| source | target | transform | mode | when | mapping |", "|---|---|---|---|---|---|"]
    for spec in specs:
        for rule in spec.rules:
            if rule.source_kind == "value":
                source = f"= {rule.value!r}"
            else:
                joiner = {"from": " or ", "collect": " + ", "args": ", "}[rule.source_kind]
                source = joiner.join(map(source_text, rule.sources))
            when = "; ".join(filter(None, (_condition(spec.when), _condition(rule.when))))
            rows.append(f"| {source} | {'.'.join(rule.to)} | {_transforms(rule.transforms)} | "
                        f"{rule.mode} | {when} | {spec.name} |")
    rows += ["", "| raw field (under jupiter_one.asset) | type | on error | mapping |", "|---|---|---|---|"]
    for spec in specs:
        for field_type in spec.fields:
            rows.append(f"| {field_type.path} | {_transforms(field_type.transforms)} | "
                        f"{field_type.on_error} | {spec.name} |")
    return "\n".join(rows)


def transform_table() -> str:
    """Markdown: every built-in transform with its parameters, result type and reference text."""
    import inspect

    rows = ["| transform | parameters | lists | returns | what it does |", "|---|---|---|---|---|"]
    for entry in builtin_transforms():
        params = ", ".join(inspect.signature(entry.factory).parameters) or "–"
        each = "each item" if entry.per_item else "whole value"
        result = entry.result if isinstance(entry.result, str) else "type of its values"
        doc = " ".join(entry.doc.split()).replace("``", "`").replace("|", "\\|")
        rows.append(f"| `{entry.name}` | {params} | {each} | {result} | {doc} |")
    return "\n".join(rows)
