"""Reports and the deployment log in the backups bucket, against the real S3 server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mypy_boto3_s3 import S3Client

from rollback_operator.providers.objectstore.reports import LOG_KEY, S3ReportArchive
from tests.db import world

CREATED = datetime(2024, 1, 1, 12, tzinfo=UTC)
FIRST_UID, SECOND_UID = (
    "f1e2d3c4-0000-4000-8000-000000000001",
    "0a1b2c3d-0000-4000-8000-000000000002",
)


async def test_a_report_is_stored_under_its_name_by_creation_time_and_uid(
    s3: S3Client, backups: str
) -> None:
    where = await S3ReportArchive(s3, backups).store(
        "prod", "rb-1", "# Report\n", uid=FIRST_UID, created=CREATED
    )
    assert where == f"s3://{backups}/reports/prod/rb-1/20240101T120000Z-f1e2d3c4.md"
    assert (
        world.read(s3, backups, "reports/prod/rb-1/20240101T120000Z-f1e2d3c4.md") == b"# Report\n"
    )


async def test_a_name_applied_again_keeps_the_first_runs_report(s3: S3Client, backups: str) -> None:
    """A Rollback deleted and applied again under its name is another run: its report is
    written beside the first one's, which stays as it was."""
    archive = S3ReportArchive(s3, backups)
    first = await archive.store("prod", "rb-1", "# first\n", uid=FIRST_UID, created=CREATED)
    again = await archive.store(
        "prod", "rb-1", "# again\n", uid=SECOND_UID, created=CREATED + timedelta(hours=1)
    )
    assert first != again
    listed = s3.list_objects_v2(Bucket=backups, Prefix="reports/prod/rb-1/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert [f"s3://{backups}/{key}" for key in keys] == [first, again]  # listed oldest first
    assert [world.read(s3, backups, key) for key in keys] == [b"# first\n", b"# again\n"]


async def test_deployment_log_gets_one_line_per_rollback_even_when_redone(
    s3: S3Client, backups: str
) -> None:
    archive = S3ReportArchive(s3, backups)
    assert await archive.log("t1 - Rollback to v1 - Reason: a - prod/rb-1", " - prod/rb-1")
    assert not await archive.log("t2 - Rollback to v1 - Reason: a - prod/rb-1", " - prod/rb-1")
    assert await archive.log("t3 - Rollback to v2 - Reason: b - prod/rb-2", " - prod/rb-2")
    log = (world.read(s3, backups, LOG_KEY) or b"").decode().splitlines()
    assert log == [
        "t1 - Rollback to v1 - Reason: a - prod/rb-1",
        "t3 - Rollback to v2 - Reason: b - prod/rb-2",
    ]
