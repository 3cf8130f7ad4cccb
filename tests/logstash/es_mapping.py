"""A small model of how Elasticsearch maps a JSON document with our templates.

Enough of Elasticsearch's rules to decide, for every leaf of a document, which
mapping it gets (explicit property, or the first matching dynamic template) and
whether the value would be accepted by that field type. Rules modelled:

* composable templates: component templates in `composed_of` order, then the index
  template's own mappings (later definitions win, objects merge);
* dotted keys expand to objects, except below an object with `subobjects: false`,
  where everything (document objects included, ES >= 8.10) is flattened into
  dotted leaf names;
* `dynamic: false` (inherited by inner objects until one sets it again): a field without
  an explicit property is kept in _source but not indexed, and no dynamic template applies;
* dynamic templates: `match_mapping_type` (string/long/double/boolean/object),
  `match`/`unmatch` on the leaf name and `path_match`/`path_unmatch` on the full
  path, simple `*` wildcards or `match_pattern: regex` (full match); first match wins;
* value checks per type with the strictness the bundle needs (see `check_value`).
"""

from __future__ import annotations

import copy
import fnmatch
import ipaddress
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any


def merge_mappings(*mappings: dict) -> dict:
    out: dict = {"properties": {}, "dynamic_templates": []}
    for m in mappings:
        for key, value in m.items():
            if key == "properties":
                _merge_props(out["properties"], value)
            elif key == "dynamic_templates":
                out["dynamic_templates"].extend(value)
            else:
                out[key] = value
    return out


def _merge_props(dst: dict, src: dict) -> None:
    for name, spec in src.items():
        if name in dst and "properties" in dst[name] and "properties" in spec:
            merged = {**dst[name], **{k: v for k, v in spec.items() if k != "properties"}}
            merged["properties"] = copy.deepcopy(dst[name]["properties"])
            _merge_props(merged["properties"], spec["properties"])
            dst[name] = merged
        else:
            dst[name] = copy.deepcopy(spec)


def template_mappings(index_template: dict, components: dict[str, dict]) -> dict:
    parts = [components[name]["template"].get("mappings", {}) for name in index_template["composed_of"]]
    parts.append(index_template.get("template", {}).get("mappings", {}))
    return merge_mappings(*parts)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    raise TypeError(type(value))


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}" if prefix else k, v)
    elif isinstance(value, list):
        for v in value:
            yield from _flatten(prefix, v)
    elif value is not None:
        yield prefix, value


#: Resolution.source of a field below `dynamic: false`: kept in _source, not indexed.
NOT_INDEXED = "not indexed (dynamic: false)"


@dataclass
class Resolution:
    path: str
    value: Any
    mapping: dict | None  # None: no explicit property and no dynamic template
    source: str  # "explicit" | "dynamic:<template name>" | "unmapped" | NOT_INDEXED
    error: str | None = None  # structural conflict (object vs leaf)


