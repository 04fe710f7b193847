#!/usr/bin/env bash
# The whole test suite, from a fresh clone: checks formatting, installs what
# is missing (Debian packages, the Python venv with the real OpenStack
# clients), checks lints, then runs every test of the workspace.
#
# Tests use PostgreSQL at 127.0.0.1:5432 when it answers (set
# STRATUS_TEST_REQUIRE_POSTGRES=1 to fail when it does not) and RabbitMQ at
# 127.0.0.1:5672 likewise (STRATUS_TEST_REQUIRE_AMQP=1); .ci/run starts both.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# --- Fail fast on formatting (no build needed).
cargo fmt --all -- --check

# --- Debian packages the tests need, installed only when missing: python3
# with venv for the OpenStack clients, and whatever a crate lists in its
# `crates/<crate>/APT_PACKAGES` (one package a line, `#` starts a comment).
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need_pkgs=()
if ! command -v python3 >/dev/null 2>&1; then
    need_pkgs+=(python3 python3-venv)
elif ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    need_pkgs+=(python3-venv)
fi
for pkg in $(cat crates/*/APT_PACKAGES 2>/dev/null | sed 's/#.*//' | sort -u); do
    installed "$pkg" || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "test.sh: missing Debian packages: ${need_pkgs[*]} (install them as root)" >&2
        exit 1
    fi
    echo "test.sh: installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
fi

# --- Real guests (root only): libvirtd and virtlogd started without systemd,
# with libvirt's headers for the `libvirt` feature, which links the C
# library; stopped again when the tests end. Without root the suite builds
# without the feature and the real-guest tests are skipped.
features=()
cleanup=()
if [[ $(id -u) -eq 0 ]]; then
    scripts/libvirt-host.sh start
    cleanup+=("scripts/libvirt-host.sh stop >/dev/null 2>&1 || true")
    features=(--features stratus/libvirt)
else
    echo "test.sh: not root: the real-guest (libvirt) tests will be skipped"
fi
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT

# --- Fail fast on lints (builds need the packages above, for -sys crates).
cargo clippy --workspace --all-targets --locked "${features[@]}" -- -D warnings

# --- The real OpenStack clients for the end-to-end tests.
scripts/setup-venv.sh

# --- A single-node Ceph with radosgw on 127.0.0.1 for the S3 image store
# tests and the RBD volume tests (root only: it installs Debian's Ceph
# packages when missing). Stopped
# again when the tests end.
if [[ $(id -u) -eq 0 ]]; then
    ceph_dir="${TMPDIR:-/tmp}/stratus-ceph"
    scripts/ceph/start.sh "$ceph_dir" >/dev/null
    export STRATUS_TEST_S3="$ceph_dir/s3.env"
    export STRATUS_TEST_RBD="$ceph_dir/rbd.env"
    cleanup+=("scripts/ceph/stop.sh '$ceph_dir' >/dev/null 2>&1 || true")
else
    echo "test.sh: not root: the S3 store and RBD volume tests against Ceph will be skipped"
fi

# --- Every test.
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast "${features[@]}"
else
    cargo test --workspace --locked --no-fail-fast "${features[@]}"
fi
