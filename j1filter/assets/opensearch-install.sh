#!/bin/sh
# Load the j1filter OpenSearch assets rendered by `j1filter assets --engine opensearch`:
# ingest pipeline, component and index templates, the current-state index, and the ISM policy
# (when the Index Management plugin is installed). `./install.sh prune` removes entities no
# collection has seen within the retention from the current state: run it every hour (cron).
#
# Configuration comes from the environment only (never from arguments, so secrets
# stay out of `ps` and shell history):
#   OPENSEARCH_URL       base URL, e.g. https://opensearch.example.com:9200
#   OPENSEARCH_USER / OPENSEARCH_PASSWORD   basic authentication (optional: none without them)
#   OPENSEARCH_CA_CERT   PEM file of the CA that signed OpenSearch's certificate (optional)
#   J1_ISM               "false" to skip the ISM policy (e.g. a cluster without the plugin)
# Amazon OpenSearch Service with IAM request signing (SigV4) is not built in: see
# docs/opensearch.md. The names come from ./assets.env.
#
# Re-running is safe: templates, pipeline and policy are overwritten; the current-state index
# is created once and kept.
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
. "$here/assets.env"
if [ -z "${OPENSEARCH_URL:-}" ]; then
    echo "j1filter install: set OPENSEARCH_URL (e.g. https://localhost:9200)" >&2
    exit 2
fi
os_url=${OPENSEARCH_URL%/}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT HUP INT TERM
umask 077

# curl reads its credentials from a config file, not from argv.
# (curl config syntax: inside double quotes, escape backslash and double quote)
quote() { printf '%s' "$1" | sed 's/[\\"]/\\&/g'; }
: > "$tmp/os.cfg"
if [ -n "${OPENSEARCH_USER:-}" ]; then
    printf 'user = "%s"\n' "$(quote "$OPENSEARCH_USER:${OPENSEARCH_PASSWORD:-}")" >> "$tmp/os.cfg"
fi
if [ -n "${OPENSEARCH_CA_CERT:-}" ]; then
    printf 'cacert = "%s"\n' "$(quote "$OPENSEARCH_CA_CERT")" >> "$tmp/os.cfg"
fi

# os METHOD PATH [BODY_FILE] -> prints the HTTP status; the answer is in $tmp/answer
os() {
    if [ -n "${3:-}" ]; then
        curl -sS --connect-timeout 10 --max-time 120 -K "$tmp/os.cfg" \
            -X "$1" -H 'Content-Type: application/json' --data-binary "@$3" \
            -o "$tmp/answer" -w '%{http_code}' "$os_url$2"
    else
        curl -sS --connect-timeout 10 --max-time 120 -K "$tmp/os.cfg" \
            -X "$1" -o "$tmp/answer" -w '%{http_code}' "$os_url$2"
    fi
}

# put METHOD PATH FILE WHAT: fail loudly unless OpenSearch answers 2xx
put() {
    status=$(os "$1" "$2" "$3") || { echo "j1filter install: cannot reach $os_url ($4)" >&2; exit 1; }
    case $status in
        2??) echo "ok    $4" ;;
        *) echo "FAIL  $4: HTTP $status" >&2; cat "$tmp/answer" >&2; echo >&2; exit 1 ;;
    esac
}

if [ "${1:-}" = prune ]; then
    put POST "/$J1_LATEST_ALIAS/_delete_by_query?conflicts=proceed" "$here/current-prune-query.json" \
        "prune current state $J1_LATEST_ALIAS"
    cat "$tmp/answer"; echo
    exit 0
fi

put PUT "/_ingest/pipeline/$J1_FINAL_PIPELINE" "$here/ingest-pipeline-final.json" "ingest pipeline $J1_FINAL_PIPELINE"
put PUT "/_component_template/$J1_SETTINGS_COMPONENT" "$here/component-template-settings.json" "component template $J1_SETTINGS_COMPONENT"
put PUT "/_component_template/$J1_ECS_COMPONENT" "$here/component-template-ecs-mappings.json" "component template $J1_ECS_COMPONENT"
put PUT "/_component_template/$J1_JUPITER_ONE_COMPONENT" "$here/component-template-jupiter_one-mappings.json" "component template $J1_JUPITER_ONE_COMPONENT"
put PUT "/_index_template/$J1_SOURCE_TEMPLATE" "$here/index-template-source.json" "index template $J1_SOURCE_TEMPLATE"
put PUT "/_index_template/$J1_LATEST_TEMPLATE" "$here/index-template-current.json" "index template $J1_LATEST_TEMPLATE"

# ISM before the first backing index: the policy attaches only to indices created after it.
if [ "${J1_ISM:-true}" != false ]; then
    status=$(os GET "/_plugins/_ism/policies/$J1_ISM_POLICY") || status=000
    case $status in
        200)
            seq_no=$(tr -d ' \n' < "$tmp/answer" | sed -n 's/.*"_seq_no":\([0-9]*\).*/\1/p')
            term=$(tr -d ' \n' < "$tmp/answer" | sed -n 's/.*"_primary_term":\([0-9]*\).*/\1/p')
            put PUT "/_plugins/_ism/policies/$J1_ISM_POLICY?if_seq_no=$seq_no&if_primary_term=$term" \
                "$here/ism-policy.json" "ISM policy $J1_ISM_POLICY (updated)" ;;
        404) put PUT "/_plugins/_ism/policies/$J1_ISM_POLICY" "$here/ism-policy.json" "ISM policy $J1_ISM_POLICY" ;;
        *) echo "FAIL  ISM policy: HTTP $status (Index Management plugin missing? J1_ISM=false skips it)" >&2
           cat "$tmp/answer" >&2; echo >&2; exit 1 ;;
    esac
fi

# A data stream created before the template keeps its old mappings until rollover.
status=$(os GET "/_data_stream/$J1_DATA_STREAM") || status=000
if [ "$status" = 200 ]; then
    put POST "/$J1_DATA_STREAM/_rollover" "" "rollover of existing data stream $J1_DATA_STREAM"
fi

# The current-state index, with its write alias (created once).
status=$(os GET "/$J1_LATEST_INDEX") || status=000
if [ "$status" = 404 ]; then
    put PUT "/$J1_LATEST_INDEX" "$here/current-index.json" "current-state index $J1_LATEST_INDEX (alias $J1_LATEST_ALIAS)"
else
    echo "ok    current-state index $J1_LATEST_INDEX already exists"
fi
echo "j1filter OpenSearch assets installed on $os_url"
