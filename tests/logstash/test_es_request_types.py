"""Every Elasticsearch request body the bundle sends, checked against Elastic's official API types.

Elastic's JavaScript client (npm @elastic/elasticsearch) ships TypeScript request types generated
from Elastic's API specification. Each shipped JSON body is embedded as a fresh object literal
typed with its request type, for the 8.x and the 9.x client, and `tsc --noEmit` runs: excess-property
checks reject any unknown key, and wrong value types fail too. A deliberately broken body in the
same run proves the check can fail.

The least-privilege roles of docs/operations.md (logstash/roles/) are checked the same way as
`PUT _security/role` bodies (a Kibana role's `elasticsearch` part too), and since the clients
type a privilege as "one of these names, or any string", each privilege must also be one of
the names the types list.

The pinned npm packages (tests/typescript/package.json + package-lock.json) are installed by the test
with `npm ci` into .cache/ (ignored by git), once per lock file. Without npm the test skips, except
in CI (CI=true), where it fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ls_helpers import ES_ASSETS, LOGSTASH, REPO, load_asset

TS = REPO / "tests" / "typescript"
CLIENTS = ("es8", "es9")  # npm aliases of @elastic/elasticsearch 8.19.x and 9.x
# body file -> (request type, path parameter, assets.env name of its value)
REQUESTS = {
    "ilm-policy.json": ("IlmPutLifecycleRequest", "name", "J1_ILM_POLICY"),
    "ingest-pipeline-final.json": ("IngestPutPipelineRequest", "id", "J1_FINAL_PIPELINE"),
    "component-template-settings.json": (
        "ClusterPutComponentTemplateRequest",
        "name",
        "J1_SETTINGS_COMPONENT",
    ),
    "component-template-ecs-mappings.json": (
        "ClusterPutComponentTemplateRequest",
        "name",
        "J1_ECS_COMPONENT",
    ),
    "component-template-jupiter_one-mappings.json": (
        "ClusterPutComponentTemplateRequest",
        "name",
        "J1_JUPITER_ONE_COMPONENT",
    ),
    "index-template-source.json": ("IndicesPutIndexTemplateRequest", "name", "J1_SOURCE_TEMPLATE"),
    "index-template-latest.json": ("IndicesPutIndexTemplateRequest", "name", "J1_LATEST_TEMPLATE"),
    "latest-index.json": ("IndicesCreateRequest", "index", "J1_LATEST_INDEX"),
    "transform-latest.json": ("TransformPutTransformRequest", "transform_id", "J1_TRANSFORM"),
}


ROLES = LOGSTASH / "roles"


def _role_bodies() -> dict[str, dict]:
    """Every shipped role as a `PUT _security/role/<name>` body: an Elasticsearch role file as
    it is, a Kibana role file's `elasticsearch` part."""
    bodies = {}
    for path in sorted(ROLES.glob("*.json")):
        role = json.loads(path.read_text())
        bodies[path.stem] = role["elasticsearch"] if path.stem.startswith("kibana-") else role
    return bodies


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.fixture(scope="module")
def node_modules() -> Path:
    npm = shutil.which("npm")
    if npm is None:
        if _in_ci():
            pytest.fail("npm is required in CI to check the request bodies against Elastic's API types")
        pytest.skip("npm is not installed")
    lock = (TS / "package-lock.json").read_bytes()
    cache = REPO / ".cache" / f"es-request-types-{hashlib.sha256(lock).hexdigest()[:12]}"
    stamp = cache / ".installed"
    if not stamp.exists():
        cache.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(TS / name, cache / name)
        proc = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"npm ci failed:\n{proc.stderr[-3000:]}"
        stamp.touch()
    return cache


def _names() -> dict[str, str]:
    return dict(re.findall(r"^(J1_\w+)='([^']*)'$", (ES_ASSETS / "assets.env").read_text(), re.M))


def _literal(client: str, var: str, request: str, param: str, value: str, body: dict) -> str:
    # a fresh object literal: JSON is TypeScript object-literal syntax
    return (
        f"export const {var}_{client}: {client}.{request} = {json.dumps({param: value, **body}, indent=1)};\n"
    )


def _check_file(bodies: dict[str, tuple[str, str, str, dict]]) -> str:
    lines = [f'import type {{ estypes as {c} }} from "{c}";\n' for c in CLIENTS]
    for var, (request, param, value, body) in bodies.items():
        for client in CLIENTS:
            lines.append(_literal(client, var, request, param, value, body))
    return "".join(lines)


