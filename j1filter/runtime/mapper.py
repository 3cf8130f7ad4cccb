"""The per-entity pipeline: raw J1 entity -> ECS document.

1. prepare: snake_case every key, drop empty values, expand dotted property keys;
2. coerce: convert the typed fields of the raw entity in place (dates, numbers, IPs, ...);
3. rules: write the ECS fields, in mapping order;
4. finish: drop the duplicated custom fields unless asked to keep them, add the data
   stream, ``event.original`` and, when anything went wrong, the error flags.

Nothing here reads or writes files: :mod:`j1filter.shell.stream` feeds lines in.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from .._meta import (DEFAULT_DATA_STREAM_TYPE, DEFAULT_DATASET, DEFAULT_NAMESPACE, ECS_VERSION,
                    ERROR_TAG, EVENT_MODULE, PRESERVE_DUPLICATES_TAG)
from .compiler import Coercion, CompiledMappings, EntityKind, Plan, Shape, map_items
from ..errors import TransformError
from ..language.loader import load_mappings
from .paths import TooDeepError, delete_path, expand_dots, get_path, snake_clean
from ..language.spec import MappingSpec, Path


_last_clock: list = [None, ""]  # [epoch ms, its text]: formatting once per millisecond


def utc_now_ms() -> str:
    """The current time in the output date form (what ``@timestamp`` gets by default)."""
    now_ms = time.time_ns() // 1_000_000
    if now_ms != _last_clock[0]:
        seconds, millis = divmod(now_ms, 1000)
        _last_clock[:] = now_ms, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
    return _last_clock[1]


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
    errors.append(f"{where}: expected text or a list of text, found {_json_kind(value)}")
    return frozenset()


class Mapper:
    """Turns raw J1 entities into ECS documents. Its mappings and options are fixed at
    construction; it only caches plans (per kind of entity) as entities arrive."""

    def __init__(self, mappings: CompiledMappings | Iterable[MappingSpec] | None = None,
                 options: Options = Options()):
        if mappings is None:
            mappings = load_mappings()
        self.mappings = mappings if isinstance(mappings, CompiledMappings) else CompiledMappings(mappings)
        self.options = options
        self._data_stream = {"type": options.data_stream_type, "dataset": options.dataset,
                             "namespace": options.namespace}
        self._plans: dict[tuple, Plan] = {}  # raw (_class, _type, _integration_type) -> plan

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
        collection = raw.get("_collection")
        if collection is not None:  # written by `collect`: about the collection, not the entity
            raw = {key: value for key, value in raw.items() if key != "_collection"}
        try:
            asset = snake_clean(raw)
        except TooDeepError as exc:
            return self.error_document(original, [f"entity: {exc}"], tags=tags)
        errors: list[str] = []
        plan = self._prepare(asset, errors)
        shape = plan.shape(asset)
        _coerce(asset, shape, errors)
        doc = self._skeleton(original)
        shape.apply_rules(asset, doc, errors)
        tags = list(tags)
        preserve = self.options.preserve_duplicate_custom_fields or PRESERVE_DUPLICATES_TAG in tags
        if preserve:
            tags = _merge_tags(tags, [PRESERVE_DUPLICATES_TAG])
        else:
            _drop_duplicates(asset, plan.duplicates)
        doc["jupiter_one"] = {"asset": asset}
        if collection is not None:
            _apply_collection(doc, collection, errors)
        if errors:
            doc["event"]["kind"] = "pipeline_error"
            doc["error"] = {"message": errors}
            tags = _merge_tags(tags, [ERROR_TAG])
        if tags:
            doc["tags"] = tags
        return doc

    # -- steps ---------------------------------------------------------------------------------

    def _prepare(self, asset: dict, errors: list[str]) -> Plan:
        """Check the entity's shape, expand dotted property keys; return the plan for its kind."""
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
        classes, types, integration = raw = (
            entity.get("_class"), entity.get("_type"), entity.get("_integration_type"))
        key = (tuple(classes) if classes.__class__ is list else classes,
               tuple(types) if types.__class__ is list else types,
               tuple(integration) if integration.__class__ is list else integration)
        try:
            return self._plans[key]
        except (KeyError, TypeError):  # TypeError: unhashable, e.g. an object as _class
            pass
        problems: list[str] = []
        kind = EntityKind(*(_text_set(value, f"entity.{name}", problems)
                            for value, name in zip(raw, ("_class", "_type", "_integration_type"))))
        plan = self.mappings.plan(kind)
        if problems:
            errors.extend(problems)  # not cached: each such entity reports its problem
        elif len(self._plans) < 10_000:
            self._plans[key] = plan
        return plan


_COLLECTION_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _collection_time(value: Any) -> bool:
    if not (isinstance(value, str) and _COLLECTION_TIME.fullmatch(value)):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:  # month 13 and the like
        return False
    return True


def _apply_collection(doc: dict, collection: Any, errors: list[str]) -> None:
    """`_collection` (see j1filter.collect): @timestamp is when the collection started, and
    jupiter_one.collection.{kind,snapshot} say which collection and snapshot cycle it was."""
    started = collection.get("started") if isinstance(collection, dict) else None
    kind = collection.get("kind") if isinstance(collection, dict) else None
    snapshot = collection.get("snapshot") if isinstance(collection, dict) else None
    if not (_collection_time(started) and kind in ("full", "incremental") and _collection_time(snapshot)):
        errors.append("_collection: expected {started, kind: full|incremental, snapshot} with "
                      "times like 2026-01-01T00:00:00.000Z; @timestamp is the time j1filter saw the entity")
        return
    doc["@timestamp"] = started
    doc["jupiter_one"]["collection"] = {"kind": kind, "snapshot": snapshot}


def _coerce(asset: dict, shape: Shape, errors: list[str]) -> None:
    """Convert the typed raw fields in place: the shape's listed keys, then deeper containers."""
    if shape.coercions is not None:
        for container_path, key, coercion in shape.coercions:
            container = asset.get(container_path[0]) if container_path else asset
            if container.__class__ is dict:  # a failure may have emptied and removed it
                _apply_coercion(asset, container, container_path, key, coercion, errors)
    for container_path, table in shape.tables:
        container = get_path(asset, container_path) if container_path else asset
        if container.__class__ is not dict:
            continue
        for key in list(container):  # a copy: a failed coercion removes its key
            found = table.lookup(key)
            if found is not None:
                _apply_coercion(asset, container, container_path, key, found, errors)


def _apply_coercion(asset: dict, container: dict, container_path: Path, key: str,
                    coercion: Coercion, errors: list[str]) -> None:
    value = container.get(key)
    if value is None:  # removed meanwhile (e.g. by an earlier failure that emptied its parent)
        return
    try:
        value = map_items(coercion.fn, value) if coercion.per_item else coercion.fn(value)
    except TransformError as exc:
        if coercion.on_error == "keep":
            return
        errors.append(f"jupiter_one.asset.{'.'.join(container_path + (key,))}: {exc}")
        value = None
    if value is None:
        delete_path(asset, container_path + (key,))
    else:
        container[key] = value


def _drop_duplicates(asset: dict, duplicates: tuple[tuple[Path, tuple[str, ...]], ...]) -> None:
    for container_path, keys in duplicates:
        container = get_path(asset, container_path) if container_path else asset
        if container.__class__ is dict:
            for key in keys:
                container.pop(key, None)
            if not container and container_path:
                delete_path(asset, container_path)


def _merge_tags(tags: Iterable[str], extra: list[str]) -> list[str]:
    merged = list(tags)
    merged.extend(t for t in extra if t not in merged)
    return merged


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)
