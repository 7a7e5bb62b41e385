"""Fixtures for the database and storage adapters against a real PostgreSQL 15 and S3 server.

One server of each per session (they start in about a second); each test gets its own database
(shaped like Supabase's, reached as the app's non-superuser role) and its own buckets, so tests
never see each other's data. A missing binary fails the session:
these tests never skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from mypy_boto3_s3 import S3Client

from sandbox.services.postgres import PostgresServer
from tests.db import supabase, world


@pytest.fixture
def database(pg_server: PostgresServer) -> Iterator[supabase.SupabaseDb]:
    """A fresh Supabase-shaped database for this test: its `url` is the app's own role."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield supabase.make(pg_server, name)
    finally:
        pg_server.psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def plain_database(pg_server: PostgresServer) -> Iterator[world.Db]:
    """A fresh, empty database for this test, reached as the superuser."""
    db = world.Db(pg_server, f"t_{uuid.uuid4().hex[:12]}")
    pg_server.psql("postgres", f"CREATE DATABASE {db.name}")
    try:
        yield db
    finally:
        pg_server.psql("postgres", f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")


@pytest.fixture
def backups(s3: S3Client) -> str:
    """A fresh bucket for database backups."""
    return world.make_bucket(s3, versioned=False)


@pytest.fixture
def files(s3: S3Client) -> str:
    """A fresh versioned bucket of app files."""
    return world.make_bucket(s3, versioned=True)
