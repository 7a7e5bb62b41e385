"""Fixtures for the chart tests: an API server of the module's own, and each set of values
rendered once per session by the real helm (dry runs that this server validates)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.apiserver.server import KubeApiServer
from tests.chart import helm

# Every value the chart offers beyond the defaults, at once (the network policy apart).
KNOBS: dict[str, Any] = {
    "fullnameOverride": "rollbacks",
    "replicas": 2,
    "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
        },
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"team": "ops"}},
        },
    ],
    "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
    "extraEnvFrom": [{"configMapRef": {"name": "proxy-settings"}}],
    "extraArgs": ["--verbose"],
    "extraVolumes": [{"name": "ca", "configMap": {"name": "corporate-ca"}}],
    "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corporate", "readOnly": True}],
    "podSecurityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001},
    "securityContext": {"readOnlyRootFilesystem": False},
    "livenessProbe": {"periodSeconds": 30, "failureThreshold": 5},
    "readinessProbe": None,
    "startupProbe": {"httpGet": {"path": "/healthz", "port": "health"}, "failureThreshold": 30},
    "metrics": {
        "serviceMonitor": {
            "enabled": True,
            "relabelings": [
                {"action": "replace", "targetLabel": "cluster", "replacement": "prod-eu"}
            ],
            "metricRelabelings": [{"action": "labeldrop", "regex": "pod"}],
        }
    },
}
# The pod fenced by the NetworkPolicy, with allowed endpoints whose ports it must open.
FENCED: dict[str, Any] = {
    "allowedEndpoints": [
        "https://minio.storage.svc:9000/",
        "https://prometheus.corp",
        "http://127.0.0.1:9090",
    ],
    "networkPolicy": {
        "enabled": True,
        "apiServer": {"cidrs": ["10.96.0.1/32", "172.18.0.2/32"], "ports": [443, 6443]},
        "endpoints": {"cidrs": ["0.0.0.0/0"], "ports": [5432]},
        "extraEgress": [
            {
                "to": [{"podSelector": {"matchLabels": {"app": "postgres"}}}],
                "ports": [{"port": 5432, "protocol": "TCP"}],
            }
        ],
        "metricsFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
    },
}

# The value sets every render test runs over; the keys name them in test ids.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {
        "watchNamespaces": ["apps", "web"],
        "allowedEndpoints": ["https://prometheus.corp", "https://minio.storage.svc:9000/"],
    },
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
    "crds-elsewhere": {"crds": {"install": False, "keep": True}},
    "renamed-elsewhere": {"nameOverride": "rbo", "namespaceOverride": "ops-tools"},
    "every-knob": KNOBS,
    "fenced": FENCED,
}


@pytest.fixture(scope="session")
def render_server(apiserver: KubeApiServer) -> Iterator[KubeApiServer]:
    """A server of its own for dry runs: it knows every kind the chart renders, and no
    release owns anything on it (the suites' server has the CRDs, installed without Helm)."""
    with KubeApiServer(users=(), bin_dir=apiserver.bin_dir) as server:
        helm.know_the_kinds(server)
        yield server


@pytest.fixture(scope="session")
def renders(
    render_server: KubeApiServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, helm.Rendered]:
    """Every value set of VALUE_SETS, as `helm install --dry-run` renders it."""
    workdir = tmp_path_factory.mktemp("renders")
    return {
        name: helm.render(render_server, values, workdir / name)
        for name, values in VALUE_SETS.items()
    }
