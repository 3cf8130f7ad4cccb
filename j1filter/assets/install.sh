#!/bin/sh
# Load the j1filter assets rendered by `j1filter assets`: the Elasticsearch assets (ILM policy,
# ingest pipeline, component and index templates, latest index, transform) in dependency order,
# then the Kibana data views and dashboards.
#
# Configuration comes from the environment only (never from arguments, so secrets
# stay out of `ps` and shell history):
#   ES_URL          Elasticsearch base URL, e.g. https://es.example.com:9200
#   ES_API_KEY      API key, either "id:api_key" or its base64 encoding, or
#   ES_USER / ES_PASSWORD   basic authentication
#   ES_CA_CERT      PEM file of the CA that signed Elasticsearch's certificate (optional)
#   KIBANA_URL      Kibana base URL, e.g. https://kibana.example.com:5601 (optional: dashboards)
#   KIBANA_API_KEY, or KIBANA_USER / KIBANA_PASSWORD   (default: the Elasticsearch credentials)
#   KIBANA_CA_CERT  (default: ES_CA_CERT);  KIBANA_SPACE  Kibana space id (default: the default space)
#   J1_TRANSFORM_START  "false" to create the transform without starting it
# At least one of ES_URL and KIBANA_URL must be set. The names come from ./assets.env.
#
# Re-running is safe: templates, policy, pipeline and saved objects are overwritten; an existing
# transform is stopped, deleted and re-created (the latest index is kept and is rebuilt from
# the source data stream).
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
. "$here/assets.env"
if [ -z "${ES_URL:-}" ] && [ -z "${KIBANA_URL:-}" ]; then
    echo "j1filter install: set ES_URL (Elasticsearch, e.g. https://localhost:9200) and/or KIBANA_URL" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT HUP INT TERM
umask 077

# curl reads its credentials from a config file, not from argv.
# (curl config syntax: inside double quotes, escape backslash and double quote)
quote() { printf '%s' "$1" | sed 's/[\\"]/\\&/g'; }
# auth_config FILE API_KEY USER PASSWORD CA_CERT
auth_config() {
    : > "$1"
    if [ -n "$2" ]; then
        case $2 in
            *:*) key=$(printf '%s' "$2" | { base64 2>/dev/null || openssl base64; } | tr -d '\n') ;;
            *) key=$2 ;;
        esac
        printf 'header = "Authorization: ApiKey %s"\n' "$(quote "$key")" >> "$1"
    elif [ -n "$3" ]; then
        printf 'user = "%s"\n' "$(quote "$3:$4")" >> "$1"
    fi
    if [ -n "$5" ]; then
        printf 'cacert = "%s"\n' "$(quote "$5")" >> "$1"
    fi
}

# call AUTH_FILE METHOD URL [BODY_FILE] -> prints the HTTP status; the answer is in $tmp/answer
call() {
    set -- "$1" "$2" "$3" "${4:-}"
    if [ -n "$4" ]; then
        curl -sS --connect-timeout 10 --max-time 120 -K "$1" \
            -X "$2" -H 'Content-Type: application/json' --data-binary "@$4" \
            -o "$tmp/answer" -w '%{http_code}' "$3"
    else
        curl -sS --connect-timeout 10 --max-time 120 -K "$1" \
            -X "$2" -o "$tmp/answer" -w '%{http_code}' "$3"
    fi
}
es() { call "$tmp/es.cfg" "$1" "$es_url$2" "${3:-}"; }

# put METHOD PATH FILE WHAT: fail loudly unless Elasticsearch answers 2xx
put() {
    status=$(es "$1" "$2" "$3") || { echo "j1filter install: cannot reach $es_url ($4)" >&2; exit 1; }
    case $status in
        2??) echo "ok    $4" ;;
        *) echo "FAIL  $4: HTTP $status" >&2; cat "$tmp/answer" >&2; echo >&2; exit 1 ;;
    esac
}

