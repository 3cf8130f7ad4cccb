"""Static checks of logstash/*.conf, pipelines*.yml and filebeat.yml.

Every .conf is parsed with logstash-pipeline-parser (Logstash's config grammar),
every plugin option is checked against the options of the plugin versions named
in the reference (logstash-and-filebeat.md), and the settings that decide whether
data arrives at all are asserted one by one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ls_helpers import (
    LOGSTASH,
    PLACEHOLDER,
    Codec,
    PluginRef,
    conf_files,
    find,
    parse_conf_tree,
    plugins_of,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collect"))
from es_model import CAP_CODE, IdRule

# Options each plugin accepts, per the plugin sources/docs of the versions named in
# docs (pipe input 3.1.0, http_poller 6.0.0 + http client mixin 7.5.0, pipe output
# 4.0.0, split 3.1.9, ruby 3.1.8, json codec 3.1.1, elasticsearch output 12.1.6)
# plus the bundled mutate / fingerprint / uuid / file / pipeline plugins.
COMMON = {
    "input": {"add_field", "codec", "enable_metric", "id", "tags", "type"},
    "filter": {"add_field", "add_tag", "enable_metric", "id", "periodic_flush", "remove_field", "remove_tag"},
    "output": {"codec", "enable_metric", "id"},
}
HTTP_CLIENT_MIXIN = {
    "request_timeout",
    "socket_timeout",
    "connect_timeout",
    "automatic_retries",
    "retry_non_idempotent",
    "keepalive",
    "pool_max",
    "pool_max_per_route",
    "validate_after_inactivity",
    "follow_redirects",
    "cookies",
    "user",
    "password",
    "proxy",
    "ssl_enabled",
    "ssl_verification_mode",
    "ssl_certificate_authorities",
    "ssl_truststore_path",
    "ssl_truststore_password",
    "ssl_truststore_type",
    "ssl_keystore_path",
    "ssl_keystore_password",
    "ssl_keystore_type",
    "ssl_certificate",
    "ssl_key",
    "ssl_cipher_suites",
    "ssl_supported_protocols",
}
ES_OUTPUT_DS_OPTIONS = {
    "hosts",
    "api_key",
    "user",
    "password",
    "cloud_id",
    "cloud_auth",
    "ssl_enabled",
    "ssl_certificate_authorities",
    "ssl_verification_mode",
    "ssl_certificate",
    "ssl_key",
    "ssl_truststore_path",
    "ssl_truststore_password",
    "ssl_keystore_path",
    "ssl_keystore_password",
    "ecs_compatibility",
    "data_stream",
    "data_stream_type",
    "data_stream_dataset",
    "data_stream_namespace",
    "data_stream_auto_routing",
    "data_stream_sync_fields",
    "action",
    "document_id",
    "routing",
    "pipeline",
    "manage_template",
    "retry_initial_interval",
    "retry_max_interval",
    "dlq_custom_codes",
    "drop_error_types",
    "silence_errors_in_log",
    "compression_level",
    "timeout",
    "proxy",
    "sniffing",
    "pool_max",
    "pool_max_per_route",
}
# "Invalid data stream configuration" when combined with data_stream => true
ES_OUTPUT_NOT_WITH_DS = {
    "index",
    "template",
    "template_name",
    "template_api",
    "template_overwrite",
    "ilm_enabled",
    "ilm_rollover_alias",
    "ilm_pattern",
    "ilm_policy",
    "doc_as_upsert",
    "script",
    "script_type",
    "script_lang",
    "script_var_name",
    "scripted_upsert",
    "upsert",
    "parent",
    "join_field",
    "retry_on_conflict",
    "version",
    "version_type",
}
PLUGIN_OPTIONS = {
    ("input", "pipe"): {"command", "ecs_compatibility"},
    ("input", "http_poller"): {"urls", "schedule", "target", "metadata_target", "ecs_compatibility"}
    | HTTP_CLIENT_MIXIN,
    ("input", "file"): {
        "path",
        "mode",
        "start_position",
        "sincedb_path",
        "sincedb_write_interval",
        "sincedb_clean_after",
        "stat_interval",
        "discover_interval",
        "exclude",
        "close_older",
        "ignore_older",
        "max_open_files",
        "delimiter",
        "file_chunk_size",
        "file_chunk_count",
        "file_sort_by",
        "file_sort_direction",
        "file_completed_action",
        "file_completed_log_path",
        "exit_after_read",
        "check_archive_validity",
        "ecs_compatibility",
    },
    ("input", "pipeline"): {"address"},
    ("filter", "mutate"): {
        "convert",
        "copy",
        "gsub",
        "join",
        "lowercase",
        "merge",
        "coerce",
        "rename",
        "replace",
        "split",
        "strip",
        "update",
        "uppercase",
        "capitalize",
        "tag_on_failure",
    },
    ("filter", "split"): {"field", "target", "terminator"},
    ("filter", "ruby"): {
        "code",
        "init",
        "path",
        "script_params",
        "tag_on_exception",
        "tag_with_exception_message",
    },
    ("filter", "fingerprint"): {
        "source",
        "target",
        "method",
        "key",
        "base64encode",
        "concatenate_sources",
        "concatenate_all_fields",
        "ecs_compatibility",
    },
    ("filter", "uuid"): {"target", "overwrite"},
    ("filter", "drop"): {"percentage"},
    ("output", "elasticsearch"): ES_OUTPUT_DS_OPTIONS,
    ("output", "pipe"): {"command", "message_format", "ttl"},
    ("output", "pipeline"): {"send_to", "ensure_delivery"},
}
CODEC_OPTIONS = {
    "json": {"target", "charset", "ecs_compatibility"},
    "json_lines": {"target", "charset", "delimiter", "decode_size_limit_bytes", "ecs_compatibility"},
    "plain": {"format", "charset", "ecs_compatibility"},
    "line": {"format", "charset", "delimiter", "ecs_compatibility"},
}
ALLOWED_VARIABLES = {"ES_HOSTS", "ES_API_KEY", "J1_ENDPOINT", "J1_API_TOKEN", "J1_ACCOUNT_ID"}
DOC_ID = "%{[event][id]}:%{[jupiter_one][asset][entity][_version]}"
SNAPSHOT_SUFFIX = "%{[@metadata][_id]}:%{[jupiter_one][collection][snapshot]}"
SPOOL_GLOB = "/var/spool/j1filter/*.ndjson"


def test_bundle_has_the_expected_files():
    names = {p.name for p in conf_files()}
    assert {"j1-collector.conf", "j1-http-poller.conf", "j1-spool.conf"} <= names
    for extra in ("pipelines.yml", "pipelines-http-poller.yml", "filebeat.yml", "README.md"):
        assert (LOGSTASH / extra).is_file(), f"logstash/{extra} is missing"


# --------------------------------------------------------------------------
# grammar
# --------------------------------------------------------------------------


def test_parser_really_checks_the_grammar():
    """Guard against a parser that accepts anything: these are all invalid."""
    ParseError = pytest.importorskip("logstash_pipeline_parser.tree").ParseError

    for broken in (
        "input { pipe { command => 'x' }",  # unbalanced braces
        "inputs { pipe { command => 'x' } }",  # not a section name
        "filter { if [a] == { mutate { } } }",  # missing rvalue
        "output { elasticsearch { hosts = ['x'] } }",  # `=` instead of `=>`
    ):
        with pytest.raises(ParseError):
            parse_conf_tree(broken)


@pytest.mark.parametrize("path", conf_files(), ids=lambda p: p.name)
def test_conf_parses_with_the_logstash_grammar(path: Path):
    tree = parse_conf_tree(path.read_text())
    sections = [s for s, _ in tree]
    assert sections, f"{path.name}: no input/filter/output section"
    assert "input" in sections and "output" in sections, f"{path.name}: {sections}"


@pytest.mark.parametrize("path", conf_files(), ids=lambda p: p.name)
def test_only_known_plugins_and_options(path: Path):
    problems = []
    for p in plugins_of(path.read_text()):
        allowed = PLUGIN_OPTIONS.get((p.section, p.name))
        if allowed is None:
            problems.append(f"{p.section} plugin {p.name!r} is not in the vetted list")
            continue
        for key, value in p.options.items():
            if key not in allowed | COMMON[p.section]:
                problems.append(f"{p.section} {p.name}: unknown option {key!r}")
            if key == "codec":
                codec = value if isinstance(value, Codec) else Codec(value, {})
                if codec.name not in CODEC_OPTIONS:
                    problems.append(f"{p.name}: codec {codec.name!r} is not vetted")
                else:
                    for ckey in codec.options:
                        if ckey not in CODEC_OPTIONS[codec.name]:
                            problems.append(f"{p.name}: codec {codec.name} has no option {ckey!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", conf_files(), ids=lambda p: p.name)
def test_placeholders_are_only_the_documented_variables(path: Path):
    """Every ${...} Logstash will substitute is one of ours: a J1QL ${param}
    would be substituted (or fail the pipeline) because Logstash has no escape."""
    text = path.read_text()
    code = "\n".join(
        line.split("#", 1)[0] if not line.lstrip().startswith("body") else line for line in text.splitlines()
    )
    names = {m.group(1) for m in PLACEHOLDER.finditer(code)}
    assert names <= ALLOWED_VARIABLES, f"{path.name}: unexpected placeholders {names - ALLOWED_VARIABLES}"
    # Shell-style ${VAR:-x} would ALSO match Logstash's pattern: forbid it.
    assert "${" not in re.sub(PLACEHOLDER, "", code), f"{path.name}: a `${{` that is not a Logstash variable"


# --------------------------------------------------------------------------
# shared: the Elasticsearch output and the document id
# --------------------------------------------------------------------------


def _assert_es_output(name: str, plugins: list[PluginRef]):
    outs = find(plugins, "output", "elasticsearch")
    assert len(outs) == 1, f"{name}: expected one elasticsearch output, found {len(outs)}"
    es = outs[0]
    assert es.get("data_stream") in ("true", True), f"{name}: data_stream must be true"
    assert es.get("data_stream_type") == "logs"
    assert es.get("data_stream_dataset") == "jupiter_one.risks_and_alerts"
    assert es.get("data_stream_namespace") == "default"
    assert es.get("action", "create") == "create", "data streams accept only `create`"
    assert es.get("document_id") == "%{[@metadata][_id]}", f"{name}: document_id"
    assert es.get("ecs_compatibility", "v8") != "disabled", "ECS off is an error with data streams"
    assert es.get("hosts") == ["${ES_HOSTS}"] and es.get("api_key") == "${ES_API_KEY}", (
        f"{name}: ES credentials must come from the keystore/environment"
    )
    forbidden = set(es.options) & ES_OUTPUT_NOT_WITH_DS
    assert not forbidden, f"{name}: {forbidden} are rejected together with data_stream"
    assert "version_conflict_engine_exception" in es.get("silence_errors_in_log", []), (
        "re-collected entities answer 409: keep them out of the log"
    )

    # [@metadata][_id] is "<event.id>:<version>", and only when both exist
    # (otherwise the literal "%{[event][id]}" would become the id of every error doc).
    setters = [
        p for p in find(plugins, "filter", "mutate") if "[@metadata][_id]" in (p.get("add_field") or {})
    ]
    assert len(setters) == 1, f"{name}: one mutate must build [@metadata][_id]"
    assert setters[0].get("add_field")["[@metadata][_id]"] == DOC_ID
    assert setters[0].conditions == ["(([event][id]) and ([jupiter_one][asset][entity][_version]))"], setters[
        0
    ].conditions
    # ...then ":<jupiter_one.collection.snapshot>" when the document has one
    (suffix,) = [
        p for p in find(plugins, "filter", "mutate") if "[@metadata][_id]" in (p.get("replace") or {})
    ]
    assert suffix.get("replace")["[@metadata][_id]"] == SNAPSHOT_SUFFIX
    assert suffix.conditions == setters[0].conditions + ["(([jupiter_one][collection][snapshot]))"], (
        suffix.conditions
    )
    fallbacks = [
        p
        for p in plugins
        if p.section == "filter"
        and p.name in ("fingerprint", "uuid")
        and p.get("target") == "[@metadata][_id]"
    ]
    assert fallbacks and all(any(c.startswith("NOT ((") for c in p.conditions) for p in fallbacks), (
        f"{name}: documents without event.id/version need their own id, only in the else branch"
    )
    # Whatever the branch, every event reaching the output has [@metadata][_id]:
    # the fallback chain ends with an unconditional `else`.
    uuid = [p for p in fallbacks if p.name == "uuid"]
    assert uuid and all(c.startswith("NOT ") for c in uuid[0].conditions)


@pytest.mark.parametrize("name", ["j1-collector.conf", "j1-spool.conf"])
def test_elasticsearch_output_writes_the_data_stream_once_per_version(confs, name):
    _assert_es_output(name, confs[name])


# Every shipped pipeline that writes with an explicit id, for either engine.
ID_CONFS = sorted(p for p in LOGSTASH.rglob("*.conf") if "document_id" in p.read_text())


def _sets_the_id(p: PluginRef) -> bool:
    return (
        "[@metadata][_id]" in (p.get("add_field") or {})
        or "[@metadata][_id]" in (p.get("replace") or {})
        or p.get("target") == "[@metadata][_id]"
    )


def test_the_id_rule_is_in_every_pipeline_that_writes_ids():
    assert {p.name for p in ID_CONFS} == {
        "j1-collector.conf",
        "j1-spool.conf",
        "j1-collector-opensearch.conf",
    }


@pytest.mark.parametrize("path", ID_CONFS, ids=lambda p: p.name)
def test_every_document_id_is_capped_at_512_bytes(path: Path):
    """A longer id fails the whole bulk request (HTTP 400, retried forever by Logstash): the
    same Ruby filter, unconditional and after every branch that sets the id, hashes it."""
    plugins = plugins_of(path.read_text())
    caps = [p for p in find(plugins, "filter", "ruby") if p.get("id") == "j1_cap_document_id"]
    assert len(caps) == 1, f"{path.name}: one id cap"
    cap = caps[0]
    assert cap.get("code") == CAP_CODE and cap.get("init") == 'require "digest"'
    assert cap.conditions == [], f"{path.name}: the cap must apply to every branch, not {cap.conditions}"
    setters = [i for i, p in enumerate(plugins) if p.section == "filter" and _sets_the_id(p)]
    assert setters and max(setters) < plugins.index(cap), f"{path.name}: the id is set after its cap"
    outputs = [p for p in plugins if p.section == "output" and p.get("document_id") == "%{[@metadata][_id]}"]
    assert outputs, f"{path.name}: no output writes [@metadata][_id]"


def _entity(version: str, event_id: str = "5f1e8d1a-0a0a-4c4c-9d9d-000000000001") -> dict:
    return {
        "event": {"id": event_id},
        "jupiter_one": {
            "asset": {"entity": {"_version": version}},
            "collection": {"snapshot": "1717200000000"},
        },
    }


def test_a_hostile_version_gets_the_same_short_id_in_every_pipeline():
    rules = {p.name: IdRule.from_conf(p) for p in ID_CONFS}
    short, hostile = _entity("7"), _entity("9" * 5000)
    full = f"{hostile['event']['id']}:{'9' * 5000}:1717200000000"
    for name, rule in rules.items():
        assert rule.document_id(short) == "5f1e8d1a-0a0a-4c4c-9d9d-000000000001:7:1717200000000", name
        assert rule.document_id(hostile) == hashlib.sha256(full.encode()).hexdigest(), name
    # the limit is in bytes, as the engines count: 512 bytes pass as they are, 513 do not
    head, tail = "5f1e8d1a:", ":1717200000000"
    fits = "v" * (512 - len(head) - len(tail))
    assert len(rules["j1-collector.conf"].document_id(_entity(fits, event_id=head[:-1]))) == 512
    over = "é" + fits[1:] + "v"  # 512 characters, 513 bytes
    assert {r.document_id(_entity(over, event_id=head[:-1])) for r in rules.values()} == {
        hashlib.sha256(f"{head}{over}{tail}".encode()).hexdigest()
    }


# --------------------------------------------------------------------------
# j1-collector.conf (recommended)
# --------------------------------------------------------------------------


def test_collector_pipe_input(confs):
    plugins = confs["j1-collector.conf"]
    (pipe,) = find(plugins, "input", "pipe")
    assert pipe.get("codec") == "json", "pipe input strips the newline: codec must be json, not json_lines"
    command = pipe.get("command")
    stages = [s.strip() for s in command.split("|")]
    assert len(stages) == 2, command
    collect, filt = stages
    assert collect.startswith("j1filter collect ") and "--interval" in collect, collect
    assert "--once" not in collect, "the pipe input reruns the command every 10 s after it exits"
    assert filt.split()[0] == "j1filter" and "--line-buffered" in filt.split(), filt
    for secret in ("J1_API_TOKEN", "J1_ACCOUNT_ID", "token"):
        assert secret not in command, "secrets on the command line end up in every event"


def test_collector_removes_the_injected_command_line(confs):
    plugins = confs["j1-collector.conf"]
    (pipe,) = find(plugins, "input", "pipe")
    removers = [
        p for p in find(plugins, "filter", "mutate") if "[process][command_line]" in p.get("remove_field", [])
    ]
    assert len(removers) == 1
    (cond,) = removers[0].conditions
    # Only the command line the pipe input injected is removed, never one that
    # j1filter mapped from the entity (process.command_line of an EDR finding).
    m = re.fullmatch(r"\(\(\[process\]\[command_line\] =~ (.*)\)\)", cond)
    assert m, cond
    assert re.search(m.group(1), pipe.get("command")), "the regex must match our own command"
    assert not re.search(m.group(1), "C:\\Windows\\system32\\cmd.exe /c whoami")


# --------------------------------------------------------------------------
# j1-http-poller.conf
# --------------------------------------------------------------------------


def _poller(confs) -> PluginRef:
    (poller,) = find(confs["j1-http-poller.conf"], "input", "http_poller")
    return poller


def test_http_poller_request(confs):
    poller = _poller(confs)
    urls = poller.get("urls")
    assert list(urls) == ["j1"], urls
    req = urls["j1"]
    assert req["method"] == "post"
    assert req["url"] == "${J1_ENDPOINT:https://graphql.us.jupiterone.io}"
    assert req["headers"]["Authorization"] == "Bearer ${J1_API_TOKEN}"
    assert req["headers"]["JupiterOne-Account"] == "${J1_ACCOUNT_ID}"
    assert req["headers"]["Content-Type"] == "application/json"
    body = req["body"]
    assert "${" not in body, "J1QL ${param} in the body would be eaten by Logstash substitution"
    assert "\\" not in body, "escapes are off in Logstash config strings: keep the body escape-free"
    assert "'" not in body
    doc = json.loads(body)
    assert "queryV1(" in doc["query"] and "cursor" in doc["query"]
    assert "$query: String!" in doc["query"]
    j1ql = doc["variables"]["query"]
    assert j1ql.upper().startswith("FIND") and "LIMIT" not in j1ql.upper() and "SKIP" not in j1ql.upper()
    assert set(poller.get("schedule")) == {"every"}, "schedule needs exactly one of cron/every/at/in"
    assert poller.get("retry_non_idempotent") is True, "POST is not retried otherwise"
    codec = poller.get("codec")
    assert isinstance(codec, Codec) and codec.name == "json" and codec.options == {"target": "[j1]"}
    assert "metadata_target" not in poller.options, "metadata (with the Bearer token) must stay in @metadata"


def test_http_poller_guard_and_split(confs):
    plugins = confs["j1-http-poller.conf"]
    (split,) = find(plugins, "filter", "split")
    assert split.get("field") == "[j1][data][queryV1][data]", (
        "the codec target is [j1]: the rows are at [j1][data][queryV1][data]"
    )
    conds = " & ".join(split.conditions)
    assert "NOT ((_http_request_failure in [tags]))" in split.conditions, conds
    assert "NOT (([@metadata][input][http_poller][response][status_code] != 200))" in split.conditions, conds
    assert "NOT (([j1][errors]))" in split.conditions, conds
    # the copy of the whole page in [event][original] is removed before split clones it
    removes = [
        p for p in find(plugins, "filter", "mutate") if "[event][original]" in p.get("remove_field", [])
    ]
    assert removes and removes[0].conditions == split.conditions
    # a non-list [data][queryV1][data] is flagged as an API error, not shipped raw
    guard = [
        p for p in find(plugins, "filter", "mutate") if any("_split_type_failure" in c for c in p.conditions)
    ]
    assert guard and "_j1_api_error" in guard[0].get("add_tag", [])


def test_http_poller_hands_off_without_reading_stdout(confs):
    plugins = confs["j1-http-poller.conf"]
    (pipe,) = find(plugins, "output", "pipe")
    assert pipe.conditions == ["NOT ((_j1_api_error in [tags]))"], pipe.conditions
    command = pipe.get("command")
    assert isinstance(command, list), "logstash-output-pipe 4.0.0 takes an array command"
    assert command[:2] == ["/bin/sh", "-c"] and len(command) == 3, command
    script = command[2]
    # j1filter's stdout must NOT go back to the pipe output (it is never read:
    # the pipeline would deadlock after ~64-128 KiB).
    m = re.fullmatch(r"exec j1filter --line-buffered >> (/\S+)", script)
    assert m, f"j1filter's stdout must be redirected to a spool file: {script!r}"
    spool = m.group(1)
    assert "%{+" in spool, "the spool file name must rotate (new child, new file)"
    rendered = re.sub(r"%\{\+[^}]+\}", "2025.01.02", spool)
    assert fnmatch.fnmatch(rendered, SPOOL_GLOB), f"{rendered} is not read by the spool shippers"
    assert pipe.get("message_format") == "%{[j1][data][queryV1][data]}"
    # API errors bypass j1filter and reach the spool pipeline
    (route,) = find(plugins, "output", "pipeline")
    assert route.conditions == ["((_j1_api_error in [tags]))"]
    (spool_in,) = find(confs["j1-spool.conf"], "input", "pipeline")
    assert route.get("send_to") == [spool_in.get("address")]


def test_spool_pipeline_reads_the_spool_as_json(confs):
    (file_in,) = find(confs["j1-spool.conf"], "input", "file")
    assert file_in.get("codec") == "json", "one ECS document per line: codec json, not json_lines"
    assert file_in.get("path") == [SPOOL_GLOB]
    assert file_in.get("mode") == "tail" and file_in.get("start_position") == "beginning"
    assert file_in.get("sincedb_path", "").startswith("/var/lib/")


def test_no_json_lines_on_line_oriented_inputs(confs):
    for name, plugins in confs.items():
        for p in plugins:
            if p.section == "input" and p.name in ("pipe", "file"):
                codec = p.get("codec", "plain")
                codec_name = codec.name if isinstance(codec, Codec) else codec
                assert codec_name == "json", f"{name}: {p.name} input uses codec {codec_name}"


# --------------------------------------------------------------------------
# pipelines*.yml
# --------------------------------------------------------------------------


@pytest.mark.parametrize("yml", ["pipelines.yml", "pipelines-http-poller.yml"])
def test_pipelines_yml(yml):
    entries = yaml.safe_load((LOGSTASH / yml).read_text())
    assert isinstance(entries, list) and entries
    ids = [e["pipeline.id"] for e in entries]
    assert len(set(ids)) == len(ids)
    allowed = {
        "pipeline.id",
        "path.config",
        "pipeline.workers",
        "pipeline.batch.size",
        "pipeline.batch.delay",
        "pipeline.ecs_compatibility",
        "pipeline.ordered",
        "queue.type",
        "queue.max_bytes",
        "queue.checkpoint.writes",
        "queue.drain",
        "dead_letter_queue.enable",
        "dead_letter_queue.max_bytes",
        "dead_letter_queue.storage_policy",
    }
    for e in entries:
        assert set(e) <= allowed, f"{e['pipeline.id']}: unknown settings {set(e) - allowed}"
        conf = Path(e["path.config"]).name
        assert (LOGSTASH / conf).is_file(), f"{e['path.config']} is not shipped in logstash/"
        assert e["queue.type"] == "persisted", f"{e['pipeline.id']}: persistent queue"
        assert e.get("pipeline.ecs_compatibility") == "v8"
        plugins = plugins_of((LOGSTASH / conf).read_text())
        if find(plugins, "output", "elasticsearch"):
            assert e.get("dead_letter_queue.enable") is True, (
                f"{e['pipeline.id']}: mapping rejections must land in the DLQ"
            )
        assert "${" not in json.dumps(e), "keystore values cannot be used in pipelines.yml"


def test_recommended_pipelines_yml_runs_the_collector():
    (entry,) = yaml.safe_load((LOGSTASH / "pipelines.yml").read_text())
    assert Path(entry["path.config"]).name == "j1-collector.conf"


def test_http_poller_pipelines_are_wired_to_each_other():
    entries = {
        Path(e["path.config"]).name: e
        for e in yaml.safe_load((LOGSTASH / "pipelines-http-poller.yml").read_text())
    }
    assert set(entries) == {"j1-http-poller.conf", "j1-spool.conf"}


# --------------------------------------------------------------------------
# filebeat.yml
# --------------------------------------------------------------------------


def _filebeat() -> dict:
    return yaml.safe_load((LOGSTASH / "filebeat.yml").read_text())


def render_beats_format(fmt: str, doc: dict) -> str:
    """Beats format strings: %{[a.b]} or %{[a.b]:default} looked up in the event."""

    def lookup(m: re.Match) -> str:
        cur = doc
        for part in m.group(1).split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is None:
            if m.group(2) is None:
                raise KeyError(m.group(1))
            return m.group(2)[1:]
        return str(cur)

    return re.sub(r"%\{\[([^\]]+)\](:[^}]*)?\}", lookup, fmt)


def test_filebeat_reads_the_spool_with_ndjson():
    fb = _filebeat()
    (inp,) = fb["filebeat.inputs"]
    assert inp["type"] == "filestream"
    assert inp["id"], "filestream needs a stable id"
    assert inp["paths"] == [SPOOL_GLOB]
    (parser,) = inp["parsers"]
    nd = parser["ndjson"]
    assert nd["target"] == "" and nd["overwrite_keys"] is True and nd["add_error_key"] is True
    assert "document_id" not in nd, "ndjson document_id would REMOVE event.id from the document"
    assert inp["publisher_pipeline.disable_host"] is True, "host.* describes the J1 device"
    assert fb["setup.template.enabled"] is False and fb["setup.ilm.enabled"] is False


def test_filebeat_routes_into_the_same_data_stream():
    out = _filebeat()["output.elasticsearch"]
    assert out["hosts"] == ["${ES_HOSTS}"] and out["api_key"] == "${ES_API_KEY}"
    doc = {"data_stream": {"type": "logs", "dataset": "jupiter_one.risks_and_alerts", "namespace": "default"}}
    assert render_beats_format(out["index"], doc) == "logs-jupiter_one.risks_and_alerts-default"
    assert render_beats_format(out["index"], {}) == "logs-jupiter_one.risks_and_alerts-default"
    doc["data_stream"]["namespace"] = "prod"
    assert render_beats_format(out["index"], doc) == "logs-jupiter_one.risks_and_alerts-prod"


def test_filebeat_document_id_matches_logstash():
    procs = _filebeat()["processors"]
    scripts = [p["script"] for p in procs if "script" in p]
    assert len(scripts) == 1 and scripts[0]["lang"] == "javascript"
    src = scripts[0]["source"]
    # same "<event.id>:<version>[:<snapshot>]" as DOC_ID (+ SNAPSHOT_SUFFIX) in the Logstash pipelines
    assert 'event.Get("event.id")' in src
    assert 'event.Get("jupiter_one.asset.entity._version")' in src
    assert 'var docId = id + ":" + version;' in src
    assert 'event.Get("jupiter_one.collection.snapshot")' in src
    assert 'docId = docId + ":" + snapshot;' in src
    assert 'event.Put("@metadata._id", docId);' in src
    assert "if (unescape(encodeURIComponent(docId)).length <= 512) {" in src, "no id past 512 bytes"
    assert re.search(r"if \(id !== null .* version !== undefined\)", src), (
        "no id at all (auto id) when a document lacks event.id or _version"
    )


def test_filebeat_script_sets_the_logstash_id_or_none_past_512_bytes():
    """The script run by Node (JavaScript as Filebeat's goja runs it, ES5 functions only) on a
    minimal Event: the Logstash id up to 512 bytes, no id (the engine picks one) past it."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    (script,) = [p["script"]["source"] for p in _filebeat()["processors"] if "script" in p]
    harness = (
        script
        + """
const fields = JSON.parse(require("fs").readFileSync(0, "utf8"));
const meta = {};
process({ Get: (k) => (k in fields ? fields[k] : null), Put: (k, v) => { meta[k] = v; } });
console.log(JSON.stringify(meta["@metadata._id"] === undefined ? null : meta["@metadata._id"]));
"""
    )
    rule = IdRule.from_conf(LOGSTASH / "j1-collector.conf")
    head, tail = "5f1e8d1a:", ":1717200000000"
    fits = "v" * (512 - len(head) - len(tail))
    for version in ("7", fits, "é" + fits[1:] + "v", "9" * 5000):
        fields = {
            "event.id": head[:-1],
            "jupiter_one.asset.entity._version": version,
            "jupiter_one.collection.snapshot": tail[1:],
        }
        done = subprocess.run(
            [node, "-e", harness], input=json.dumps(fields), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        full = f"{head}{version}{tail}"
        expected = full if len(full.encode()) <= 512 else None
        assert json.loads(done.stdout) == expected, version[:20]
        if expected is not None:  # the same id as Logstash's
            assert rule.document_id(_entity(version, event_id=head[:-1])) == expected
