"""The per-entity pipeline: raw J1 entity -> ECS document.

1. prepare: snake_case every key, drop empty values, expand dotted property keys;
2. coerce: convert the typed fields of the raw entity in place (dates, numbers, IPs, ...);
3. rules: write the ECS fields, in mapping order;
4. finish: drop the duplicated custom fields unless asked to keep them, add the data
   stream, ``event.original`` and, when anything went wrong, the error flags.

Nothing here reads or writes files: :mod:`j1filter.stream` feeds lines in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ._meta import (DEFAULT_DATA_STREAM_TYPE, DEFAULT_DATASET, DEFAULT_NAMESPACE, ECS_VERSION,
                    ERROR_TAG, EVENT_MODULE, PRESERVE_DUPLICATES_TAG)
from .compiler import CompiledMappings, EntityKind, Plan
from .errors import TransformError
from .loader import load_mappings
from .paths import TooDeepError, delete_path, expand_dots, get_path, snake_clean
from .spec import MappingSpec


def utc_now_ms() -> str:
    """The current time in the output date form (what ``@timestamp`` gets by default)."""
    now_ms = time.time_ns() // 1_000_000
    seconds, millis = divmod(now_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


@dataclass(frozen=True)
class Options:
    preserve_duplicate_custom_fields: bool = False
    data_stream_type: str = DEFAULT_DATA_STREAM_TYPE
    dataset: str = DEFAULT_DATASET
    namespace: str = DEFAULT_NAMESPACE
    #: Source of ``@timestamp`` (the time j1filter saw the entity, as Elastic's agent does).
    clock: Callable[[], str] = field(default=utc_now_ms, compare=False)


def _text_set(value: Any, where: str, errors: list[str]) -> frozenset[str]:
    """A J1 field that may be a string or a list of strings, as a set."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset((value,))
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    errors.append(f"{where}: expected text or a list of text, found {type(value).__name__}")
    return frozenset()


class Mapper:
    """Turns raw J1 entities into ECS documents. Immutable after construction; reusable."""

    def __init__(self, mappings: CompiledMappings | Iterable[MappingSpec] | None = None,
                 options: Options = Options()):
        if mappings is None:
            mappings = load_mappings()
        self.mappings = mappings if isinstance(mappings, CompiledMappings) else CompiledMappings(mappings)
        self.options = options
        self._data_stream = {"type": options.data_stream_type, "dataset": options.dataset,
                             "namespace": options.namespace}

    # -- documents ------------------------------------------------------------------------------

    def _skeleton(self, original: str) -> dict:
        return {
            "@timestamp": self.options.clock(),
            "ecs": {"version": ECS_VERSION},
            "data_stream": dict(self._data_stream),
            "event": {"original": original, "dataset": self.options.dataset, "module": EVENT_MODULE},
        }

    def error_document(self, original: str, messages: list[str], *, tags: Iterable[str] = ()) -> dict:
        """A document for input that could not be mapped at all; keeps the original text."""
        doc = self._skeleton(original)
        doc["event"]["kind"] = "pipeline_error"
        doc["error"] = {"message": list(messages)}
        doc["tags"] = _merge_tags(tags, [ERROR_TAG])
        return doc

    def map_entity(self, raw: Any, original: str, *, tags: Iterable[str] = ()) -> dict:
        """Map one raw entity (the ``queryV1`` list item) given with its original JSON text."""
        if not isinstance(raw, dict):
            return self.error_document(
                original, [f"expected a JSON object (a J1 entity), found {_json_kind(raw)}"], tags=tags)
        try:
            asset = snake_clean(raw)
        except TooDeepError as exc:
            return self.error_document(original, [f"entity: {exc}"], tags=tags)
        errors: list[str] = []
        kind = self._prepare(asset, errors)
        plan = self.mappings.plan(kind)
        _coerce(asset, plan, errors)
        doc = self._skeleton(original)
        for rule in plan.rules:
            rule(asset, doc, errors)
        tags = list(tags)
        preserve = self.options.preserve_duplicate_custom_fields or PRESERVE_DUPLICATES_TAG in tags
        if preserve:
            tags = _merge_tags(tags, [PRESERVE_DUPLICATES_TAG])
        else:
            for path in plan.duplicates:
                delete_path(asset, path)
        doc["jupiter_one"] = {"asset": asset}
        if errors:
            doc["event"]["kind"] = "pipeline_error"
            doc["error"] = {"message": errors}
            tags = _merge_tags(tags, [ERROR_TAG])
        if tags:
            doc["tags"] = tags
        return doc

    # -- steps ---------------------------------------------------------------------------------

    @staticmethod
    def _prepare(asset: dict, errors: list[str]) -> EntityKind:
        entity = asset.get("entity")
        if not isinstance(entity, dict):
            found = "nothing" if entity is None else _json_kind(entity)
            errors.append(f'entity: expected the "entity" object of a J1 entity, found {found}')
            asset.pop("entity", None)
            entity = {}
        properties = asset.get("properties")
        if isinstance(properties, dict):
            errors.extend(expand_dots(properties))
        elif properties is not None:
            errors.append(f"properties: expected an object, found {_json_kind(properties)}")
            del asset["properties"]
        return EntityKind(
            _text_set(entity.get("_class"), "entity._class", errors),
            _text_set(entity.get("_type"), "entity._type", errors),
            _text_set(entity.get("_integration_type"), "entity._integration_type", errors),
        )


def _coerce(asset: dict, plan: Plan, errors: list[str]) -> None:
    for container_path, table in plan.tables:
        container = get_path(asset, container_path) if container_path else asset
        if not isinstance(container, dict):
            continue
        for key in list(container):
            coercion = table.lookup(key)
            if coercion is None:
                continue
            try:
                value = coercion.fn(container[key])
            except TransformError as exc:
                if coercion.on_error == "keep":
                    continue
                errors.append(f"jupiter_one.asset.{'.'.join(container_path + (key,))}: {exc}")
                value = None
            if value is None:
                delete_path(asset, container_path + (key,))
            else:
                container[key] = value


def _merge_tags(tags: Iterable[str], extra: list[str]) -> list[str]:
    merged = list(tags)
    merged.extend(t for t in extra if t not in merged)
    return merged


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "an array", str: "a string", type(None): "null"}.get(type(value), type(value).__name__)