def _tsc(cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "node",
            str(cache / "node_modules" / "typescript" / "bin" / "tsc"),
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--module",
            "nodenext",
            "--moduleResolution",
            "nodenext",
            "--target",
            "es2022",
            "--pretty",
            "false",
            "shipped.ts",
            "broken.ts",
        ],
        cwd=cache,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_every_request_body_matches_elastic_api_types(node_modules):
    assert {p.name for p in ES_ASSETS.glob("*.json")} == set(REQUESTS), "a body without a request type"
    names = _names()
    shipped = {
        Path(f).stem.replace("-", "_"): (req, param, names[env], load_asset(f))
        for f, (req, param, env) in REQUESTS.items()
    }
    roles = _role_bodies()
    assert {"j1filter-installer", "j1filter-writer"} <= set(roles)
    shipped |= {
        f"role_{stem.replace('-', '_')}": ("SecurityPutRoleRequest", "name", stem, body)
        for stem, body in roles.items()
    }
    (node_modules / "shipped.ts").write_text(_check_file(shipped))
    # The proof that the check bites: an unknown key and a wrong value type.
    template = load_asset("index-template-source.json")
    transform = load_asset("transform-latest.json")
    broken = {
        "unknown_key": ("IndicesPutIndexTemplateRequest", "name", "x", {**template, "priorty": 300}),
        "wrong_type": (
            "TransformPutTransformRequest",
            "transform_id",
            "x",
            {**transform, "latest": {**transform["latest"], "unique_key": "event.id"}},
        ),
    }
    (node_modules / "broken.ts").write_text(_check_file(broken))
    proc = _tsc(node_modules)
    errors = [line for line in proc.stdout.splitlines() if ": error TS" in line]
    in_shipped = [e for e in errors if e.startswith("shipped.ts")]
    assert not in_shipped, "shipped bodies Elastic's API types reject:\n" + "\n".join(in_shipped)
    in_broken = [e for e in errors if e.startswith("broken.ts")]
    unknown = [e for e in in_broken if "TS2353" in e and "priorty" in e]
    wrong = [e for e in in_broken if "TS2322" in e and "string[]" in e]
    assert len(unknown) == len(wrong) == len(CLIENTS), in_broken or proc.stdout[-2000:]


def _listed_privileges(node_modules: Path, client: str, type_name: str) -> set[str]:
    """The privilege names a client's union type lists (`'all' | 'monitor' | ... | string`)."""
    types = (node_modules / "node_modules" / client / "lib" / "api" / "types.d.ts").read_text()
    union = re.search(rf"^export type {type_name} = (.*);$", types, re.M)
    assert union, f"{client}: no {type_name}"
    return set(re.findall(r"'([a-z_]+)'", union[1]))


def _unlisted(roles: dict[str, dict], cluster: set[str], index: set[str]) -> list[str]:
    problems = []
    for stem, role in roles.items():
        problems += [f"{stem}: cluster {p}" for p in role.get("cluster", []) if p not in cluster]
        for entry in role.get("indices", []):
            problems += [f"{stem}: index {p}" for p in entry["privileges"] if p not in index]
    return problems


def test_every_role_privilege_is_one_elastic_names(node_modules):
    roles = _role_bodies()
    for client in CLIENTS:
        cluster = _listed_privileges(node_modules, client, "SecurityClusterPrivilege")
        index = _listed_privileges(node_modules, client, "SecurityIndexPrivilege")
        assert {"manage_transform", "monitor"} <= cluster and {"create_doc", "read"} <= index
        assert _unlisted(roles, cluster, index) == [], client
        # the proof that the check bites: a misspelled privilege
        broken = {
            "broken": {
                "cluster": ["manage_transforms"],
                "indices": [{"names": ["x"], "privileges": ["creat_doc"]}],
            }
        }
        assert _unlisted(broken, cluster, index) == [
            "broken: cluster manage_transforms",
            "broken: index creat_doc",
        ]


def test_role_index_patterns_cover_the_shipped_names():
    """The roles name the data stream and the latest view of every namespace of the default
    dataset; Kibana roles use only documented feature privileges."""
    names = _names()
    patterns = {
        pattern
        for role in _role_bodies().values()
        for entry in role.get("indices", [])
        for pattern in entry["names"]
    }
    from fnmatch import fnmatchcase

    for name in ("J1_DATA_STREAM", "J1_LATEST_INDEX", "J1_LATEST_ALIAS"):
        assert any(fnmatchcase(names[name], p) for p in patterns), name
    # a role `description` is refused by older 8.x versions than the README names (8.10)
    assert not [stem for stem, role in _role_bodies().items() if "description" in role]
    writer = _role_bodies()["j1filter-writer"]
    assert [e["privileges"] for e in writer["indices"]] == [["create_doc", "auto_configure"]]
    for path in ROLES.glob("kibana-*.json"):
        role = json.loads(path.read_text())
        assert set(role) == {"elasticsearch", "kibana"}, path.name
        for grant in role["kibana"]:
            assert set(grant) == {"base", "feature", "spaces"} and grant["base"] == [], path.name
            assert set(grant["feature"]) <= {"dashboard", "indexPatterns", "savedObjectsManagement"}, (
                path.name
            )
            assert all(p in (["all"], ["read"]) for p in grant["feature"].values()), path.name
