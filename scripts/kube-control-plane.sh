#!/usr/bin/env bash
# Builds the real Kubernetes control plane the end-to-end tests run against, kube-apiserver
# and etcd, from the Go modules pinned in tests/kube-control-plane/go.mod, into
# target/kube-control-plane/<release>/, and prints that directory. Nothing prebuilt is
# downloaded: the go command fetches module sources from the Go module proxy. A release
# already built is not built again, so only the first run on a machine pays for it.
set -euo pipefail
cd "$(dirname "$0")/.."
module=tests/kube-control-plane
release=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$module/go.mod")
out="$PWD/target/kube-control-plane/$release"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; then
  echo "$out"
  exit 0
fi
command -v go >/dev/null || { echo "Go is needed to build kube-apiserver and etcd" >&2; exit 1; }
mkdir -p "$out.partial"
major=${release#v}; major=${major%%.*}
minor=${release#v*.}; minor=${minor%%.*}
# The same variables Kubernetes' own build (hack/lib/version.sh) sets, so that /version
# reports the release it is.
commit=$( (go mod download -json "k8s.io/kubernetes@$release" 2>/dev/null || true) \
  | sed -n 's/.*"Hash": "\([0-9a-f]*\)".*/\1/p' | head -1)
vars=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  vars+=" -X $pkg.gitVersion=$release -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  vars+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  [ -z "$commit" ] || vars+=" -X $pkg.gitCommit=$commit"
done
cd "$module"
start=$SECONDS
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w$vars" -o "$out.partial/kube-apiserver" \
  k8s.io/kubernetes/cmd/kube-apiserver
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.partial/etcd" go.etcd.io/etcd/server/v3
rm -rf "$out" && mv "$out.partial" "$out"
echo "built kube-apiserver $release and etcd in $((SECONDS - start)) s" >&2
echo "$out"
