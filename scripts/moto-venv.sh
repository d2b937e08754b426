#!/usr/bin/env bash
# Makes sure moto's server (PyPI), which stands in for the AWS APIs in the tests and the demo,
# is installed in a virtualenv of our own: target/test-venv. Prints the virtualenv's path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/test-venv
if [ ! -x "$venv/bin/moto_server" ]; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "python3-venv is missing: install it (apt-get install python3-venv)" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]>=5,<6" >&2
fi
echo "$venv"
