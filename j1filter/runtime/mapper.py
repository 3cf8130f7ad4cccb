"""A raw J1 entity in, an ECS document out: the document around what :mod:`.program` writes.

1. the skeleton: ``@timestamp`` (held per input block by the stream, see :meth:`Mapper.hold_clock`),
   ``ecs``, the data stream and ``event.original``;
2. one trip through the runtime (:meth:`.program.Runtime.run`): the entity prepared
   (snake_case keys, no empty values, dotted property keys expanded) by the code generated
   for its raw key shape, its typed raw fields coerced and the ECS fields written by the
   program of its kind and shape, rule by rule, each under its own guard;
3. finish: drop the duplicated custom fields unless asked to keep them, ``_collection``,
   and, when anything went wrong, ``error.message`` with ``where`` in every message. Only a
   failure Elastic's pipeline has too (an Elastic-parity file's rule or field, a malformed
   entity) makes the document a ``pipeline_error`` with Elastic's error tag; a failed
   j1filter-only enrichment is recorded and the document keeps its ``event.kind``.

Nothing here reads or writes files: :mod:`j1filter.protocol` hands entities in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .._meta import (
    DEFAULT_DATA_STREAM_TYPE,
    DEFAULT_DATASET,
    DEFAULT_NAMESPACE,
    ECS_VERSION,
    ERROR_TAG,
    EVENT_MODULE,
    PRESERVE_DUPLICATES_TAG,
)
from ..convert.dates import is_normalized
from ..errors import TooDeepError
from ..language.spec import Path
from .compiler import CompiledMappings
from .paths import delete_path, get_path
from .program import DEFAULT_CACHE_SIZE, Runtime, Tracer, json_kind

_last_clock: list[Any] = [None, ""]  # [epoch ms, its text]: formatting once per millisecond


def utc_now_ms() -> str:
    """The current time in the output date form (what ``@timestamp`` gets by default)."""
    now_ms = time.time_ns() // 1_000_000
    if now_ms != _last_clock[0]:
        seconds, millis = divmod(now_ms, 1000)
        _last_clock[:] = now_ms, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
    return str(_last_clock[1])


@dataclass(frozen=True)
class Options:
    preserve_duplicate_custom_fields: bool = False
    data_stream_type: str = DEFAULT_DATA_STREAM_TYPE
    dataset: str = DEFAULT_DATASET
    namespace: str = DEFAULT_NAMESPACE
    #: Source of ``@timestamp`` (the time j1filter saw the entity, as Elastic's agent does).
    clock: Callable[[], str] = field(default=utc_now_ms, compare=False)
    #: Most compiled programs kept (one per kind of entity and key shape, least recently used out).
    program_cache_size: int = DEFAULT_CACHE_SIZE


class Mapper:
    """Turns raw J1 entities into ECS documents with compiled mappings (see
    ``j1filter.compile_mappings``). Its mappings and options are fixed at construction; it
    only caches programs (per kind of entity) as entities arrive."""

    def __init__(self, mappings: CompiledMappings, options: Options = Options()):
        if not isinstance(mappings, CompiledMappings):
            raise TypeError("Mapper takes compiled mappings: j1filter.compile_mappings(specs)")
        self.mappings = mappings
        self.options = options
        self.runtime = Runtime(self.mappings, options.program_cache_size)
        self._held_time: str | None = None  # see hold_clock
        self._data_stream = (options.data_stream_type, options.dataset, options.namespace)

    def hold_clock(self) -> None:
        """Stamp what is mapped from now on with the time now, until :meth:`release_clock`
        (the stream reads the clock once per block of input, not once per entity)."""
        self._held_time = self.options.clock()

    def release_clock(self) -> None:
        self._held_time = None

    def _skeleton(self, original: str) -> dict[str, Any]:
        stream_type, dataset, namespace = self._data_stream
        return {
            "@timestamp": self._held_time or self.options.clock(),
            "ecs": {"version": ECS_VERSION},
            "data_stream": {"type": stream_type, "dataset": dataset, "namespace": namespace},
            "event": {"original": original, "dataset": dataset, "module": EVENT_MODULE},
        }

    def error_document(
        self, original: str, messages: list[str], *, tags: Iterable[str] = ()
    ) -> dict[str, Any]:
        """A document for input that could not be mapped at all; keeps the original text."""
        doc = self._skeleton(original)
        doc["event"]["kind"] = "pipeline_error"
        doc["error"] = {"message": list(messages)}
        doc["tags"] = _merge_tags(tags, [ERROR_TAG])
        return doc

    def map_entity(
        self,
        raw: Any,
        original: str,
        *,
        tags: Iterable[str] = (),
        where: str = "",
        trace: Tracer | None = None,
    ) -> dict[str, Any]:
        """Map one raw entity (the ``queryV1`` list item) given with its original JSON text.
        ``where`` (e.g. ``"line 12"``) starts every error message. With ``trace``, every rule
        of its kind reports its outcome to it (``j1filter explain``)."""
        at = f"{where}: " if where else ""
        if not isinstance(raw, dict):
            return self.error_document(
                original, [f"{at}expected a JSON object (a J1 entity), found {json_kind(raw)}"], tags=tags
            )
        errors: list[str] = []  # what Elastic's pipeline flags too: the document is a pipeline_error
        notes: list[str] = []  # j1filter-only enrichments that failed: recorded, event.kind kept
        doc = self._skeleton(original)
        try:
            if trace is None:
                asset, program = self.runtime.run(raw, doc, errors, notes)
            else:
                asset, program = self.runtime.explain(raw, doc, errors, trace, notes)
        except TooDeepError as exc:
            return self.error_document(original, [f"{at}entity: {exc}"], tags=tags)
        tag_list = list(tags)
        if self.options.preserve_duplicate_custom_fields or PRESERVE_DUPLICATES_TAG in tag_list:
            tag_list = _merge_tags(tag_list, [PRESERVE_DUPLICATES_TAG])
        else:
            _drop_duplicates(asset, program.duplicates)
        doc["jupiter_one"] = {"asset": asset}
        collection = raw.get("_collection")
        if collection is not None:
            _apply_collection(doc, collection, errors)
        if errors or notes:
            doc["error"] = {"message": [at + m for m in errors + notes] if at else errors + notes}
        if errors:  # only these demote, and get Elastic's error tag
            doc["event"]["kind"] = "pipeline_error"
            tag_list = _merge_tags(tag_list, [ERROR_TAG])
        if tag_list:
            doc["tags"] = tag_list
        return doc


def _apply_collection(doc: dict[str, Any], collection: Any, errors: list[str]) -> None:
    """`_collection` (see j1filter.collect): @timestamp is when the collection started, and
    jupiter_one.collection.{kind,snapshot} say which collection and snapshot cycle it was."""
    started = collection.get("started") if isinstance(collection, dict) else None
    kind = collection.get("kind") if isinstance(collection, dict) else None
    snapshot = collection.get("snapshot") if isinstance(collection, dict) else None
    if not (is_normalized(started) and kind in ("full", "incremental") and is_normalized(snapshot)):
        errors.append(
            "_collection: expected {started, kind: full|incremental, snapshot} with "
            "times like 2026-01-01T00:00:00.000Z; @timestamp is the time j1filter saw the entity"
        )
        return
    doc["@timestamp"] = started
    doc["jupiter_one"]["collection"] = {"kind": kind, "snapshot": snapshot}


def _drop_duplicates(asset: dict[str, Any], duplicates: tuple[tuple[Path, tuple[str, ...]], ...]) -> None:
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
