"""Benchmark: a restore point's database dump streamed to S3 against raw `pg_dump -Fc` to disk.

Builds a database of random rows (an indexed table, as `bench.db_restore` does), then takes,
alternating: (a) `pg_dump -Fc` of it to a local file, as pg_dump does by default (the file
synced to disk at the end) and with `--no-sync` (the stricter baseline: a restore point's
upload is durable once S3 answers, no local sync), and to /dev/null (pg_dump's own cost, no
disk at all: what is left is the upload's), (b) the adapter's `dump_point` (the
server check, pg_dump streamed to a moto S3 server in parts, the upload verified), run in a
child process so its peak RSS is the adapter's alone (pg_dump's own memory is not the
operator's). Each point's dump is deleted again before the next round.
Targets (issue 16): adapter time <= 1.1 x pg_dump to disk; adapter peak RSS <= 150 MB.

    python -m bench.restore_point [--rows 6000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.db_restore import _client, _socket, tuned_servers
from rollback_operator.providers.postgres import database as postgres
from sandbox.services.postgres import PG_BIN, PostgresServer
from tests.db import world

BUCKET = "bench-backups"


def build_database(server: PostgresServer, rows: int) -> int:
    """A database `source` of random rows with an index; its size in bytes."""
    server.psql("postgres", "CREATE DATABASE source")
    server.psql(
        "source",
        "CREATE TABLE blobs (id bigint PRIMARY KEY, account int, note text, payload bytea,"
        " created timestamptz);"
        f" INSERT INTO blobs SELECT g, (random() * 100000)::int,"
        " md5(random()::text) || md5(random()::text),"
        " decode(md5(random()::text) || md5(random()::text), 'hex'),"
        f" now() - random() * interval '365 days' FROM generate_series(1, {rows}) g;"
        " CREATE INDEX blobs_account ON blobs (account); VACUUM ANALYZE blobs;",
    )
    return int(server.psql("source", "SELECT pg_database_size('source')").strip())


def raw_dump(server: PostgresServer, path: Path, *flags: str) -> float:
    """Seconds of `pg_dump -Fc` of the database to a local file (by default pg_dump syncs the
    file to disk at the end; `--no-sync` leaves that out)."""
    command = [*_socket(server, str(PG_BIN / "pg_dump")), "-Fc", *flags, "-f", str(path)]
    command += ["-d", "source"]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def adapter_dump(url: str, endpoint: str, point: str) -> dict[str, float]:
    """Seconds and peak RSS (MB) of the adapter's dump_point, in a child process."""
    child = [sys.executable, "-m", "bench.restore_point", "--child", url, endpoint, point]
    done = subprocess.run(child, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def child(url: str, endpoint: str, point: str) -> None:
    """Take one restore point dump, print its time, size and this process's peak RSS; then
    delete it (moto keeps objects in memory)."""
    s3 = _client(endpoint)
    options = postgres.Options(bin_dir=str(PG_BIN))
    adapter = postgres.PostgresDatabase(world.pg_target(BUCKET), url, s3, options)
    key = f"{point}/restore-point/database"
    started = time.perf_counter()
    dump = asyncio.run(adapter.dump_point(point, key))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    asyncio.run(adapter.drop_point(point, key))
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "size": dump.size}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=3, metavar=("URL", "ENDPOINT", "POINT"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tuned_servers() as (pg, s3_server):
        _run(pg, s3_server.url, args.rows, args.rounds)


def _run(pg: PostgresServer, endpoint: str, rows: int, rounds: int) -> None:
    started = time.perf_counter()
    size = build_database(pg, rows)
    print(
        f"database: {size / 1e9:.2f} GB ({rows} rows) built in {time.perf_counter() - started:.0f}s"
    )
    _client(endpoint).create_bucket(Bucket=BUCKET)
    raw, unsynced, nowhere, streamed, peaks = [], [], [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "raw.dump"
        for n in range(rounds):  # alternate which goes first: the server's caches carry over
            if n % 2:
                result = adapter_dump(pg.url_for("source"), endpoint, f"bench-{n}")
            raw.append(raw_dump(pg, path))
            unsynced.append(raw_dump(pg, path, "--no-sync"))
            nowhere.append(raw_dump(pg, Path("/dev/null"), "--no-sync"))
            if not n % 2:
                result = adapter_dump(pg.url_for("source"), endpoint, f"bench-{n}")
            streamed.append(result["seconds"])
            peaks.append(result["peak_mb"])
            raw_mb = path.stat().st_size / 1e6
            print(f"round {n + 1}: pg_dump -Fc to disk {raw[-1]:.1f}s ({raw_mb:.0f} MB; "
                  f"{unsynced[-1]:.1f}s with --no-sync; {nowhere[-1]:.1f}s to /dev/null), "
                  f"restore point {streamed[-1]:.1f}s ({result['size'] / 1e6:.0f} MB), "
                  f"adapter peak RSS {result['peak_mb']:.0f} MB")  # fmt: skip
    mid_point = statistics.median(streamed)
    bases = (("pg_dump", raw), ("pg_dump --no-sync", unsynced), ("pg_dump > /dev/null", nowhere))
    for label, base in bases:
        print(f"ratio restore point / {label}: best {min(streamed) / min(base):.2f}, "
              f"median {mid_point / statistics.median(base):.2f}  (target <= 1.1)")  # fmt: skip
    print(f"adapter peak RSS: {max(peaks):.0f} MB  (target <= 150 MB)")


if __name__ == "__main__":
    main()
