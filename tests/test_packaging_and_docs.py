"""What a user gets: the installed package data, the README's examples, the demo."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import orjson
import pytest

import j1filter
from j1filter.language.loader import load_mappings

from .conftest import REPO


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX only")
def test_installed_wheel_reads_its_own_mappings(tmp_path):
    """pip install . gives the mappings and samples as package data, and the loader reads
    them from there, not from a source tree."""
    source = tmp_path / "src"  # a clean copy: no build/ or egg-info left over from earlier builds
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("j1filter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "j1filter = j1filter.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    probe = (
        "import j1filter, j1filter.language.loader as l; print(j1filter.__file__); "
        "print('\\n'.join(str(p) for p in l.shipped_mapping_paths()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out[0].startswith(str(target))
    assert sorted(p.rsplit("/", 1)[1] for p in out[1:]) == sorted(
        p.name for p in (REPO / "mappings").glob("*.yml")
    )
    assert all(p.startswith(str(target / "j1filter" / "mappings")) for p in out[1:])
    assert (target / "j1filter" / "samples" / "entities.ndjson").exists()


def readme_block(after_heading: str, language: str) -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split(after_heading, 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S)[1]


def test_readme_worked_example_mapping(tmp_path):
    team = tmp_path / "team.yml"
    team.write_text(readme_block("### Worked example", "yaml"))
    mapper = j1filter.Mapper(
        j1filter.compile_mappings(load_mappings([team])), j1filter.Options(clock=lambda: "T")
    )
    entity = {
        "id": "w-1",
        "entity": {"_class": ["Finding"], "_type": "qualys_host_finding"},
        "properties": {"tag.Owner": "Ana@Example.com", "slaDueOn": 1762070400000, "slaBreached": "true"},
    }
    doc = mapper.map_entity(entity, orjson.dumps(entity).decode())
    assert doc["organization"]["name"] == "Blue Team"
    assert doc["user"]["email"] == "ana@example.com"
    assert doc["event"]["reference"] == "https://wiki.example.com/runbooks/qualys"
    assert doc["labels"]["sla_breached"] is True
    assert doc["jupiter_one"]["asset"]["properties"]["sla_due_on"] == "2025-11-02T08:00:00.000Z"
    assert "error" not in doc


def test_readme_rule_error_example(tmp_path, monkeypatch):
    (tmp_path / "team.yml").write_text(readme_block("### Worked example", "yaml"))
    monkeypatch.chdir(tmp_path)
    mapper = j1filter.Mapper(
        j1filter.compile_mappings(load_mappings(["team.yml"])), j1filter.Options(clock=lambda: "T")
    )
    entity = {
        "id": "w-2",
        "entity": {"_class": ["Finding"], "_type": "x"},
        "properties": {"slaBreached": "maybe"},
    }
    (message,) = mapper.map_entity(entity, "{}")["error"]["message"]
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"`{message}`" in readme


def test_readme_library_snippet(tmp_path, monkeypatch):
    (tmp_path / "my-mappings").mkdir()
    (tmp_path / "my-mappings" / "mine.yml").write_text(
        "version: 1\nname: mine\nrules:\n  - {to: labels.reversed, from: properties.description, transform: reverse}\n"
    )
    entity = {"id": "l-1", "entity": {"_class": ["Alert"]}, "properties": {"description": "abc"}}
    (tmp_path / "entities.ndjson").write_bytes(orjson.dumps(entity) + b"\n")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(readme_block("As a library", "python"), scope)
    assert scope["doc"]["message"] == "x" and scope["doc"]["event"]["kind"] == "alert"
    assert scope["stats"].documents == 1
    (written,) = [json.loads(line) for line in (tmp_path / "ecs.ndjson").read_bytes().splitlines()]
    assert written["labels"]["reversed"] == "cba" and written["data_stream"]["namespace"] == "prod"
    assert scope["types"]["event.severity"] == "long" and scope["types"]["labels.reversed"] == "keyword"


def test_the_public_api_is_narrow():
    assert sorted(j1filter.__all__) == sorted(
        [
            "load_mappings",
            "compile_files",
            "compile_mappings",
            "CompiledMappings",
            "field_types",
            "Mapper",
            "Options",
            "run",
            "Stats",
            "TransformRegistry",
            "builtin_transforms",
            "J1FilterError",
            "MappingError",
            "TransformError",
            "Problem",
            "ECS_VERSION",
            "__version__",
        ]
    )
    assert not hasattr(j1filter, "TRANSFORMS") and not hasattr(j1filter, "transform")
    first, second = j1filter.builtin_transforms(), j1filter.builtin_transforms()
    first.register("mine", lambda: str, result="keyword")
    assert first.get("mine") and second.get("mine") is None  # registries are independent


def test_demo_runs_the_whole_pipeline():
    proc = subprocess.run(
        [sys.executable, "-m", "j1filter", "demo", "--compact"], capture_output=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode()
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    samples = [
        json.loads(line) for line in (REPO / "j1filter/samples/entities.ndjson").read_text().splitlines()
    ]
    # a full collection asks for deleted entities too (includeDeleted): the tombstone comes along
    assert sorted(d["event"]["id"] for d in docs) == sorted(s["id"] for s in samples)
    assert not [d for d in docs if "error" in d]
    assert "j1filter: 24 lines in, 24 documents out, no errors" in proc.stderr.decode()


# --- every j1filter option the READMEs use exists, spelled as `j1filter SUB --help` spells it ---

SUBCOMMANDS = ("filter", "check", "fields", "explain", "collect", "simulate", "demo", "assets")
DOCS = (REPO / "README.md", REPO / "logstash" / "README.md")


def _help_options() -> dict[str, set[str]]:
    helps = {}
    for sub in SUBCOMMANDS:
        out = subprocess.run(
            [sys.executable, "-m", "j1filter", sub, "--help"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=True,
        ).stdout
        out = re.split(r"\n(?:subcommands \(|Environment:|Exit codes:)", out)[0]  # options only
        helps[sub] = set(re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", out))
    return helps


def _documented_commands(text: str):
    """(subcommand, options) for every `j1filter ...` invocation in a shell block or in a
    command-table cell; pipes, `&&` and `;` separate invocations."""
    chunks = re.findall(r"```sh\n(.*?)```", text, re.S)
    chunks += re.findall(r"^\| `(j1filter [^`|]*(?:\\\|[^`|]*)*)`", text, re.M)
    for chunk in chunks:
        for line in chunk.replace("\\\n", " ").splitlines():
            for segment in re.split(r"\||&&|;", line.split("#")[0]):
                words = segment.split()
                while words and re.match(r"\w+=", words[0]):  # VAR=value prefixes
                    words.pop(0)
                if not words or words[0] != "j1filter":
                    continue
                sub = words[1] if len(words) > 1 and words[1] in SUBCOMMANDS else "filter"
                yield (
                    sub,
                    [re.sub(r"[\]=].*", "", w.lstrip("[")) for w in words if w.lstrip("[").startswith("-")],
                )


def test_every_documented_j1filter_option_exists():
    helps = _help_options()
    unknown = []
    for doc in DOCS:
        for sub, options in _documented_commands(doc.read_text()):
            unknown += [
                f"{doc.name}: j1filter {sub} {option}" for option in options if option not in helps[sub]
            ]
    assert not unknown, "options the docs use that --help does not list:\n" + "\n".join(unknown)


def test_option_tables_match_help():
    """The filter's and collect's option tables name only real options, and every option of
    `--help` has a row (except --help and --version)."""
    helps = _help_options()
    readme = (REPO / "README.md").read_text()
    tables = {
        "filter": readme.split("Filter options:", 1)[1].split("\n\n", 2)[1],
        "collect": readme.split("### Credentials and endpoint", 1)[1]
        .split("### Paging", 1)[0]
        .split("Paging follows the cursor", 1)[0],
    }
    for sub, table in tables.items():
        rows = re.findall(r"^\| `([^|]*?)`", table, re.M)
        documented = {o for row in rows for o in re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", row)}
        assert documented <= helps[sub], (sub, documented - helps[sub])
        real = {o for o in helps[sub] if o.startswith("--")} - {"--help", "--version"}
        # collect's mapping options are listed in the --map row, --insecure under --ca-bundle
        documented |= set(re.findall(r"`(--[\w-]+)`", table))
        assert real <= documented, (sub, real - documented)


def test_one_exit_code_table():
    readme = (REPO / "README.md").read_text()
    assert len(re.findall(r"^\| (?:c|C)ode \| (?:m|M)eaning \|$", readme, re.M)) == 1
    assert "| 129, 130, 143 |" in readme


def test_a_bad_data_stream_name_exits_2_in_the_filter_and_collect_map():
    """The README: 'A bad value exits 2 with one line per problem', before any request."""
    env = {**os.environ, "J1_API_TOKEN": "demo-token", "J1_ACCOUNT_ID": "demo-account"}
    for argv in (
        ["--namespace", "Prod-EU"],
        ["collect", "--map", "--endpoint", "http://127.0.0.1:9/graphql", "--namespace", "Prod-EU"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "j1filter", *argv],
            input=b"",
            capture_output=True,
            cwd=REPO,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 2, (argv, proc.stderr)
        assert b"--namespace 'Prod-EU': must be lowercase" in proc.stderr
        assert not proc.stdout


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+\s+(.*)$", text, re.M)
    }


def test_readme_links_resolve():
    broken = []
    for doc in DOCS:
        for link in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if link.startswith("http"):
                continue
            path, _, fragment = link.partition("#")
            target = (doc.parent / path).resolve() if path else doc
            if not target.exists() or (fragment and fragment not in _anchors(target.read_text())):
                broken.append(f"{doc.relative_to(REPO)}: {link}")
    assert not broken, broken
