#!/usr/bin/env bash
# Evaluates every expression of dashboards/drawbridge.json against a real
# Prometheus scraping a real Drawbridge over HTTPS (the test certificate),
# after a little traffic (scripts/demo-flow.sh sign-ins over HTTPS with the
# development provider, refreshes, registrations up to the rate limit, MCP
# calls at the gateway with a tool table: refused, malformed, forwarded).
# Drawbridge keeps its records in a throwaway PostgreSQL (scripts/dev/postgres.sh),
# so the database row has data too; without PostgreSQL on a developer's
# machine that row is skipped with one line (required under CI=true).
# Fails if any expression errors or returns no series.
#
# Usage: scripts/dev/dashboard-check.sh [--help]
# Installs Prometheus from Debian's packages when missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,9p' "$0"; exit 0
fi

source scripts/dev/lib.sh
require_package prometheus prometheus "the Grafana dashboard check"

cargo build --quiet
with_scratch
source scripts/dev/postgres.sh
start_postgres
if [[ -n "${DRAWBRIDGE_TEST_DATABASE_URL:-}" ]]; then
    storage=(DRAWBRIDGE_STORAGE__BACKEND=postgres DATABASE_URL="$DRAWBRIDGE_TEST_DATABASE_URL"
        CREDENTIAL_STORAGE_MODE=FILE_ENCRYPTED CREDENTIALS_DIR="$work/creds" AUTH_ENCRYPTION_KEY_FILE="$work/key")
    export SKIP_DB_ROW=""
else
    echo "skipped: the dashboard's database row needs PostgreSQL (scripts/dev/postgres.sh); required under CI=true" >&2
    storage=(CREDENTIAL_STORAGE_MODE=MEMORY_ONLY)
    export SKIP_DB_ROW=1
fi

app_port=$(free_port)
prom_port=$(free_port)
tls="$PWD/tests/fixtures/tls"
# curl (here and in demo-flow.sh) trusts the test CA.
export CURL_CA_BUNDLE="$tls/ca.pem"

(cd "$work" && exec env -i PATH="$PATH" MCP_PORT="$app_port" "${storage[@]}" \
    ENABLE_HTTPS=true SSL_CERT_FILE="$tls/localhost.pem" SSL_KEY_FILE="$tls/localhost.key" \
    DRAWBRIDGE_UPSTREAM__CA_FILE="$tls/ca.pem" \
    MAX_REGISTRATIONS_PER_MINUTE=6 DRAWBRIDGE_RATE_LIMIT__REGISTRATION_BURST=6 \
    GATEWAY_UPSTREAM_URL="http://127.0.0.1:$(free_port)/mcp" DRAWBRIDGE_OAUTH__DEFAULT_SCOPES="openid email" \
    DRAWBRIDGE_GATEWAY__TOOL_SCOPES="send_email=profile;read_*=email" \
    "$OLDPWD/target/debug/drawbridge") >"$work/drawbridge.log" 2>&1 &
pids+=($!)
base="https://127.0.0.1:$app_port"
for _ in $(seq 1 100); do curl -sf "$base/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done

cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: drawbridge
    scheme: https
    tls_config:
      ca_file: $tls/ca.pem
    static_configs:
      - targets: ["127.0.0.1:$app_port"]
YML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)

# Traffic, part 1: two sign-ins (each registers, signs in, exchanges,
# introspects, refreshes).
for _ in 1 2; do DRAWBRIDGE_URL="$base" bash scripts/demo-flow.sh >/dev/null; done

# Let Prometheus take enough scrapes for rate() over the window.
for _ in $(seq 1 60); do
    up=$(curl -s "http://127.0.0.1:$prom_port/api/v1/query?query=up" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)' 2>/dev/null || echo 0)
    [[ "$up" == 1 ]] && break
    sleep 0.5
done
[[ "$up" == 1 ]] || { echo "prometheus never scraped drawbridge" >&2; cat "$work/prometheus.log" >&2; exit 1; }
sleep 6
# Part 2, inside the scraped window so rates are not all zero: another
# sign-in, MCP calls with its token (send_email needs `profile`, which a
# default sign-in lacks: 403; a malformed body: 400; read_file passes the
# policy, toward an MCP server that is not there: 502), then registrations
# until the rate limit answers 429.
access=$(DRAWBRIDGE_URL="$base" bash scripts/demo-flow.sh | sed -n 's/.*"access_token": "\([^"]*\)".*/\1/p' | tail -1)
[[ -n "$access" ]] || { echo "scripts/demo-flow.sh printed no access token" >&2; exit 1; }
mcp_call() {
    curl -s -o /dev/null -w '%{http_code}' -X POST "$base/mcp" -H "Authorization: Bearer $access" \
        -H 'Content-Type: application/json' -d "$1"
}
for expected in "403 send_email" "400" "502 read_file"; do
    set -- $expected
    body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"'"${2:-}"'"}}'
    [[ -n "${2:-}" ]] || body='{"jsonrpc":'
    code=$(mcp_call "$body")
    [[ "$code" == "$1" ]] || { echo "MCP call ${2:-malformed}: expected $1, got $code" >&2; exit 1; }
done
limited=0
for _ in $(seq 1 10); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/oauth/register" \
        -H 'Content-Type: application/json' -d '{"redirect_uris": ["https://a.example/cb"]}')
    [[ "$code" == 429 ]] && limited=1
done
[[ $limited == 1 ]] || { echo "the rate limit never answered 429" >&2; exit 1; }
sleep 4

python3 - "$prom_port" dashboards/drawbridge.json <<'PY'
import json, os, sys, urllib.parse, urllib.request
port, path = sys.argv[1], sys.argv[2]
skip_db = bool(os.environ.get("SKIP_DB_ROW"))
dash = json.load(open(path))
failures, checked = [], 0
for panel in dash["panels"]:
    for target in panel.get("targets", []):
        # What Grafana does before sending the query.
        expr = target["expr"].replace("$__rate_interval", "1m").replace("$__interval", "15s")
        if skip_db and "drawbridge_db_" in expr:
            continue
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            reply = json.load(urllib.request.urlopen(url, timeout=10))
        except Exception as e:
            failures.append(f"{panel['title']}: {expr}: {e}")
            continue
        checked += 1
        if reply.get("status") != "success":
            failures.append(f"{panel['title']}: {expr}: {reply.get('error')}")
        elif not reply["data"]["result"]:
            failures.append(f"{panel['title']}: {expr}: no series")
print(f"dashboard check: {checked} expressions in {len(dash['panels'])} panels evaluated")
if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
PY
