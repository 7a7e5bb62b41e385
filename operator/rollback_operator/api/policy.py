"""The RollbackPolicy resource: what to do about an app, around its targets and rules.

The targets (`api.targets`) say how to reach each layer and the rules (`api.rules`) which
metrics guard it; here are the rest of the spec (automatic rollbacks, verification checks,
notifications, contacts), the status, and the resource itself. Field descriptions double as CRD
documentation (`kubectl explain rollbackpolicy.spec`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import Field, StrictBool, StrictInt, model_validator

from rollback_operator.api.common import (
    QUICK_TARGETS,
    ApiObject,
    DnsName,
    Duration,
    HttpUrl,
    Model,
    NonEmpty,
    NonNegativeDuration,
    SecretKeyRef,
    Target,
    default_targets,
    repeated,
)
from rollback_operator.api.conditions import Condition
from rollback_operator.api.restorepoint import RestorePointSchedule
from rollback_operator.api.rules import Metrics, Rule, RuleStatus
from rollback_operator.api.targets import ObjectStore, Targets


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


# One read-only query: it starts with SELECT, WITH, VALUES or TABLE and holds no `;` but an
# optional last one. The session is read-only as well; this refuses the obvious at admission.
READ_QUERY = (
    r"^\s*([Ss][Ee][Ll][Ee][Cc][Tt]|[Ww][Ii][Tt][Hh]|[Vv][Aa][Ll][Uu][Ee][Ss]|[Tt][Aa][Bb][Ll][Ee])"
    r"\s[^;]*;?\s*$"
)


class SqlCheck(Model):
    """A read-only SQL query whose single value must meet `expect`."""

    name: DnsName
    query: str = Field(
        pattern=READ_QUERY,
        description="One SELECT, WITH, VALUES or TABLE statement returning one value; it runs "
        "alone in a read-only session with a statement timeout.",
    )
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
    sql_url_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding a DATABASE_URL for sqlChecks, ideally of a role that "
        "may only read; default: the database target's URL.",
    )
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


RUNBOOK_INCIDENT_MESSAGE = (
    "We're currently experiencing issues and have initiated a rollback to restore service."
)


class StatuspageIncident(Model):
    """What the public incident a rollback opens says; by default the runbook's status page
    update (its impact "High" is Statuspage's `major`)."""

    title: str = Field(
        default="Service Degradation", min_length=1, max_length=255, description="Its name."
    )
    status: Literal["investigating", "identified", "monitoring"] = Field(
        default="investigating", description="Its status when the rollback starts."
    )
    impact: Literal["none", "minor", "major", "critical"] = Field(
        default="major", description="Its impact (Statuspage's impact_override)."
    )
    message: str = Field(
        default=RUNBOOK_INCIDENT_MESSAGE,
        min_length=1,
        max_length=2000,
        description="The first update's text; the page is public, so name nothing internal.",
    )


class Statuspage(Model):
    """An Atlassian Statuspage page whose incidents follow each rollback."""

    page_id: NonEmpty
    component_ids: list[NonEmpty] = Field(default_factory=list)
    api_key_secret_ref: SecretKeyRef
    api_url: HttpUrl = "https://api.statuspage.io/v1"
    incident: StatuspageIncident = Field(
        default_factory=StatuspageIncident,
        description="The incident's title, status, impact and message when a rollback starts.",
    )

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


class FailurePolicy(Model):
    """What happens when a rollback fails or is aborted after it changed something."""

    traffic: Literal["keepStopped", "resume"] = Field(
        default="keepStopped",
        description=(
            "Traffic a failed or aborted full rollback had stopped: keepStopped leaves it "
            'stopped until the annotation rollback.mindmate.app/resume-traffic: "true" '
            "(kubectl rollback resume-traffic NAME); resume brings it back at once, on the "
            "version each layer runs."
        ),
    )


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
    history_limit: StrictInt | None = Field(
        default=None,
        ge=0,
        description=(
            "How many finished automatic Rollbacks of this policy to keep; older ones are "
            "deleted (never a running one, one holding traffic stopped, or a manual one), "
            "their reports kept. Unset: keep every one."
        ),
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
    failure_policy: FailurePolicy = Field(
        default_factory=FailurePolicy, description="What a failed or aborted rollback leaves."
    )
    restore_points: RestorePointSchedule | None = Field(
        default=None, description="The operator takes its own RestorePoints on a schedule."
    )

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
        if self.restore_points is not None and not needs_store:
            raise ValueError("restorePoints: needs a database or storage target to take")
        return self


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


class RollbackPolicy(ApiObject):
    """A RollbackPolicy object as read from the API."""

    spec: RollbackPolicySpec
    status: RollbackPolicyStatus = Field(default_factory=RollbackPolicyStatus)
