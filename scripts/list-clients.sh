#!/usr/bin/env bash
# Lists Drawbridge's registered clients through the admin API.
#
# Usage: list-clients.sh [--json] [--expired|--live] [--name TEXT] [--help]
#   --json      one JSON object per client, one per line (for jq or scripts)
#   --expired   only expired clients; without --json only their ids are
#               printed, so `list-clients.sh --expired | revoke-client.sh` works
#   --live      only clients that have not expired
#   --name T    only clients whose name contains T
# Environment: DRAWBRIDGE_URL (default http://127.0.0.1:8002),
#              DRAWBRIDGE_ADMIN_TOKEN (required). Needs curl and python3.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
json=0; ids_only=0; filter=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --help|-h) usage; exit 0 ;;
        --json) json=1 ;;
        --expired) filter+=(--data-urlencode expired=true); ids_only=1 ;;
        --live) filter+=(--data-urlencode expired=false) ;;
        --name) shift; filter+=(--data-urlencode "name_contains=${1:?--name needs a value}") ;;
        *) echo "list-clients.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
base=${DRAWBRIDGE_URL:-http://127.0.0.1:8002}
token=${DRAWBRIDGE_ADMIN_TOKEN:?set DRAWBRIDGE_ADMIN_TOKEN to the admin API token}
body=$(mktemp); trap 'rm -f "$body"' EXIT

cursor=""; first=1
while :; do
    args=(-G "$base/admin/v1/clients" --data-urlencode limit=200 "${filter[@]}")
    [[ -n "$cursor" ]] && args+=(--data-urlencode "cursor=$cursor")
    status=$(curl -sS -o "$body" -w '%{http_code}' -H "Authorization: Bearer $token" "${args[@]}") \
        || { echo "list-clients.sh: cannot reach $base" >&2; exit 1; }
    [[ "$status" == 200 ]] || { echo "list-clients.sh: HTTP $status: $(cat "$body")" >&2; exit 1; }
    python3 - "$body" "$json" "$ids_only" "$first" <<'PY'
import datetime, json, sys
page = json.load(open(sys.argv[1]))
as_json, ids_only, first = sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4] == "1"
when = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M") if t else "-"
if not as_json and not ids_only and first:
    print(f"{'CLIENT ID':<27} {'NAME':<24} {'AUTH':<20} {'CREATED':<17} {'LAST USED':<17} STATE")
for c in page["clients"]:
    if as_json:
        print(json.dumps(c))
    elif ids_only:
        print(c["client_id"])
    else:
        state = "disabled" if c["disabled"] else ("expired" if c["expired"] else "live")
        print(f"{c['client_id']:<27} {(c['client_name'] or '-')[:24]:<24} {c['token_endpoint_auth_method']:<20} "
              f"{when(c['created_at']):<17} {when(c['last_used_at']):<17} {state}")
PY
    cursor=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("next_cursor") or "")' "$body")
    first=0
    [[ -z "$cursor" ]] && break
done
