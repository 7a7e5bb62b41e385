"""`kubectl rollback report NAME` still finds the report after the Rollback is deleted.

The real operator keeps the report of a deleted Rollback in a ConfigMap that nothing owns
(`NAME-report-<uid8>`, when no S3 archive holds it); the plugin, run as a user runs it (kubectl
finds it on PATH), reads that ConfigMap once the Rollback is gone, says on stderr which one it
read, and takes the newest when Rollbacks of the same name were applied and deleted twice.
With a backups bucket, each of those Rollbacks keeps a report of its own there
(`reports/<namespace>/<name>/<created>-<uid8>.md`): applying the name again overwrites nothing.
"""

from __future__ import annotations

import pytest
from mypy_boto3_s3 import S3Client

from sandbox import manifests
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server
from tests.db import world
from tests.e2e.bed import Bed, Manifest
from tests.e2e.test_deletion_e2e import ROLLBACKS, _wait_gone
from tests.e2e.test_plugin_e2e import kubectl_rollback

pytestmark = pytest.mark.e2e
THREE = {"history": ["dpl_older", "dpl_old", "dpl_new"], "live": "dpl_new", "serving": True}


def _run_and_delete(bed: Bed, reason: str) -> str:
    """Run rollback `gone` to its end, delete it, and return its uid."""
    uid: str = _run_and_delete_body(bed, reason)["metadata"]["uid"]
    return uid


