#!/usr/bin/env bash
# Runs preflight against the in-repo fake Kubernetes API server loaded with a healthy cluster
# (3 real EKS nodes and tests/fixtures/cluster-healthy.yaml): a real run with no cluster at hand.
# Extra arguments go to preflight, e.g. ./scripts/demo.sh --tier 1 --output json
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p fake-kube -p preflight-job
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
./target/debug/fake-kube --nodes 3 --template tests/fixtures/k8s-nodelist-eks-real.json \
  --load tests/fixtures/cluster-healthy.yaml --kubeconfig "$work/kubeconfig" >"$work/server.out" &
server=$!
for _ in $(seq 100); do grep -q '^ready' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready' "$work/server.out" || { echo "fake-kube did not start" >&2; exit 1; }
[ $# -gt 0 ] || set -- --tier 1.5
status=0
./target/debug/preflight --kubeconfig "$work/kubeconfig" --values examples/values.yaml "$@" || status=$?
exit "$status"
