#!/usr/bin/env bash
# The systemd unit, scripts/deploy/drawbridge.service, as docs/deploy.md
# installs it:
#  1. `systemd-analyze verify` on the unit (its ExecStart pointed at the
#     built binary: the verifier wants it to exist), alone and with the
#     drop-in docs/deploy.md gives for listening on port 443; any warning
#     about the unit fails the check. systemd need not be running: the
#     verifier loads the unit into a manager of its own.
#  2. `systemd-analyze security --offline`: the sandbox's exposure score
#     stays at 2.0 ("OK") or below.
#  3. The binary started the way the unit starts it (its Environment= lines,
#     EnvironmentFile=, WorkingDirectory=, ExecStart=; /etc/drawbridge and
#     /var/lib/drawbridge moved under a scratch root; soft open-files limit
#     1024): it generates the key file and admin token (0600) in private/
#     and its data in the state directory, logs the open-files limit raised
#     to the hard limit,
#     keeps serving after ExecReload (SIGHUP) and stops on SIGTERM with
#     status 0 within TimeoutStopSec. drawbridge.env is the one
#     docs/deploy.md shows, and its operator-command function then runs
#     check-config and rotate-key on the stopped service's data.
#
# Usage: scripts/dev/deploy-check.sh [--help]
# Installs Debian's systemd package when systemd-analyze is missing (root).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,23p' "$0"; exit 0
fi
source scripts/dev/lib.sh
require_package systemd-analyze systemd "the systemd unit check"

unit=scripts/deploy/drawbridge.service
fail() { echo "deploy-check: $*" >&2; exit 1; }

cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/drawbridge"
[[ -x "$bin" ]] || fail "no binary at $bin"
with_scratch
cp "$bin" "$work/drawbridge"

# --- 1. systemd-analyze verify -------------------------------------------
verify() {  # verify NAME: verifies $work/verify/drawbridge.service
    local out
    out=$(cd "$work/verify" && systemd-analyze verify --man=no ./drawbridge.service 2>&1) \
        || fail "systemd-analyze verify ($1) failed:"$'\n'"$out"
    if grep -q 'drawbridge' <<<"$out"; then
        fail "systemd-analyze verify ($1) warns about the unit:"$'\n'"$out"
    fi
    [[ -z "$out" ]] && echo "ok: systemd-analyze verify ($1): no warnings" \
        || echo "ok: systemd-analyze verify ($1); about other units: $out"
}
mkdir -p "$work/verify"
sed "s|/usr/local/bin/drawbridge|$work/drawbridge|" "$unit" >"$work/verify/drawbridge.service"
grep -q "^ExecStart=$work/drawbridge " "$work/verify/drawbridge.service" \
    || fail "the unit's ExecStart is not /usr/local/bin/drawbridge"
verify "the unit"
sed -i 's|^\[Install\]|AmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n\n[Install]|' \
    "$work/verify/drawbridge.service"
verify "with the port-443 drop-in"

# --- 2. the sandbox ---------------------------------------------------------
sed "s|/usr/local/bin/drawbridge|$work/drawbridge|" "$unit" >"$work/verify/drawbridge.service"
score=$(cd "$work/verify" && systemd-analyze security --offline=true --threshold=20 \
    ./drawbridge.service 2>&1) || fail "the sandbox's exposure is above 2.0:"$'\n'"$score"
echo "ok: $(grep -o 'Overall exposure level.*' <<<"$score")"

# --- 3. the service started as the unit starts it -------------------------
root="$work/root"
sed -e "s|/etc/drawbridge|$root/etc/drawbridge|g" \
    -e "s|/var/lib/drawbridge|$root/var/lib/drawbridge|g" \
    -e "s|/usr/local/bin/drawbridge|$work/drawbridge|" "$unit" >"$work/rendered.service"
values() { sed -n "s/^$1=//p" "$work/rendered.service"; }
one() { local v; v=$(values "$1"); [[ $(wc -l <<<"$v") -eq 1 && -n "$v" ]] || fail "expected one $1= line"; echo "$v"; }
if grep -E '^(Environment|ExecStart|ExecReload)=.*["'\''%]' "$work/rendered.service"; then
    fail "quoting or specifiers in these lines: teach this check to parse them"
fi
# The operator commands in docs/deploy.md set the unit's paths too.
while IFS= read -r assignment; do
    grep -qF "$assignment" docs/deploy.md || fail "docs/deploy.md does not set $assignment as the unit does"
done < <(sed -n 's/^Environment=//p' "$unit")

# The block of docs/deploy.md between <!-- NAME:start --> and <!-- NAME:end -->,
# its paths moved under $root.
doc_block() {
    sed -n "/<!-- $1:start -->/,/<!-- $1:end -->/p" docs/deploy.md | sed '1,2d;$d' | sed '$d' |
        sed -e "s|/etc/drawbridge|$root/etc/drawbridge|g" -e "s|/var/lib/drawbridge|$root/var/lib/drawbridge|g" \
            -e "s|/usr/local/bin/drawbridge|$work/drawbridge|g"
}

# What the installation in docs/deploy.md creates (systemd makes the state
# directory, 0700).
mkdir -p "$root/etc/drawbridge/private" "$root/var/lib/drawbridge"
chmod 700 "$root/etc/drawbridge/private" "$root/var/lib/drawbridge"
cp config.toml "$root/etc/drawbridge/config.toml"
port=$(free_port)
# drawbridge.env as docs/deploy.md writes it, on a free port.
{ doc_block deploy-env; echo "MCP_PORT=$port"; } >"$root/etc/drawbridge/drawbridge.env"
grep -q '^UPSTREAM_PROVIDER=' "$root/etc/drawbridge/drawbridge.env" || fail "no deploy-env block in docs/deploy.md"
cat >"$root/etc/drawbridge/google-credentials.json" <<'JSON'
{"web": {"client_id": "123-deploy-check.apps.googleusercontent.com", "client_secret": "deploy-check-google-secret",
 "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token"}}
