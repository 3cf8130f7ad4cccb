#!/bin/sh
# Load the j1filter Elasticsearch assets (ILM policy, ingest pipeline, component and
# index templates, latest-transform destination index, transform) in dependency order.
#
# Configuration comes from the environment only (never from arguments, so secrets
# stay out of `ps` and shell history):
#   ES_URL          Elasticsearch base URL, e.g. https://es.example.com:9200 (required)
#   ES_API_KEY      API key, either "id:api_key" or its base64 encoding, or
#   ES_USER / ES_PASSWORD   basic authentication
#   ES_CA_CERT      PEM file of the CA that signed Elasticsearch's certificate (optional)
#   J1_NAMESPACE    namespace of the data stream to roll over when it already exists
#                   (default: default), so it picks up the new mappings
#   J1_TRANSFORM_START  "false" to create the transform without starting it
#
# Re-running is safe: templates, policy and pipeline are overwritten; an existing
# transform is stopped, deleted and re-created (the latest index is kept and is
# rebuilt from the source data stream).
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
: "${ES_URL:?set ES_URL to the Elasticsearch URL, e.g. https://localhost:9200}"
es_url=${ES_URL%/}
namespace=${J1_NAMESPACE:-default}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT HUP INT TERM
umask 077

# curl reads its credentials from a config file, not from argv.
# (curl config syntax: inside double quotes, escape backslash and double quote)
quote() { printf '%s' "$1" | sed 's/[\\"]/\\&/g'; }
: > "$tmp/auth.cfg"
if [ -n "${ES_API_KEY:-}" ]; then
    case $ES_API_KEY in
        *:*) key=$(printf '%s' "$ES_API_KEY" | { base64 2>/dev/null || openssl base64; } | tr -d '\n') ;;
        *) key=$ES_API_KEY ;;
    esac
    printf 'header = "Authorization: ApiKey %s"\n' "$(quote "$key")" >> "$tmp/auth.cfg"
elif [ -n "${ES_USER:-}" ]; then
    printf 'user = "%s"\n' "$(quote "$ES_USER:${ES_PASSWORD:-}")" >> "$tmp/auth.cfg"
fi
if [ -n "${ES_CA_CERT:-}" ]; then
    printf 'cacert = "%s"\n' "$(quote "$ES_CA_CERT")" >> "$tmp/auth.cfg"
fi

# es METHOD PATH [BODY_FILE] -> prints the HTTP status; the answer is in $tmp/answer
es() {
    set -- "$1" "$2" "${3:-}"
    if [ -n "$3" ]; then
        curl -sS --connect-timeout 10 --max-time 120 -K "$tmp/auth.cfg" \
            -X "$1" -H 'Content-Type: application/json' --data-binary "@$3" \
            -o "$tmp/answer" -w '%{http_code}' "$es_url$2"
    else
        curl -sS --connect-timeout 10 --max-time 120 -K "$tmp/auth.cfg" \
            -X "$1" -o "$tmp/answer" -w '%{http_code}' "$es_url$2"
    fi
}

# put METHOD PATH FILE WHAT: fail loudly unless Elasticsearch answers 2xx
put() {
    status=$(es "$1" "$2" "$3") || { echo "j1filter install: cannot reach $es_url ($4)" >&2; exit 1; }
    case $status in
        2??) echo "ok    $4" ;;
        *) echo "FAIL  $4: HTTP $status" >&2; cat "$tmp/answer" >&2; echo >&2; exit 1 ;;
    esac
}

put PUT /_ilm/policy/j1filter-risks_and_alerts "$here/ilm-policy.json" "ILM policy j1filter-risks_and_alerts"
put PUT /_ingest/pipeline/j1filter-risks_and_alerts-final "$here/ingest-pipeline-final.json" "ingest pipeline j1filter-risks_and_alerts-final"
put PUT /_component_template/j1filter-risks_and_alerts@settings "$here/component-template-settings.json" "component template j1filter-risks_and_alerts@settings"
put PUT /_component_template/j1filter-ecs@mappings "$here/component-template-ecs-mappings.json" "component template j1filter-ecs@mappings"
put PUT /_component_template/j1filter-jupiter_one@mappings "$here/component-template-jupiter_one-mappings.json" "component template j1filter-jupiter_one@mappings"
put PUT /_index_template/j1filter-logs-jupiter_one.risks_and_alerts "$here/index-template-risks_and_alerts.json" "index template j1filter-logs-jupiter_one.risks_and_alerts"
put PUT /_index_template/j1filter-latest-risks_and_alerts "$here/index-template-latest.json" "index template j1filter-latest-risks_and_alerts"

# A data stream created before the template keeps its old mappings until rollover.
ds=logs-jupiter_one.risks_and_alerts-$namespace
status=$(es GET "/_data_stream/$ds") || status=000
if [ "$status" = 200 ]; then
    put POST "/$ds/_rollover" "" "rollover of existing data stream $ds"
fi

# Destination index of the transform, with its read alias (created once).
dest=logs-j1filter_latest.dest_risks_and_alerts-1
status=$(es GET "/$dest") || status=000
if [ "$status" = 404 ]; then
    put PUT "/$dest" "$here/latest-index.json" "latest index $dest (alias logs-j1filter_latest.risks_and_alerts)"
else
    echo "ok    latest index $dest already exists"
fi

transform=j1filter-latest-risks_and_alerts
status=$(es GET "/_transform/$transform") || status=000
if [ "$status" = 200 ]; then
    put POST "/_transform/$transform/_stop?force=true&wait_for_completion=true&timeout=60s" "" "stop existing transform $transform"
    put DELETE "/_transform/$transform" "" "delete existing transform $transform"
fi
put PUT "/_transform/$transform?defer_validation=true" "$here/transform-latest.json" "transform $transform"
if [ "${J1_TRANSFORM_START:-true}" != false ]; then
    put POST "/_transform/$transform/_start" "" "start transform $transform"
fi
echo "j1filter Elasticsearch assets installed on $es_url"
