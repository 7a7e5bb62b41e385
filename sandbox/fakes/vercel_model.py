"""What the Vercel fake serves: the records it keeps (projects, deployments, aliases, alias
jobs) and how they look in its answers.

Why this module exists: the records and their JSON shapes are shared by the fake's world
(`vercel_world`: its state and how alias jobs move) and its API (`vercel_server`: routes over
HTTP), and need neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DEPLOYMENT_STATES = frozenset(
    {"BUILDING", "ERROR", "INITIALIZING", "QUEUED", "READY", "CANCELED", "DELETED", "BLOCKED"}
)
JobStatus = Literal["pending", "in-progress", "succeeded", "failed", "skipped"]
JobOutcome = Literal["succeeded", "failed", "skipped"]
TERMINAL_JOB_STATUSES = frozenset({"succeeded", "failed", "skipped"})
# 400/403/404/405/429/500 are documented codes; 402/409/422 names are the fake's guess.
ERROR_CODES = {
    400: "bad_request",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    405: "method_unknown",
    409: "conflict",
    422: "unprocessable_entity",
    429: "rate_limited",
}


@dataclass(frozen=True)
class RollbackRejections:
    """Statuses for refused rollback/promote requests (all uncertain: docs/providers.md#V7)."""

    other_project: int = 400
    ineligible: int = 400
    job_running: int = 409
    hobby_not_previous: int = 402


@dataclass
class VercelDeployment:
    """One deployment of a project, as the fake keeps it."""

    uid: str
    name: str
    project_id: str
    url: str
    created_at: int
    state: str
    target: str | None
    meta: dict[str, str]
    creator_uid: str
    served_production: bool = False

    @property
    def ready_substate(self) -> str | None:
        if self.state != "READY":
            return None
        return "PROMOTED" if self.served_production else "STAGED"

    @property
    def is_rollback_candidate(self) -> bool:
        return self.state == "READY" and self.served_production


@dataclass
class VercelAlias:
    """A production alias (hostname) and the deployment it points at."""

    id: str
    hostname: str
    created_at: int
    deployment_id: str | None
    status: str = "completed"


@dataclass
class AliasJob:
    """The project's `lastAliasRequest`: one rollback or promote moving production aliases."""

    type: Literal["rollback", "promote"]
    from_id: str | None
    to_id: str
    requested_at: int
    outcome: JobOutcome
    status: JobStatus = "pending"
    polls: int = 0
    description: str | None = None
    clock_ahead_ms: int = 0
    """How far ahead of the deployments' clock `requestedAt` is stamped (docs/providers.md#V13)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "fromDeploymentId": self.from_id,
            "toDeploymentId": self.to_id,
            "requestedAt": self.requested_at + self.clock_ahead_ms,
            "jobStatus": self.status,
        }


@dataclass
class VercelProject:
    """A project: its production deployment, aliases and last alias job."""

    id: str
    name: str
    account_id: str
    created_at: int
    updated_at: int
    paused: bool = False
    production: str | None = None
    job: AliasJob | None = None
    aliases: list[VercelAlias] = field(default_factory=list)


def list_item(d: VercelDeployment) -> dict[str, Any]:
    """A deployment as `GET /v6/deployments` lists it."""
    return {
        "uid": d.uid,
        "created": d.created_at,
        "state": d.state,
        **common(d),
    }


def full(d: VercelDeployment, project: VercelProject, teams: dict[str, str]) -> dict[str, Any]:
    """A deployment as `GET /v13/deployments/{id}` shows it; `teams` maps team ids to slugs."""
    aliases = [a.hostname for a in project.aliases if a.deployment_id == d.uid]
    team = project.account_id in teams
    return {
        "id": d.uid,
        "status": d.state,
        "ownerId": project.account_id,
        "alias": aliases,
        "regions": ["iad1"],
        "team": {"id": project.account_id, "name": teams[project.account_id],
                 "slug": teams[project.account_id]} if team else None,
        **common(d),
        "aliasAssigned": bool(aliases),
    }  # fmt: skip


def common(d: VercelDeployment) -> dict[str, Any]:
    """The fields every shape of a deployment carries."""
    return {
        "name": d.name,
        "projectId": d.project_id,
        "url": d.url,
        "createdAt": d.created_at,
        "buildingAt": d.created_at,
        "ready": d.created_at if d.state == "READY" else None,
        "readyState": d.state,
        "readySubstate": d.ready_substate,
        "target": d.target,
        "meta": dict(d.meta),
        "isRollbackCandidate": d.is_rollback_candidate,
        "type": "LAMBDAS",
        "source": "git",
        "creator": {"uid": d.creator_uid},
        "inspectorUrl": f"https://vercel.com/fake/{d.name}/{d.uid}",
        "aliasAssigned": d.served_production,
        "aliasError": None,
    }


def matches_filters(d: VercelDeployment, q: Any) -> bool:
    """The remaining documented list filters: target, app, branch, sha, users, candidates."""
    target = q.get("target")
    if target is not None and d.target != (None if target == "preview" else target):
        return False
    if "rollbackCandidate" in q and d.is_rollback_candidate != (q["rollbackCandidate"] == "true"):
        return False
    if "users" in q and d.creator_uid not in q["users"].split(","):
        return False
    meta = d.meta
    checks = {
        "app": d.name,
        "branch": meta.get("githubCommitRef"),
        "sha": meta.get("githubCommitSha"),
    }
    return all(q[k] == v for k, v in checks.items() if k in q)


def alias_json(alias: VercelAlias, flat: bool) -> Any:
    """CLI shape `{alias, deploymentId}`, or the SDK's flattened hostname string."""
    return (
        alias.hostname if flat else {"alias": alias.hostname, "deploymentId": alias.deployment_id}
    )


def page(items: list[Any], limit: int) -> dict[str, Any]:
    """`pagination` for a newest-first list: `next` is the last item's created ms if more remain."""
    page = items[:limit]
    return {
        "pagination": {
            "count": len(page),
            "next": page[-1].created_at if len(items) > limit else None,
            "prev": page[0].created_at if page else None,
        }
    }
