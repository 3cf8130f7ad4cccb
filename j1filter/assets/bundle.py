"""The whole bundle as files: relative path -> bytes, and writing it to a directory."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

import orjson

from ..language.loader import load_mappings
from ..language.spec import MappingSpec
from . import elasticsearch as es
from . import opensearch as os_assets
from .fieldtypes import ASSET_ROOT, JsonObject
from .kibana import fields_used, ndjson, saved_objects
from .names import Names

ES_DIR, KIBANA_DIR, OPENSEARCH_DIR = "elasticsearch", "kibana", "opensearch"
ENGINES = ("elasticsearch", "opensearch")
DASHBOARDS_FILE = f"{KIBANA_DIR}/j1filter-dashboards.ndjson"


def _json(body: JsonObject) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n"


def _env_file(names: Names, engine: str) -> bytes:
    """The names install.sh uses (validated names: no quoting needed, quoted anyway)."""
    lifecycle = "J1_ILM_POLICY" if engine == "elasticsearch" else "J1_ISM_POLICY"
    pairs = {
        "J1_DATA_STREAM": names.data_stream,
        lifecycle: names.ilm_policy,
        "J1_FINAL_PIPELINE": names.final_pipeline,
        "J1_SETTINGS_COMPONENT": names.settings_component,
        "J1_ECS_COMPONENT": names.ecs_component,
        "J1_JUPITER_ONE_COMPONENT": names.jupiter_one_component,
        "J1_SOURCE_TEMPLATE": names.source_template,
        "J1_LATEST_TEMPLATE": names.latest_template,
        "J1_LATEST_INDEX": names.latest_index,
        "J1_LATEST_ALIAS": names.latest_alias,
    }
    if engine == "elasticsearch":
        pairs["J1_TRANSFORM"] = names.transform
    lines = ["# Rendered by `j1filter assets`: the names install.sh creates. Do not edit; re-render."]
    lines += [f"{k}='{v}'" for k, v in pairs.items()]
    return ("\n".join(lines) + "\n").encode()


def _fields_used() -> tuple[set[str], set[str]]:
    """(ECS fields, raw entity paths) the dashboards read, which the templates must type."""
    used = fields_used()
    raw_used = {f[len(ASSET_ROOT) + 1 :] for f in used if f.startswith(ASSET_ROOT + ".")}
    return {f for f in used if not f.startswith("jupiter_one.")}, raw_used


def render(
    names: Names | None = None, specs: list[MappingSpec] | None = None, engine: str = "elasticsearch"
) -> dict[str, bytes]:
    """Every file of the bundle for `names` (defaults: the shipped deployment) and `engine`:
    Elasticsearch + Kibana, or OpenSearch."""
    names = names or Names()
    specs = load_mappings() if specs is None else specs
    if engine == "opensearch":
        return _render_opensearch(names, specs)
    ecs_used, raw_used = _fields_used()
    bodies = {
        "ilm-policy.json": es.ilm_policy(names),
        "ingest-pipeline-final.json": es.final_pipeline(names),
        "component-template-settings.json": es.settings_component(names),
        "component-template-ecs-mappings.json": es.ecs_component(specs, ecs_used),
        "component-template-jupiter_one-mappings.json": es.jupiter_one_component(specs, raw_used),
        "index-template-source.json": es.source_template(names),
        "index-template-latest.json": es.latest_template(names),
        "latest-index.json": es.latest_index(names),
        "transform-latest.json": es.latest_transform(names),
    }
    files = {f"{ES_DIR}/{name}": _json(body) for name, body in bodies.items()}
    files[f"{ES_DIR}/assets.env"] = _env_file(names, "elasticsearch")
    files[f"{ES_DIR}/install.sh"] = importlib.resources.files(__package__).joinpath("install.sh").read_bytes()
    files[DASHBOARDS_FILE] = ndjson(saved_objects(names))
    return files


def _render_opensearch(names: Names, specs: list[MappingSpec]) -> dict[str, bytes]:
    ecs_used, raw_used = _fields_used()  # the same fields as the Elasticsearch set
    bodies = {
        "ism-policy.json": os_assets.ism_policy(names),
        "ingest-pipeline-final.json": os_assets.final_pipeline(names, os_assets.raw_scalars(specs, raw_used)),
        "component-template-settings.json": os_assets.settings_component(names),
        "component-template-ecs-mappings.json": os_assets.ecs_component(specs, ecs_used),
        "component-template-jupiter_one-mappings.json": os_assets.jupiter_one_component(specs, raw_used),
        "index-template-source.json": os_assets.source_template(names),
        "index-template-current.json": os_assets.current_template(names),
        "current-index.json": os_assets.current_index(names),
        "current-prune-query.json": os_assets.prune_query(names),
    }
    files = {f"{OPENSEARCH_DIR}/{name}": _json(body) for name, body in bodies.items()}
    files[f"{OPENSEARCH_DIR}/assets.env"] = _env_file(names, "opensearch")
    package = importlib.resources.files(__package__)
    files[f"{OPENSEARCH_DIR}/install.sh"] = package.joinpath("opensearch-install.sh").read_bytes()
    conf = package.joinpath("opensearch-collector.conf").read_text()
    for key, value in {
        "STEM": names.stem,
        "TYPE": names.type,
        "DATASET": names.dataset,
        "NAMESPACE": names.namespace,
        "INTERVAL": names.interval,
        "FULL_INTERVAL": names.full_interval,
    }.items():
        conf = conf.replace(f"@J1_{key}@", value)
    files[f"{OPENSEARCH_DIR}/j1-collector-opensearch.conf"] = conf.encode()
    return files


def write(files: dict[str, bytes], out: Path) -> None:
    for rel, data in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        if rel.endswith(".sh"):
            tmp.chmod(0o755)
        os.replace(tmp, path)
