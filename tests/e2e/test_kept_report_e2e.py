"""`kubectl rollback report NAME` still finds the report after the Rollback is deleted.

The real operator keeps the report of a deleted Rollback in a ConfigMap that nothing owns
(`NAME-report-<uid8>`, when no S3 archive holds it); the plugin, run as a user runs it (kubectl
finds it on PATH), reads that ConfigMap once the Rollback is gone, says on stderr which one it
read, and takes the newest when Rollbacks of the same name were applied and deleted twice.
"""

from __future__ import annotations

import pytest

from sandbox import manifests
from tests.e2e.bed import Bed
from tests.e2e.test_deletion_e2e import ROLLBACKS, _wait_gone
from tests.e2e.test_plugin_e2e import kubectl_rollback

pytestmark = pytest.mark.e2e
THREE = {"history": ["dpl_older", "dpl_old", "dpl_new"], "live": "dpl_new", "serving": True}


def _run_and_delete(bed: Bed, reason: str) -> str:
    """Run rollback `gone` to its end, delete it, and return its uid."""
    bed.apply(manifests.rollback("gone", targets=["frontend"], reason=reason))
    done = bed.wait_for("gone", {"Succeeded", "Failed", "PartiallyFailed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    bed.cluster.kubectl("delete", ROLLBACKS, "gone", "--wait=false")
    _wait_gone(bed, ROLLBACKS, "gone")
    # the garbage collector's part (no controller-manager runs beside the test API server):
    # the report ConfigMap the Rollback owned goes with it; the kept one, owned by nothing, stays
    bed.cluster.kubectl("delete", "configmap", "gone-report")
    uid: str = done["metadata"]["uid"]
    return uid


def test_the_report_of_a_deleted_rollback_is_read_from_the_configmap_kept_of_it(
    bed: Bed,
) -> None:
    bed.edit_world(frontend=THREE)
    bed.start()
    bed.apply(manifests.policy())
    config = bed.cluster.kubeconfig

    first_uid = _run_and_delete(bed, "first outage")
    shown = kubectl_rollback(config, "report", "gone")
    assert shown.returncode == 0, shown.stderr
    assert f"# Rollback report: {bed.namespace}/gone" in shown.stdout
    assert "first outage" in shown.stdout
    assert f"ConfigMap gone-report-{first_uid[:8]}" in shown.stderr
    assert "is deleted" in shown.stderr

    second_uid = _run_and_delete(bed, "second outage")  # the same name, applied again
    shown = kubectl_rollback(config, "report", "gone")
    assert shown.returncode == 0, shown.stderr
    assert "second outage" in shown.stdout
    assert "first outage" not in shown.stdout
    assert f"ConfigMap gone-report-{second_uid[:8]}" in shown.stderr
    assert f"older reports of Rollbacks named gone: gone-report-{first_uid[:8]}" in shown.stderr


def test_a_report_of_a_rollback_that_never_was_is_a_clear_error(bed: Bed) -> None:
    shown = kubectl_rollback(bed.cluster.kubeconfig, "report", "never")
    assert shown.returncode == 1
    assert "rollback/never not found, and no report of it was kept" in shown.stderr
    assert shown.stdout == ""
