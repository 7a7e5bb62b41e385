"""The runbook's deployment log ("Update Deployment Log") without a backups bucket: the real
operator adds each rollback's line (as the report step writes it) to the namespace's ConfigMap
`rollback-deployment-log`, and never writes a ConfigMap of that name that is not its log."""

from __future__ import annotations

import re

import pytest

from sandbox import manifests
from tests.e2e.bed import Bed, Manifest

pytestmark = pytest.mark.e2e
LOG = "rollback-deployment-log"
MARK = "rollback.mindmate.app/deployment-log"
# The runbook's `echo "$(date) - Rollback to v1.0.0 - Reason: High error rates"`, with the
# outcome and the rollback's name after it.
LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC - Rollback to v1\.0\.0 - Reason: High error rates - "
    r"(?P<outcome>\w+) - (?P<ns>[a-z0-9-]+)/(?P<name>rb-\d)$"
)


def _policy_without_a_bucket() -> Manifest:
    body = manifests.policy(namespace="default")
    body["spec"]["targets"] = {k: body["spec"]["targets"][k] for k in ("frontend", "backend")}
    body["spec"].pop("objectStore", None)
    return body


def _run(bed: Bed, name: str) -> Manifest:
    bed.apply(manifests.rollback(name, namespace="default", version="v1.0.0"))
    return bed.wait_for(name, {"Succeeded", "Failed", "PartiallyFailed"})


def _report_step(body: Manifest) -> Manifest:
    step: Manifest = next(s for s in body["status"]["steps"] if s["name"] == "report")
    return step


def test_each_rollback_adds_its_line_to_the_namespaces_log_without_a_bucket(bed: Bed) -> None:
    bed.edit_world(  # three releases each: two rollbacks in a row have somewhere to go
        frontend={"history": ["dpl_a", "dpl_old", "dpl_new"], "live": "dpl_new", "serving": True},
        backend={"history": ["d-a", "d-old", "d-new"], "live": "d-new", "serving": True},
    )
    bed.start()
    bed.apply(_policy_without_a_bucket())

    first, second = _run(bed, "rb-1"), _run(bed, "rb-2")

    assert first["status"]["phase"] == second["status"]["phase"] == "Succeeded"
    log = bed.get("configmap", LOG)
    assert log["metadata"]["annotations"][MARK] == "true"
    assert "ownerReferences" not in log["metadata"]  # deleting a policy keeps the record
    lines = list(log["data"].values())  # the API server sorts keys: time, then name
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [(m["outcome"], m["ns"], m["name"]) for m in matches if m] == [
        ("Succeeded", bed.namespace, "rb-1"), ("Succeeded", bed.namespace, "rb-2")
    ]  # fmt: skip
    assert f"deployment log line in ConfigMap {LOG}" in _report_step(first)["message"]


def test_a_configmap_of_that_name_that_is_not_the_log_is_left_alone(bed: Bed) -> None:
    theirs = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"notes": "ours, not yours"},
              "metadata": {"name": LOG, "namespace": "default"}}  # fmt: skip
    bed.apply(theirs)
    bed.start()
    bed.apply(_policy_without_a_bucket())

    body = _run(bed, "rb-1")

    assert body["status"]["phase"] == "Succeeded"  # the rollback's work is done all the same
    assert bed.get("configmap", LOG)["data"] == {"notes": "ours, not yours"}
    message = _report_step(body)["message"]
    assert "deployment log not written" in message
    assert MARK in message
