"""What an adapter factory may use to build its adapter: the policy, its Secrets, one S3 client.

Every factory in `registry` gets the same `BuildContext`, so a provider reads its own block's
credentials through `secret` and, when it keeps data in the object store, shares the one S3
client of the policy's `objectStore` (made on first use) with the other adapters. `endpoints`
says where credentials may go (`providers.endpoints`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from rollback_operator.api.common import SecretKeyRef
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers.base import SecretReader
from rollback_operator.providers.endpoints import OFFICIAL_ONLY, Endpoints
from rollback_operator.providers.errors import PermanentError
from rollback_operator.providers.objectstore import s3api

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class BuildContext:
    """The inputs of one policy's adapters, read once per build."""

    def __init__(
        self, policy: RollbackPolicy, secrets: SecretReader, endpoints: Endpoints = OFFICIAL_ONLY
    ) -> None:
        self.policy, self.secrets, self.endpoints = policy, secrets, endpoints
        self.namespace = policy.metadata.namespace
        self._s3: S3Client | None = None

    async def secret(self, ref: SecretKeyRef) -> str:
        """The value of a Secret key in the policy's namespace."""
        return await self.secrets.read(self.namespace, ref.name, ref.key)

    async def object_store(self, field: str) -> S3Client:
        """The policy's S3 client; `field` names who needs it when `objectStore` is missing."""
        if self._s3 is None:
            self._s3 = s3api.client(
                self.policy.spec.object_store or _missing(field), await self._s3_credentials()
            )
        return self._s3

    async def _s3_credentials(self) -> s3api.Credentials | None:
        store = self.policy.spec.object_store
        ref = store.credentials_secret_ref if store else None
        if ref is None:
            return None  # the pod's ambient credentials (IRSA, instance profile)
        return s3api.Credentials(
            access_key_id=await self.secrets.read(self.namespace, ref.name, ref.access_key_id_key),
            secret_access_key=await self.secrets.read(
                self.namespace, ref.name, ref.secret_access_key_key
            ),
        )


def _missing(field: str) -> NoReturn:
    raise PermanentError(f"spec.objectStore: {field} needs an objectStore")