JSON
chmod 640 "$root/etc/drawbridge/drawbridge.env" "$root/etc/drawbridge/google-credentials.json"

env_args=()
while IFS= read -r assignment; do [[ -n "$assignment" ]] && env_args+=("$assignment"); done < <(values Environment)
env_file=$(one EnvironmentFile); env_file=${env_file#-}
while IFS= read -r line; do  # as systemd reads it: KEY=VALUE, VALUE may be "quoted"
    [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)=\"(.*)\"$ ]] && line="${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
    [[ "$line" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] && env_args+=("$line")
done <"$env_file"
read -ra exec_start <<<"$(one ExecStart)"
workdir=$(one WorkingDirectory)
stop_timeout=$(one TimeoutStopSec)
shutdown=$(sed -n 's/^shutdown_timeout_seconds *= *\([0-9]*\).*/\1/p' config.toml)
((stop_timeout > shutdown)) \
    || fail "TimeoutStopSec=$stop_timeout is not above server.shutdown_timeout_seconds ($shutdown)"
[[ $(one LimitNOFILE) =~ ^[0-9]+$ ]] || fail "LimitNOFILE= is not a number"

config_out=$(cd "$workdir" && env -i PATH="$PATH" "${env_args[@]}" "${exec_start[0]}" \
    --config "$root/etc/drawbridge/config.toml" check-config) || fail "check-config refused the unit's settings"
for expected in "storage.credentials_dir set by \$CREDENTIALS_DIR" \
    "credentials_file = \"$root/etc/drawbridge/google-credentials.json\""; do
    grep -qF "$expected" <<<"$config_out" || fail "check-config does not show: $expected"$'\n'"$config_out"
done
echo "ok: check-config takes the unit's environment and its EnvironmentFile"

log="$work/drawbridge.log"
(cd "$workdir" && ulimit -Sn 1024 && exec env -i PATH="$PATH" "${env_args[@]}" "${exec_start[@]}") >"$log" 2>&1 &
pid=$!
pids+=("$pid")
show_log() { tail -n 20 "$log" | cut -c1-400 >&2; }
for _ in $(seq 150); do
    grep -q '"msg":"listening on ' "$log" && break
    kill -0 "$pid" 2>/dev/null || { show_log; fail "the service exited at start"; }
    sleep 0.2
done
grep -q '"msg":"listening on ' "$log" || { show_log; fail "the service did not start"; }

private="$root/etc/drawbridge/private"
for f in "$private/encryption.key" "$private/admin-token"; do
    [[ $(stat -c %a "$f" 2>/dev/null) == 600 ]] || { ls -la "$private" >&2; fail "$f is not there with mode 600"; }
done
[[ -d "$root/var/lib/drawbridge/drawbridge.db" ]] || fail "no data in the state directory"
hard=$(ulimit -Hn)
python3 - "$log" "$hard" <<'PY' || { show_log; fail "no log line raising the open-files limit from 1024 to the hard limit ($hard)"; }
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
raised = [l for l in lines if l.get("msg") == "open-files limit raised to the hard limit"]
sys.exit(not any(l.get("was") == 1024 and str(l.get("open_files_limit")) == sys.argv[2] for l in raised))
PY
echo "ok: key file and admin token generated (0600), data in the state directory, open-files limit 1024 -> $hard logged"

reload=$(one ExecReload)
bash -c "${reload//\$MAINPID/$pid}"
sleep 1
kill -0 "$pid" 2>/dev/null || { show_log; fail "ExecReload (SIGHUP) stopped the service"; }
status=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).status)' \
    "http://127.0.0.1:$port/health/live") || status=none
[[ "$status" == 200 ]] || { show_log; fail "after ExecReload /health/live answered $status"; }
echo "ok: ExecReload (SIGHUP) leaves the service serving"

kill -TERM "$pid"
code=timeout
for _ in $(seq $((stop_timeout * 5))); do
    if ! kill -0 "$pid" 2>/dev/null; then code=0; wait "$pid" || code=$?; break; fi
    sleep 0.2
done
[[ "$code" == 0 ]] || { show_log; fail "SIGTERM: exit status $code (expected 0 within ${stop_timeout}s)"; }
grep -q 'storage flushed; stopped' "$log" || { show_log; fail "no 'storage flushed' at stop"; }
echo "ok: SIGTERM stops the service with status 0 and storage flushed"

# The operator commands as docs/deploy.md runs them (its shell function,
# without sudo: this check runs as one user), on the stopped service's data.
fn=$(doc_block operator-commands | sed 's|sudo -u drawbridge ||')
grep -q '^drawbridge_cmd() {' <<<"$fn" || fail "no operator-commands block in docs/deploy.md"
eval "$fn"
out=$(drawbridge_cmd check-config 2>&1) || fail "drawbridge_cmd check-config:"$'\n'"$out"
for expected in "credentials_dir = \"$root/var/lib/drawbridge\"" 'scopes = "openid email drive.file"'; do
    grep -qF "$expected" <<<"$out" || fail "drawbridge_cmd check-config does not show: $expected"$'\n'"$out"
done
out=$(drawbridge_cmd rotate-key 2>&1) || fail "drawbridge_cmd rotate-key:"$'\n'"$out"
grep -q '^retired keys: ' <<<"$out" || fail "rotate-key did not finish:"$'\n'"$out"
[[ $(stat -c %a "$private/encryption.key") == 600 ]] || fail "rotate-key left the key file readable by others"
echo "ok: the documented drawbridge_cmd runs check-config and rotate-key with the service's settings"
