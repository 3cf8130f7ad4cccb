"""Human-readable views of the mappings: the field table and the transform table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from ..convert.registry import builtin_transforms
from ..language.spec import Condition, MappingSpec, TransformCall, source_text


def _condition(cond: Condition) -> str:
    parts = []
    for label, values in (
        ("class", cond.classes),
        ("not class", cond.not_classes),
        ("type", cond.types),
        ("not type", cond.not_types),
        ("integration", cond.integration_types),
    ):
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
            rows.append(
                f"| {source} | {'.'.join(rule.to)} | {_transforms(rule.transforms)} | "
                f"{rule.mode} | {when} | {spec.name} |"
            )
    rows += ["", "| raw field (under jupiter_one.asset) | type | on error | mapping |", "|---|---|---|---|"]
    for spec in specs:
        for field_type in spec.fields:
            rows.append(
                f"| {field_type.path} | {_transforms(field_type.transforms)} | "
                f"{field_type.on_error} | {spec.name} |"
            )
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


# --- the demo's summary ------------------------------------------------------------------------

Doc = dict[str, Any]  # one ECS document

#: event.severity (j1filter's 0-10 scale) back to the label it came from.
SEVERITY_LABELS = {10: "critical", 8: "high", 6: "medium", 4: "low", 1: "info", 0: "none"}
UNSET = "unset"  # the column of documents without event.severity
UNKNOWN = "(unknown)"  # the row of documents that name no source
_SEVERITY_COLUMNS = (*SEVERITY_LABELS.values(), UNSET)


def _dig(doc: Doc, dotted: str) -> Any:
    value: Any = doc
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _classes(doc: Doc) -> list[str]:
    classes = _dig(doc, "jupiter_one.asset.entity._class")
    return [classes] if isinstance(classes, str) else list(classes or [])


def _severity(doc: Doc) -> str:
    return SEVERITY_LABELS.get(_dig(doc, "event.severity"), UNSET)


def _source(doc: Doc) -> str:
    vendor = _dig(doc, "vulnerability.scanner.vendor")
    return _dig(doc, "event.provider") or (vendor.lower() if isinstance(vendor, str) else UNKNOWN)


def source_table(docs: list[Doc]) -> str:
    """Documents by source (``event.provider``, else the scanner vendor): how many, their classes, their severities
    and how many carry an error; one row per source and a total."""
    rows: dict[str, dict[str, Any]] = {}
    for doc in docs:
        row = rows.setdefault(
            _source(doc), {"docs": 0, "classes": Counter(), "severity": Counter(), "errors": 0}
        )
        row["docs"] += 1
        row["classes"].update(_classes(doc))
        row["severity"][_severity(doc)] += 1
        row["errors"] += "error" in doc
    columns = [c for c in _SEVERITY_COLUMNS if any(r["severity"][c] for r in rows.values())]
    header = ["source", "documents", "classes", *columns, "errors"]
    body = [
        [
            name,
            row["docs"],
            ", ".join(sorted(row["classes"])),
            *(row["severity"][c] for c in columns),
            row["errors"],
        ]
        for name, row in sorted(rows.items(), key=lambda item: (-item[1]["docs"], item[0]))
    ]
    total = [
        "total",
        len(docs),
        "",
        *(sum(r["severity"][c] for r in rows.values()) for c in columns),
        sum(r["errors"] for r in rows.values()),
    ]
    return _align([header, *body, total])


def source_table_legend(docs: list[Doc]) -> list[str]:
    """What the table's columns say, and what its `(unknown)` row and `unset` column hold,
    with the entity types behind them."""
    scale = ", ".join(f"{label} {value}" for value, label in SEVERITY_LABELS.items())
    lines = [f"Severity columns: event.severity on one 0-10 scale for every source ({scale})."]
    unknown = _types_of(doc for doc in docs if _source(doc) == UNKNOWN)
    if unknown:
        lines.append(
            f"{UNKNOWN}: entities that name no source (no event.provider or scanner vendor), such as "
            f"uploads through J1's API or custom integrations; here {unknown}."
        )
    unset = _types_of(doc for doc in docs if _severity(doc) == UNSET)
    if unset:
        lines.append(f"{UNSET}: no severity the mappings can read in the entity; here {unset}.")
    return lines


def _types_of(docs: Iterator[Doc]) -> str:
    """`a (2), b (1)`: the entity types of ``docs``, most frequent first."""
    counts = Counter(str(_dig(doc, "jupiter_one.asset.entity._type")) for doc in docs)
    return ", ".join(f"{kind} ({n})" for kind, n in counts.most_common())


def _align(rows: list[list[Any]]) -> str:
    """Text columns: words to the left, numbers to the right."""
    cells = [[f"{v:,}" if isinstance(v, int) else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    numeric = [isinstance(v, int) for v in rows[1]] if len(rows) > 1 else [False] * len(widths)
    return "\n".join(
        "  ".join(
            cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(row, widths, numeric)
        ).rstrip()
        for row in cells
    )


def errors_by_kind(kinds: Counter[str], docs: list[Doc]) -> str:
    """``none``, or each kind of error with its count, and the first error message."""
    if not kinds:
        return "none"
    first = next((doc["error"]["message"][0] for doc in docs if _dig(doc, "error.message")), "")
    counts = ", ".join(f"{kind} {n:,}" for kind, n in sorted(kinds.items()))
    return f"{counts}; the first says: {first}" if first else counts


def ecs_fields_filled(docs: list[Doc], top: int = 8) -> str:
    """How many distinct ECS fields the documents fill, and the most frequent ones."""
    counts: Counter[str] = Counter()
    for doc in docs:
        counts.update(
            name
            for name in _leaf_names(doc)
            if not name.startswith(
                (
                    "jupiter_one.",
                    "event.original",
                    "data_stream.",
                    "ecs.",
                    "@timestamp",
                    "observer.",
                    "event.module",
                    "event.dataset",
                )
            )
        )
    common = ", ".join(f"{name} ({n})" for name, n in counts.most_common(top))
    return f"{len(counts)} distinct; most often: {common}"


def _leaf_names(doc: Doc, prefix: str = "") -> Iterator[str]:
    for key, value in doc.items():
        if isinstance(value, dict):
            yield from _leaf_names(value, f"{prefix}{key}.")
        else:
            yield prefix + key