class Mapper:
    def __init__(self, mappings: dict):
        self.props = mappings.get("properties", {})
        self.dynamic_templates = mappings.get("dynamic_templates", [])
        self.root_subobjects = mappings.get("subobjects", True)

    # -- dynamic templates -------------------------------------------------
    @staticmethod
    def _matches(pattern: str | list, value: str, regex: bool) -> bool:
        patterns = pattern if isinstance(pattern, list) else [pattern]
        for p in patterns:
            if regex:
                if re.fullmatch(p, value):
                    return True
            elif fnmatch.fnmatchcase(value, p.replace("[", "[[]")):
                return True
        return False

    def dynamic(self, path: str, leaf_name: str, json_type: str) -> tuple[str, dict] | None:
        for entry in self.dynamic_templates:
            ((name, t),) = entry.items()
            regex = t.get("match_pattern") == "regex"
            mmt = t.get("match_mapping_type")
            if mmt is not None:
                types = mmt if isinstance(mmt, list) else [mmt]
                if "*" not in types and json_type not in types:
                    continue
            if "match" in t and not self._matches(t["match"], leaf_name, regex):
                continue
            if "unmatch" in t and self._matches(t["unmatch"], leaf_name, regex):
                continue
            if "path_match" in t and not self._matches(t["path_match"], path, regex):
                continue
            if "path_unmatch" in t and self._matches(t["path_unmatch"], path, regex):
                continue
            return name, t["mapping"]
        return None

    # -- resolution --------------------------------------------------------
    def resolve(self, doc: dict) -> Iterator[Resolution]:
        yield from self._resolve_object(self.props, "", doc, self.root_subobjects, True)

    def _resolve_object(
        self, props: dict, prefix: str, obj: dict, subobjects: bool, dynamic: bool
    ) -> Iterator[Resolution]:
        if not subobjects:
            for name, value in _flatten("", obj):
                yield self._resolve_leaf(props.get(name), f"{prefix}{name}", name, value, dynamic)
            return
        for key, value in obj.items():
            parts = key.split(".")
            yield from self._resolve_parts(props, prefix, parts, value, dynamic)

    def _resolve_parts(
        self, props: dict, prefix: str, parts: list[str], value: Any, dynamic: bool
    ) -> Iterator[Resolution]:
        head, rest = parts[0], parts[1:]
        spec = props.get(head)
        path = f"{prefix}{head}"
        if rest:
            value = _nest(rest, value)
        if value is None or value == []:
            return
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, list):
                yield from self._resolve_parts(props, prefix, [head], v, dynamic)
                continue
            if v is None:
                continue
            if isinstance(v, dict):
                if spec is not None and "type" in spec and spec["type"] not in ("object", "nested"):
                    yield Resolution(
                        path,
                        v,
                        spec,
                        "explicit",
                        error=f"{path} is mapped as {spec['type']} but the document has an object",
                    )
                    continue
                if spec is None and dynamic:
                    dyn = self.dynamic(path, head, "object")
                    if dyn and dyn[1].get("type") not in (None, "object"):
                        yield Resolution(
                            path,
                            v,
                            dyn[1],
                            f"dynamic:{dyn[0]}",
                            error=f"{path}: object value hits dynamic template {dyn[0]}",
                        )
                        continue
                if spec is None:
                    spec = {"properties": {}}
                yield from self._resolve_object(
                    spec.get("properties", {}),
                    path + ".",
                    v,
                    spec.get("subobjects", True),
                    _dynamic(spec, dynamic),
                )
            else:
                yield self._resolve_leaf(spec, path, head, v, dynamic)

    def _resolve_leaf(
        self, spec: dict | None, path: str, leaf_name: str, value: Any, dynamic: bool
    ) -> Resolution:
        if spec is not None:
            if "properties" in spec and "type" not in spec:
                return Resolution(
                    path,
                    value,
                    spec,
                    "explicit",
                    error=f"{path} is mapped as an object but the document has {value!r}",
                )
            return Resolution(path, value, spec, "explicit")
        if not dynamic:
            return Resolution(path, value, None, NOT_INDEXED)
        dyn = self.dynamic(path, leaf_name, _json_type(value))
        if dyn:
            return Resolution(path, value, dyn[1], f"dynamic:{dyn[0]}")
        return Resolution(path, value, None, "unmapped")


def _dynamic(spec: dict, inherited: bool) -> bool:
    """An object's `dynamic` setting, else its parent's (`strict` rejects, so never a field)."""
    return str(spec.get("dynamic", inherited)).lower() == "true"


def _nest(parts: list[str], value: Any) -> dict:
    for p in reversed(parts):
        value = {p: value}
    return value


# --------------------------------------------------------------------------
# value checks
# --------------------------------------------------------------------------

_ISO = re.compile(r"\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}([.,]\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?)?)?")
INT64 = (-(2**63), 2**63 - 1)


def parse_es_date(value: Any) -> bool:
    """strict_date_optional_time||epoch_millis, the default date format."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if not isinstance(value, str):
        return False
    if re.fullmatch(r"-?\d+", value) and len(value) > 4:
        return True  # epoch_millis as a string
    if not _ISO.fullmatch(value):
        return False
    v = value.replace(",", ".")
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    v = re.sub(r"\.(\d{6})\d+", r".\1", v)  # Python keeps microseconds only
    v = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", v)
    if len(v) == 4:
        v += "-01-01"
    elif len(v) == 7:
        v += "-01"
    try:
        datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


def check_value(mapping: dict, value: Any) -> str | None:
    """None if Elasticsearch accepts `value` for `mapping` without relying on
    ignore_malformed or number coercion; otherwise why not."""
    t = mapping.get("type", "object")
    if isinstance(value, dict):
        return f"object for a {t} field"
    if t in ("keyword", "wildcard", "match_only_text", "text"):
        if not isinstance(value, (str, int, float, bool)):
            return f"{value!r} is not a scalar"
        return None
    if t == "constant_keyword":
        if "value" in mapping and value != mapping["value"]:
            return f"{value!r} differs from the constant {mapping['value']!r}"
        return None
    if t == "date":
        return None if parse_es_date(value) else f"{value!r} is not a date"
    if t == "ip":
        if not isinstance(value, str):
            return f"{value!r} is not an IP string"
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return f"{value!r} is not an IP address"
        return None
    if t == "long":
        if isinstance(value, bool):
            return f"{value!r} is a boolean"
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
            value = int(value)
        if not isinstance(value, int):
            return f"{value!r} is not an integral number"
        if not INT64[0] <= value <= INT64[1]:
            return f"{value!r} overflows a long"
        return None
    if t in ("double", "float"):
        if isinstance(value, bool):
            return f"{value!r} is a boolean"
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return f"{value!r} is not a number"
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{value!r} is not a finite number"
        return None
    if t == "boolean":
        if isinstance(value, bool) or value in ("true", "false"):
            return None
        return f"{value!r} is not a boolean"
    return f"unsupported field type {t} in the test model"
