"""What the Railway fake serves: its slice of Railway's schema, the records it keeps, and
how those look in its answers.

Why this module exists: the schema, the deployment and service-instance records and their
JSON shapes are shared by the fake's world (`railway_world`: its state and how deployments
move) and its API (`railway_server`: GraphQL over HTTP), and need neither.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.fakes.graphql import GraphQLError
from sandbox.fakes.graphql_schema import Schema

# The slice of Railway's schema the fake serves: docs/providers.md R7, R8, R10, R12-R15, R18,
# R20, R22.
SDL = """
type Query {
  deployments(input: DeploymentListInput!, first: Int, after: String, last: Int,
              before: String): QueryDeploymentsConnection!
  deployment(id: String!): Deployment!
  serviceInstance(serviceId: String!, environmentId: String!): ServiceInstance!
  projectToken: ProjectToken!
}
type Mutation {
  deploymentRollback(id: String!): Boolean!
  deploymentRedeploy(id: String!, usePreviousImageTag: Boolean): Deployment!
  deploymentRestart(id: String!): Boolean!
  deploymentStop(id: String!): Boolean!
  deploymentRemove(id: String!): Boolean!
  deploymentCancel(id: String!): Boolean!
  serviceInstanceRedeploy(serviceId: String!, environmentId: String!): Boolean!
  serviceInstanceDeployV2(serviceId: String!, environmentId: String!,
                          commitSha: String): String!
  serviceInstanceUpdate(serviceId: String!, environmentId: String,
                        input: ServiceInstanceUpdateInput!): Boolean!
  environmentPatchCommit(environmentId: String!, patch: EnvironmentConfig,
                         commitMessage: String): String!
}
type Deployment {
  id: ID! status: DeploymentStatus! createdAt: DateTime! updatedAt: DateTime!
  statusUpdatedAt: DateTime projectId: String! environmentId: String! serviceId: String
  staticUrl: String url: String meta: DeploymentMeta canRollback: Boolean!
  canRedeploy: Boolean! deploymentStopped: Boolean! snapshotId: String
  creator: DeploymentCreator instances: [DeploymentDeploymentInstance!]!
}
type DeploymentCreator { id: String! name: String email: String! avatar: String }
type DeploymentDeploymentInstance { id: String! status: DeploymentInstanceStatus! }
type QueryDeploymentsConnection { edges: [QueryDeploymentsConnectionEdge!]! pageInfo: PageInfo! }
type QueryDeploymentsConnectionEdge { cursor: String! node: Deployment! }
type PageInfo {
  hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String
}
type ServiceInstance {
  id: ID! serviceId: String! environmentId: String! numReplicas: Int region: String
  sleepApplication: Boolean restartPolicyType: RestartPolicyType!
  restartPolicyMaxRetries: Int! healthcheckPath: String startCommand: String
  latestDeployment: Deployment activeDeployments: [Deployment!]!
}
type ProjectToken {
  id: ID! name: String! projectId: String! environmentId: String! displayToken: String!
  createdAt: DateTime!
}
input DeploymentListInput {
  projectId: String serviceId: String environmentId: String includeDeleted: Boolean
  status: DeploymentStatusInput
}
input DeploymentStatusInput { in: [DeploymentStatus!] notIn: [DeploymentStatus!] }
input ServiceInstanceUpdateInput {
  numReplicas: Int multiRegionConfig: JSON region: String sleepApplication: Boolean
  restartPolicyType: RestartPolicyType restartPolicyMaxRetries: Int healthcheckPath: String
  startCommand: String
}
enum DeploymentStatus {
  BUILDING CRASHED DEPLOYING FAILED INITIALIZING NEEDS_APPROVAL QUEUED REMOVED REMOVING
  SKIPPED SLEEPING SUCCESS WAITING
}
enum RestartPolicyType { ALWAYS NEVER ON_FAILURE }
"""
SCHEMA = Schema(SDL)
STATUSES = SCHEMA.enums["DeploymentStatus"]
IN_PROGRESS = frozenset(
    {"INITIALIZING", "QUEUED", "WAITING", "NEEDS_APPROVAL", "BUILDING", "DEPLOYING", "REMOVING"}
)
RUNNING = frozenset({"SUCCESS", "SLEEPING"})
# The fake's own wording; Railway's exact messages are uncertain (docs/providers.md#R5).
NOT_FOUND = "Deployment not found"
CANNOT_ROLLBACK = "Deployment cannot be rolled back"


@dataclass
class Progress:
    """A deployment created by rollback/redeploy, walking `path` towards `outcome`."""

    path: tuple[str, ...]
    outcome: str
    started: float
    polls: int = 0


@dataclass
class RailwayDeployment:
    """One deployment of a service in an environment, as the fake keeps it."""

    id: str
    seq: int
    project_id: str
    environment_id: str
    service_id: str
    status: str
    created_at: float
    updated_at: float
    meta: dict[str, Any]
    can_rollback: bool
    replicas: int
    origin: str = "source"  # source (a push or a deploy of the service), rollback, redeploy
    stopped: bool = False
    stopping_since: int | None = None  # the request count when `deploymentStop` was asked
    removing_since: int | None = None
    progress: Progress | None = None

    @property
    def serving(self) -> bool:
        """Whether its instances run and take traffic."""
        return instance_status(self) == "RUNNING" and self.replicas > 0


@dataclass
class RailwayServiceInstance:
    """A service in one environment: its regions' replicas and its settings."""

    id: str
    service_id: str
    environment_id: str
    region: str
    replicas_by_region: dict[str, int]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def total_replicas(self) -> int:
        """Replicas over every region."""
        return sum(self.replicas_by_region.values())

    @property
    def num_replicas(self) -> int:
        """The legacy single-region value: reads 1 once several regions are configured."""
        regions = self.replicas_by_region
        return next(iter(regions.values())) if len(regions) == 1 else 1


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account token (some or all projects) or a project token."""

    projects: frozenset[str] | None  # None: every project (account token)
    environment_id: str | None = None  # set for project tokens
    token_id: str | None = None

    def allows(self, project_id: str, environment_id: str | None) -> bool:
        """Whether this caller may see or change things in that project and environment."""
        in_project = self.projects is None or project_id in self.projects
        return in_project and self.environment_id in (None, environment_id)


def deployment_json(d: RailwayDeployment) -> dict[str, Any]:
    """A deployment as Railway's API shows it (every field; the query picks)."""
    host = f"{d.service_id[-6:]}-{d.seq}.up.railway.app"
    return {
        "id": d.id, "status": d.status, "createdAt": iso(d.created_at),
        "updatedAt": iso(d.updated_at), "statusUpdatedAt": iso(d.updated_at),
        "projectId": d.project_id, "environmentId": d.environment_id,
        "serviceId": d.service_id, "staticUrl": host, "url": f"https://{host}",
        "meta": d.meta, "canRollback": d.can_rollback,
        "canRedeploy": d.status not in IN_PROGRESS, "deploymentStopped": d.stopped,
        "snapshotId": None,
        "creator": {"id": "user-fake", "name": "Fake", "email": "fake@example.com",
                    "avatar": None},
        "instances": [{"id": f"{d.id}-{i}", "status": instance_status(d)}
                      for i in range(d.replicas if instance_status(d) else 0)],
    }  # fmt: skip


