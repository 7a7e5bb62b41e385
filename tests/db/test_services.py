"""The service starters work from a shell too: `start` prints exports, `stop` ends the server."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import psycopg


def _exports(module: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", module, "start"], capture_output=True, text=True, check=True
    )
    pairs = (line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines())
    return {name: value.strip("'") for name, value in pairs}


def _stop(module: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", module, "stop", *args], check=True)


def test_postgres_starts_and_stops_from_the_command_line() -> None:
    env = _exports("sandbox.services.postgres")
    try:
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        _stop("sandbox.services.postgres", env["ROLLBACK_TEST_PG_DIR"])
    assert not os.path.exists(env["ROLLBACK_TEST_PG_DIR"])


def test_the_s3_server_starts_and_stops_from_the_command_line() -> None:
    env = _exports("sandbox.services.s3")
    try:
        with urllib.request.urlopen(env["S3_ENDPOINT_URL"] + "/moto-api/", timeout=5) as answer:
            assert answer.status == 200
    finally:
        _stop("sandbox.services.s3", env["ROLLBACK_TEST_MOTO_PID"])
