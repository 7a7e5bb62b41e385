"""A real Kubernetes API server (kube-apiserver on etcd) for tests, and the proofs that it works.

Why this package exists: the emulator in `tests/kube` cannot enforce what a real cluster
enforces (structural CRD schemas, RBAC, ServiceAccount tokens, admission policies). Here the
real binaries, built from their Go modules by `scripts/kube-env.sh`, run on loopback:
`server` starts and stops them, `pki` makes their keys, `fixtures` shares one per test run.
"""
