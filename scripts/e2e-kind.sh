#!/usr/bin/env bash
# End to end on a real Kubernetes: a kind cluster, the image built and loaded, the chart
# installed with a real helm, then a smoke run through kubectl against the real API server.
#
# For machines with Docker, kind, helm and kubectl (CI here has none of them: the same chart
# is rendered and checked by tests/chart against the emulated API, and the end-to-end suite
# runs there too). The smoke checks what only a real cluster shows:
#   1. the pod starts from the image as the chart runs it (non-root, read-only root, probes on
#      kopf's /healthz) and becomes Ready;
#   2. the real API server's RBAC lets the ServiceAccount do what the operator does, and no
#      more (kubectl auth can-i);
#   3. a RollbackPolicy from examples/ is validated (status patch through RBAC);
#   4. a dry-run Rollback whose Secrets are missing stalls with "not found", not "forbidden":
#      the operator may read Secrets, and there are none (the providers are not reachable
#      from here, so a plan cannot be made);
#   5. /metrics answers through the metrics Service;
#   6. two replicas: both Ready, both in the peering object, one acting.
#
# Usage: scripts/e2e-kind.sh            (KEEP_CLUSTER=1 keeps the cluster afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-rollback-operator-e2e}
IMAGE=${IMAGE:-rollback-operator:e2e}
NS=${OPERATOR_NAMESPACE:-rollback-operator}
APPS=e2e-apps
RELEASE=rollback-operator
SA="system:serviceaccount:${NS}:${RELEASE}"
TIMEOUT=${TIMEOUT:-180s}

for tool in docker kind helm kubectl curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "e2e-kind needs $tool on PATH" >&2
    exit 2
  fi
done

log() { printf '\n== %s\n' "$*"; }
k() { kubectl --context "kind-${CLUSTER}" "$@"; }
fail() {
  echo "FAIL: $*" >&2
  k -n "$NS" get pods -o wide >&2 || true
  k -n "$NS" logs "deployment/${RELEASE}" --all-containers --tail=80 >&2 || true
  exit 1
}

cleanup() {
  local status=$?
  if [ -n "${PORT_FORWARD:-}" ]; then kill "$PORT_FORWARD" 2>/dev/null || true; fi
  if [ "${KEEP_CLUSTER:-0}" != 1 ] && [ -n "${CREATED:-}" ]; then
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT

log "kind cluster ${CLUSTER}"
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --wait 120s
  CREATED=1
fi

log "image ${IMAGE}"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "helm install (every namespace, peering on)"
helm --kube-context "kind-${CLUSTER}" upgrade --install "$RELEASE" charts/rollback-operator \
  --namespace "$NS" --create-namespace \
  --set image.repository="${IMAGE%%:*}" --set image.tag="${IMAGE##*:}" \
  --set image.pullPolicy=Never \
  --wait --timeout "$TIMEOUT"
k -n "$NS" rollout status "deployment/${RELEASE}" --timeout "$TIMEOUT" || fail "not Ready"

log "RBAC on the real API server"
allowed=(
  "list rollbacks.rollback.mindmate.app" "watch rollbackpolicies.rollback.mindmate.app"
  "create rollbacks.rollback.mindmate.app" "patch rollbacks.rollback.mindmate.app/status"
  "get secrets" "create configmaps" "patch configmaps" "create events"
  "list customresourcedefinitions.apiextensions.k8s.io"
  "patch clusterkopfpeerings.kopf.dev/rollback-operator"
)
denied=(
  "delete rollbacks.rollback.mindmate.app" "list secrets" "watch secrets"
  "update rollbacks.rollback.mindmate.app" "delete configmaps" "create pods"
  "patch clusterkopfpeerings.kopf.dev/someone-else"
)
for check in "${allowed[@]}"; do
  read -r -a words <<<"$check"
  k auth can-i "${words[@]}" --as "$SA" -n "$APPS" >/dev/null || fail "cannot: $check"
done
for check in "${denied[@]}"; do
  read -r -a words <<<"$check"
  if k auth can-i "${words[@]}" --as "$SA" -n "$APPS" >/dev/null 2>&1; then
    fail "can, but should not: $check"
  fi
done

log "a policy from examples/ is validated"
k create namespace "$APPS" --dry-run=client -o yaml | k apply -f -
k -n "$APPS" apply -f examples/policy.yaml
k -n "$APPS" wait --for=condition=Ready rollbackpolicy/mindmate --timeout=60s \
  || fail "the policy was not validated"

log "a dry-run Rollback without the Secrets stalls with 'not found', not 'forbidden'"
k -n "$APPS" apply -f - <<'EOF'
apiVersion: rollback.mindmate.app/v1alpha1
kind: Rollback
metadata:
  name: smoke-dry-run
spec:
  policyRef: {name: mindmate}
  mode: quick
  reason: e2e-kind smoke
  dryRun: true
EOF
k -n "$APPS" wait --for=condition=Stalled rollback/smoke-dry-run --timeout=60s \
  || fail "the rollback did not stall"
message=$(k -n "$APPS" get rollback/smoke-dry-run \
  -o jsonpath='{.status.conditions[?(@.type=="Stalled")].message}')
echo "Stalled: $message"
case "$message" in
  *"access denied"* | *forbidden* | *Forbidden*) fail "RBAC refused the Secret read" ;;
  *"not found"*) ;;
  *) fail "unexpected reason: $message" ;;
esac

log "/metrics through the metrics Service"
k -n "$NS" port-forward "service/${RELEASE}-metrics" 18090:8090 >/dev/null 2>&1 &
PORT_FORWARD=$!
for _ in $(seq 1 50); do
  if curl -fsS http://127.0.0.1:18090/metrics >/tmp/e2e-kind-metrics.txt 2>/dev/null; then break; fi
  sleep 0.2
done
grep -q '^# TYPE' /tmp/e2e-kind-metrics.txt || fail "/metrics did not answer"
kill "$PORT_FORWARD" 2>/dev/null || true
PORT_FORWARD=

log "two replicas with kopf peering"
helm --kube-context "kind-${CLUSTER}" upgrade "$RELEASE" charts/rollback-operator \
  --namespace "$NS" --reuse-values --set replicas=2 --wait --timeout "$TIMEOUT"
k -n "$NS" rollout status "deployment/${RELEASE}" --timeout "$TIMEOUT" || fail "2 replicas"
peers=0
for _ in $(seq 1 30); do
  peers=$(k get clusterkopfpeering rollback-operator -o json \
    | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("status") or {}))')
  [ "$peers" -ge 2 ] && break
  sleep 2
done
[ "$peers" -ge 2 ] || fail "the peering object lists $peers replica(s), want 2"

log "e2e-kind passed"
