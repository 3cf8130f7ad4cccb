"""The whole bundle as files: relative path -> bytes, and writing it to a directory."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

import orjson

from ..language.loader import load_mappings
from ..language.spec import MappingSpec
from . import elasticsearch as es
from .fieldtypes import ASSET_ROOT, JsonObject
from .kibana import fields_used, ndjson, saved_objects
from .names import Names

ES_DIR, KIBANA_DIR = "elasticsearch", "kibana"
DASHBOARDS_FILE = f"{KIBANA_DIR}/j1filter-dashboards.ndjson"


def _json(body: JsonObject) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n"


def _install_env(names: Names) -> bytes:
    """The names install.sh uses (validated names: no quoting needed, quoted anyway)."""
    pairs = {
        "J1_DATA_STREAM": names.data_stream,
        "J1_ILM_POLICY": names.ilm_policy,
        "J1_FINAL_PIPELINE": names.final_pipeline,
        "J1_SETTINGS_COMPONENT": names.settings_component,
        "J1_ECS_COMPONENT": names.ecs_component,
        "J1_JUPITER_ONE_COMPONENT": names.jupiter_one_component,
        "J1_SOURCE_TEMPLATE": names.source_template,
        "J1_LATEST_TEMPLATE": names.latest_template,
        "J1_LATEST_INDEX": names.latest_index,
        "J1_LATEST_ALIAS": names.latest_alias,
        "J1_TRANSFORM": names.transform,
    }
    lines = ["# Rendered by `j1filter assets`: the names install.sh creates. Do not edit; re-render."]
    lines += [f"{k}='{v}'" for k, v in pairs.items()]
    return ("\n".join(lines) + "\n").encode()


def render(names: Names | None = None, specs: list[MappingSpec] | None = None) -> dict[str, bytes]:
    """Every file of the bundle for `names` (defaults: the shipped deployment)."""
    names = names or Names()
    specs = load_mappings() if specs is None else specs
    used = fields_used()
    raw_used = {f[len(ASSET_ROOT) + 1 :] for f in used if f.startswith(ASSET_ROOT + ".")}
    ecs_used = {f for f in used if not f.startswith("jupiter_one.")}
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
    files[f"{ES_DIR}/assets.env"] = _install_env(names)
    files[f"{ES_DIR}/install.sh"] = importlib.resources.files(__package__).joinpath("install.sh").read_bytes()
    files[DASHBOARDS_FILE] = ndjson(saved_objects(names))
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
