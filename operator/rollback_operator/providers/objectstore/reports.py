"""Incident reports and the deployment log, kept in the backups bucket next to the dumps.

A ConfigMap dies with its Rollback; the runbook's "Rollback Documentation" wants a record that
outlives the cluster objects, so each report is copied to
`reports/<namespace>/<name>/<created>-<uid8>.md` (a Rollback deleted and applied again under its
name is another run, with a report of its own: `layout.report_key`) and a line is appended to
`reports/deployment.log`. S3 cannot append: the log is read, extended and written back; two
policies sharing a bucket and finishing in the same instant could lose a line (the reports
themselves cannot be lost: one key each).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rollback_operator.providers.errors import NotFoundError
from rollback_operator.providers.objectstore import layout, s3api

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LOG_KEY = layout.LOG_KEY


class S3ReportArchive:
    """The `ReportArchive` of one bucket."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3, self._bucket = s3, bucket

    async def store(
        self, namespace: str, name: str, markdown: str, *, uid: str, created: datetime
    ) -> str:
        key = layout.report_key(namespace, name, created, uid)
        await s3api.call(
            "store report", self._s3.put_object, Bucket=self._bucket, Key=key,
            Body=markdown.encode(), ContentType="text/markdown; charset=utf-8",
        )  # fmt: skip
        return f"s3://{self._bucket}/{key}"

    async def log(self, line: str, marker: str) -> bool:
        text = await self._read_log()
        if any(old.endswith(marker) for old in text.splitlines()):
            return False
        body = (text if not text or text.endswith("\n") else text + "\n") + line + "\n"
        await s3api.call(
            "append deployment log", self._s3.put_object, Bucket=self._bucket, Key=LOG_KEY,
            Body=body.encode(), ContentType="text/plain; charset=utf-8",
        )  # fmt: skip
        return True

    async def _read_log(self) -> str:
        try:
            found = await s3api.call(
                "read deployment log", self._s3.get_object, Bucket=self._bucket, Key=LOG_KEY
            )
        except NotFoundError:
            return ""
        data: bytes = await s3api.call("read deployment log", found["Body"].read)
        return data.decode()
