#!/usr/bin/env bash
# Revokes a user: every Drawbridge token of every user whose VERIFIED email
# is EMAIL, across all clients, stops working at once, and their stored
# Google credentials are deleted.
# A user with the same email unverified by the provider is never touched.
#
# Usage: revoke-user.sh [--upstream] EMAIL
#   --upstream  also revoke the user's refresh token at Google
# Environment: DRAWBRIDGE_URL (default http://127.0.0.1:8002),
#              DRAWBRIDGE_ADMIN_TOKEN (required). Needs curl and python3.
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
upstream=false; email=""
for arg in "$@"; do
    case "$arg" in
        --help|-h) usage; exit 0 ;;
        --upstream) upstream=true ;;
        -*) echo "revoke-user.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
        *) [[ -z "$email" ]] || { echo "revoke-user.sh: one email at a time" >&2; exit 2; }; email=$arg ;;
    esac
done
[[ -n "$email" ]] || { echo "revoke-user.sh: an EMAIL is required (see --help)" >&2; exit 2; }
base=${DRAWBRIDGE_URL:-http://127.0.0.1:8002}
token=${DRAWBRIDGE_ADMIN_TOKEN:?set DRAWBRIDGE_ADMIN_TOKEN to the admin API token}
encoded=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$email")
body=$(mktemp); trap 'rm -f "$body"' EXIT
status=$(curl -sS -o "$body" -w '%{http_code}' -X DELETE -H "Authorization: Bearer $token" \
    "$base/admin/v1/users/$encoded?upstream=$upstream") || { echo "revoke-user.sh: cannot reach $base" >&2; exit 1; }
if [[ "$status" != 200 ]]; then
    echo "revoke-user.sh: HTTP $status: $(cat "$body")" >&2; exit 1
fi
python3 - "$body" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("revoked %s (%d user(s) with this verified email): %d sign-ins, credentials deleted: %s" % (r["email"], r.get("users", 1), r["revoked_grants"], r["credentials_deleted"]))
PY
