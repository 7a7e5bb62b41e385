"""The product's sandbox: `make demo` and everything it runs, outside the test suite.

The demo (`sandbox.demo`) is the operator's main job on an embedded default: an emulated
Kubernetes API (`sandbox.kube`), fakes of the SaaS APIs it drives (`sandbox.fakes`), real
PostgreSQL, S3 (moto), Prometheus and Redis servers (`sandbox.services`) and manifest builders
(`sandbox.manifests`). The tests and benchmarks use the same parts; nothing here imports the
tests (`sandbox.observers` is how the test suite's leak scan still sees what the sandbox makes).
"""
