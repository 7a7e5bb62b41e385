"""Benchmark: the schema-exact restore of a Supabase-shaped database against raw pg_restore.

Builds a Supabase-shaped database (`tests/db/supabase.py`: the app's non-superuser role, `auth`
of another role, RLS, grants) whose `public.items` holds random rows, dumps the whole database
(custom format, as the platform's backups are), uploads it to a moto S3 server, then restores
`public` into copies of that database, alternating: (a) `pg_restore` of the local file as the
app's role, `--schema=public --clean --if-exists` with the adapter's other flags, (b) the
adapter's `restore` with `schemas: [public]`, streaming from S3, in a child process: its
pre-flight checks, the check for dependents, the drops and the restore in one transaction.
Target (issue 16): adapter time <= 1.15 x pg_restore.

    python -m bench.supabase_restore [--rows 1000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.db_restore import BUCKET, _client, tuned_servers
from rollback_operator.providers.postgres import database as postgres
from sandbox.services.postgres import PG_BIN, PostgresServer
from tests.db import supabase, world

NAME = "backup_latest.dump"
SOURCE = "supabase_source"


def build_dump(server: PostgresServer, rows: int, path: Path) -> supabase.SupabaseDb:
    """The Supabase-shaped source database with `rows` items, dumped whole to `path`."""
    source = supabase.make(server, SOURCE)
    source.as_app(
        "INSERT INTO items (owner, note, digest) SELECT (SELECT min(id::text)::uuid FROM"
        " auth.users), md5(random()::text) || md5(random()::text), md5(g::text)"
        f" FROM generate_series(1, {rows}) g;"
        " CREATE INDEX items_note ON items (note)"
    )
    dump = [str(PG_BIN / "pg_dump"), "-Fc", "-Z0", "-f", str(path), "--dbname", _socket_dsn(source)]
    subprocess.run(dump, check=True)
    return source


def _socket_dsn(db: supabase.SupabaseDb, user: str = "postgres") -> str:
    assert db.server.dir is not None
    return f"host={db.server.dir} port={db.server.port} user={user} dbname={db.name}"


def _copy(source: supabase.SupabaseDb, name: str) -> supabase.SupabaseDb:
    """A fresh copy of the source database, as the restore finds production: same shape."""
    source.server.psql("postgres", f"CREATE DATABASE {name} TEMPLATE {SOURCE}")
    source.server.psql("postgres", f"GRANT CREATE, TEMPORARY ON DATABASE {name} TO {supabase.APP}")
    source.server.psql("postgres", "CHECKPOINT")
    return supabase.SupabaseDb(source.server, name, password=source.password)


def raw_restore(source: supabase.SupabaseDb, dbname: str, path: Path) -> float:
    """Seconds for pg_restore of `public` from the local file, as the app's role."""
    target = _copy(source, dbname)
    flags = ["--schema=public", "--clean", "--if-exists", "--no-owner", "--single-transaction",
             "--exit-on-error", "--no-password"]  # fmt: skip
    command = [str(PG_BIN / "pg_restore"), "--dbname", _socket_dsn(target, supabase.APP), *flags]
    started = time.perf_counter()
    subprocess.run([*command, str(path)], check=True)
    seconds = time.perf_counter() - started
    source.server.psql("postgres", f"DROP DATABASE {dbname}")
    return seconds


def adapter_restore(source: supabase.SupabaseDb, dbname: str, endpoint: str) -> float:
    """Seconds of the adapter's restore of `public` as the app's role, in a child process."""
    target = _copy(source, dbname)
    command = [sys.executable, "-m", "bench.supabase_restore", "--child", target.url, endpoint]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the adapter's restore failed: {done.stderr[-2000:]}")
    source.server.psql("postgres", f"DROP DATABASE {dbname}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def child(url: str, endpoint: str) -> None:
    """One adapter restore; prints its seconds as JSON."""
    target = world.pg_target(BUCKET, schemas=supabase.RESTORED)
    options = postgres.Options(bin_dir=str(PG_BIN))
    adapter = postgres.PostgresDatabase(target, url, _client(endpoint), options)
    started = time.perf_counter()
    asyncio.run(adapter.restore(NAME, "bench/restore-database/database"))
    print(json.dumps({"seconds": time.perf_counter() - started}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("URL", "ENDPOINT"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tuned_servers() as (pg, s3_server):
        _run(pg, s3_server.url, args.rows, args.rounds)


def _run(pg: PostgresServer, endpoint: str, rows: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / NAME
        started = time.perf_counter()
        source = build_dump(pg, rows, path)
        size = path.stat().st_size
        built = time.perf_counter() - started
        print(f"dump: {size / 1e6:.0f} MB ({rows} rows in public.items) built in {built:.1f}s")
        s3 = _client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(path), BUCKET, world.PREFIX + NAME)
        raw, exact = [], []
        for n in range(rounds):  # alternate which goes first: the server's state carries over
            if n % 2:
                exact.append(adapter_restore(source, f"adapter_{n}", endpoint))
            raw.append(raw_restore(source, f"raw_{n}", path))
            if not n % 2:
                exact.append(adapter_restore(source, f"adapter_{n}", endpoint))
            print(f"round {n + 1}: pg_restore {raw[-1]:.2f}s, adapter {exact[-1]:.2f}s")
    mid_raw, mid_exact = statistics.median(raw), statistics.median(exact)
    print(f"pg_restore --schema=public, local: best {min(raw):.2f}s, median {mid_raw:.2f}s")
    print(f"adapter, schemas [public], S3:     best {min(exact):.2f}s, median {mid_exact:.2f}s")
    best = min(exact) / min(raw)
    print(f"ratio adapter / pg_restore: best {best:.2f}, median {mid_exact / mid_raw:.2f}")
    print("  (target <= 1.15)")


if __name__ == "__main__":
    main()
