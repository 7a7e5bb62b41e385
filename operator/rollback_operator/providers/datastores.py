"""Building the database and storage adapters of one policy from its Secrets.

Both adapters share the policy's `objectStore`, so the S3 client is made once here; the
composition root calls these two functions and names no S3 or PostgreSQL detail itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from rollback_operator.api.policy import ObjectStore, RollbackPolicy
from rollback_operator.providers import objectstore, postgres, s3
from rollback_operator.providers.base import Database, SecretReader, Storage
from rollback_operator.providers.errors import PermanentError
from rollback_operator.providers.s3_reports import S3ReportArchive

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


async def database(policy: RollbackPolicy, secrets: SecretReader) -> Database | None:
    """The PostgreSQL adapter, or None when the policy has no database target."""
    target = policy.spec.targets.database
    if target is None:
        return None
    ref = target.postgres.url_secret_ref
    url = await secrets.read(policy.metadata.namespace, ref.name, ref.key)
    return postgres.PostgresDatabase(target.postgres, url, await _client(policy, secrets))


async def storage(policy: RollbackPolicy, secrets: SecretReader) -> Storage | None:
    """The S3 adapter, or None when the policy has no storage target."""
    target = policy.spec.targets.storage
    if target is None:
        return None
    return s3.S3Storage(target.s3, await _client(policy, secrets))


async def _client(policy: RollbackPolicy, secrets: SecretReader) -> S3Client:
    store = policy.spec.object_store
    if store is None:
        raise PermanentError("spec.objectStore: database and storage targets need an objectStore")
    return objectstore.client(store, await _credentials(store, policy, secrets))


async def _credentials(
    store: ObjectStore, policy: RollbackPolicy, secrets: SecretReader
) -> objectstore.Credentials | None:
    ref = store.credentials_secret_ref
    if ref is None:
        return None  # the pod's ambient credentials (IRSA, instance profile)
    namespace = policy.metadata.namespace
    return objectstore.Credentials(
        access_key_id=await secrets.read(namespace, ref.name, ref.access_key_id_key),
        secret_access_key=await secrets.read(namespace, ref.name, ref.secret_access_key_key),
    )


async def storage_probe(
    policy: RollbackPolicy, secrets: SecretReader
) -> Callable[[], Awaitable[str]] | None:
    """The verification check that the files bucket lists and reads, or None without storage."""
    target = policy.spec.targets.storage
    if target is None:
        return None
    s3_client = await _client(policy, secrets)
    bucket, prefix = target.s3.bucket, target.s3.prefix

    async def probe() -> str:
        listed = await objectstore.call(
            "verify storage", s3_client.list_objects_v2, Bucket=bucket, Prefix=prefix, MaxKeys=1
        )
        contents = listed.get("Contents", [])
        if not contents:
            return f"s3://{bucket}/{prefix} lists (empty)"
        key = contents[0]["Key"]
        await objectstore.call("verify storage", s3_client.head_object, Bucket=bucket, Key=key)
        return f"s3://{bucket}/{prefix} lists and reads ({key})"

    return probe


async def archive(policy: RollbackPolicy, secrets: SecretReader) -> S3ReportArchive | None:
    """Where reports are copied: the database's backups bucket, else the files' backups
    bucket; None when the policy has neither (the ConfigMap is then the only copy)."""
    targets = policy.spec.targets
    location = (targets.database.postgres.backups if targets.database else None) or (
        targets.storage.s3.backups if targets.storage else None
    )
    if location is None or policy.spec.object_store is None:
        return None
    return S3ReportArchive(await _client(policy, secrets), location.bucket)
