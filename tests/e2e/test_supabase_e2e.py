"""Database rollbacks through the operator on a Supabase-shaped database, as the app's own role.

The policy restores `schemas: [public]` from the platform's whole-database backup: a full
rollback leaves `public` as the backup holds it and `auth` with the users who signed up since; a
dry run whose restore would drop a view outside `public` ends with the plan failed, naming the
view, and nothing changed.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from mypy_boto3_s3 import S3Client

from sandbox import manifests
from sandbox.services.postgres import PostgresServer
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server
from tests.db import supabase, world
from tests.e2e.bed import Bed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ENDED = {"Succeeded", "Failed", "PartiallyFailed", "Planned"}


def _start(bed: Bed, db: supabase.SupabaseDb, s3_url: str, backups: str) -> None:
    bed.start(real=("database",))
    bed.apply(manifests.secret("db", {"url": db.url}))
    bed.apply(manifests.secret("aws", {"access-key-id": ACCESS_KEY_ID,
                              "secret-access-key": SECRET_ACCESS_KEY}))  # fmt: skip
    postgres: dict[str, Any] = {
        "backups": {"bucket": backups, "prefix": world.PREFIX},
        "schemas": supabase.RESTORED,
    }
    bed.apply(
        manifests.policy(
            targets={"frontend": None, "backend": None, "database": {"postgres": postgres}},
            objectStore={"endpointUrl": s3_url, "credentialsSecretRef": {"name": "aws"}},
        )
    )


@pytest.fixture
def db(pg_server: PostgresServer) -> Any:
    made = supabase.make(pg_server, f"sb_{uuid.uuid4().hex[:8]}")
    try:
        yield made
    finally:
        pg_server.psql("postgres", f"DROP DATABASE IF EXISTS {made.name} WITH (FORCE)")


def test_a_full_rollback_restores_public_as_the_app_role_and_auth_keeps_new_sign_ups(
    bed: Bed, db: supabase.SupabaseDb, s3_server: S3Server, s3: S3Client
) -> None:
    backups = world.make_bucket(s3, versioned=False)
    db.seed(["alice", "bob"])
    before = db.shape()
    world.put(s3, backups, f"{world.PREFIX}backup_latest.sql.gz", db.dump("plain-gzip"))
    db.as_app("INSERT INTO items (note) VALUES ('mallory'); CREATE VIEW recent AS TABLE items")
    db.sql("INSERT INTO auth.users (email) VALUES ('new-sign-up@example.com')")
    _start(bed, db, s3_server.url, backups)

    bed.apply(manifests.rollback("restore", mode="full", targets=["database"]))
    body = bed.wait_for("restore", ENDED, timeout=90)

    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert body["status"]["plan"]["database"]["schemas"] == ["public"]
    assert db.shape() == before
    assert db.notes() == ["alice", "bob"]
    assert "new-sign-up@example.com" in db.users()


def test_a_dry_run_shows_the_view_outside_public_that_would_stop_the_restore(
    bed: Bed, db: supabase.SupabaseDb, s3_server: S3Server, s3: S3Client
) -> None:
    backups = world.make_bucket(s3, versioned=False)
    db.seed(["alice"])
    world.put(s3, backups, f"{world.PREFIX}backup_latest.dump", db.dump("custom"))
    db.sql(
        "CREATE SCHEMA analytics AUTHORIZATION app_owner; SET ROLE app_owner;"
        " CREATE VIEW analytics.item_counts AS SELECT count(*) FROM public.items; RESET ROLE;"
    )
    db.seed(["alice", "mallory"])
    now = db.shape()
    _start(bed, db, s3_server.url, backups)

    bed.apply(manifests.rollback("look", mode="full", targets=["database"], dryRun=True))
    body = bed.wait_for("look", ENDED, timeout=90)

    planned = next(c for c in body["status"]["conditions"] if c["type"] == "Planned")
    assert body["status"]["phase"] == "Failed", body["status"]
    assert planned["status"] == "False"
    assert "view analytics.item_counts depends on table items" in planned["message"]
    assert db.shape() == now
    assert db.notes() == ["alice", "mallory"]
