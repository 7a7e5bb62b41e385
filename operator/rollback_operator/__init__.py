"""rollback-operator: a web app's rollback runbook as two Kubernetes resources.

`RollbackPolicy` says how to reach each layer of an app and which metrics guard it;
`Rollback` is one execution. See docs/architecture.md for the layers and how a rollback runs.
"""

__version__ = "0.1.0"
