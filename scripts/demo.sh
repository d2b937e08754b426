#!/usr/bin/env bash
# Runs preflight against the in-repo fake Kubernetes API server loaded with a healthy cluster
# (3 real EKS nodes, the platform's CRDs from tests/fixtures/crds/ and
# tests/fixtures/cluster-healthy.yaml) and moto's server standing in for
# AWS (Route53's zone, IRSA's roles and an image in ECR, seeded by scripts/seed-aws.py): a
# real run with no cluster at hand.
# Extra arguments go to preflight, e.g. ./scripts/demo.sh --tier 1 --output json
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(./scripts/test-venv.sh)
cargo build -q -p fake-kube -p preflight-job
# Where cargo put them: ./target, or $CARGO_TARGET_DIR (or build.target-dir) when set.
bin=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
loads=()
for crd in tests/fixtures/crds/*.yaml; do loads+=(--load "$crd"); done
"$bin"/fake-kube --nodes 3 --template tests/fixtures/k8s-nodelist-eks-real.json \
  "${loads[@]}" --load tests/fixtures/cluster-healthy.yaml --kubeconfig "$work/kubeconfig" >"$work/server.out" &
pids+=($!)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^ready' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready' "$work/server.out" || { echo "fake-kube did not start" >&2; exit 1; }
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
"$venv/bin/python" scripts/seed-aws.py "http://127.0.0.1:$port"
# The tiers' images, as the platform lists them for a first sync: one per app of tiers 1 and
# 1.5 (the multi-arch image the seed pushed stands in for each).
image=123456789012.dkr.ecr.eu-west-1.amazonaws.com/goldenpath/kong:3.9.1
{
  printf 'checks:\n  image-architecture:\n    images:\n'
  for app in external-secrets cert-manager external-dns kong cluster-autoscaler prometheus alertmanager grafana-sqlite; do
    printf '    - {app: %s, image: "%s"}\n' "$app" "$image"
  done
} >"$work/preflight.yaml"
[ $# -gt 0 ] || set -- --tier 1.5
status=0
AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo \
  AWS_REGION=eu-west-1 AWS_EC2_METADATA_DISABLED=true \
  "$bin"/preflight --kubeconfig "$work/kubeconfig" --values examples/values.yaml \
  --config "$work/preflight.yaml" "$@" || status=$?
exit "$status"
