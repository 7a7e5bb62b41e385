"""The safety dump: streamed to S3, verified, restorable, and free of secrets; a rollback can
itself be rolled back with it. (Once per key: `tests/contracts/test_database.py`.)"""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.providers.errors import PermanentError
from rollback_operator.providers.postgres import server, tools
from sandbox.services.s3 import SECRET_ACCESS_KEY
from tests.db import world
from tests.db.world import PREFIX, Db

SAFETY = "uid-7/safety-backup/database"
RESTORE = "uid-7/restore-database/database"


def safety_keys(s3: S3Client, bucket: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=PREFIX + "safety/")
    return [item["Key"] for item in listed.get("Contents", [])]


async def test_the_safety_dump_is_uploaded_verified_and_named_in_the_result(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed(["current"])
    clock = datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)
    adapter = world.pg_adapter(database, s3, backups, now=lambda: clock)

    result = await adapter.safety_backup(SAFETY)

    name = "safety/uid-7-20240203T040506Z.dump"
    assert result.external_ids == {"safetyBackup": name}
    assert f"s3://{backups}/{PREFIX}{name}" in result.message
    assert safety_keys(s3, backups) == [PREFIX + name]
    body = s3.get_object(Bucket=backups, Key=PREFIX + name)["Body"].read()
    assert body.startswith(b"PGDMP")
    assert len(body) > 100
    head = s3.head_object(Bucket=backups, Key=PREFIX + name)
    assert head["Metadata"] == {"rollback-key": SAFETY}


async def test_an_unusable_leftover_dump_is_replaced_by_a_new_one(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed(["current"])
    world.put(s3, backups, PREFIX + "safety/uid-7-20240101T000000Z.dump", b"")

    result = await world.pg_adapter(database, s3, backups).safety_backup(SAFETY)

    assert result.external_ids["safetyBackup"] != "safety/uid-7-20240101T000000Z.dump"
    assert len(safety_keys(s3, backups)) == 2


async def test_a_failing_pg_dump_leaves_no_object(database: Db, s3: S3Client, backups: str) -> None:
    database.seed(["current"])
    database.sql("CREATE SCHEMA locked; CREATE TABLE locked.t (x int);")
    database.sql("CREATE ROLE dumper LOGIN PASSWORD 'dumper-pw-123';")
    url = f"postgresql://dumper:dumper-pw-123@127.0.0.1:{database.server.port}/{database.name}"
    adapter = world.pg_adapter(database, s3, backups, url=url, schemas=["locked"])

    try:
        with pytest.raises(PermanentError, match="permission denied") as caught:
            await adapter.safety_backup(SAFETY)
    finally:
        database.sql("DROP OWNED BY dumper; DROP ROLE dumper;")

    assert "dumper-pw-123" not in str(caught.value)
    assert safety_keys(s3, backups) == []


def test_the_tools_never_see_the_password_on_a_command_line_or_in_the_environment(
    database: Db,
) -> None:
    dsn = server.Dsn.parse(database.url)
    ambient = {"PATH": "/usr/bin", "PGPASSWORD": "ambient"}
    with server.tool_credentials(dsn, ambient) as (env, dbname):
        command = tools.dump_command("pg_dump", dbname, exclude_schema="rollback_operator")
        visible = " ".join(command) + " ".join(f"{k}={v}" for k, v in env.items())
        passfile = Path(env["PGPASSFILE"])
        assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
        assert dsn.params["password"] in passfile.read_text()
    assert dsn.params["password"] not in visible
    assert "PGPASSWORD" not in env
    assert not passfile.exists()


async def test_a_rollback_can_be_rolled_back_with_its_safety_dump(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed(["yesterday"])
    world.put(s3, backups, PREFIX + "backup_20240101.dump", database.dump("custom"))
    database.seed(["today-1", "today-2"])
    adapter = world.pg_adapter(database, s3, backups)

    safety = await adapter.safety_backup(SAFETY)
    await adapter.restore("backup_20240101.dump", RESTORE)
    assert database.notes() == ["yesterday"]

    undo = await adapter.plan(safety.external_ids["safetyBackup"])
    await adapter.restore(undo.backup, "uid-8/restore-database/database")

    assert database.notes() == ["today-1", "today-2"]
    assert database.markers() == [
        "uid-7/restore-database/database",
        "uid-8/restore-database/database",
    ]


async def test_results_and_errors_never_carry_a_secret(
    database: Db, s3: S3Client, backups: str
) -> None:
    database.seed(["yesterday"])
    world.put(s3, backups, PREFIX + "b.sql.gz", database.dump("plain-gzip"))
    adapter = world.pg_adapter(database, s3, backups)
    texts = [repr(adapter), repr(adapter.dsn)]
    texts += [repr(await adapter.plan(None))]
    texts += [
        repr(await adapter.safety_backup(SAFETY)),
        repr(await adapter.restore("b.sql.gz", RESTORE)),
    ]
    with pytest.raises(PermanentError) as caught:
        await adapter.restore("missing", "other-key")
    texts.append(str(caught.value))

    for text in texts:
        assert database.server.password not in text
        assert SECRET_ACCESS_KEY not in text