def instance_json(
    inst: RailwayServiceInstance,
    latest: RailwayDeployment | None,
    active: list[RailwayDeployment],
) -> dict[str, Any]:
    """A service instance as Railway's API shows it, with its latest and active deployments."""
    settings = inst.settings
    return {
        "id": inst.id, "serviceId": inst.service_id, "environmentId": inst.environment_id,
        "numReplicas": inst.num_replicas, "region": inst.region,
        "sleepApplication": settings.get("sleepApplication", False),
        "restartPolicyType": settings.get("restartPolicyType", "ON_FAILURE"),
        "restartPolicyMaxRetries": settings.get("restartPolicyMaxRetries", 10),
        "healthcheckPath": settings.get("healthcheckPath"),
        "startCommand": settings.get("startCommand"),
        "latestDeployment": deployment_json(latest) if latest else None,
        "activeDeployments": [deployment_json(d) for d in active],
    }  # fmt: skip


def connection(items: list[RailwayDeployment], args: dict[str, Any], page_size: int) -> Any:
    """A Relay connection of `items` (newest first); cursors encode (createdAt, sequence).

    `page_size` applies when neither `first` nor `last` is given.
    """
    keys = [(d.created_at, d.seq) for d in items]
    start, end = 0, len(items)
    if args.get("after") is not None:
        after = decode_cursor(args["after"])
        start = sum(1 for k in keys if k >= after)
    if args.get("before") is not None:
        end = sum(1 for k in keys if k > decode_cursor(args["before"]))
    first, last = args.get("first"), args.get("last")
    if (first or 0) < 0 or (last or 0) < 0:
        raise GraphQLError("`first` and `last` must be non-negative")
    if first is None and last is None:
        first = page_size
    end = min(end, start + first) if first is not None else end
    start = max(start, end - last) if last is not None else start
    edges = [{"cursor": cursor(d), "node": deployment_json(d)} for d in items[start:end]]
    page_info = {
        "hasNextPage": end < len(items),
        "hasPreviousPage": start > 0,
        "startCursor": edges[0]["cursor"] if edges else None,
        "endCursor": edges[-1]["cursor"] if edges else None,
    }
    return {"edges": edges, "pageInfo": page_info}


def instance_status(d: RailwayDeployment) -> str | None:
    """What the deployment's instances report, or None when it has none."""
    if d.status in RUNNING:
        return "STOPPED" if d.stopped else "RUNNING"
    return {"REMOVING": "REMOVING", "REMOVED": "REMOVED", "CRASHED": "CRASHED",
            "DEPLOYING": "INITIALIZING"}.get(d.status)  # fmt: skip


def iso(ts: float) -> str:
    """Unix seconds as Railway's ISO 8601 timestamps (milliseconds, Z)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cursor(d: RailwayDeployment) -> str:
    """A deployment's opaque Relay cursor."""
    return base64.b64encode(f"{d.created_at!r}|{d.seq}".encode()).decode()


def decode_cursor(text: str) -> tuple[float, int]:
    """(createdAt, sequence) from a cursor; a GraphQL error for a cursor we did not make."""
    try:
        created, seq = base64.b64decode(text).decode().split("|")
        return float(created), int(seq)
    except ValueError as exc:
        raise GraphQLError(f"Invalid cursor: {text}") from exc
