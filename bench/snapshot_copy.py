"""Benchmark: a restore point's copy of an unversioned bucket against a one-at-a-time loop.

On a moto S3 server (a separate process): put N objects in a bucket without versioning, then
(a) take a restore point's storage moment with the adapter (`S3Storage.snapshot`: the versioning
check, the streamed listing and bounded parallel server-side copies to the dated folder), and
(b) the obvious loop: list the bucket, then copy each object to a folder, one request at a time.
Both end with the same objects copied. `--latency-ms` adds a simulated network round trip to
every request of both, as to a real S3 region (moto on loopback answers in about 2 ms).
Target (issue 16): adapter >= 5x faster than the loop.

    python -m bench.snapshot_copy [--objects 5000] [--concurrency 16] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from mypy_boto3_s3 import S3Client
from mypy_boto3_s3.type_defs import CopySourceTypeDef

from bench.storage_restore import _client, write_all
from rollback_operator.api.targets import BackupLocation, S3Target
from rollback_operator.providers.storage import s3 as storage
from sandbox.services.s3 import S3Server
from tests.db import world


def naive_copy(s3: S3Client, bucket: str, backups: str, folder: str) -> int:
    """List the bucket and copy each object to `folder`, one request at a time."""
    copied = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            source: CopySourceTypeDef = {"Bucket": bucket, "Key": item["Key"]}
            s3.copy_object(Bucket=backups, Key=folder + item["Key"], CopySource=source)
            copied += 1
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated round trip")
    args = parser.parse_args()
    server = S3Server().start()
    try:
        setup, s3 = _client(server.url, 0.0), _client(server.url, args.latency_ms / 1000)
        _run(setup, s3, args.objects, args.concurrency, args.latency_ms)
    finally:
        server.stop()


def _run(setup: S3Client, s3: S3Client, objects: int, concurrency: int, latency: float) -> None:
    files = world.make_bucket(setup, versioned=False)
    backups = world.make_bucket(setup, versioned=False)
    keys = [f"uploads/{n // 100:03d}/file-{n:05d}.bin" for n in range(objects)]
    write_all(setup, files, keys, b"v1")
    print(f"{objects} objects of 2 KiB, unversioned bucket, {latency:.0f} ms per request")
    target = S3Target(bucket=files, backups=BackupLocation(bucket=backups, prefix="storage/"))
    adapter = storage.S3Storage(target, s3, storage.Options(concurrency=concurrency))
    started = time.perf_counter()
    point = asyncio.run(adapter.snapshot(datetime.now(UTC), "bench", "bench/restore-point/storage"))
    fast = time.perf_counter() - started
    print(f"adapter snapshot: {point.objects} copied to {point.copy} in {fast:.2f}s "
          f"({concurrency} in flight)")  # fmt: skip
    started = time.perf_counter()
    copied = naive_copy(s3, files, backups, "naive/")
    slow = time.perf_counter() - started
    print(f"one-at-a-time loop: {copied} copied in {slow:.2f}s")
    assert copied == point.objects == objects
    print(f"speed-up: {slow / fast:.1f}x  (target >= 5x)")


if __name__ == "__main__":
    main()
