"""Benchmark: the database restore streamed from S3 against plain pg_restore from local disk.

Builds a database of random rows, dumps it (custom format, >= 200 MB), uploads the dump to a
moto S3 server, then restores it into fresh databases, alternating: (a) `pg_restore` reading the
local file with the adapter's own flags, (b) the adapter's `restore` streaming from S3 (with its
pre-flight checks), run in a child process so its peak RSS is the adapter's alone.
Targets (issue 4): adapter time <= 1.15 x pg_restore; adapter peak RSS <= 150 MB.

    python -m bench.db_restore [--rows 1800000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mypy_boto3_s3 import S3Client

from rollback_operator.api.targets import ObjectStore
from rollback_operator.providers.objectstore import s3api
from rollback_operator.providers.postgres import database as postgres
from sandbox.services.postgres import PG_BIN, SUPERUSER, PostgresServer
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server
from tests.db import world

BUCKET = "bench-backups"
NAME = "bench.dump"
TUNING = "shared_buffers=512MB\nmaintenance_work_mem=256MB\nmax_wal_size=8GB\n"


def _client(endpoint: str) -> S3Client:
    store = ObjectStore(region="us-east-1", endpoint_url=endpoint)
    return s3api.client(store, s3api.Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY))


def _socket(server: PostgresServer, *args: str) -> list[str]:
    assert server.dir is not None
    return [*args, "-h", str(server.dir), "-p", str(server.port), "-U", SUPERUSER]


def build_dump(server: PostgresServer, rows: int, path: Path) -> None:
    """A database of random rows with an index, dumped uncompressed to `path`."""
    server.psql("postgres", "CREATE DATABASE source")
    server.psql(
        "source",
        "CREATE TABLE blobs (id bigint PRIMARY KEY, account int, note text, payload bytea,"
        " created timestamptz);"
        f" INSERT INTO blobs SELECT g, (random() * 100000)::int,"
        " md5(random()::text) || md5(random()::text),"
        " decode(md5(random()::text) || md5(random()::text), 'hex'),"
        f" now() - random() * interval '365 days' FROM generate_series(1, {rows}) g;"
        " CREATE INDEX blobs_account ON blobs (account);",
    )
    command = _socket(server, str(PG_BIN / "pg_dump"), "-Fc", "-Z0", "-f", str(path))
    subprocess.run([*command, "-d", "source"], check=True)


def raw_restore(server: PostgresServer, dbname: str, path: Path) -> float:
    """Seconds for pg_restore of the local file, with the adapter's flags."""
    server.psql("postgres", f"CREATE DATABASE {dbname}")
    server.psql("postgres", "CHECKPOINT")
    flags = ["--dbname", dbname, "--clean", "--if-exists", "--no-owner", "--single-transaction",
             "--exit-on-error", "--no-password"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run([*_socket(server, str(PG_BIN / "pg_restore")), *flags, str(path)], check=True)
    seconds = time.perf_counter() - started
    server.psql("postgres", f"DROP DATABASE {dbname}")  # every run starts from the same state
    return seconds


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def adapter_restore(
    server: PostgresServer, dbname: str, endpoint: str, moto: int
) -> dict[str, float]:
    """Seconds, CPU and peak RSS (MB) of the adapter's restore, run in a child process."""
    server.psql("postgres", f"CREATE DATABASE {dbname}")
    server.psql("postgres", "CHECKPOINT")
    url = server.url_for(dbname)
    child = [sys.executable, "-m", "bench.db_restore", "--child", url, endpoint]
    moto_before = _cpu_seconds(moto)
    done = subprocess.run(child, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    server.psql("postgres", f"DROP DATABASE {dbname}")
    return result | {"moto_cpu": _cpu_seconds(moto) - moto_before}


def child(url: str, endpoint: str) -> None:
    """Run one adapter restore and print its time and this process's peak RSS as JSON."""
    s3 = _client(endpoint)
    options = postgres.Options(bin_dir=str(PG_BIN))
    adapter = postgres.PostgresDatabase(world.pg_target(BUCKET), url, s3, options)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    asyncio.run(adapter.restore(NAME, "bench/restore-database/database"))
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    result = {"seconds": seconds, "peak_mb": after.ru_maxrss / 1024, "cpu": cpu}
    print(json.dumps(result | {"before_mb": before.ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_800_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("URL", "ENDPOINT"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tuned_servers() as (pg, s3_server):
        assert s3_server.process is not None
        _run(pg, s3_server.url, s3_server.process.pid, args.rows, args.rounds)


@contextmanager
def tuned_servers() -> Iterator[tuple[PostgresServer, S3Server]]:
    """A PostgreSQL server tuned for bulk loads (`TUNING`) and an S3 server, stopped after."""
    pg, s3_server = PostgresServer(), S3Server()
    pg.start()
    s3_server.start()
    try:
        assert pg.dir is not None
        with (pg.dir / "data" / "postgresql.conf").open("a") as conf:
            conf.write(TUNING)
        pg.psql("postgres", "SELECT pg_reload_conf()")
        yield pg, s3_server
    finally:
        s3_server.stop()
        pg.stop()


def _run(pg: PostgresServer, endpoint: str, moto: int, rows: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / NAME
        started = time.perf_counter()
        build_dump(pg, rows, path)
        size = path.stat().st_size
        print(
            f"dump: {size / 1e6:.0f} MB ({rows} rows) built in {time.perf_counter() - started:.1f}s"
        )
        s3 = _client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(path), BUCKET, world.PREFIX + NAME)
        raw, streamed, peaks = [], [], []
        for n in range(rounds):  # alternate which goes first: the server's state carries over
            if n % 2:
                result = adapter_restore(pg, f"adapter_{n}", endpoint, moto)
            raw.append(raw_restore(pg, f"raw_{n}", path))
            if not n % 2:
                result = adapter_restore(pg, f"adapter_{n}", endpoint, moto)
            streamed.append(result["seconds"])
            peaks.append(result["peak_mb"])
            print(
                f"round {n + 1}: pg_restore {raw[-1]:.2f}s, adapter {streamed[-1]:.2f}s "
                f"(its CPU {result['cpu']:.2f}s, moto's CPU {result['moto_cpu']:.2f}s), "
                f"adapter peak RSS {result['peak_mb']:.0f} MB"
            )
    _summary(raw, streamed, peaks)


def _summary(raw: list[float], streamed: list[float], peaks: list[float]) -> None:
    mid_raw, mid_adapter = statistics.median(raw), statistics.median(streamed)
    print(f"pg_restore from local disk: best {min(raw):.2f}s, median {mid_raw:.2f}s")
    print(f"adapter streamed from S3:   best {min(streamed):.2f}s, median {mid_adapter:.2f}s")
    best = min(streamed) / min(raw)
    print(f"ratio adapter / pg_restore: best {best:.2f}, median {mid_adapter / mid_raw:.2f}")
    print("  (target <= 1.15)")
    print(f"adapter peak RSS: {max(peaks):.0f} MB  (target <= 150 MB)")


if __name__ == "__main__":
    main()
