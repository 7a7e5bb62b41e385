"""Adapters to the world outside Kubernetes: one Protocol per kind, one module per service.

`base` holds the Protocols the steps call and `errors` the error classes the engine maps to
retries or failures. Concrete adapters are named only by the composition root (`app`).
"""
