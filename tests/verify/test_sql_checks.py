"""Verification SQL cannot write: every trick we know, against a real PostgreSQL.

A check runs one statement (sent as a prepared statement, which the server parses as exactly one)
in a session that is read-only from its connection options on, with a statement timeout. The
checks here run as the superuser, the most a policy author could hand over, and bypass the
model's own refusal (`model_construct`) to show that the session holds on its own; the refusal
at admission is tested last. Each claim holds as well for the app's own role on a
Supabase-shaped database (`tests/db/supabase.py`), which owns what it could write to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from rollback_operator.api.policy import Expect, SqlCheck
from rollback_operator.providers.verification.checklist import SqlQueryCheck
from sandbox import manifests
from sandbox.services.postgres import Db, PostgresServer
from tests.db import supabase
from tests.schema import schema_errors

USERS = 3


@pytest.fixture(params=["superuser", "app-role"])
def database(pg_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[Db]:
    """The users table and a writing function, reached as the superuser or as the app's own
    role of a Supabase-shaped database (which owns both)."""
    name = f"v_{uuid.uuid4().hex[:12]}"
    if request.param == "superuser":
        db = Db(pg_server, name)
        pg_server.psql("postgres", f"CREATE DATABASE {db.name}")
        make = db.sql
    else:
        db = supabase.make(pg_server, name)
        make = db.as_app
    make(
        "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);"
        " INSERT INTO users (email) SELECT 'user' || g || '@example.com'"
        f" FROM generate_series(1, {USERS}) g;"
        " CREATE FUNCTION evil() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS"
        " $$ BEGIN DELETE FROM users; RETURN 0; END $$"
    )
    try:
        yield db
    finally:
        pg_server.psql("postgres", f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")


def _check(query: str, db: Db, **expect: object) -> SqlQueryCheck:
    spec = SqlCheck.model_construct(name="trick", query=query, expect=Expect(**expect))
    return SqlQueryCheck(spec, db.url, statement_timeout_ms=500)


def _users(db: Db) -> int:
    return int(db.sql("SELECT count(*) FROM users").strip())


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1; COMMIT; DELETE FROM users",
        "SELECT count(*) FROM users; DROP TABLE users",
        "WITH gone AS (DELETE FROM users RETURNING 1) SELECT count(*) FROM gone",
        "SELECT evil()",
        "SELECT nextval('users_id_seq')",
        "SELECT id FROM users FOR UPDATE",
        "UPDATE users SET email = 'x' RETURNING 1",
        "COMMIT",
        "SET default_transaction_read_only = off; DELETE FROM users",
        "SELECT set_config('default_transaction_read_only', 'off', false); DELETE FROM users",
        "CREATE TABLE planted AS SELECT 1",
        "COPY users FROM PROGRAM 'true'",
    ],
)
async def test_a_check_that_would_write_fails_and_changes_nothing(query: str, database: Db) -> None:
    result = await _check(query, database, min=0).run()

    assert not result.passed, result
    assert _users(database) == USERS
    assert database.sql("SELECT to_regclass('planted')").strip() == ""


async def test_a_check_that_runs_too_long_is_cancelled(database: Db) -> None:
    result = await _check("SELECT pg_sleep(10)", database).run()

    assert not result.passed
    assert "QueryCanceled" in result.message


async def test_a_read_only_query_still_reads(database: Db) -> None:
    result = await _check("SELECT count(*) FROM users WHERE email LIKE '%@example.com';", database,
                          min=USERS).run()  # fmt: skip

    assert result.passed, result
    assert result.message == str(USERS)


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("SELECT email FROM users ORDER BY id LIMIT 1", "'user1@example.com'"),
        ("SELECT string_agg(email, ',') FROM users", "a str value, 53 characters (not shown)"),
        ("SELECT row_to_json(u) FROM users u LIMIT 1", "a dict value (not shown)"),
    ],
)
async def test_only_a_short_scalar_value_is_shown(query: str, shown: str, database: Db) -> None:
    passed = await _check(query, database).run()
    failed = await _check(query, database, equals="nobody").run()

    assert passed.message == shown
    assert failed.message == f"{shown} is not 'nobody'"


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1; COMMIT; DELETE FROM users",
        "DELETE FROM users",
        "COMMIT",
        "SET default_transaction_read_only = off",
        "/* hidden */ DELETE FROM users",
        "SELECTED",
    ],
)
def test_a_query_that_is_not_one_read_is_refused_at_admission(query: str) -> None:
    check = {"name": "trick", "query": query, "expect": {"min": 0}}
    manifest = manifests.policy(verification={"sqlChecks": [check]})

    with pytest.raises(ValidationError, match="query"):
        SqlCheck.model_validate(check)
    assert any("query" in error for error in schema_errors(manifest)), query
