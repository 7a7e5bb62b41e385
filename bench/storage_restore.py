"""Benchmark: a point-in-time restore of 5,000 objects against a one-at-a-time copy loop.

On a moto S3 server (a separate process): put N objects, wait for the next second (S3 keeps
time to the second), overwrite all of them, then (a) restore the bucket as of the moment between
with the adapter (its plan-time checks, the streamed listing and bounded parallel copies all
included), and (b) overwrite them again and restore with the obvious loop: list the versions,
then copy each key's old version back, one request at a time. Both end with identical contents.
`--latency-ms` adds a simulated network round trip to every request of both restores, as to a
real S3 region (moto on loopback answers in about 2 ms, so there parallel copies are bound by
moto's single process, not by waiting). Target (issue 4): adapter >= 5x faster than the loop.

    python -m bench.storage_restore [--objects 5000] [--concurrency 16] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from mypy_boto3_s3 import S3Client

from rollback_operator.api.targets import ObjectStore, S3Target
from rollback_operator.providers.objectstore import s3api
from rollback_operator.providers.storage import s3 as storage
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server
from tests.db import world


def _client(endpoint: str, latency: float) -> S3Client:
    store = ObjectStore(region="us-east-1", endpoint_url=endpoint)
    s3 = s3api.client(store, s3api.Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY))
    if latency:  # a network round trip, as to a real S3 region: each request waits this long
        s3.meta.events.register("before-send.s3", lambda **_: time.sleep(latency))
    return s3


def write_all(s3: S3Client, bucket: str, keys: list[str], tag: bytes) -> None:
    """Write every key (2 KiB each) with 16 threads."""
    body = tag * (2048 // len(tag))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: world.put(s3, bucket, key, body + key.encode()), keys))


def naive_restore(s3: S3Client, bucket: str, as_of: datetime) -> tuple[int, float]:
    """List versions, pick each key's version at `as_of`, copy it back: one request at a time.

    Returns the number of copies and the seconds the listing took.
    """
    started = time.perf_counter()
    chosen: dict[str, tuple[datetime, str]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []):
            when, key = item["LastModified"], item["Key"]
            if when <= as_of and (key not in chosen or when > chosen[key][0]):
                chosen[key] = (when, item["VersionId"])
    listed = time.perf_counter() - started
    for key, (_, version) in chosen.items():
        source = {"Bucket": bucket, "Key": key, "VersionId": version}
        s3.copy_object(Bucket=bucket, Key=key, CopySource=source)  # type: ignore[arg-type]
    return len(chosen), listed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated round trip")
    args = parser.parse_args()
    server = S3Server().start()
    try:
        setup = _client(server.url, 0)
        _run(setup, _client(server.url, args.latency_ms / 1000), args.objects, args.concurrency)
    finally:
        server.stop()


def _run(setup: S3Client, s3: S3Client, count: int, concurrency: int) -> None:
    """`setup` writes the world without delay; `s3` (maybe with latency) restores it."""
    bucket = world.make_bucket(setup, versioned=True)
    keys = [f"files/{n:05d}.bin" for n in range(count)]
    write_all(setup, bucket, keys, b"old!")
    as_of = world.next_second()
    write_all(setup, bucket, keys, b"new!")
    adapter = storage.S3Storage(
        S3Target(bucket=bucket), s3, storage.Options(concurrency=concurrency)
    )

    started = time.perf_counter()
    plan = asyncio.run(adapter.plan(as_of))
    listing = time.perf_counter() - started
    started = time.perf_counter()
    result = asyncio.run(adapter.restore(as_of, "bench/restore-storage/storage"))
    fast = time.perf_counter() - started
    restored = world.objects(setup, bucket)
    print(f"adapter plan (listing, diff): {listing:.2f}s, {plan.objects_to_restore} to restore")
    print(f"adapter restore: {fast:.2f}s ({count / fast:.0f} objects/s) = listing + "
          f"{fast - listing:.2f}s of writes: {result.message}")  # fmt: skip

    write_all(setup, bucket, keys, b"new!")
    started = time.perf_counter()
    copied, listed = naive_restore(s3, bucket, as_of)
    slow = time.perf_counter() - started
    print(f"one-at-a-time loop: {slow:.2f}s ({copied / slow:.0f} objects/s) = listing "
          f"{listed:.2f}s + {slow - listed:.2f}s of writes")  # fmt: skip

    assert world.objects(setup, bucket) == restored, "both restores must end in the same state"
    print(f"speed-up, whole restore: {slow / fast:.1f}x  (target >= 5x)")
    print(f"speed-up, writes only: {(slow - listed) / (fast - listing):.1f}x")


if __name__ == "__main__":
    main()
