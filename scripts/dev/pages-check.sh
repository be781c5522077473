#!/usr/bin/env bash
# The pages people see, in headless Chromium against the real debug binary
# (dev provider, [pages] service_name and logo_file set): consent for a
# registered client, the dev sign-in page, consent at a step-up, consent for
# a metadata-document client with a loopback redirect, an error page and the
# access policy's refusal — each at phone and desktop widths, light and dark.
# Fails when a page scrolls sideways on a phone, is not dark under dark mode,
# loads anything from another origin, or lacks its CSP header (tests/pages/
# check.mjs lists every check). Screenshots land in target/pages/.
#
# Usage: scripts/dev/pages-check.sh [--update-docs] [--help]
#   --update-docs  also copies the screenshots docs/pages.md shows into docs/pages/
# Installs Debian's chromium package when missing (needs root); puppeteer-core
# comes from npm at the version pinned in tests/pages/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/../.."

update_docs=false
case "${1:-}" in
    --help) sed -n '2,14p' "$0"; exit 0 ;;
    --update-docs) update_docs=true ;;
    "") ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac
source scripts/dev/lib.sh
require_package chromium chromium "the pages check"
command -v node >/dev/null || { echo "pages check: Node.js is required" >&2; exit 1; }
(cd tests/pages && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

cargo build --quiet
with_scratch
root=$PWD
service_name="Example Tools"
tls="$root/tests/fixtures/tls"
port=$(free_port)
refusing_port=$(free_port)
# start NAME PORT [VAR=VALUE…]: the debug binary with the dev provider,
# in memory, named and with a logo, in $work/NAME.
start() {
    local dir="$work/$1" port=$2; shift 2
    mkdir -p "$dir"
    (cd "$dir" && exec env -i PATH="$PATH" MCP_PORT="$port" CREDENTIAL_STORAGE_MODE=MEMORY_ONLY \
        UPSTREAM_PROVIDER=dev DRAWBRIDGE_PAGES__SERVICE_NAME="$service_name" \
        DRAWBRIDGE_PAGES__LOGO_FILE="$root/docs/pages/example-logo.svg" \
        DRAWBRIDGE_OAUTH__CIMD__ALLOW_SPECIAL_USE_ADDRESSES=true \
        DRAWBRIDGE_OAUTH__CIMD__EXTRA_CA_FILE="$tls/ca.pem" \
        "$@" "$root/target/debug/drawbridge") >"$dir/drawbridge.log" 2>&1 &
    pids+=($!)
}
start main "$port"
# The dev provider's demo user is not in example.org: this one refuses it.
start refusing "$refusing_port" DRAWBRIDGE_ACCESS__ALLOWED_DOMAINS=example.org
for p in "$port" "$refusing_port"; do
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$p/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done
done

out=target/pages
rm -rf "$out"
status=0
BASE_URL="http://127.0.0.1:$port" REFUSING_URL="http://127.0.0.1:$refusing_port" \
    SERVICE_NAME="$service_name" OUT_DIR="$out" CHROMIUM="$(command -v chromium)" \
    node tests/pages/check.mjs || status=1
if [[ $status != 0 ]]; then
    echo "--- drawbridge logs (last lines) ---" >&2
    tail -n 5 "$work"/main/drawbridge.log "$work"/refusing/drawbridge.log >&2
    exit 1
fi

if $update_docs; then
    # The views docs/pages.md shows (keep the set, and so the repository, small).
    shots=(consent-phone-light consent-phone-dark consent-desktop-light consent-desktop-dark
        consent-step-up-phone-light consent-metadata-document-phone-dark
        access-refused-phone-light error-desktop-dark dev-signin-phone-light)
    for shot in "${shots[@]}"; do cp "$out/$shot.png" "docs/pages/$shot.png"; done
    total=$(du -cb docs/pages/*.png | tail -1 | cut -f1)
    echo "docs/pages: ${#shots[@]} screenshots, $total bytes"
    if (( total > 1500000 )); then echo "docs/pages holds more than 1.5 MB of screenshots" >&2; exit 1; fi
fi
