"""kopf's peering resources, for tests that run several operator replicas.

kopf keeps replicas from acting together through a peering object: every replica writes a
keep-alive with its priority into the object's status, and pauses while it sees a live peer of
higher priority (or of the same priority: then every replica pauses). kopf does not install the
CRDs nor create the object; the chart must, and so must these tests, from the chart's own copy
of kopf's `peering.yaml` (API group `kopf.dev`). Each bed's operators peer in its namespace.
"""

from __future__ import annotations

import json
import time
from typing import Any

import yaml

from tests.apiserver.server import REPO_ROOT
from tests.e2e.bed import Bed

PEERING = "rollback-operator"  # Settings.peering_name's default
GROUP, VERSION = "kopf.dev", "v1"
RESOURCE = {
    "KopfPeering": "kopfpeerings.kopf.dev",
    "ClusterKopfPeering": "clusterkopfpeerings.kopf.dev",
}


# The chart's copy of kopf's peering CRDs: what the tests install is what users install.
PEERING_CRDS: list[dict[str, Any]] = list(
    yaml.safe_load_all((REPO_ROOT / "charts/rollback-operator/crds/kopf-peering.yml").read_text())
)


def peering_object(namespace: str, name: str = PEERING) -> dict[str, Any]:
    """The peering object of operators that watch `namespace`."""
    metadata = {"name": name, "namespace": namespace}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KopfPeering", "metadata": metadata}


def install(bed: Bed, name: str = PEERING) -> None:
    """Register both peering CRDs (once per API server) and create the bed's peering object."""
    for crd in PEERING_CRDS:
        bed.apply(crd)
    bed.cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s",
                        *(f"crd/{crd['metadata']['name']}" for crd in PEERING_CRDS))  # fmt: skip
    bed.apply(peering_object(bed.namespace, name))


def peers(bed: Bed, name: str = PEERING) -> dict[str, Any]:
    """The keep-alives in the bed's peering object: {identity: {priority, lifetime, lastseen}}."""
    args = ["get", RESOURCE["KopfPeering"], name, "-o", "json"]
    body = json.loads(bed.cluster.kubectl(*args).stdout)
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
