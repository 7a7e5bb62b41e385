"""The Protocols that rollback steps call, one per kind of provider, and their value types.

Every mutating call takes an idempotency `key` (`<rollback uid>/<step>/<target>`) and must look
before it acts: called twice with the same arguments it has one effect. Every read-only call is
safe to repeat. Adapters raise only `providers.errors` exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.restorepoint import RestorePoint
from rollback_operator.api.rollback import CheckResult, DatabasePlan, DeploymentPlan, StoragePlan
from rollback_operator.providers.errors import ProviderError


@dataclass(frozen=True)
class StepResult:
    """What a mutating call did: a sentence for the record and ids to find it again."""

    message: str
    external_ids: Mapping[str, str] = field(default_factory=dict)


class Journal(Protocol):
    """A step's durable notebook: ids recorded here are saved in `status.steps[].externalIds`
    before `record` returns, and handed back when the step is redone after a crash."""

    @property
    def recorded(self) -> Mapping[str, str]:
        """What earlier attempts of this step recorded."""
        ...

    async def record(self, **ids: str) -> None:
        """Save these ids durably, now (before the next provider call).

        An adapter whose next reads need not wait for the write may run it as a task beside
        them, and awaits that task before it returns or sends its next change."""
        ...


@dataclass(frozen=True)
class Candidate:
    """One state a target can go back to, as `kubectl rollback candidates` lists it.

    `live`: it serves now. `default`: what `plan(None)` would choose. `state` is the provider's
    word (READY, SUCCESS, REMOVED; a backup's format); `note` is a short hint (URL, commit,
    size).
    """

    id: str
    created_at: datetime | None
    state: str
    live: bool
    default: bool
    note: str = ""


VERSIONS_SOURCE = "versions"
"""A storage plan's source when the bucket's own object versions hold the past."""


@dataclass(frozen=True)
class PointDump:
    """A restore point's database dump: its backup name (pinnable), size and start time."""

    backup: str
    size: int
    taken_at: datetime


@dataclass(frozen=True)
class PointCopy:
    """A restore point's storage moment: `as_of`, and the dated folder holding a copy of the
    files when the bucket keeps no versions (`copy`, with `objects` in it), else None."""

    as_of: datetime
    copy: str | None = None
    objects: int = 0


class DeploymentTarget(Protocol):
    """A frontend or backend that can go back to an earlier deployment (Vercel, Railway)."""

    async def plan(self, pin: str | None) -> DeploymentPlan:
        """The live deployment, the one to return to (`pin`, or the last good one), and
        whether the layer serves traffic now (`serving`), which `resume_traffic` honours."""
        ...

    async def stop_traffic(self, key: str, plan: DeploymentPlan) -> StepResult:
        """Stop serving traffic, in effect when this returns (verified, not only asked for);
        a no-op when it is already stopped."""
        ...

    async def rollback(self, to: str, key: str, journal: Journal) -> StepResult:
        """Make `to` live and wait until it is; a no-op when it already is.

        Record what was requested in `journal` before waiting, so a redo after a crash waits
        for the job already started instead of starting another.
        """
        ...

    async def resume_traffic(self, key: str, plan: DeploymentPlan, journal: Journal) -> StepResult:
        """Undo `stop_traffic` on whatever version the layer runs now, never by deploying its
        latest source; a layer that did not serve when `plan` was made is left stopped.

        The traffic state is taken from the plan, recorded before any step ran, so a
        `stop_traffic` redone after a crash cannot make the operator forget the original.
        Record what was requested in `journal`, as `rollback` does.
        """
        ...

    async def candidates(self, limit: int) -> list[Candidate]:
        """The newest `limit` deployments, newest first, the live one and the default rollback
        target marked (and listed even when older than the newest `limit`). Read-only."""
        ...


class Database(Protocol):
    """A database restored from dumps (PostgreSQL)."""

    async def plan(self, pin: str | None) -> DatabasePlan:
        """The backup to restore (`pin` or the newest) and when it was taken; checks it."""
        ...

    async def safety_backup(self, key: str) -> StepResult:
        """Dump the current database, once per key; ids name the dump."""
        ...

    async def restore(self, backup: str, key: str) -> StepResult:
        """Replace the database's contents with `backup`."""
        ...

    async def dump_point(self, point: str, key: str) -> PointDump:
        """Dump the current database beside the backups as restore point `point`'s dump,
        streamed (never held in memory), once per key; a dump of that name that another key
        wrote is refused (PermanentError), never overwritten."""
        ...

    async def drop_point(self, point: str, key: str) -> bool:
        """Delete restore point `point`'s dump if `key` wrote it (also the dump of a point that
        failed after it); False when there is none of ours (then nothing is deleted)."""
        ...

    async def candidates(self, limit: int) -> list[Candidate]:
        """The newest `limit` backups, newest first (`state` their format or "backup", `note`
        their size), the default marked (appended when it is older). Read-only."""
        ...


class Storage(Protocol):
    """Files restored to a point in time (S3)."""

    async def plan(self, as_of: datetime, source: str | None = None) -> StoragePlan:
        """What a restore to `as_of` would change; `source` (as `StoragePlan.source` names
        it: `versions` or a dated folder) fixes where the past is read, else it is chosen."""
        ...

    async def restore(self, as_of: datetime, key: str, source: str | None = None) -> StepResult:
        """Make every object as it was at `as_of`, never deleting a version."""
        ...

    async def snapshot(self, at: datetime, point: str, key: str) -> PointCopy:
        """Take restore point `point`'s storage moment `at`: the time itself on a versioned
        bucket; else a server-side copy of the files to a dated folder the restore reads."""
        ...

    async def drop_snapshot(self, at: datetime, point: str, key: str) -> int:
        """Delete the copy folder restore point `point` taken at `at` made (nothing outside
        it; none on a versioned bucket); how many objects it held."""
        ...


