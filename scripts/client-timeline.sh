#!/usr/bin/env bash
# Prints one client's connection timeline: its recent steps, oldest first,
# one line each (time, step, outcome, error), then its gateway calls and
# last error. See docs/troubleshooting.md for what each line means.
#
# Usage: client-timeline.sh [--json] CLIENT_ID
#   CLIENT_ID   an mcp_… id, or a metadata document's https:// URL
#   --json      the admin API's JSON as it came
# Environment: DRAWBRIDGE_URL (default http://127.0.0.1:8002),
#              DRAWBRIDGE_ADMIN_TOKEN (required). Needs curl and python3.
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
json=0; id=""
for arg in "$@"; do
    case "$arg" in
        --help|-h) usage; exit 0 ;;
        --json) json=1 ;;
        -*) echo "client-timeline.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
        *) [[ -z "$id" ]] || { echo "client-timeline.sh: one client id only (see --help)" >&2; exit 2; }
           id=$arg ;;
    esac
done
[[ -n "$id" ]] || { echo "client-timeline.sh: no client id given (see --help)" >&2; exit 2; }
if [[ ! "$id" =~ ^([A-Za-z0-9_-]+|https://[^[:space:]]+)$ ]]; then
    echo "client-timeline.sh: $id: not a client id" >&2; exit 2
fi
source "$(dirname "$0")/lib/admin-api.sh"

status=$(curl -sS -o "$body" -w '%{http_code}' -H "Authorization: Bearer $token" \
    "$base/admin/v1/clients/$(segment "$id")/timeline") \
    || { echo "client-timeline.sh: cannot reach $base" >&2; exit 1; }
if [[ "$status" != 200 ]]; then
    echo "client-timeline.sh: $id: HTTP $status: $(cat "$body")" >&2; exit 1
fi
if [[ "$json" == 1 ]]; then
    cat "$body"; echo; exit 0
fi
python3 - "$body" <<'PY'
import datetime, json, sys
t = json.load(open(sys.argv[1]))
when = lambda s: datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if s else "-"
print(f"# {t['client_id']}: last {t['max_steps']} steps, {t['kept_days']} days (times in UTC)")
for s in t["steps"]:
    line = f"{when(s['at'])}  {s['step']:<21} {s['outcome']:<8}"
    if s["error"]:
        line += f" {s['error']}: {s['error_description'] or ''}".rstrip()
    if s["count"] > 1:
        line += f" (x{s['count']} since {when(s['since'])})"
    if s["detail"]:
        line += f" [{s['detail']}]"
    print(line.rstrip())
if not t["steps"]:
    print("(no steps kept)")
print(f"# gateway: first call {when(t['first_gateway_call_at'])}, last call {when(t['last_gateway_call_at'])}")
e = t["last_error"]
print(f"# last error: {when(e['at'])} {e['step']} {e['error']}: {e['error_description'] or ''}".rstrip() if e else "# last error: none")
PY
