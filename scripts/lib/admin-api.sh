# Shared by the operator scripts that call the admin API (sourced):
# $base and $token from DRAWBRIDGE_URL and DRAWBRIDGE_ADMIN_TOKEN, a scratch
# file $body for answers (removed on exit), and `segment` to percent-encode
# one path segment (a metadata-document client id is an https URL).
base=${DRAWBRIDGE_URL:-http://127.0.0.1:8002}
token=${DRAWBRIDGE_ADMIN_TOKEN:?set DRAWBRIDGE_ADMIN_TOKEN to the admin API token}
body=$(mktemp); trap 'rm -f "$body"' EXIT

# Percent-encodes one path segment, byte by byte.
segment() {
    local LC_ALL=C s=$1 out='' c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
            [A-Za-z0-9._~-]) out+=$c ;;
            *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}
