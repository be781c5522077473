#!/usr/bin/env bash
# Fuzzes the code that reads input from strangers (redirect URIs,
# registration JSON, token form bodies, stored vault records) with cargo fuzz
# (libFuzzer), for a bounded time per target. Fails, naming the saved input,
# when a target crashes.
#
# Usage: scripts/dev/fuzz.sh [target ...]    (from anywhere; default: every target)
#   FUZZ_SECONDS=20       seconds per target
#   FUZZ_SANITIZER=none   or address: about half the speed, and it also checks
#                         the unsafe code of dependencies (Drawbridge has none)
# Reproduce a crash: cargo +nightly fuzz run --fuzz-dir tests/fuzz -s none TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO_FUZZ_VERSION=0.13.2
seconds=${FUZZ_SECONDS:-20}
sanitizer=${FUZZ_SANITIZER:-none}
fuzz_dir=tests/fuzz

# Longest input per target; each is a little past what the server accepts.
declare -A max_len=(
    [redirect_uri]=4200
    [registration_json]=16384
    [token_form]=4096
    [vault_open]=4096
)

if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
# libFuzzer instrumentation needs nightly rustc flags.
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
fuzz=(cargo +nightly fuzz)

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir "$fuzz_dir")
fi

# `cargo fuzz build` takes one target, or none for all of them.
one=()
if [[ ${#targets[@]} -eq 1 ]]; then
    one=("${targets[0]}")
fi
started=$(date +%s)
"${fuzz[@]}" build --fuzz-dir "$fuzz_dir" -s "$sanitizer" "${one[@]}"
echo "fuzz targets built in $(($(date +%s) - started)) s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
crashed=0
for target in "${targets[@]}"; do
    corpus="$scratch/corpus/$target"
    log="$scratch/$target.log"
    mkdir -p "$corpus"
    if [[ -d "$fuzz_dir/seeds/$target" ]]; then
        cp "$fuzz_dir/seeds/$target"/* "$corpus"/
    fi
    if "${fuzz[@]}" run --fuzz-dir "$fuzz_dir" -s "$sanitizer" "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len="${max_len[$target]:-4096}" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -n 1)
        took=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$log" | tail -n 1)
        echo "fuzz $target: ${runs:-?} runs in ${took:-?} s, no crash"
    else
        crashed=1
        tail -n 60 "$log" >&2
        saved=$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log" | tail -n 1)
        saved=${saved:-$fuzz_dir/artifacts/$target/}
        [[ $saved == /* ]] || saved="$PWD/$saved"
        echo "fuzz $target: CRASH, input saved at $saved" >&2
    fi
done
exit "$crashed"
