"""Parsed mapping files: plain frozen data, no behaviour. See README "Mapping format"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Path = tuple[str, ...]

#: How a rule reads its sources: the first present, all present, all required, or a constant.
SourceKind = Literal["from", "collect", "args", "value"]
#: How a rule writes its target: replace, add to a list, or only when nothing is there yet.
Mode = Literal["set", "append", "default"]
#: What a failed ``fields:`` coercion does: drop the field (and record an error), or keep it raw.
OnError = Literal["remove", "keep"]

SOURCE_KINDS: tuple[SourceKind, ...] = get_args(SourceKind)
MODES: tuple[Mode, ...] = get_args(Mode)
ON_ERROR: tuple[OnError, ...] = get_args(OnError)


@dataclass(frozen=True)
class Expression:
    """A JMESPath expression over the snake_cased entity (for what a dotted path cannot say)."""

    text: str
    compiled: Any = field(compare=False, hash=False, repr=False)

    def __str__(self) -> str:
        return self.text


Source = Path | Expression


def source_text(source: Source) -> str:
    """A source as written in the mapping file."""
    return source.text if isinstance(source, Expression) else ".".join(source)


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Condition:
    """All given keys must hold (AND); within one key any listed value may match (OR). Class,
    type and integration type values may hold ``*`` and ``?`` wildcards (``*_alert``)."""

    classes: frozenset[str] = frozenset()  # entity._class has any of these
    not_classes: frozenset[str] = frozenset()  # entity._class has none of these
    types: frozenset[str] = frozenset()  # entity._type is one of these
    not_types: frozenset[str] = frozenset()  # entity._type is none of these
    integration_types: frozenset[str] = frozenset()  # entity._integration_type is one of these
    has: tuple[Path, ...] = ()  # every path holds a non-empty value
    missing: tuple[Path, ...] = ()  # no path holds a non-empty value

    @property
    def is_static(self) -> bool:
        """True when it depends only on class, type and integration type."""
        return not self.has and not self.missing


@dataclass(frozen=True)
class TransformCall:
    name: str
    params: dict[str, Any]
    location: Location


@dataclass(frozen=True)
class FieldType:
    """A coercion of a raw entity field (under ``jupiter_one.asset``) in place."""

    path: str  # dotted; the last segment may hold ``*`` wildcards
    transforms: tuple[TransformCall, ...]
    on_error: OnError
    location: Location


@dataclass(frozen=True)
class Rule:
    """Write one ECS field from the entity."""

    id: str
    to: Path
    source_kind: SourceKind
    sources: tuple[Source, ...]
    value: Any
    transforms: tuple[TransformCall, ...]
    mode: Mode
    when: Condition
    location: Location


@dataclass(frozen=True)
class MappingSpec:
    name: str
    file: str
    order: int
    description: str
    when: Condition
    fields: tuple[FieldType, ...]
    duplicates: tuple[Path, ...]
    rules: tuple[Rule, ...]
    custom_namespaces: frozenset[str] = frozenset()  # top-level names its rules may write besides ECS
    #: Reproduces Elastic's pipeline: a failure of its rules or fields makes the document a
    #: pipeline_error, as Elastic does. Otherwise a failure is only recorded in error.message.
    parity: bool = False
    location: Location = field(compare=False, default=Location("<memory>", 1, 1))
