#!/usr/bin/env bash
# The real Kubernetes test bed's binaries: kube-apiserver, etcd and helm, built from their Go
# modules and cached outside the checkout; prints the bin directory as its last stdout line.
#
# Why: the tests in tests/apiserver run a real API server (RBAC, admission, CRD structural
# checks) and the chart tests a real helm; none of them can be installed here as a binary, so
# they are compiled with the ordinary Go toolchain from the module proxy. The versions are
# pinned in one place, tools/kube/ (one Go module per binary: go.mod, verified by go.sum;
# tools/kube/pin.sh re-pins them). The binaries go to
#   ${ROLLBACK_KUBE_CACHE:-~/.cache/rollback-operator/kube}/<kube>-<etcd>-<helm>-<hash>/bin/
# where <hash> covers tools/kube/*/go.mod and the etcd main, so a fresh clone on the same
# machine reuses them and a re-pin builds anew. Concurrent runs wait for each other (flock).
#
# Usage: scripts/kube-env.sh          # build or reuse; stdout: the bin dir; stderr: the timing
#
# Measured on the 2-core machine: see scripts/kube-env.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin" GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
TOOLS=$PWD/tools/kube
started=$(date +%s.%N)

required() {  # module-dir module: the version go.mod requires (or the replace target's)
  awk -v m="$2" '($1 == m && $2 ~ /^v/) {print $2} ($1 == "require" && $2 == m) {print $3}' \
    "$TOOLS/$1/go.mod" | head -1
}

elapsed() {
  awk -v start="$started" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - start }'
}

kube=$(required apiserver k8s.io/kubernetes)
etcd=$(required etcd go.etcd.io/etcd/server/v3)
helm=$(required helm helm.sh/helm/v3)
helm_client_go=$(required helm k8s.io/client-go)
inputs=$(cat "$TOOLS"/*/go.mod "$TOOLS/etcd/main.go" | sha256sum | cut -c1-8)
cache_root=${ROLLBACK_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollback-operator/kube}
bin="$cache_root/$kube-$etcd-$helm-$inputs/bin"
BINARIES=(kube-apiserver etcd helm)

complete() {
  local name
  for name in "${BINARIES[@]}"; do [ -x "$bin/$name" ] || return 1; done
}

kube_ldflags() {  # what Kubernetes' own build stamps, so /version tells the real version
  local minor=${kube#v1.}
  minor=${minor%%.*}
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- '-X %s.%s ' "$pkg" "gitVersion=$kube" "$pkg" gitMajor=1 "$pkg" "gitMinor=$minor" \
      "$pkg" gitTreeState=clean
  done
}

helm_ldflags() {  # as helm's Makefile: its version, and the Kubernetes version of its client
  local minor=${helm_client_go#v0.}
  minor=${minor%%.*}
  printf -- '-X helm.sh/helm/v3/internal/version.version=%s ' "$helm"
  printf -- '-X helm.sh/helm/v3/pkg/%s.k8sVersionMajor=1 ' lint/rules chartutil
  printf -- '-X helm.sh/helm/v3/pkg/%s.k8sVersionMinor=%s ' lint/rules "$minor" chartutil "$minor"
}

build() {  # module-dir package output ldflags
  echo "kube-env: go build $2 ($(elapsed)s so far)" >&2
  (cd "$TOOLS/$1" && go build -trimpath -ldflags="-s -w $4" -o "$3" "$2")
}

build_all() {  # into a temporary sibling first: an interrupted build leaves no half bin dir
  local staging="$bin.partial.$$"
  rm -rf "$staging"
  mkdir -p "$staging"
  trap 'rm -rf "$staging"' EXIT
  build apiserver k8s.io/kubernetes/cmd/kube-apiserver "$staging/kube-apiserver" "$(kube_ldflags)"
  build etcd . "$staging/etcd" ""
  build helm helm.sh/helm/v3/cmd/helm "$staging/helm" "$(helm_ldflags)"
  rm -rf "$bin"
  mv "$staging" "$bin"
  trap - EXIT
}

if ! complete; then
  command -v go >/dev/null || { echo "kube-env: no go toolchain (want /usr/local/go/bin/go)" >&2; exit 1; }
  mkdir -p "$cache_root"
  exec 9>"$cache_root/.lock"
  flock 9
  if ! complete; then
    echo "kube-env: building kube-apiserver $kube, etcd $etcd, helm $helm into $bin" >&2
    build_all
    echo "kube-env: built in $(elapsed)s" >&2
  fi
fi
echo "kube-env: kube-apiserver $kube, etcd $etcd, helm $helm ready in $(elapsed)s" >&2
echo "$bin"
