# Helpers shared by the scripts in scripts/dev/; source it from the
# repository root: source scripts/dev/lib.sh

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# require_package COMMAND PACKAGE WHAT: installs Debian's PACKAGE when
# COMMAND is missing. A user other than root cannot: then the calling script
# skips with one line saying what WHAT needs, and exits 0 — unless CI=true,
# where the check is required and the install is attempted.
require_package() {
    local command=$1 package=$2 what=$3
    command -v "$command" >/dev/null && return 0
    if [[ $(id -u) -ne 0 && "${CI:-}" != "true" ]]; then
        echo "skipped: $what needs $command (apt-get install $package, as root); required under CI=true" >&2
        exit 0
    fi
    echo "installing $package (Debian package)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}

# with_scratch: makes a scratch directory, $work; when the script exits,
# every process whose id was added to $pids is stopped and $work removed.
with_scratch() {
    work=$(mktemp -d)
    pids=()
    trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; if declare -F stop_postgres >/dev/null; then stop_postgres; fi; rm -rf "$work"' EXIT
}
