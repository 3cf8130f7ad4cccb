"""Hand-written reference mappers: what a direct Python mapper for one kind of entity does.

Each function maps one input line of its kind to the output line j1filter writes for it,
byte for byte (``tests/test_benchmark.py`` checks that on the benchmark corpus), with none
of j1filter's generality: the fields of the kind are known, the conversions are written
inline, nothing is looked up per key shape. ``./dev bench`` compares j1filter's speed with
theirs on the same entities.

They handle the entities the benchmark corpus has (bench/benchmark.py varies the bundled
samples); anything else they may map differently. Dates other than the canonical form and
epoch milliseconds go through j1filter's date parser, as a direct mapper would call a
library for them.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from j1filter.convert.casing import snake_case
from j1filter.convert.dates import normalize_date

ECS = {"version": "9.2.0"}
DATASET = "jupiter_one.risks_and_alerts"
DATA_STREAM = {"type": "logs", "dataset": DATASET, "namespace": "default"}
EVENT_SEVERITY = {"none": 0, "safe": 0, "info": 1, "informational": 1, "low": 4, "moderate": 6, "medium": 6}
EVENT_SEVERITY |= {"high": 8, "severe": 8, "critical": 10}
_NAMES: dict[str, str] = {}


def name(key: str) -> str:
    found = _NAMES.get(key)
    if found is None:
        found = _NAMES[key] = snake_case(key)
    return found


def date(value: Any) -> Any:
    """The output date form: canonical text as it is, epoch milliseconds formatted."""
    if value.__class__ is int:
        seconds, millis = divmod(value, 1000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
    if value.__class__ is str and len(value) == 24 and value[10] == "T" and value[23] == "Z":
        return value
    return normalize_date(value)


def keep_date(value: Any) -> Any:
    try:
        return date(value)
    except Exception:  # noqa: BLE001 - on_error: keep
        return value


_IPS: dict[str, str | None] = {}  # addresses repeat: each is parsed once


def ip(value: str) -> str | None:
    try:
        return _IPS[value]
    except KeyError:
        pass
    try:
        found: str | None = str(ipaddress.ip_address(value))
    except ValueError:
        found = None
    if len(_IPS) < 100_000:
        _IPS[value] = found
    return found


def clean(value: Any) -> Any:
    """snake_case keys, empty values dropped, at any depth (objects and lists only)."""
    if value.__class__ is dict:
        out = {}
        for key, item in value.items():
            if item.__class__ is dict or item.__class__ is list:
                item = clean(item)
                if not item:
                    continue
            elif item is None or item == "":
                continue
            out[_NAMES.get(key) or name(key)] = item
        return out
    items = []
    for item in value:
        if item.__class__ is dict or item.__class__ is list:
            item = clean(item)
            if not item:
                continue
        elif item is None or item == "":
            continue
        items.append(item)
    return items


def expand(properties: dict[str, Any]) -> None:
    for key in [k for k in properties if "." in k]:
        value = properties.pop(key)
        *parents, leaf = key.split(".")
        node = properties
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value


def entity_dates(entity: dict[str, Any]) -> None:
    for key in ("_created_on", "_begin_on", "_end_on"):
        if key in entity:
            entity[key] = date(entity[key])
    entity["_version"] = str(entity["_version"])


def property_dates(
    properties: dict[str, Any], strict: tuple[str, ...] = ("created_on", "updated_on")
) -> None:
    for key, value in properties.items():
        if key.endswith("_on"):
            properties[key] = date(value) if key in strict else keep_date(value)


def skeleton(now: str, original: str) -> dict[str, Any]:
    return {
        "@timestamp": now,
        "ecs": ECS,
        "data_stream": DATA_STREAM,
        "event": {"original": original, "dataset": DATASET, "module": "jupiter_one"},
    }


def ips(values: list[Any]) -> list[str]:
    found: list[str] = []
    for value in values:
        address = ip(value) if value.__class__ is str else None
        if address is not None and address not in found:
            found.append(address)
    return found


def qualys_host_finding(line: bytes, now: str) -> bytes:
    raw = orjson.loads(line)
    asset = clean(raw)
    entity, properties = asset["entity"], asset["properties"]
    entity_dates(entity)
    property_dates(properties)
    properties["numeric_severity"] = float(properties["numeric_severity"])
    properties["qid"] = int(properties["qid"])
    if "port" in properties:
        properties["port"] = int(properties["port"])
    expand(properties)
    doc = skeleton(now, line.decode())
    event = doc["event"]
    event["id"] = asset.pop("id")
    event["created"] = entity.pop("_created_on")
    event["start"] = entity.pop("_begin_on")
    event["kind"] = "alert"
    event["type"] = ["info"]
    event["provider"] = entity["_integration_type"]
    event["severity"] = EVENT_SEVERITY[properties["severity"].lower()]
    event["category"] = ["vulnerability"]
    event["risk_score"] = properties["numeric_severity"]
    doc["observer"] = {"vendor": "JupiterOne", "product": "JupiterOne"}
    doc["message"] = properties["name"]
    doc["vulnerability"] = {
        "scanner": {"vendor": "Qualys"},
        "severity": properties["severity"],
        "id": str(properties["qid"]),
        "enumeration": "QID",
    }
    addresses = ips(properties["targets"])
    host = doc["host"] = {"ip": addresses} if addresses else {}
    host["name"] = properties["fqdn"]
    doc["related"] = (
        {"ip": addresses, "hosts": [properties["fqdn"]]} if addresses else {"hosts": [properties["fqdn"]]}
    )
    if "port" in properties:
        doc["destination"] = {"port": properties["port"]}
        doc["network"] = {"transport": properties["protocol"].lower()}
    host["id"] = str(properties["host_id"])
    if "ec2instance_arn" in properties:
        arn = properties["ec2instance_arn"].split(":")
        doc["cloud"] = {
            "provider": "aws",
            "region": arn[3],
            "account": {"id": arn[4]},
            "instance": {"id": arn[5].removeprefix("instance/")},
        }
    elif "gcp_instance_self_link" in properties:
        link = properties["gcp_instance_self_link"]
        cloud = doc["cloud"] = {"provider": "gcp"}
        if "gcp_project_id" in properties:
            cloud["project"] = {"id": properties["gcp_project_id"]}
        cloud["availability_zone"] = link.split("/zones/")[1].split("/")[0]
        cloud["instance"] = {"name": link.rsplit("/instances/", 1)[1]}
    elif "azure_vm_source_id" in properties:
        doc["cloud"] = {"provider": "azure", "account": {"id": properties["azure_subscription_id"]}}
    doc["jupiter_one"] = {"asset": asset}
    return orjson.dumps(doc)


def _nanoseconds(start: str, end: str) -> int | None:
    parse = datetime.fromisoformat
    delta = parse(end).replace(tzinfo=UTC) - parse(start).replace(tzinfo=UTC)
    nanos = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    return nanos if nanos >= 0 else None


def tenable_vulnerability_finding(line: bytes, now: str) -> bytes:
    raw = orjson.loads(line)
    asset = clean(raw)
    entity, properties = asset["entity"], asset["properties"]
    entity_dates(entity)
    entity["_deleted"] = bool(entity["_deleted"])
    property_dates(properties)
    for key in ("numeric_severity", "vpr_score", "cvss3base_score", "cvss_base_score"):
        if key in properties:
            properties[key] = float(properties[key])
    if "impact" in properties:
        try:
            properties["impact"] = float(properties["impact"])
        except ValueError:
            pass
    expand(properties)
    scan = properties["scan"]
    property_dates(scan, strict=())
    properties["port"]["port"] = int(properties["port"]["port"])
    properties["plugin"]["id"] = int(properties["plugin"]["id"])
    doc = skeleton(now, line.decode())
    event = doc["event"]
    event["id"] = asset.pop("id")
    event["created"] = entity.pop("_created_on")
    begin = entity.pop("_begin_on")
    if "_end_on" in entity:
        event["end"] = end = entity.pop("_end_on")
    event["start"] = begin
    if "end" in event and (nanos := _nanoseconds(begin[:-1], end[:-1])) is not None:
        event["duration"] = nanos
    event["kind"] = "alert"
    event["type"] = ["info"]
    event["provider"] = entity["_integration_type"]
    event["severity"] = EVENT_SEVERITY[properties["severity"].lower()]
    event["category"] = ["vulnerability"]
    if "numeric_severity" in properties:
        event["risk_score"] = properties["numeric_severity"]
    description = properties.get("description")
    if description is not None:
        doc["message"] = description
    doc["observer"] = {"vendor": "JupiterOne", "product": "JupiterOne"}
    if description is None:
        doc["message"] = properties["name"]
    vulnerability: dict[str, Any] = {}
    doc["vulnerability"] = vulnerability
    if "cve" in properties:
        vulnerability["id"] = properties["cve"]
        vulnerability["enumeration"] = "CVE"
    vulnerability["scanner"] = {"vendor": "Tenable"}
    if description is not None:
        vulnerability["description"] = description
    vulnerability["severity"] = properties["severity"]
    if "references" in properties:
        vulnerability["reference"] = properties["references"]
    if "cvss3base_score" in properties:
        vulnerability["score"] = {"base": properties["cvss3base_score"]}
        vulnerability["classification"] = "CVSS"
    addresses = ips(properties["targets"])
    host = doc["host"] = {"ip": addresses} if addresses else {}
    related = doc["related"] = {"ip": addresses} if addresses else {}
    if "cve" not in properties:
        vulnerability["id"] = str(properties["plugin"]["id"])
        vulnerability["enumeration"] = "TENABLE_PLUGIN"
    if "cvss3temporal_score" in properties:
        vulnerability["score"]["temporal"] = properties["cvss3temporal_score"]
    vulnerability["report_id"] = scan["uuid"]
    if "vpr_score" in properties:
        event["risk_score"] = properties["vpr_score"]
    host["id"] = properties["asset"]["uuid"]
    if "asset_hostname" in properties:
        host["name"] = properties["asset_hostname"]
        related["hosts"] = [properties["asset_hostname"]]
    candidates = [properties["asset_ipv4"], *properties["targets"]] if "asset_ipv4" in properties else []
    if candidates:
        host["ip"] = ips(candidates)
        related["ip"] = ips([*related.get("ip", []), properties["asset_ipv4"]])
    if "asset_mac_address" in properties:
        host["mac"] = [properties["asset_mac_address"].upper().replace(":", "-")]
    doc["destination"] = {"port": properties["port"]["port"]}
    doc["network"] = {"transport": properties["port"]["protocol"].lower()}
    doc["jupiter_one"] = {"asset": asset}
    return orjson.dumps(doc)


MAPPERS: dict[str, Callable[[bytes, str], bytes]] = {
    "qualys_host_finding": qualys_host_finding,
    "tenable_vulnerability_finding": tenable_vulnerability_finding,
}
