"""The command line as a newcomer meets it (issue 10): typos, -q, plurals, locations,
pretty-printed input, a terminal, progress, data stream names, the demo, ./dev."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import threading
import time

import pytest

from j1filter.datastream import data_stream_problems

from .conftest import REPO, SAMPLES
from .test_cli import ENTITY, docs_of, j1filter

# --- subcommands, options ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "typo,meant", [("chek", "check"), ("feilds", "fields"), ("dmeo", "demo"), ("colect", "collect")]
)
def test_a_mistyped_subcommand_is_a_usage_error_with_a_suggestion(typo, meant):
    proc = j1filter(typo, check_rc=2)
    assert f"did you mean `j1filter {meant}`?" in proc.stderr.decode()
    assert b"No such file" not in proc.stderr and proc.stdout == b""


def test_help_as_a_word():
    assert j1filter("help").stdout.startswith(b"usage: j1filter [-h]")
    assert j1filter("help", "check").stdout.startswith(b"usage: j1filter check")


def test_an_existing_file_named_like_a_typo_is_read(tmp_path):
    (tmp_path / "chek").write_bytes(ENTITY + b"\n")
    proc = subprocess.run(
        [sys.executable, "-m", "j1filter", "chek"],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["event"]["id"] == "e-1"


def test_a_missing_input_file_says_which():
    proc = j1filter("no-such-input.ndjson", check_rc=1)
    assert "j1filter: cannot open 'no-such-input.ndjson': No such file or directory" in proc.stderr.decode()


@pytest.mark.parametrize(
    "args,meant",
    [
        (["--namespac", "prod"], "`--namespace`"),
        (["--line-buf"], "`--line-buffered`"),
        (["check", "--no-shipped"], "`--no-shipped-mappings`"),
        (["fields", "--transform"], "`--transforms`"),
        (["demo", "--js"], "`--json`"),
        (["explain", "--al"], "`--all`"),
        (["assets", "--out", "x", "--namespce=prod"], "`--namespace`"),
        (["--namespac=prod", "--fail-on-eror"], "`--namespace` and `--fail-on-error`"),
    ],
)
def test_long_options_are_not_abbreviated_but_suggested(args, meant):
    stderr = j1filter(*args, check_rc=2).stderr.decode()
    assert "unrecognized arguments" in stderr
    assert stderr.rstrip().endswith(f"did you mean {meant}?"), stderr


def test_no_suggestion_for_an_option_like_none():
    stderr = j1filter("--zzzz", check_rc=2).stderr.decode()
    assert "unrecognized arguments: --zzzz" in stderr and "did you mean" not in stderr


def _options_without_description(help_text: str) -> list[str]:
    """The option lines of `--help` with no description beside or under them."""
    lines = help_text.splitlines()
    missing = []
    for number, line in enumerate(lines):
        option = re.match(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$", line)
        if not option or option[2]:
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        if not re.match(r"^\s{4,}[^\s-]", following):
            missing.append(option[1])
    return missing


def test_the_check_finds_an_option_without_description():
    text = "options:\n  -h, --help  show this\n  --out DIR\n  --long-name LONG_NAME\n        described\n"
    assert _options_without_description(text) == ["--out DIR"]


@pytest.mark.parametrize(
    "sub", ["filter", "check", "fields", "explain", "collect", "simulate", "demo", "assets"]
)
def test_help_describes_every_option(sub):
    assert _options_without_description(j1filter(sub, "--help").stdout.decode()) == []


def test_explain_of_a_missing_file_says_what_to_do_instead():
    stderr = j1filter("explain", "nosuch.ndjson", check_rc=1).stderr.decode()
    assert "[Errno" not in stderr
    assert stderr.startswith("j1filter explain: cannot open 'nosuch.ndjson': No such file or directory (")
    assert "j1filter collect --once | j1filter explain" in stderr


def test_dash_q_is_quiet_everywhere(tmp_path):
    assert j1filter("-q", stdin=ENTITY).stderr == b""
    assert j1filter("check", "-q").stdout == b""
    env = {k: v for k, v in os.environ.items() if not k.startswith("J1_")}
    proc = subprocess.run(
        [sys.executable, "-m", "j1filter", "collect", "-q"],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2
    assert b"expected one argument" not in proc.stderr and b"J1_API_TOKEN" in proc.stderr
    collect_help = j1filter("collect", "--help").stdout.decode()
    assert "--query QUERY" in collect_help and "-q, --quiet" in collect_help


def test_help_lists_every_subcommand_and_the_exit_codes():
    from j1filter.cli.main import SUBCOMMANDS

    text = j1filter("--help").stdout.decode()
    for name in SUBCOMMANDS:
        assert re.search(rf"^  {name} +\S", text, re.M), name
    assert "143" in text and "130" in text and "129" in text


# --- words ------------------------------------------------------------------------------------


def test_summary_uses_singular_for_one():
    assert (
        j1filter(stdin=ENTITY + b"\n\n").stderr.decode().strip()
        == "j1filter: 2 lines in, 1 document out, 1 blank line skipped, no errors"
    )
    assert (
        j1filter("check", str(REPO / "mappings" / "00-base.yml"))
        .stdout.decode()
        .startswith("1 mapping file OK: 00-base.yml")
    )


@pytest.mark.parametrize(
    "line,message",
    [
        (b"[1, 2]", "line 1: expected a JSON object (a J1 entity), found an array"),
        (b'{"id": "x", "properties": {}}', 'line 1: entity: expected the "entity" object'),
        (
            b'{"entity": {"_class": ["Finding"]}, "properties": {"deviceLocalIp": "10.0.0.300"}}',
            "line 1: jupiter_one.asset.properties.device_local_ip: '10.0.0.300' is not an IP",
        ),
        (
            b'{"data": {"queryV1": {"data": [' + ENTITY + b", [3]]}}}",
            "line 1, entity 2: expected a JSON object (a J1 entity), found an array",
        ),
    ],
)
def test_every_error_message_says_where(line, message):
    docs = docs_of(j1filter(stdin=b"\n" + line + b"\n"))  # the blank line makes it line 2
    messages = [m for d in docs for m in d.get("error", {}).get("message", [])]
    assert messages and all(m.startswith("line 2") for m in messages), messages
    assert any(m.startswith(message.replace("line 1", "line 2", 1)) for m in messages), messages


def test_pretty_printed_input_gets_a_hint_and_loses_nothing():
    pretty = "".join(
        json.dumps(json.loads(line), indent=2) + "\n" for line in SAMPLES.read_text().splitlines()[:3]
    ).encode()
    proc = j1filter(stdin=pretty)
    docs = docs_of(proc)
    assert len(docs) == len(pretty.splitlines())  # every line is kept, as an error document
    assert "one JSON document per line" in docs[0]["error"]["message"][-1]
    # Each lone brace's error document says why on its own (it may be read alone in Kibana);
    # no other line's does.
    hinted = ["one JSON document per line" in " ".join(d["error"]["message"]) for d in docs]
    assert hinted == [d["event"]["original"].strip() in ("{", "[") for d in docs]
    assert sum(hinted) == 3
    summary = proc.stderr.decode()
    assert "hint: the input looks like pretty-printed JSON" in summary and "jq -c" in summary


def test_compact_input_gets_no_such_hint():
    assert "hint" not in j1filter(stdin=b'{"id": \n').stderr.decode()
    assert "hint" not in j1filter(stdin=SAMPLES.read_bytes()).stderr.decode()


# --- data stream names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "type_,dataset,namespace,problem",
    [
        ("logs", "jupiter_one.risks_and_alerts", "Prod", "--namespace 'Prod': must be lowercase"),
        ("logs", "jupiter_one.risks_and_alerts", "prod-eu", "--namespace 'prod-eu': must not contain '-'"),
        ("logs", "j1-custom", "default", "--dataset 'j1-custom': must not contain '-'"),
        ("logs", "_j1", "default", "--dataset '_j1': must not start with '_'"),
        ("logs", "+j1", "default", "--dataset '+j1': must not start with '+'"),
        ("logs", "j1", "a b", "--namespace 'a b': must not contain ' '"),
        ("logs", "j1*", "default", "--dataset 'j1*': must not contain '*'"),
        ("logs", "j1", "", "--namespace '': must not be empty"),
        ("log", "j1", "default", "--type 'log': must be one of logs, metrics"),
        ("logs", "j" * 101, "default", "is 101 characters long; at most 100"),
        ("logs", "j" * 50, "n" * 50, "bytes long; keep <type>-<dataset>-<namespace> within 100"),
    ],
)
def test_data_stream_name_rules(type_, dataset, namespace, problem):
    problems = data_stream_problems(type_, dataset, namespace)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    "parts",
    [
        ("logs", "jupiter_one.risks_and_alerts", "default"),
        ("metrics", "j1.custom", "prod_eu"),
        ("logs", "a", "b.c"),
    ],
)
def test_valid_data_stream_names(parts):
    assert data_stream_problems(*parts) == []


def test_filter_refuses_a_bad_namespace_with_exit_2():
    proc = j1filter("--namespace", "Prod-EU", stdin=ENTITY, check_rc=2)
    assert "--namespace 'Prod-EU': must be lowercase" in proc.stderr.decode()
    assert proc.stdout == b""


def test_dataset_help_says_the_assets_must_follow():
    text = " ".join(j1filter("--help").stdout.decode().split())
    assert "same option (`j1filter assets`)" in text


# --- a terminal -------------------------------------------------------------------------------


def _read_until(fd: int, needle: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the pty closed
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_no_input_on_a_terminal_says_what_it_expects():
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "j1filter"],
        cwd=REPO,
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(terminal)
    try:
        hint = _read_until(proc.stderr.fileno(), b"--help")
        assert b"one JSON document per line" in hint and b"Ctrl-D" in hint and b"j1filter --help" in hint
        os.write(controller, ENTITY + b"\n")
        assert json.loads(_read_until(proc.stdout.fileno(), b"\n"))["event"]["id"] == "e-1"  # at once
        os.write(controller, b"\x04")  # Ctrl-D: end of input
        assert proc.wait(30) == 0
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()


def test_progress_on_a_terminal_stderr_never_in_stdout():
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "j1filter"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(proc.stdout.read()), daemon=True)
    reader.start()
    try:
        for _ in range(8):  # 1.6 s of input: the progress line appears after 1 s
            proc.stdin.write(SAMPLES.read_bytes() * 10)
            proc.stdin.flush()
            time.sleep(0.2)
        proc.stdin.close()
        screen = _read_until(controller, b"documents out")
        reader.join(30)
        output = received[0]
        assert proc.wait(30) == 0
    finally:
        os.close(controller)
    assert re.search(rb"\rj1filter: [\d,]+ documents?, [\d,]+/s, 0 errors", screen), screen
    assert screen.rstrip().endswith(b"j1filter: 1,920 lines in, 1,920 documents out, no errors")
    assert len(output.splitlines()) == 1920
    assert all(json.loads(line) for line in output.splitlines())  # nothing but documents


def test_no_progress_when_stderr_is_not_a_terminal():
    proc = subprocess.Popen(
        [sys.executable, "-m", "j1filter"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for _ in range(7):
        proc.stdin.write(SAMPLES.read_bytes() * 10)
        proc.stdin.flush()
        time.sleep(0.2)
    proc.stdin.close()
    assert proc.stderr.read().decode() == "j1filter: 1,680 lines in, 1,680 documents out, no errors\n"
    assert proc.wait(30) == 0


# --- the demo, ./dev and the benchmark ---------------------------------------------------------


def test_demo_is_a_readable_summary(tmp_path):
    out = tmp_path / "all.ndjson"
    proc = j1filter("demo", "--out", str(out))
    text = proc.stdout.decode()
    assert len(text.splitlines()) < 150
    assert re.search(r"^source +documents +classes +critical +high .* errors$", text, re.M)
    assert re.search(r"^qualys +7 +Finding, Vulnerability ", text, re.M)
    assert re.search(r"^total +24 ", text, re.M)
    assert "errors by kind: none" in text
    assert "line 1: jupiter_one.asset.properties.device_local_ip: '10.0.0.300' is not an IP" in text
    example = json.loads(text.split("one document in full", 1)[1].split(":\n", 1)[1].split("\n\n", 1)[0])
    assert example["ecs"]["version"] == "9.2.0" and "id" in example["vulnerability"]
    assert "`j1filter demo --json`" in text and f"All 24 are in {out}." in text
    assert len(out.read_text().splitlines()) == 24
    # every row and column is explained, with the entity types behind the odd ones
    assert "Severity columns: event.severity on one 0-10 scale" in text
    assert re.search(r"^\(unknown\): entities that name no source .*\n.*pentest_finding \(1\)", text, re.M)
    assert re.search(r"^unset: no severity .*; here log4j_vulnerability \(1\)\.$", text, re.M)
    # readable lines: the ~900-character event.original is cut, saying how long it was
    assert max(len(line) for line in text.splitlines()) <= 110, max(text.splitlines(), key=len)
    assert re.search(r'"original": ".*… \([\d,]+ characters\)"', text)
    assert json.loads(out.read_text().splitlines()[0])["event"]["original"].endswith("}")  # --out: whole


def test_demo_json_and_out_together_write_both(tmp_path):
    out = tmp_path / "all.ndjson"
    proc = j1filter("demo", "-q", "--json", "--out", str(out))
    printed = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(printed) == 24 and [json.loads(line) for line in out.read_text().splitlines()] == printed


def test_demo_out_that_cannot_be_written_fails_at_once_without_a_traceback(tmp_path):
    proc = j1filter("demo", "--out", str(tmp_path / "no-such-folder" / "x.ndjson"), check_rc=1)
    stderr = proc.stderr.decode()
    assert "Traceback" not in stderr and "[Errno" not in stderr and proc.stdout == b""
    assert "cannot open" in stderr and "--out needs a file in an existing folder" in stderr
    assert "J1 API simulator" not in stderr  # nothing ran


@pytest.mark.parametrize("on_path", [True, False])
def test_demo_says_how_to_have_j1filter_at_hand(on_path):
    """After `./dev demo` the user is told how to get the `j1filter` the closing hint names."""
    bin_dir = os.path.dirname(sys.executable)
    path = f"{bin_dir}{os.pathsep}/usr/bin:/bin" if on_path else "/usr/bin:/bin"
    if not on_path and shutil.which("j1filter", path=path):
        pytest.skip("a j1filter outside this environment is on /usr/bin or /bin")
    if on_path and not shutil.which("j1filter", path=path):
        pytest.skip("this environment has no j1filter script (run the tests with ./dev test)")
    proc = subprocess.run(
        [sys.executable, "-m", "j1filter", "demo"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "PATH": path},
        check=True,
    )
    hint = proc.stdout.split("See every document", 1)[1]
    if on_path:
        assert "not on your PATH" not in hint
    elif sys.prefix != sys.base_prefix:
        activate = os.path.relpath(os.path.join(sys.prefix, "bin", "activate"), REPO)
        assert "not on your PATH yet" in hint and f"source {activate}" in hint, hint
        assert "./dev j1filter ..." in hint
    else:
        assert "python3 -m j1filter" in hint


def _fake_venv(tmp_path):
    """A copy of ./dev next to a .venv whose python and j1filter only record their arguments."""
    for name in ("dev", "setup.cfg", "pyproject.toml"):
        (tmp_path / name).write_bytes((REPO / name).read_bytes())
    (tmp_path / "dev").chmod(0o755)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "j1filter"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "$(dirname "$0")/calls"\n')
        (bin_dir / tool).chmod(0o755)
    return bin_dir / "calls"


@pytest.mark.parametrize(
    "command,install,then",
    [
        ("demo", "-e .", "j1filter demo"),
        ("bench", "-e .", "python bench/benchmark.py"),
        ("test", "-e .[test]", "python -m pytest"),
        ("j1filter", "-e .", "j1filter"),
    ],
)
def test_dev_installs_the_test_extra_only_for_tests(tmp_path, command, install, then):
    calls = _fake_venv(tmp_path)
    subprocess.run([str(tmp_path / "dev"), command], check=True, timeout=60, capture_output=True)
    lines = calls.read_text().splitlines()
    assert lines[0] == f"python -m pip install -q --disable-pip-version-check {install}"
    assert lines[-1].startswith(then)
    # only the tests lint and format-check first
    linted = [
        "python -m ruff check --quiet j1filter tests bench",
        "python -m ruff format --check --quiet j1filter tests bench",
    ]
    assert lines[1:-1] == (linted if command == "test" else [])


def test_dev_j1filter_runs_where_you_are(tmp_path):
    """`./dev j1filter FILE` reads FILE relative to the caller's directory, not the checkout's."""
    checkout, elsewhere = tmp_path / "checkout", tmp_path / "elsewhere"
    checkout.mkdir()
    elsewhere.mkdir()
    calls = _fake_venv(checkout)
    fake = checkout / ".venv" / "bin" / "j1filter"
    fake.write_text(f'#!/bin/sh\necho "j1filter $PWD $*" >> "{calls}"\n')
    subprocess.run([str(checkout / "dev"), "j1filter", "in.ndjson"], cwd=elsewhere, check=True, timeout=60)
    assert calls.read_text().splitlines()[-1] == f"j1filter {elsewhere} in.ndjson"


def test_dev_help_is_the_comment_only():
    proc = subprocess.run([str(REPO / "dev"), "help"], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.startswith("One entry point")
    assert "./dev test" in proc.stdout and "set -euo" not in proc.stdout
    assert subprocess.run([str(REPO / "dev"), "nonsense"], capture_output=True, timeout=60).returncode == 2


def test_benchmark_reports_figures_not_goals():
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "benchmark.py"), "--entities", "300", "--no-memory"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "ratio j1filter/orjson" in proc.stdout
    assert "target" not in proc.stdout