@dataclass(frozen=True)
class Notice:
    """Something people should hear about a rollback."""

    kind: Literal["started", "finished", "breach"]  # breach: a policy rule went Warning/Critical
    namespace: str
    name: str
    uid: str
    mode: str
    targets: tuple[str, ...]
    reason: str
    phase: str
    summary: str
    trigger: str = "manual"
    version: str = ""
    moves: tuple[tuple[str, str], ...] = ()  # (target, "from -> to") from the plan
    report: str = ""  # where the incident report is (ConfigMap name or URL)
    contacts: tuple[str, ...] = ()  # "role: name <email>", shown when something failed
    failed: bool = False  # the rollback ended Failed, PartiallyFailed or Aborted
    traffic_stopped: tuple[str, ...] = ()  # layers whose traffic the rollback left stopped
    resume_hint: str = ""  # how a person resumes that traffic (a kubectl command)


class Notifier(Protocol):
    """A channel to people (Slack, Statuspage, PagerDuty)."""

    name: str

    async def notify(self, notice: Notice, key: str, journal: Journal) -> StepResult:
        """Send `notice` once per key.

        `journal.recorded` holds what this notifier recorded for earlier notices of the same
        rollback (a Statuspage incident id, a Slack message ts), so `finished` can update what
        `started` created; record new ids before sending anything that must not repeat.
        """
        ...


class Verifier(Protocol):
    """The post-rollback checklist."""

    async def verify(self) -> list[CheckResult]:
        """Run every configured check and return each result."""
        ...


class ReportArchive(Protocol):
    """Durable copies of incident reports and the deployment log (an S3 bucket)."""

    async def store(
        self, namespace: str, name: str, markdown: str, *, uid: str, created: datetime
    ) -> str:
        """Write the report of the Rollback `namespace/name` with `uid`, created at `created`,
        where no other Rollback's report is (one applied again under the same name has another
        uid); returns its location."""
        ...

    async def log(self, line: str, marker: str) -> bool:
        """Append `line` to `reports/deployment.log` unless a line ending in `marker` is there;
        True when it was appended."""
        ...


@dataclass
class Providers:
    """The providers one policy needs; a target is None when the policy does not define it."""

    frontend: DeploymentTarget | None = None
    backend: DeploymentTarget | None = None
    database: Database | None = None
    storage: Storage | None = None
    notifiers: list[Notifier] = field(default_factory=list)
    verifier: Verifier | None = None
    archive: ReportArchive | None = None
    metrics: MetricsSource | None = None  # the policy's rules: watched in verification, reported
    restore_points: Mapping[str, RestorePoint] = field(default_factory=dict)
    """The RestorePoints a rollback's `to.restorePoint` may name, by name (read, not built)."""


class SecretReader(Protocol):
    """Reads one key of a Secret in a namespace."""

    async def read(self, namespace: str, name: str, key: str) -> str:
        """The decoded value without surrounding whitespace; raises PermanentError when the
        Secret or key is missing."""
        ...


class ProviderFactory(Protocol):
    """Builds the providers for one policy, reading its Secrets."""

    async def build(self, policy: RollbackPolicy, secrets: SecretReader) -> Providers:
        """Providers for every target, notifier and check the policy defines."""
        ...

    async def notifiers(self, policy: RollbackPolicy, secrets: SecretReader) -> list[Notifier]:
        """Only the notifiers (for announcements outside a rollback, such as rule breaches)."""
        ...


# -- metrics: what RollbackPolicy rules are evaluated against --------------------------------


@dataclass(frozen=True)
class Sample:
    """The value of a query at one time; `value` is None when there was no data.

    NaN and +/-Inf are passed on as floats: what they mean is the rule logic's decision.
    """

    at: datetime
    value: float | None


class MetricsSource(Protocol):
    """A query API that answers one number per expression at a given time (Prometheus).

    Both calls raise `RetryableError` when the source cannot be reached or is overloaded,
    `UnauthorizedError`/`NotFoundError` when it refuses us, and `PermanentError` for a query
    it cannot answer as one number (bad syntax, more than one series, a string result).
    """

    async def query(self, expr: str, at: datetime) -> Sample:
        """The value of `expr` at `at`."""
        ...

    async def query_all(self, exprs: Sequence[str], at: datetime) -> list[Sample | ProviderError]:
        """Each of `exprs` at `at` (in as few requests as the source allows); a failed one is
        its error, in its place."""
        ...

    async def history(
        self, expr: str, at: datetime, window: timedelta, step: timedelta
    ) -> list[Sample]:
        """`expr` every `step` over the `window` that ends at `at`, oldest first; every step
        is listed, with `value` None where the source had no data."""
        ...


class MetricsFactory(Protocol):
    """Builds the metrics source a policy names, reading its Secrets."""

    async def build(self, policy: RollbackPolicy, secrets: SecretReader) -> MetricsSource:
        """The source of `policy.spec.metrics`; PermanentError when there is none."""
        ...
