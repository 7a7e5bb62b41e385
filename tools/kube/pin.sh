#!/usr/bin/env bash
# Re-pins the Kubernetes test-bed binaries: rewrites the three go.mod/go.sum under tools/kube/.
#
# Why: k8s.io/kubernetes is not meant to be a dependency; its go.mod points every k8s.io/*
# staging module at ./staging/src/... and requires them at v0.0.0. Building it from the module
# proxy needs one `replace k8s.io/X => k8s.io/X v0.<minor>.<patch>` line per staging module,
# read here from that version's own go.mod, so an upgrade is one command:
#
#   tools/kube/pin.sh v1.37.2 v3.7.4 v3.22.1     # kube-apiserver, etcd, helm
#
# Then run scripts/kube-env.sh (it builds into a new cache directory) and commit tools/kube/.
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod PATH="$PATH:/usr/local/go/bin"

kube=${1:?kubernetes version, e.g. v1.37.2}
etcd=${2:?etcd version, e.g. v3.7.4}
helm=${3:?helm v3 version, e.g. v3.22.1}
go_version=$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1.0/')  # e.g. 1.26.0: any 1.26 patch builds

new_module() {  # dir module-path: a fresh go.mod with the local Go version
  rm -f "$1/go.mod" "$1/go.sum"
  (cd "$1" && go mod init "$2" >/dev/null 2>&1 && go mod edit -go="$go_version")
}

staging_replaces() {  # every `k8s.io/X => ./staging/...` of k8s.io/kubernetes@$kube, as -replace flags
  local gomod staging
  gomod=$(go mod download -json "k8s.io/kubernetes@$kube" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging="v0.${kube#v1.}"
  sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$gomod" \
    | while read -r module; do echo "-replace=$module=$module@$staging"; done
}

new_module apiserver rollback-operator.test/kube/apiserver
mapfile -t replaces < <(staging_replaces)
(cd apiserver && go mod edit "${replaces[@]}" && go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$kube" && go mod tidy)

new_module etcd rollback-operator.test/kube/etcd
(cd etcd && go get "go.etcd.io/etcd/server/v3@$etcd" && go mod tidy)

new_module helm rollback-operator.test/kube/helm
(cd helm && go get -tool "helm.sh/helm/v3/cmd/helm@$helm" && go mod tidy)
