#!/usr/bin/env bash
# The whole test suite: formatting, lints, the no-OpenSSL rule, and every test.
# Usage: scripts/test.sh   (from anywhere; CI runs exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "rustfmt"
cargo fmt --check

step "no OpenSSL anywhere in the dependency tree"
if cargo tree --target all -e normal,build,dev -i openssl-sys >/dev/null 2>&1; then
    echo "openssl-sys is in the dependency tree:" >&2
    cargo tree --target all -e normal,build,dev -i openssl-sys >&2
    exit 1
fi
echo "ok: openssl-sys is not a dependency"

step "clippy"
cargo clippy --all-targets --locked -- -D warnings

step "tests"
cargo test --locked --all-targets

step "README walk-through against the real binary"
bash scripts/readme-walkthrough.sh >/dev/null
echo "ok: README walk-through"