def _run_and_delete_body(bed: Bed, reason: str) -> Manifest:
    """Run rollback `gone` to its end, delete it, and return it as it ended."""
    bed.apply(manifests.rollback("gone", targets=["frontend"], reason=reason))
    done = bed.wait_for("gone", {"Succeeded", "Failed", "PartiallyFailed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    bed.cluster.kubectl("delete", ROLLBACKS, "gone", "--wait=false")
    _wait_gone(bed, ROLLBACKS, "gone")
    # the garbage collector's part (no controller-manager runs beside the test API server):
    # the report ConfigMap the Rollback owned goes with it; the kept one, owned by nothing, stays
    bed.cluster.kubectl("delete", "configmap", "gone-report")
    return done


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
    assert f"reports/{bed.namespace}/never/<created>-<uid8>.md" in shown.stderr  # each run's
    assert shown.stdout == ""


def test_a_name_applied_again_keeps_the_first_runs_report_in_the_backups_bucket(
    bed: Bed, s3_server: S3Server, s3: S3Client
) -> None:
    """GitOps deletes and applies `gone` again: the first incident's report in the bucket, the
    record meant to outlive the cluster objects, is still there and still the first one's."""
    backups = _with_a_backups_bucket(bed, s3_server, s3)

    first = _run_and_delete_body(bed, "first outage")
    world.next_second()  # keys sort by creation time to the second (a tie: by uid)
    bed.apply(manifests.rollback("gone", targets=["frontend"], reason="second outage"))
    second = bed.wait_for("gone", {"Succeeded", "Failed", "PartiallyFailed"})

    assert second["status"]["phase"] == "Succeeded", second["status"]
    first_ref, second_ref = (b["status"]["reportRef"]["s3Key"] for b in (first, second))
    first_report = (world.read(s3, backups, _key(first_ref, backups)) or b"").decode()
    assert "first outage" in first_report
    assert "second outage" not in first_report
    second_report = (world.read(s3, backups, _key(second_ref, backups)) or b"").decode()
    assert "second outage" in second_report
    folder = f"reports/{bed.namespace}/gone/"
    archived = sorted(k for k in world.objects(s3, backups) if k.startswith(folder))
    assert archived == [_key(first_ref, backups), _key(second_ref, backups)]  # oldest first
    for body, ref in ((first, first_ref), (second, second_ref)):
        assert ref.endswith(f"-{body['metadata']['uid'][:8]}.md"), ref
    log = (world.read(s3, backups, "reports/deployment.log") or b"").decode().splitlines()
    assert [line.rsplit(" - ", 1)[-1] for line in log] == [first_ref, second_ref]
    kept = bed.get("configmap", "gone-report")  # the second run's own, owned by it alone
    assert [o["uid"] for o in kept["metadata"]["ownerReferences"]] == [second["metadata"]["uid"]]
    assert "second outage" in kept["data"]["report.md"]


def test_a_name_applied_again_before_the_old_report_configmap_goes_archives_its_report(
    bed: Bed, s3_server: S3Server, s3: S3Client
) -> None:
    """The earlier Rollback's `gone-report` is still there (the garbage collector has not come
    yet, or the Rollback was deleted with `--cascade=orphan`): the new run leaves it as it is,
    and its own report still reaches the bucket and both deployment logs; the step fails
    saying which ConfigMap it could not write and where the report is."""
    backups = _with_a_backups_bucket(bed, s3_server, s3)
    bed.apply(manifests.rollback("gone", targets=["frontend"], reason="first outage"))
    first = bed.wait_for("gone", {"Succeeded", "Failed", "PartiallyFailed"})
    bed.cluster.kubectl("delete", ROLLBACKS, "gone", "--wait=false")
    _wait_gone(bed, ROLLBACKS, "gone")  # and no garbage collector takes gone-report
    before = bed.get("configmap", "gone-report")

    bed.apply(manifests.rollback("gone", targets=["frontend"], reason="second outage"))
    second = bed.wait_for("gone", {"Succeeded", "Failed", "PartiallyFailed"})

    after = bed.get("configmap", "gone-report")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "first outage" in after["data"]["report.md"]
    second_key = world.report_key(second)
    assert "second outage" in (world.read(s3, backups, second_key) or b"").decode()
    step = next(s for s in second["status"]["steps"] if s["name"] == "report")
    assert step["state"] == "Failed"
    assert f"ConfigMap {bed.namespace}/gone-report" in step["message"]
    assert f"s3://{backups}/{second_key}" in step["message"]
    log = (world.read(s3, backups, "reports/deployment.log") or b"").decode().splitlines()
    ends = [f"s3://{backups}/{world.report_key(b)}" for b in (first, second)]
    assert [line.rsplit(" - ", 1)[-1] for line in log] == ends
    # a line each in the namespace's log too (keyed by the start, to the second, then the uid)
    lines = bed.get("configmap", "rollback-deployment-log")["data"].values()
    assert sorted(line.rsplit(" - ", 1)[-1] for line in lines) == sorted(ends)
    # the status names where the run's report is, and so does `kubectl rollback report`
    assert second["status"]["reportRef"] == {"s3Key": f"s3://{backups}/{second_key}"}
    shown = kubectl_rollback(bed.cluster.kubeconfig, "report", "gone")
    assert shown.returncode == 1
    assert f"s3://{backups}/{second_key}" in shown.stderr, shown.stderr


def _with_a_backups_bucket(bed: Bed, s3_server: S3Server, s3: S3Client) -> str:
    """Start the operator with a policy whose database backups bucket archives the reports;
    returns the bucket."""
    backups = world.make_bucket(s3, versioned=False)
    bed.edit_world(frontend=THREE)
    bed.start(real=("database",))  # the real database adapter brings the real report archive
    bed.apply(manifests.secret("db", {"url": "postgresql://app:pw@127.0.0.1:9/app"}))
    bed.apply(manifests.secret("aws", {"access-key-id": ACCESS_KEY_ID,
                              "secret-access-key": SECRET_ACCESS_KEY}))  # fmt: skip
    bed.apply(manifests.policy(
        targets={"database": {"postgres": {"backups": {"bucket": backups, "prefix": "db/"}}}},
        objectStore={"endpointUrl": s3_server.url},
    ))  # fmt: skip
    return backups


def _key(location: str, bucket: str) -> str:
    """The object key of an `s3://bucket/key` location in `bucket`."""
    assert location.startswith(f"s3://{bucket}/"), location
    return location.removeprefix(f"s3://{bucket}/")
