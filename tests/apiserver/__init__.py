"""A real Kubernetes API server (kube-apiserver on etcd) for tests, and the proofs that it works.

Why this package exists: the emulator `make demo` embeds (`sandbox/kube`) cannot enforce what a
real cluster enforces (structural CRD schemas and CEL rules, RBAC, ServiceAccount tokens,
admission policies), so every suite that runs the operator runs here. The real binaries, built
from their Go modules by `scripts/kube-env.sh`, run on loopback: `server` starts and stops
them, `pki` makes their keys, `audit` reads their audit log (open watches, a ServiceAccount's
calls), `namespace` gives each test a namespace of its own, `fixtures` shares one server per
test run.
"""
