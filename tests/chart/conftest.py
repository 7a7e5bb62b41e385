"""Fixtures for the chart tests: each set of values rendered once per session by Helm."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart import helm

# The value sets every render test runs over; the keys name them in test ids.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"watchNamespaces": ["apps", "web"]},
    "two-replicas": {"replicas": 2},
    "service-monitor": {
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}
    },
    "json-logs": {"logFormat": "json", "verbose": True},
    "standalone-no-metrics": {"peering": {"enabled": False}, "metrics": {"enabled": False}},
    "pinned-and-existing-account": {
        "image": {
            "repository": "registry.example/rollback-operator",
            "digest": "sha256:" + "a" * 64,
        },
        "serviceAccount": {"create": False, "name": "rollback"},
        "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops"}],
    },
}


@pytest.fixture(scope="session")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, helm.Rendered]:
    """Every value set of VALUE_SETS, installed by Helm into its own emulated cluster."""
    return helm.render_many(tmp_path_factory.mktemp("renders"), VALUE_SETS)
