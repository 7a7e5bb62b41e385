"""Reports and the deployment log in the backups bucket, against the real S3 server."""

from __future__ import annotations

from mypy_boto3_s3 import S3Client

from rollback_operator.providers.objectstore.reports import LOG_KEY, S3ReportArchive
from tests.db import world


async def test_report_is_stored_under_reports_namespace_name(s3: S3Client, backups: str) -> None:
    where = await S3ReportArchive(s3, backups).store("prod", "rb-1", "# Report\n")
    assert where == f"s3://{backups}/reports/prod/rb-1.md"
    assert world.read(s3, backups, "reports/prod/rb-1.md") == b"# Report\n"


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
