"""An S3 API server for the demo, tests and scripts: moto_server as its own process on a free port.

A separate process (not moto's in-process mocks) so the adapters talk real HTTP through boto3
with `endpoint_url` and path addressing, exactly as they do against MinIO, R2 or AWS, and so the
server's CPU does not share our GIL. moto keeps objects in memory: one server per test session.
`put`, `objects`, `versions` and `next_second` write and read a bucket in a few words.

    eval "$(python -m sandbox.services.s3 start)"   # exports S3_ENDPOINT_URL and AWS_*
    python -m sandbox.services.s3 stop               # reads ROLLBACK_TEST_MOTO_PID
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mypy_boto3_s3 import S3Client

from sandbox.services import ServiceError, free_port, stop_process, wait_until

ACCESS_KEY_ID = "testing-key-id"
SECRET_ACCESS_KEY = "testing-secret-key"  # moto accepts any credentials
REGION = "us-east-1"


def moto_binary() -> Path:
    """moto_server next to this interpreter, else on PATH; ServiceError when absent."""
    beside = Path(sys.executable).parent / "moto_server"
    if beside.exists():
        return beside
    found = shutil.which("moto_server")
    if found is None:
        raise ServiceError("moto_server is missing: pip install 'moto[server]'")
    return Path(found)


@dataclass
class S3Server:
    """One moto_server process; `start` it, use `url`, then `stop` it."""

    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        """The endpoint URL for boto3."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        """Start moto_server and wait until it answers HTTP."""
        binary = moto_binary()
        self.port = self.port or free_port()
        handle, name = tempfile.mkstemp(prefix="rollback-moto.", suffix=".log")
        self.log = Path(name)
        command = [str(binary), "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        os.close(handle)
        try:
            wait_until(self._answers, timeout=30, what="moto_server")
        except ServiceError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server this object started."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None
        if self.log is not None:
            self.log.unlink(missing_ok=True)
            self.log = None

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            output = self.log.read_text() if self.log else ""
            raise ServiceError(f"moto_server exited with {self.process.returncode}: {output}")
        try:
            with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False


def put(s3: S3Client, bucket: str, key: str, body: bytes, **extra: Any) -> None:
    """Write one object."""
    s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)


def versions(s3: S3Client, bucket: str) -> set[tuple[str, str]]:
    """Every (key, version id) of the bucket, delete markers included."""
    found: set[tuple[str, str]] = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            found.add((item["Key"], item["VersionId"]))
    return found


def objects(s3: S3Client, bucket: str) -> dict[str, bytes]:
    """Every live object's content."""
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def next_second() -> datetime:
    """A time after every write so far and before every write from now on.

    S3 keeps LastModified to the second, so wait for the next second to begin.
    """
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.01)
    return datetime.fromtimestamp(int(now) + 0.5, UTC)


def _exports(server: S3Server) -> str:
    assert server.process is not None
    values = {
        "S3_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "ROLLBACK_TEST_MOTO_PID": str(server.process.pid),
    }
    return "\n".join(f"export {name}='{value}'" for name, value in values.items())


def main(argv: list[str]) -> int:
    """`start` prints shell exports and leaves the server running; `stop [PID]` ends it."""
    if argv[:1] == ["start"]:
        server = S3Server().start()
        if server.log is not None:  # the detached server may keep its open log; drop the name
            server.log.unlink(missing_ok=True)
        print(_exports(server))
        return 0
    if argv[:1] == ["stop"]:
        pid = argv[1] if len(argv) > 1 else os.environ.get("ROLLBACK_TEST_MOTO_PID", "")
        if not pid.isdigit():
            print("usage: stop PID (or set ROLLBACK_TEST_MOTO_PID)", file=sys.stderr)
            return 2
        os.kill(int(pid), signal.SIGTERM)
        return 0
    print("usage: python -m sandbox.services.s3 start|stop [PID]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
