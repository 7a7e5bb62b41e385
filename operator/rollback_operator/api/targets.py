"""How a RollbackPolicy reaches each layer of an app: one provider block per layer, and the S3
connection that database backups, file storage and reports share.

Each layer is a one-of over provider blocks (`common.OneOf`): code outside a provider's own
package names a block through `chosen()` and `ProviderBlock`'s methods, not through its fields.
Field descriptions double as CRD documentation (`kubectl explain rollbackpolicy.spec.targets`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool

from rollback_operator.api.common import (
    ALL_TARGETS,
    DnsName,
    HttpUrl,
    Model,
    NonEmpty,
    OneOf,
    ProviderBlock,
    SecretKeyRef,
    Target,
)


class VercelTarget(ProviderBlock):
    """The frontend as a Vercel project."""

    OFFICIAL_API = ("https://api.vercel.com",)
    project_id: NonEmpty = Field(description="Vercel project id (prj_...) or name.")
    team_id: NonEmpty | None = Field(default=None, description="Team id for team-owned projects.")
    token_secret_ref: SecretKeyRef = Field(description="Secret key holding a Vercel API token.")
    api_url: HttpUrl = Field(
        default="https://api.vercel.com",
        description="Vercel API base URL; the token goes only to https://api.vercel.com or "
        "under an operator --allow-endpoint prefix.",
    )

    def summary(self) -> str:
        team = f" (team {self.team_id})" if self.team_id else ""
        return f"Vercel project {self.project_id}{team}"


class RailwayTarget(ProviderBlock):
    """The backend as a Railway service in one environment."""

    OFFICIAL_API = (
        "https://backboard.railway.com/graphql/v2",
        "https://backboard.railway.app/graphql/v2",
    )
    project_id: NonEmpty = Field(description="Railway project id.")
    environment_id: NonEmpty = Field(description="Railway environment id (production).")
    service_id: NonEmpty = Field(description="Railway service id of the backend.")
    token_secret_ref: SecretKeyRef = Field(description="Secret key holding a Railway token.")
    token_type: Literal["account", "project"] = Field(
        default="account",
        description="account: Authorization Bearer; project: Project-Access-Token header.",
    )
    api_url: HttpUrl = Field(
        default="https://backboard.railway.com/graphql/v2",
        description="Railway GraphQL URL; the token goes only to Railway's (backboard.railway"
        ".com or .app /graphql/v2) or under an operator --allow-endpoint prefix.",
    )

    def summary(self) -> str:
        return f"Railway service {self.service_id}, environment {self.environment_id}"


class BackupLocation(Model):
    """Where backups live in the object store."""

    bucket: DnsName = Field(description="Bucket holding the backups.")
    prefix: str = Field(default="", description="Key prefix of the backups, such as database/.")


_RESERVED_SCHEMAS = ("information_schema", "rollback_operator")


def _restorable_schema(name: str) -> str:
    if name in _RESERVED_SCHEMAS:
        raise ValueError(f"{name} is not an app schema: it cannot be restored")
    return name


# A lowercase identifier that does not start with pg_ (the system's), without look-ahead so the
# API server's regex engine checks it too.
SchemaName = Annotated[
    str,
    Field(
        pattern=r"^([a-oq-z_][a-z0-9_$]*|p([a-fh-z0-9_$][a-z0-9_$]*)?|pg([a-z0-9$][a-z0-9_$]*)?)$",
        max_length=63,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self != 'information_schema' && self != 'rollback_operator'",
                    "message": "is not an app schema: it cannot be restored",
                }
            ]
        },
    ),
    AfterValidator(_restorable_schema),
]


class PostgresTarget(ProviderBlock):
    """The database as a PostgreSQL server restored from dumps in the object store."""

    url_secret_ref: SecretKeyRef = Field(description="Secret key holding the DATABASE_URL.")
    schemas: list[SchemaName] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Restore only these schemas (default: every schema the backup holds). "
        "Each ends exactly as the backup holds it, objects made since dropped; other schemas "
        "are untouched. On Supabase: [public] (auth, storage and the extension schemas belong "
        "to other roles).",
    )
    backups: BackupLocation = Field(description="Where the database dumps are.")
    safety_backup: StrictBool = Field(
        default=True, description="Dump the current database before a restore."
    )

    def summary(self) -> str:
        return f"PostgreSQL backups in s3://{self.backups.bucket}/{self.backups.prefix}"

    def backups_bucket(self) -> str | None:
        return self.backups.bucket


class S3Target(ProviderBlock):
    """The app's files in an S3 bucket, restored to a point in time."""

    bucket: DnsName = Field(description="Bucket of the app's files.")
    prefix: str = Field(default="", description="Restore only keys under this prefix.")
    backups: BackupLocation | None = Field(
        default=None, description="Dated backups (YYYYMMDD/ folders); else object versions."
    )

    def summary(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def backups_bucket(self) -> str | None:
        return self.backups.bucket if self.backups else None

    def candidates_note(self) -> str | None:
        source = (
            f"dated folders under s3://{self.backups.bucket}/{self.backups.prefix}"
            if self.backups
            else "object versions; versioning must be on "
            f"(aws s3api get-bucket-versioning --bucket {self.bucket})"
        )
        return (
            f"storage: s3://{self.bucket}/{self.prefix} (not listed: it goes back to a point "
            f"in time)\n  from: {source}\n"
            "  default time: the chosen database backup's; pick one with --to storage=RFC3339"
        )


class FrontendTarget(OneOf):
    """How to reach the frontend. Exactly one provider block."""

    vercel: VercelTarget | None = None


class BackendTarget(OneOf):
    """How to reach the backend. Exactly one provider block."""

    railway: RailwayTarget | None = None


class DatabaseTarget(OneOf):
    """How to reach the database. Exactly one provider block."""

    postgres: PostgresTarget | None = None


class StorageTarget(OneOf):
    """How to reach file storage. Exactly one provider block."""

    s3: S3Target | None = None


class Targets(Model):
    """Every layer of the app this policy can roll back."""

    frontend: FrontendTarget | None = None
    backend: BackendTarget | None = None
    database: DatabaseTarget | None = None
    storage: StorageTarget | None = None

    def defined(self) -> list[Target]:
        """The targets this policy knows how to reach, in the runbook's order."""
        return [t for t in ALL_TARGETS if getattr(self, t.value) is not None]


class CredentialsRef(Model):
    """A Secret holding S3 credentials."""

    name: DnsName = Field(description="Name of the Secret.")
    access_key_id_key: NonEmpty = Field(default="access-key-id", description="Key of the id.")
    secret_access_key_key: NonEmpty = Field(
        default="secret-access-key", description="Key of the secret access key."
    )


class ObjectStore(Model):
    """The S3 connection used for backups, storage and reports."""

    region: NonEmpty = Field(default="us-east-1", description="S3 region.")
    endpoint_url: HttpUrl | None = Field(
        default=None,
        description="S3 API endpoint for MinIO, R2 or Supabase storage; must be under an "
        "operator --allow-endpoint prefix (requests carry credentials), https or loopback.",
    )
    credentials_secret_ref: CredentialsRef | None = Field(
        default=None, description="Credentials; else the pod's ambient AWS credentials."
    )
