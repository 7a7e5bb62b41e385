"""The composition root builds the real database and storage adapters from a policy and its
Secrets, and they work against the servers named there."""

from __future__ import annotations

from mypy_boto3_s3 import S3Client

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers.postgres.database import PostgresDatabase
from rollback_operator.providers.registry import RealProviderFactory
from rollback_operator.providers.storage.s3 import S3Storage
from sandbox import manifests
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server
from tests.db import world
from tests.db.world import PREFIX, Db
from tests.providers.conftest import FAKES


class Secrets:
    """A SecretReader over a dict, recording what was read."""

    def __init__(self, values: dict[tuple[str, str, str], str]) -> None:
        self.values, self.reads = values, list[tuple[str, str, str]]()

    async def read(self, namespace: str, name: str, key: str) -> str:
        self.reads.append((namespace, name, key))
        return self.values[(namespace, name, key)]


async def test_the_factory_builds_working_database_and_storage_adapters(
    database: Db, s3: S3Client, s3_server: S3Server, backups: str, files: str
) -> None:
    database.seed(["a"])
    world.put(s3, backups, PREFIX + "backup_20240101.dump", database.dump("custom"))
    manifest = manifests.policy(
        namespace="prod",
        targets={
            "frontend": None,
            "backend": None,
            "database": {"postgres": {"backups": {"bucket": backups}, "schemas": ["public"]}},
            "storage": {"s3": {"bucket": files}},
        },
        objectStore={"endpointUrl": s3_server.url},
    )
    secrets = Secrets({
        ("prod", "db", "url"): database.url,
        ("prod", "aws", "access-key-id"): ACCESS_KEY_ID,
        ("prod", "aws", "secret-access-key"): SECRET_ACCESS_KEY,
    })  # fmt: skip

    built = await RealProviderFactory(FAKES).build(RollbackPolicy.model_validate(manifest), secrets)

    assert isinstance(built.database, PostgresDatabase)
    assert isinstance(built.storage, S3Storage)
    plan = await built.database.plan(None)
    assert plan.backup == "backup_20240101.dump"
    assert plan.schemas == ["public"]
    assert (await built.storage.plan(plan.taken_at or world.next_second())).objects_to_hide == 0
    assert ("prod", "aws", "secret-access-key") in secrets.reads
