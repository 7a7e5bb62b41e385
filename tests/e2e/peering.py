"""kopf's peering resources, for tests that run several operator replicas.

kopf keeps replicas from acting together through a peering object: every replica writes a
keep-alive with its priority into the object's status, and pauses while it sees a live peer of
higher priority (or of the same priority: then every replica pauses). kopf does not install the
CRDs nor create the object; the chart must, and so must these tests. The CRDs are those of
kopf's own `peering.yaml` (API group `kopf.dev`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.e2e.bed import Bed

PEERING = "rollback-operator"  # Settings.peering_name's default
GROUP, VERSION = "kopf.dev", "v1"
RESOURCE = {
    "KopfPeering": "kopfpeerings.kopf.dev",
    "ClusterKopfPeering": "clusterkopfpeerings.kopf.dev",
}


def peering_crd(kind: str, scope: str) -> dict[str, Any]:
    """The CRD of `KopfPeering` (Namespaced) or `ClusterKopfPeering` (Cluster)."""
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "scope": scope,
            "group": GROUP,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


PEERING_CRDS = [
    peering_crd("ClusterKopfPeering", "Cluster"),
    peering_crd("KopfPeering", "Namespaced"),
]


def peering_object(name: str = PEERING, namespace: str | None = "default") -> dict[str, Any]:
    """The peering object for operators watching `namespace` (None: cluster-wide operators)."""
    kind = "KopfPeering" if namespace else "ClusterKopfPeering"
    metadata = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": metadata}


def install(bed: Bed, name: str = PEERING, namespace: str | None = "default") -> None:
    """Register both peering CRDs and create the peering object."""
    for crd in PEERING_CRDS:
        bed.apply(crd)
    bed.apply(peering_object(name, namespace))


def peers(bed: Bed, name: str = PEERING, namespace: str | None = "default") -> dict[str, Any]:
    """The keep-alives in the peering object: {identity: {priority, lifetime, lastseen}}."""
    kind = "KopfPeering" if namespace else "ClusterKopfPeering"
    args = ["get", RESOURCE[kind], name, "-o", "json"]
    body = json.loads(bed.cluster.kubectl(*args, *(["-n", namespace] if namespace else [])).stdout)
    found: dict[str, Any] = body.get("status") or {}
    return found


def wait_for_log(bed: Bed, identity: str, text: str, timeout: float = 60.0) -> None:
    """Poll the replica's log until `text` appears in it."""
    deadline = time.monotonic() + timeout
    log = bed.replica_log(identity)
    while text not in (log.read_text() if log.exists() else ""):
        if time.monotonic() > deadline:
            raise AssertionError(f"{identity} never logged {text!r}:\n{bed.logs()[-4000:]}")
        time.sleep(0.05)


def wait_for_peers(bed: Bed, identities: set[str], timeout: float = 60.0) -> None:
    """Poll the peering object until exactly `identities` keep it alive."""
    deadline = time.monotonic() + timeout
    while set(peers(bed)) != identities:
        if time.monotonic() > deadline:
            raise AssertionError(f"peers {peers(bed)}, not {identities}:\n{bed.logs()[-4000:]}")
        time.sleep(0.05)
