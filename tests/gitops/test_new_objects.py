"""A Rollback, policy or restore point nobody has handled yet is InProgress, never Current.

kstatus calls an object without status Current, so Flux's `wait` (and `kubectl wait` on
kstatus) would pass a Rollback the operator has not even seen. The CRDs default
status.observedGeneration to 0: the API server serves a new object as generation 1 observed
at 0, which kstatus reads as InProgress until the operator's first status write. Judged on
objects created on the real API server, with Flux's kstatus and the Argo CD health checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver.server import KubeApiServer
from tests.gitops import lua, samples
from tests.gitops.conftest import compute

NEW = {
    "Rollback": samples.ROLLBACK_SPEC,
    "RollbackPolicy": samples.policy_spec(),
    "RestorePoint": samples.POINT_SPEC,
}
ARGO_HEALTH = {"Rollback": "Progressing", "RollbackPolicy": "Progressing",
               "RestorePoint": "Progressing"}  # fmt: skip


def _created(server: KubeApiServer, namespace: str, kind: str) -> dict[str, Any]:
    body: dict[str, object] = {"apiVersion": samples.API_VERSION, "kind": kind,
            "metadata": {"name": "new", "namespace": namespace}, "spec": NEW[kind]}  # fmt: skip
    server.apply(body)
    plural = {"Rollback": "rollbacks", "RollbackPolicy": "rollbackpolicies",
              "RestorePoint": "restorepoints"}[kind]  # fmt: skip
    got = server.kubectl(
        "get", f"{plural}.rollback.mindmate.app/new", "-n", namespace, "-o", "json"
    )
    created: dict[str, Any] = json.loads(got.stdout)
    return created


@pytest.mark.parametrize("kind", list(NEW))
def test_a_new_object_is_in_progress_until_the_operator_writes_its_status(
    apiserver_with_crds: KubeApiServer, apiserver_namespace: str, kstatus: Path, kind: str
) -> None:
    created = _created(apiserver_with_crds, apiserver_namespace, kind)
    assert created["status"]["observedGeneration"] == 0
    (result,) = compute(kstatus, [created])
    assert result["status"] == "InProgress", result
    health = lua.run((samples.GROUP_DIR / kind / "health.lua").read_text(), created)
    assert health["status"] == ARGO_HEALTH[kind]
