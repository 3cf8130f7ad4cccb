"""The j1filter command, end to end through a subprocess."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys

from .conftest import ELASTIC_FIXTURES, REPO, SAMPLES, field_diff, needs_shared

ENTITY = b'{"id": "e-1", "entity": {"_class": ["Finding"], "_id": "e-1"}, "properties": {"description": "d"}}'


def j1filter(*args: str, stdin: bytes = b"", check_rc: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "j1filter", *args], input=stdin, capture_output=True, cwd=REPO, timeout=60
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr.decode()
    return proc


def docs_of(proc) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_no_arguments_filters_stdin_to_stdout():
    proc = j1filter(stdin=SAMPLES.read_bytes())
    docs = docs_of(proc)
    assert len(docs) == len(SAMPLES.read_bytes().splitlines()) == 24
    assert all(
        d["data_stream"]
        == {"type": "logs", "dataset": "jupiter_one.risks_and_alerts", "namespace": "default"}
        for d in docs
    )
    assert all(d["ecs"]["version"] == "9.2.0" and d["@timestamp"].endswith("Z") for d in docs)
    assert proc.stderr.decode().strip() == "j1filter: 24 lines in, 24 documents out, no errors"


def test_golden_fixture_with_preserve_option():
    log = needs_shared(ELASTIC_FIXTURES / "test-asset.log")
    expected = json.loads((ELASTIC_FIXTURES / "test-asset.log-expected.json").read_text())["expected"]
    docs = docs_of(j1filter("--preserve-duplicate-custom-fields", stdin=log.read_bytes()))
    for index, (want, got) in enumerate(zip(expected, docs, strict=True)):
        diff = field_diff(want, got, allow_extra=True)
        assert not diff, f"document {index + 1}:\n{diff}"


def test_data_stream_options_and_summary_with_errors(tmp_path):
    errors_file = tmp_path / "errors.ndjson"
    proc = j1filter(
        "--namespace",
        "prod",
        "--dataset",
        "j1.custom",
        "--errors-file",
        str(errors_file),
        stdin=ENTITY + b"\nnot json\n",
    )
    docs = docs_of(proc)
    assert docs[0]["data_stream"] == {"type": "logs", "dataset": "j1.custom", "namespace": "prod"}
    assert docs[0]["event"]["dataset"] == "j1.custom"
    assert docs[1]["event"]["kind"] == "pipeline_error"
    assert json.loads(errors_file.read_text()) == docs[1]
    assert (
        proc.stderr.decode().strip()
        == "j1filter: 2 lines in, 2 documents out, 1 with errors (invalid_json: 1)"
    )


def test_fail_on_error_exit_code():
    j1filter("--fail-on-error", stdin=ENTITY + b"\n", check_rc=0)
    j1filter("--fail-on-error", "-q", stdin=b"[]\n", check_rc=1)


def test_input_file_argument(tmp_path):
    source = tmp_path / "in.ndjson"
    source.write_bytes(ENTITY + b"\n")
    assert docs_of(j1filter(str(source), "-q"))[0]["event"]["id"] == "e-1"


def test_missing_input_file_is_a_runtime_failure(tmp_path):
    proc = j1filter(str(tmp_path / "absent.ndjson"), check_rc=1)
    assert "No such file" in proc.stderr.decode()


def test_user_mapping_adds_a_field(tmp_path):
    extra = tmp_path / "team.yml"
    extra.write_text("version: 1\nname: team\nrules:\n  - {to: organization.name, value: Blue Team}\n")
    doc = docs_of(j1filter("--mapping", str(extra), "-q", stdin=ENTITY))[0]
    assert doc["organization"]["name"] == "Blue Team"


def test_invalid_mapping_exits_2_with_location():
    bad = REPO / "tests" / "bad_mappings" / "unknown_transform.yml"
    proc = j1filter("--mapping", str(bad), stdin=ENTITY, check_rc=2)
    assert f"{bad}:4:56:" in proc.stderr.decode()
    assert proc.stdout == b""


def test_check_subcommand():
    proc = j1filter("check")
    assert proc.stdout.decode().startswith(
        f"{len(list((REPO / 'mappings').glob('*.yml')))} mapping files OK: "
    )
    bad = REPO / "tests" / "bad_mappings" / "wrong_version.yml"
    proc = j1filter("check", str(bad), check_rc=2)
    assert f"{bad}:1:10: version: unsupported format version 2" in proc.stderr.decode()


def test_fields_subcommand_lists_sources_and_targets():
    table = j1filter("fields").stdout.decode()
    assert "| properties.cve_id | vulnerability.id |" in table
    assert "| properties.qid | vulnerability.id |" in table
    transforms = j1filter("fields", "--transforms").stdout.decode()
    assert "`url_parts`" in transforms


def test_usage_error_exits_2():
    assert j1filter("--no-such-option", check_rc=2).returncode == 2


def test_line_buffered_output_arrives_before_end_of_input():
    """Under Logstash's pipe input, each document must come out while stdin stays open."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "j1filter", "--line-buffered", "-q"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        for expected_id in ("e-1", "e-1"):
            proc.stdin.write(ENTITY + b"\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, "no output while input is still open"
            assert json.loads(proc.stdout.readline())["event"]["id"] == expected_id
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_closed_output_ends_quietly():
    reader, writer = os.pipe()
    os.close(reader)
    proc = subprocess.run(
        [sys.executable, "-m", "j1filter", "-q"],
        input=ENTITY * 1 + b"\n",
        stdout=writer,
        stderr=subprocess.PIPE,
        cwd=REPO,
        timeout=60,
    )
    os.close(writer)
    assert proc.returncode == 0  # like `collect`: a reader that has enough is not a failure
    assert b"Traceback" not in proc.stderr


def test_odd_names_in_a_user_mapping_are_data_not_code(tmp_path):
    extra = tmp_path / "odd.yml"
    extra.write_text(
        "version: 1\nname: odd\nrules:\n"
        '  - {id: "line one\\nimport os", to: labels.my-field, value: "a\'b\\"c"}\n'
        "  - {to: labels.my-field2, from: properties.description, mode: append}\n"
    )
    doc = docs_of(j1filter("--mapping", str(extra), "-q", stdin=ENTITY))[0]
    assert doc["labels"] == {"my-field": "a'b\"c", "my-field2": ["d"]}


def test_check_validates_a_user_file_together_with_the_shipped_mappings(tmp_path):
    clash = tmp_path / "clash.yml"  # sound alone, but shipped rules write host.ip inside host
    clash.write_text("version: 1\nname: clash\nrules:\n  - {to: host, from: properties.host}\n")
    proc = j1filter("check", str(clash), check_rc=2)
    assert "is inside 'host'" in proc.stderr.decode()
    assert "OK" in j1filter("check", "--no-shipped-mappings", str(clash)).stdout.decode()