install_elasticsearch() {
    es_url=${ES_URL%/}
    auth_config "$tmp/es.cfg" "${ES_API_KEY:-}" "${ES_USER:-}" "${ES_PASSWORD:-}" "${ES_CA_CERT:-}"
    put PUT "/_ilm/policy/$J1_ILM_POLICY" "$here/ilm-policy.json" "ILM policy $J1_ILM_POLICY"
    put PUT "/_ingest/pipeline/$J1_FINAL_PIPELINE" "$here/ingest-pipeline-final.json" "ingest pipeline $J1_FINAL_PIPELINE"
    put PUT "/_component_template/$J1_SETTINGS_COMPONENT" "$here/component-template-settings.json" "component template $J1_SETTINGS_COMPONENT"
    put PUT "/_component_template/$J1_ECS_COMPONENT" "$here/component-template-ecs-mappings.json" "component template $J1_ECS_COMPONENT"
    put PUT "/_component_template/$J1_JUPITER_ONE_COMPONENT" "$here/component-template-jupiter_one-mappings.json" "component template $J1_JUPITER_ONE_COMPONENT"
    put PUT "/_index_template/$J1_SOURCE_TEMPLATE" "$here/index-template-source.json" "index template $J1_SOURCE_TEMPLATE"
    put PUT "/_index_template/$J1_LATEST_TEMPLATE" "$here/index-template-latest.json" "index template $J1_LATEST_TEMPLATE"

    # A data stream created before the template keeps its old mappings until rollover.
    status=$(es GET "/_data_stream/$J1_DATA_STREAM") || status=000
    if [ "$status" = 200 ]; then
        put POST "/$J1_DATA_STREAM/_rollover" "" "rollover of existing data stream $J1_DATA_STREAM"
    fi

    # Destination index of the transform, with its read alias (created once).
    status=$(es GET "/$J1_LATEST_INDEX") || status=000
    if [ "$status" = 404 ]; then
        put PUT "/$J1_LATEST_INDEX" "$here/latest-index.json" "latest index $J1_LATEST_INDEX (alias $J1_LATEST_ALIAS)"
    else
        echo "ok    latest index $J1_LATEST_INDEX already exists"
    fi

    status=$(es GET "/_transform/$J1_TRANSFORM") || status=000
    if [ "$status" = 200 ]; then
        put POST "/_transform/$J1_TRANSFORM/_stop?force=true&wait_for_completion=true&timeout=60s" "" "stop existing transform $J1_TRANSFORM"
        put DELETE "/_transform/$J1_TRANSFORM" "" "delete existing transform $J1_TRANSFORM"
    fi
    put PUT "/_transform/$J1_TRANSFORM?defer_validation=true" "$here/transform-latest.json" "transform $J1_TRANSFORM"
    if [ "${J1_TRANSFORM_START:-true}" != false ]; then
        put POST "/_transform/$J1_TRANSFORM/_start" "" "start transform $J1_TRANSFORM"
    fi
    echo "j1filter Elasticsearch assets installed on $es_url"
}

install_kibana() {
    kibana_url=${KIBANA_URL%/}
    if [ -n "${KIBANA_API_KEY:-}${KIBANA_USER:-}" ]; then
        auth_config "$tmp/kibana.cfg" "${KIBANA_API_KEY:-}" "${KIBANA_USER:-}" "${KIBANA_PASSWORD:-}" "${KIBANA_CA_CERT:-${ES_CA_CERT:-}}"
    else
        auth_config "$tmp/kibana.cfg" "${ES_API_KEY:-}" "${ES_USER:-}" "${ES_PASSWORD:-}" "${KIBANA_CA_CERT:-${ES_CA_CERT:-}}"
    fi
    space=${KIBANA_SPACE:+/s/$KIBANA_SPACE}
    ndjson=$(dirname -- "$here")/kibana/j1filter-dashboards.ndjson
    status=$(curl -sS --connect-timeout 10 --max-time 120 -K "$tmp/kibana.cfg" -X POST \
        -H 'kbn-xsrf: true' -F "file=@$ndjson;type=application/ndjson" \
        -o "$tmp/answer" -w '%{http_code}' "$kibana_url$space/api/saved_objects/_import?overwrite=true") ||
        { echo "j1filter install: cannot reach $kibana_url (Kibana saved objects)" >&2; exit 1; }
    # Kibana answers 200 even when objects fail; only "success":true means all were imported.
    if [ "$status" = 200 ] && tr -d ' \n' < "$tmp/answer" | grep -q '"success":true'; then
        echo "ok    Kibana data views and dashboards ($ndjson)"
    else
        echo "FAIL  Kibana saved objects import: HTTP $status" >&2; cat "$tmp/answer" >&2; echo >&2; exit 1
    fi
}

if [ -n "${ES_URL:-}" ]; then install_elasticsearch; fi
if [ -n "${KIBANA_URL:-}" ]; then install_kibana; fi
