#!/usr/bin/env bash
# Revokes Drawbridge clients: each client is deleted with every token it
# holds, at once.
#
# Usage: revoke-client.sh [--upstream] CLIENT_ID...
#        list-clients.sh --expired | revoke-client.sh
#   CLIENT_ID   an mcp_… id, or a metadata document's https:// URL
#   --upstream  also revoke the signed-in users' refresh tokens at Google
# With no ids, reads them from standard input, one per line.
# Environment: DRAWBRIDGE_URL (default http://127.0.0.1:8002),
#              DRAWBRIDGE_ADMIN_TOKEN (required). Needs curl.
# Exits non-zero if any revocation failed (each failure is reported).
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
upstream=false; ids=()
for arg in "$@"; do
    case "$arg" in
        --help|-h) usage; exit 0 ;;
        --upstream) upstream=true ;;
        -*) echo "revoke-client.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
        *) ids+=("$arg") ;;
    esac
done
if [[ ${#ids[@]} -eq 0 ]]; then
    if [[ -t 0 ]]; then
        echo "revoke-client.sh: no client ids given (see --help)" >&2; exit 2
    fi
    while IFS= read -r line; do
        line=${line%%[[:space:]]*}
        [[ -n "$line" ]] && ids+=("$line")
    done
fi
if [[ ${#ids[@]} -eq 0 ]]; then
    echo "no client ids on standard input; nothing to revoke"
    exit 0
fi
source "$(dirname "$0")/lib/admin-api.sh"

failed=0
for id in "${ids[@]}"; do
    if [[ ! "$id" =~ ^([A-Za-z0-9_-]+|https://[^[:space:]]+)$ ]]; then
        echo "revoke-client.sh: $id: not a client id" >&2; failed=1; continue
    fi
    status=$(curl -sS -o "$body" -w '%{http_code}' -X DELETE -H "Authorization: Bearer $token" \
        "$base/admin/v1/clients/$(segment "$id")?upstream=$upstream") || { echo "revoke-client.sh: cannot reach $base" >&2; exit 1; }
    if [[ "$status" == 200 ]]; then
        echo "revoked $id ($(sed -n 's/.*"revoked_grants":\([0-9]*\).*/\1/p' "$body") sign-ins)"
    else
        echo "revoke-client.sh: $id: HTTP $status: $(cat "$body")" >&2; failed=1
    fi
done
exit $failed
