"""What a user gets: the installed package data, the README's examples, the demo."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest

import j1filter
from j1filter.language.loader import load_mappings

from .conftest import REPO, SAMPLES


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


README = REPO / "README.md"
MAPPINGS_DOC = REPO / "docs" / "mappings.md"
REFERENCE_DOC = REPO / "docs" / "reference.md"


def doc_block(doc: Path, after_heading: str, language: str) -> str:
    section = doc.read_text().split(after_heading, 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S)[1]


def test_worked_example_mapping(tmp_path):
    team = tmp_path / "team.yml"
    team.write_text(doc_block(MAPPINGS_DOC, "## Worked example", "yaml"))
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


def test_rule_error_example(tmp_path, monkeypatch):
    (tmp_path / "team.yml").write_text(doc_block(MAPPINGS_DOC, "## Worked example", "yaml"))
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
    text = " ".join(MAPPINGS_DOC.read_text().split())
    assert f"`{message}`" in text


def test_readme_library_example_runs_as_pasted(tmp_path, monkeypatch, capsys):
    """In a copy of the quick start's state (the checkout's files at hand), the example
    creates what it needs and reads only what the checkout holds."""
    (tmp_path / "j1filter").symlink_to(REPO / "j1filter")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(doc_block(README, "As a library", "python"), scope)
    assert scope["doc"]["message"] == "x" and scope["doc"]["event"]["kind"] == "alert"
    samples = [json.loads(line) for line in SAMPLES.read_bytes().splitlines()]
    assert scope["stats"].documents == len(samples) == 24
    assert capsys.readouterr().out == "j1filter: 24 lines in, 24 documents out, no errors\n"
    written = [json.loads(line) for line in (tmp_path / "ecs.ndjson").read_bytes().splitlines()]
    assert [d["event"]["id"] for d in written] == [s["id"] for s in samples]
    assert all(d["data_stream"]["namespace"] == "prod" for d in written)
    described = [
        (s["properties"]["description"], d)
        for s, d in zip(samples, written)
        if "description" in s["properties"]
    ]
    assert described and all(d["labels"]["reversed"] == text[::-1] for text, d in described)
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
DOCS = (REPO / "README.md", REPO / "logstash" / "README.md", *sorted((REPO / "docs").glob("*.md")))


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
    tables = {
        "filter": REFERENCE_DOC.read_text().split("Filter options:", 1)[1].split("\n\n", 2)[1],
        "collect": (REPO / "docs" / "collect.md")
        .read_text()
        .split("## Credentials and endpoint", 1)[1]
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
    tables = [
        doc for doc in DOCS for _ in re.findall(r"^\| (?:c|C)ode \| (?:m|M)eaning \|$", doc.read_text(), re.M)
    ]
    assert tables == [REFERENCE_DOC]
    assert "| 129, 130, 143 |" in REFERENCE_DOC.read_text()


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


# --- every shell example runs as written, from the state the quick start leaves -------------

#: The docs whose every ```sh block is either run here or says why not. (logstash/README.md's
#: install block has its own test: tests/logstash/test_install_docs.py.)
EXAMPLE_DOCS = tuple(
    REPO / name
    for name in (
        "README.md",
        "docs/reference.md",
        "docs/collect.md",
        "docs/mappings.md",
        "docs/operations.md",
        "docs/development.md",
    )
)
MARKED_BLOCK = re.compile(r"<!-- (?:doc-test: ([\w-]+)|not run: [^>]+) -->\n```sh\n(.*?)```", re.S)


def shell_examples() -> list[tuple[str, str, str]]:
    """(doc, name, script) of every block marked `<!-- doc-test: NAME -->`."""
    return [
        (doc.relative_to(REPO).as_posix(), name, script)
        for doc in EXAMPLE_DOCS
        for name, script in MARKED_BLOCK.findall(doc.read_text())
        if name
    ]


def test_every_shell_example_is_run_or_says_why_not():
    unmarked = []
    for doc in EXAMPLE_DOCS:
        text = doc.read_text()
        blocks = len(re.findall(r"^```sh$", text, re.M))
        if blocks != len(MARKED_BLOCK.findall(text)):
            unmarked.append(
                f"{doc.relative_to(REPO)}: {blocks} sh blocks, {len(MARKED_BLOCK.findall(text))} marked"
            )
    assert not unmarked, unmarked
    assert {name for _, name, _ in shell_examples()} >= {"quickstart", "try", "simulator", "extend"}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Files a block expects from the text around it (the worked example's YAML, saved as team.yml).
EXAMPLE_FILES = {"worked-example": {"team.yml": lambda: doc_block(MAPPINGS_DOC, "## Worked example", "yaml")}}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell examples")
@pytest.mark.parametrize("doc,name,script", shell_examples(), ids=lambda v: v if "\n" not in v else "")
def test_shell_example_runs_as_written(tmp_path, doc, name, script):
    """In a directory that holds what the checkout holds, with the environment of the quick
    start active (this interpreter's bin directory on PATH, .venv pointing at it), bash runs
    the block as written; only the simulator's port is replaced by a free one."""
    activate = Path(sys.prefix) / "bin" / "activate"
    if not activate.exists():
        pytest.skip("the tests do not run in a virtual environment (run them with ./dev test)")
    (tmp_path / "j1filter").symlink_to(REPO / "j1filter")
    (tmp_path / ".venv").symlink_to(sys.prefix)
    for file_name, text in EXAMPLE_FILES.get(name, {}).items():
        (tmp_path / file_name).write_text(text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("J1_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.Popen(
        ["bash", "-e", "-o", "pipefail", "-c", script.replace("8765", str(_free_port()))],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a background simulator is stopped with the group below
    )
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, (
        f"{doc} [{name}]\n{script}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"
    )
    ecs = tmp_path / "ecs.ndjson"
    if ecs.exists():  # every example that writes documents maps the 24 sample entities
        docs = [json.loads(line) for line in ecs.read_bytes().splitlines()]
        assert len(docs) == 24 and not [d for d in docs if "error" in d], err
    checks = {
        "quickstart": lambda: re.match(r"j1filter \d+\.\d+", out),
        "try": lambda: (
            "# entity 1 (line 1)" in out and "mappings/00-base.yml:" in out and "| source |" in out
        ),
        "simulator": lambda: ecs.exists(),
        "extend": lambda: "organization.name" in out and "Blue Team" in out,
        "worked-example": lambda: "organization.name" in out,
    }
    assert checks.get(name, lambda: True)(), out[-3000:]
