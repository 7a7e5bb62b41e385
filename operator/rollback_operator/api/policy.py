"""The RollbackPolicy resource: how to reach each layer of an app and which metrics guard it.

Field descriptions double as CRD documentation (`kubectl explain rollbackpolicy.spec`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, StrictBool, StrictInt, model_validator
from pydantic.alias_generators import to_camel

from rollback_operator.api.common import (
    ALL_TARGETS,
    DURATION_PATTERN,
    QUICK_TARGETS,
    DnsName,
    Duration,
    Model,
    NonEmpty,
    Number,
    ObjectMeta,
    OneOf,
    ProviderBlock,
    SecretKeyRef,
    Target,
    default_targets,
    repeated,
)
from rollback_operator.api.conditions import Condition

NonNegativeDuration = Annotated[str, Field(pattern=DURATION_PATTERN)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://\S+$")]


class VercelTarget(ProviderBlock):
    """The frontend as a Vercel project."""

    project_id: NonEmpty = Field(description="Vercel project id (prj_...) or name.")
    team_id: NonEmpty | None = Field(default=None, description="Team id for team-owned projects.")
    token_secret_ref: SecretKeyRef = Field(description="Secret key holding a Vercel API token.")
    api_url: HttpUrl = Field(default="https://api.vercel.com", description="Vercel API base URL.")

    def summary(self) -> str:
        team = f" (team {self.team_id})" if self.team_id else ""
        return f"Vercel project {self.project_id}{team}"


class RailwayTarget(ProviderBlock):
    """The backend as a Railway service in one environment."""

    project_id: NonEmpty = Field(description="Railway project id.")
    environment_id: NonEmpty = Field(description="Railway environment id (production).")
    service_id: NonEmpty = Field(description="Railway service id of the backend.")
    token_secret_ref: SecretKeyRef = Field(description="Secret key holding a Railway token.")
    token_type: Literal["account", "project"] = Field(
        default="account",
        description="account: Authorization Bearer; project: Project-Access-Token header.",
    )
    api_url: HttpUrl = Field(
        default="https://backboard.railway.com/graphql/v2", description="Railway GraphQL URL."
    )

    def summary(self) -> str:
        return f"Railway service {self.service_id}, environment {self.environment_id}"


class BackupLocation(Model):
    """Where backups live in the object store."""

    bucket: DnsName = Field(description="Bucket holding the backups.")
    prefix: str = Field(default="", description="Key prefix of the backups, such as database/.")


class PostgresTarget(ProviderBlock):
    """The database as a PostgreSQL server restored from dumps in the object store."""

    url_secret_ref: SecretKeyRef = Field(description="Secret key holding the DATABASE_URL.")
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
        default=None, description="S3 API endpoint for MinIO, R2 or Supabase storage."
    )
    credentials_secret_ref: CredentialsRef | None = Field(
        default=None, description="Credentials; else the pod's ambient AWS credentials."
    )


class Prometheus(Model):
    """A Prometheus-compatible query API."""

    url: HttpUrl = Field(description="Base URL, such as http://prometheus.monitoring:9090.")
    auth_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding an Authorization header value."
    )


class Metrics(Model):
    """Where rule queries run."""

    prometheus: Prometheus


class Threshold(Model):
    """A bound a metric must not cross: exactly one of above or below."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["above"]}, {"required": ["below"]}]}
    )

    above: Number | None = Field(default=None, description="Breached when the value is above.")
    below: Number | None = Field(default=None, description="Breached when the value is below.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("a threshold needs exactly one of 'above' or 'below'")
        return self

    def breached_by(self, value: float) -> bool:
        """Whether `value` is past this threshold."""
        return value > self.above if self.above is not None else value < self.below  # type: ignore[operator]


class NoData(StrEnum):
    """What an empty query result means."""

    IGNORE = "ignore"
    BREACH = "breach"
    HOLD = "hold"


class Rule(Model):
    """One metric that guards the app, with warning and critical thresholds."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["warning"]}, {"required": ["critical"]}]}
    )

    name: DnsName = Field(description="Unique name of the rule within the policy.")
    query: NonEmpty = Field(description="PromQL expression returning one value.")
    warning: Threshold | None = Field(default=None, description="Warn past this threshold.")
    critical: Threshold | None = Field(default=None, description="Critical past this threshold.")
    for_: NonNegativeDuration = Field(
        default="0s", alias="for", description="How long a threshold must hold, such as 5m."
    )
    auto_rollback: StrictBool = Field(
        default=False, description="Roll back automatically when critical holds for `for`."
    )
    no_data: NoData = Field(default=NoData.IGNORE, description="ignore, breach or hold.")

    @model_validator(mode="after")
    def _thresholds_agree(self) -> Self:
        if self.warning is None and self.critical is None:
            raise ValueError(f"rule {self.name}: needs a warning or a critical threshold")
        if self.auto_rollback and self.critical is None:
            raise ValueError(f"rule {self.name}: autoRollback needs a critical threshold")
        if self.warning and self.critical:
            w, c = self.warning, self.critical
            if (w.above is None) != (c.above is None):
                raise ValueError(f"rule {self.name}: warning and critical point different ways")
            if w.above is not None and c.above is not None and w.above > c.above:
                raise ValueError(f"rule {self.name}: warning.above is past critical.above")
            if w.below is not None and c.below is not None and w.below < c.below:
                raise ValueError(f"rule {self.name}: warning.below is past critical.below")
        return self


class MaxRollbacks(Model):
    """At most `count` automatic rollbacks within `window`."""

    count: StrictInt = Field(default=3, ge=1, description="Automatic rollbacks allowed per window.")
    window: Duration = Field(default="24h", description="The sliding window.")


class AutomaticRollback(Model):
    """What a policy-triggered rollback does, and how often it may happen."""

    mode: Literal["quick", "full"] = Field(default="quick", description="quick or full.")
    targets: list[Target] = Field(
        default_factory=lambda: default_targets("quick"),
        min_length=1,
        description="Targets of automatic rollbacks.",
    )
    cooldown: Duration = Field(default="1h", description="No second automatic rollback within.")
    max_rollbacks: MaxRollbacks = Field(default_factory=MaxRollbacks)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if dupes := repeated(self.targets):
            raise ValueError(f"targets: repeated {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _quick_targets(self) -> Self:
        """As a Rollback's: what quick mode cannot do, the Rollback it creates could not."""
        extra = [t.value for t in self.targets if t not in QUICK_TARGETS]
        if self.mode == "quick" and extra:
            raise ValueError(
                f"targets: quick mode rolls back frontend and backend only, not "
                f"{', '.join(extra)}; use mode: full"
            )
        return self


class HealthCheck(Model):
    """An HTTP endpoint that must answer after a rollback."""

    name: DnsName
    url: HttpUrl
    expect_status: StrictInt = Field(default=200, ge=100, le=599)


class Expect(Model):
    """What a SQL check's single value must satisfy."""

    min: float | None = None
    max: float | None = None
    equals: str | None = Field(default=None, description="Compared as text with the value.")


class SqlCheck(Model):
    """A read-only SQL query whose single value must meet `expect`."""

    name: DnsName
    query: NonEmpty
    expect: Expect


class CacheCheck(Model):
    """A Redis-compatible cache that must answer PING after a rollback."""

    url_secret_ref: SecretKeyRef = Field(description="Secret key holding redis[s]://... URL.")


class Verification(Model):
    """The post-rollback checklist."""

    health_checks: list[HealthCheck] = Field(default_factory=list)
    sql_checks: list[SqlCheck] = Field(default_factory=list)
    storage: StrictBool = Field(
        default=False, description="Check the bucket can be listed and read."
    )
    cache: CacheCheck | None = Field(default=None, description="Check the cache answers PING.")
    window: NonNegativeDuration = Field(
        default="0s",
        description="Critical rules must stay clear this long after the rollback (0s: off).",
    )

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for field, checks in (("healthChecks", self.health_checks), ("sqlChecks", self.sql_checks)):
            if dupes := repeated([c.name for c in checks]):
                raise ValueError(f"{field}: names must be unique, repeated: {', '.join(dupes)}")
        return self


class Slack(Model):
    """A Slack incoming webhook."""

    webhook_secret_ref: SecretKeyRef


class Statuspage(Model):
    """An Atlassian Statuspage page whose incidents follow each rollback."""

    page_id: NonEmpty
    component_ids: list[NonEmpty] = Field(default_factory=list)
    api_key_secret_ref: SecretKeyRef
    api_url: HttpUrl = "https://api.statuspage.io/v1"

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if dupes := repeated(self.component_ids):
            raise ValueError(f"componentIds: repeated {', '.join(dupes)}")
        return self


class PagerDuty(Model):
    """A PagerDuty Events v2 integration."""

    routing_key_secret_ref: SecretKeyRef
    api_url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"


class Notifications(Model):
    """Whom to tell."""

    slack: Slack | None = None
    statuspage: Statuspage | None = None
    pagerduty: PagerDuty | None = None


class Contact(Model):
    """An emergency contact printed in reports and failure alerts."""

    role: NonEmpty
    name: NonEmpty
    email: str | None = None
    phone: str | None = None


class RollbackPolicySpec(Model):
    """How to reach every layer of one app, which metrics guard it, and what to do."""

    suspend: StrictBool = Field(
        default=False, description="Stop automatic rollbacks; keep evaluating."
    )
    targets: Targets = Field(description="How to reach each layer of the app.")
    object_store: ObjectStore | None = Field(
        default=None, description="S3 connection for backups, storage and reports."
    )
    metrics: Metrics | None = Field(default=None, description="Where rule queries run.")
    evaluation_interval: Duration = Field(default="30s", description="How often rules run.")
    rules: list[Rule] = Field(default_factory=list, description="Metrics that guard the app.")
    automatic_rollback: AutomaticRollback = Field(default_factory=AutomaticRollback)
    verification: Verification = Field(default_factory=Verification)
    notifications: Notifications = Field(default_factory=Notifications)
    contacts: list[Contact] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rules: names must be unique, repeated: {', '.join(dupes)}")
        if self.rules and self.metrics is None:
            raise ValueError("metrics: rules need a metrics source (metrics.prometheus.url)")
        missing = [
            t.value for t in self.automatic_rollback.targets if t not in self.targets.defined()
        ]
        if missing and any(r.auto_rollback for r in self.rules):
            raise ValueError(
                f"automaticRollback.targets: {', '.join(missing)} not defined in spec.targets"
            )
        needs_store = self.targets.database is not None or self.targets.storage is not None
        if needs_store and self.object_store is None:
            raise ValueError("objectStore: database and storage targets need an objectStore")
        return self


class RuleState(StrEnum):
    """Where a rule stands."""

    OK = "Ok"
    PENDING = "Pending"
    WARNING = "Warning"
    CRITICAL = "Critical"
    NO_DATA = "NoData"
    ERROR = "Error"


class Episode(Model):
    """One breach of a rule, from its first point past a threshold until it clears: what the
    operator already did about it, so a restart neither repeats nor forgets it."""

    since: datetime = Field(description="When the metric first went past a threshold.")
    announced: RuleState | None = Field(
        default=None, description="The highest state already announced (Event, notification)."
    )
    rollback: str | None = Field(default=None, description="The Rollback this breach created.")
    suppressed: str | None = Field(
        default=None, description="Why its automatic rollback was last suppressed (counted once)."
    )


class RuleStatus(Model):
    """The last evaluation of one rule."""

    name: str
    state: RuleState
    value: float | None = None
    since: datetime | None = None
    last_evaluated: datetime | None = None
    message: str | None = None
    errors: int = Field(default=0, description="Evaluations in a row that failed.")
    episode: Episode | None = Field(default=None, description="The current breach, if any.")


class RollbackRef(Model):
    """A rollback this policy created."""

    name: str
    time: datetime


class RollbackPolicyStatus(Model):
    """What the operator observed about the policy."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    rules: list[RuleStatus] = Field(default_factory=list)
    last_automatic_rollback: RollbackRef | None = None
    cooldown_until: datetime | None = None
    automatic_rollbacks: list[RollbackRef] = Field(
        default_factory=list, description="Recent automatic rollbacks, for maxRollbacks."
    )
    breaching_rules: int = Field(default=0, description="Rules now Warning or Critical.")
    suppressed: dict[str, int] = Field(
        default_factory=dict, description="Automatic rollbacks suppressed, by reason."
    )


class RollbackPolicy(Model):
    """A RollbackPolicy object as read from the API."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RollbackPolicySpec
    status: RollbackPolicyStatus = Field(default_factory=RollbackPolicyStatus)
