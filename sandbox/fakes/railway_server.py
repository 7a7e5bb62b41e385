"""A stateful fake of Railway's public GraphQL API (`POST /graphql/v2`) for the operator's tests.

Why this module exists: the operator's Railway adapter must be tested over real HTTP (both
token headers, GraphQL `errors` inside HTTP 200, Relay pagination, `deploymentRollback`
returning a bare Boolean and spawning a deployment that moves through statuses, replica
changes, 429s and transport faults) without talking to Railway. Behaviour follows
/work/shared/reference/providers.md section 2, in particular 2.8 "What a faithful Railway fake
must do"; UNCONFIRMED points are constructor flags of `FakeRailway` whose defaults are the
documented primary behaviour.

Requests are parsed by a small GraphQL parser (operations, `operationName`, variables with
defaults, aliases, nested selections, literal and variable arguments; no fragments or
directives), validated against `SCHEMA` below (unknown fields and arguments, missing required
arguments, variable types, sub-selections on scalars such as `deploymentRollback { id }`) and
answered with exactly the selected fields. The root fields in `SCHEMA` are the supported ones.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from sandbox.fakes.http_server import (
    ApiCall,
    Clock,
    ErrorReply,
    FakeApi,
    RateLimited,
    RateState,
    RateWindow,
    ReplyFault,
)

# The slice of Railway's schema the fake serves, as in providers.md 2.3-2.5.
SCHEMA = """
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
FieldDef = tuple[str, dict[str, str]]  # (type reference, argument name -> type reference)


def _load_schema(sdl: str) -> tuple[dict[str, dict[str, FieldDef]], dict[str, tuple[str, ...]]]:
    """Object and input types as {type: {field: (type, args)}}, and enums as {enum: values}."""
    types: dict[str, dict[str, FieldDef]] = {}
    enums: dict[str, tuple[str, ...]] = {}
    for kind, name, body in re.findall(r"(type|input|enum)\s+(\w+)\s*\{([^}]*)\}", sdl):
        if kind == "enum":
            enums[name] = tuple(body.split())
            continue
        fields = re.findall(r"(\w+)\s*(?:\(([^)]*)\))?\s*:\s*([\w\[\]!]+)", body)
        types[name] = {
            f: (ref, dict(re.findall(r"(\w+)\s*:\s*([\w\[\]!]+)", args))) for f, args, ref in fields
        }
    return types, enums


TYPES, ENUMS = _load_schema(SCHEMA)
INPUTS = frozenset(re.findall(r"input\s+(\w+)", SCHEMA))
STATUSES = ENUMS["DeploymentStatus"]
IN_PROGRESS = frozenset(
    {"INITIALIZING", "QUEUED", "WAITING", "NEEDS_APPROVAL", "BUILDING", "DEPLOYING", "REMOVING"}
)
_RUNNING = frozenset({"SUCCESS", "SLEEPING"})
# Messages providers.md marks UNCONFIRMED (2.2): the fake's own wording.
NOT_FOUND = "Deployment not found"
CANNOT_ROLLBACK = "Deployment cannot be rolled back"


# ----- a small GraphQL parser -----


class GraphQLError(Exception):
    """An error answered in GraphQL's `errors` envelope."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class EnumLiteral:
    name: str


@dataclass(frozen=True)
class Field:
    name: str
    alias: str | None
    args: dict[str, Any]
    selections: tuple[Field, ...] | None

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class Operation:
    kind: str
    name: str | None
    var_types: dict[str, str]
    var_defaults: dict[str, Any]
    fields: tuple[Field, ...]


_TOKEN = re.compile(
    r"""(?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
      | (?P<punct>\.\.\.|[!$():=@\[\]{}|&])""",
    re.VERBOSE,
)


def parse_operation(query: str, operation_name: str | None = None) -> Operation:
    """Parse `query` and pick the operation named `operation_name` (or the only one)."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if match is None:
            raise GraphQLError(f"Syntax Error: Unexpected character {query[pos]!r}.")
        pos = match.end()
        if match.lastgroup != "skip":
            tokens.append((match.lastgroup or "", match.group()))
    ops = _Parser(tokens).document()
    chosen = [op for op in ops if operation_name in (None, op.name)]
    if len(chosen) != 1:
        raise GraphQLError("Must provide a valid operationName.")
    return chosen[0]


class _Parser:
    """Recursive descent over the executable subset of GraphQL the operator needs."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "<EOF>")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        tok_kind, tok = self.peek()
        if tok_kind == "eof" or (value or tok) != tok or (kind or tok_kind) != tok_kind:
            raise GraphQLError(f"Syntax Error: Expected {value or kind}, found {tok}.")
        self.i += 1
        return tok

    def accept(self, value: str) -> bool:
        if self.peek() == ("punct", value):
            self.i += 1
            return True
        return False

    def document(self) -> list[Operation]:
        ops = [self.operation()]
        while self.peek()[0] != "eof":
            ops.append(self.operation())
        return ops

    def operation(self) -> Operation:
        if self.peek() == ("punct", "{"):
            return Operation("query", None, {}, {}, self.selection_set())
        kind = self.take(kind="name")
        if kind not in ("query", "mutation"):
            raise GraphQLError(f'"{kind}" definitions are not supported by this fake.')
        name = self.take(kind="name") if self.peek()[0] == "name" else None
        types: dict[str, str] = {}
        defaults: dict[str, Any] = {}
        if self.accept("("):
            while not self.accept(")"):
                self.take("$")
                var = self.take(kind="name")
                self.take(":")
                types[var] = self.type_ref()
                if self.accept("="):
                    defaults[var] = self.value()
        return Operation(kind, name, types, defaults, self.selection_set())

    def type_ref(self) -> str:
        ref = f"[{self.type_ref()}{self.take(']')}" if self.accept("[") else self.take(kind="name")
        return ref + "!" if self.accept("!") else ref

    def selection_set(self) -> tuple[Field, ...]:
        self.take("{")
        fields = [self.field()]
        while not self.accept("}"):
            fields.append(self.field())
        return tuple(fields)

    def field(self) -> Field:
        if self.peek()[1] in ("...", "@"):
            raise GraphQLError("Fragments and directives are not supported by this fake.")
        alias, name = None, self.take(kind="name")
        if self.accept(":"):
            alias, name = name, self.take(kind="name")
        args: dict[str, Any] = {}
        if self.accept("("):
            while not self.accept(")"):
                arg = self.take(kind="name")
                self.take(":")
                args[arg] = self.value()
        selections = self.selection_set() if self.peek() == ("punct", "{") else None
        return Field(name, alias, args, selections)

    def value(self) -> Any:
        kind, tok = self.peek()
        if self.accept("$"):
            return Var(self.take(kind="name"))
        if self.accept("["):
            items = []
            while not self.accept("]"):
                items.append(self.value())
            return items
        if self.accept("{"):
            obj: dict[str, Any] = {}
            while not self.accept("}"):
                key = self.take(kind="name")
                self.take(":")
                obj[key] = self.value()
            return obj
        self.take(kind=kind if kind in ("string", "number", "name") else "value")
        if kind == "string":
            return json.loads(tok)
        if kind == "number":
            return float(tok) if re.search(r"[.eE]", tok) else int(tok)
        return {"true": True, "false": False, "null": None}.get(tok, EnumLiteral(tok))


# ----- validation, coercion and projection against SCHEMA -----


def _validate(op: Operation) -> None:
    root = "Mutation" if op.kind == "mutation" else "Query"
    for f in op.fields:
        _check_field(root, f, op)


def _check_field(parent: str, f: Field, op: Operation) -> None:
    if f.name == "__typename" and parent not in ("Query", "Mutation"):
        return
    if f.name not in TYPES[parent]:
        raise GraphQLError(f'Cannot query field "{f.name}" on type "{parent}".')
    type_ref, arg_types = TYPES[parent][f.name]
    for arg, value in f.args.items():
        expected = arg_types.get(arg)
        if expected is None:
            raise GraphQLError(f'Unknown argument "{arg}" on field "{parent}.{f.name}".')
        used = op.var_types.get(value.name) if isinstance(value, Var) else None
        if isinstance(value, Var) and used not in (expected, expected.rstrip("!") + "!"):
            raise GraphQLError(
                f'Variable "${value.name}" of type "{used}" used in position expecting '
                f'type "{expected}".'
            )
    for arg, expected in arg_types.items():
        if expected.endswith("!") and arg not in f.args:
            raise GraphQLError(
                f'Field "{f.name}" argument "{arg}" of type "{expected}" is required, '
                "but it was not provided."
            )
    base = type_ref.strip("[]!")
    if base not in TYPES and f.selections is not None:
        raise GraphQLError(
            f'Field "{f.name}" must not have a selection since type "{type_ref}" has no subfields.'
        )
    if base in TYPES and f.selections is None:
        raise GraphQLError(
            f'Field "{f.name}" of type "{type_ref}" must have a selection of subfields.'
        )
    for sub in f.selections or ():
        _check_field(base, sub, op)


def _coerce(value: Any, type_ref: str, variables: dict[str, Any], literal: bool) -> Any:
    """Check `value` against a GraphQL type reference, resolving `$variables` on the way."""
    if isinstance(value, Var):  # already coerced to its declared type; check this position too
        return _coerce(variables.get(value.name), type_ref, {}, literal=False)
    base = type_ref.removesuffix("!")
    if value is None:
        if base != type_ref:
            raise GraphQLError(f'Expected value of type "{type_ref}", found null.')
        return None
    if base.startswith("["):
        items = value if isinstance(value, list) else [value]
        return [_coerce(v, base[1:-1], variables, literal) for v in items]
    if base in INPUTS:
        if not isinstance(value, dict):
            raise GraphQLError(f'Expected type "{base}" to be an object.')
        for key in value.keys() - TYPES[base].keys():
            raise GraphQLError(f'Field "{key}" is not defined by type "{base}".')
        fields = TYPES[base]
        return {k: _coerce(v, fields[k][0], variables, literal) for k, v in value.items()}
    if base in ENUMS:
        name = value.name if isinstance(value, EnumLiteral) else None if literal else value
        if name not in ENUMS[base]:
            raise GraphQLError(f'Value "{value}" does not exist in "{base}" enum.')
        return name
    valid = {
        "String": isinstance(value, str),
        "ID": isinstance(value, str | int) and not isinstance(value, bool),
        "Int": isinstance(value, int) and not isinstance(value, bool),
        "Boolean": isinstance(value, bool),
    }.get(base, not isinstance(value, EnumLiteral))
    if not valid:
        raise GraphQLError(f"{base} cannot represent value: {json.dumps(str(value))}")
    return str(value) if base == "ID" else value


def _coerce_variables(op: Operation, provided: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, type_ref in op.var_types.items():
        if name in provided:
            values[name] = _coerce(provided[name], type_ref, {}, literal=False)
        elif name in op.var_defaults:
            values[name] = _coerce(op.var_defaults[name], type_ref, {}, literal=True)
        elif type_ref.endswith("!"):
            raise GraphQLError(
                f'Variable "${name}" of required type "{type_ref}" was not provided.'
            )
    return values


def _coerce_args(root: str, f: Field, variables: dict[str, Any]) -> dict[str, Any]:
    types = TYPES[root][f.name][1]
    return {k: _coerce(v, types[k], variables, literal=True) for k, v in f.args.items()}


def _project(value: Any, type_ref: str, f: Field) -> Any:
    """Keep only the selected fields (under their aliases) of a resolver's full answer."""
    base = type_ref.rstrip("!")
    if value is None or f.selections is None:
        return value
    if base.startswith("["):
        return [_project(v, base[1:-1], f) for v in value]
    return {
        s.key: base
        if s.name == "__typename"
        else _project(value[s.name], TYPES[base][s.name][0], s)
        for s in f.selections
    }


# ----- state -----


@dataclass
class Progress:
    """A deployment created by rollback/redeploy, walking `path` towards `outcome`."""

    path: tuple[str, ...]
    outcome: str
    started: float
    polls: int = 0


@dataclass
class RailwayDeployment:
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
    stopped: bool = False
    removing_since: int | None = None
    progress: Progress | None = None


@dataclass
class RailwayServiceInstance:
    id: str
    service_id: str
    environment_id: str
    region: str
    replicas_by_region: dict[str, int]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def total_replicas(self) -> int:
        return sum(self.replicas_by_region.values())

    @property
    def num_replicas(self) -> int:
        """The legacy single-region value: reads 1 once several regions are configured."""
        regions = self.replicas_by_region
        return next(iter(regions.values())) if len(regions) == 1 else 1


@dataclass(frozen=True)
class _Principal:
    projects: frozenset[str] | None  # None: every project (account token)
    environment_id: str | None = None  # set for project tokens
    token_id: str | None = None

    def allows(self, project_id: str, environment_id: str | None) -> bool:
        in_project = self.projects is None or project_id in self.projects
        return in_project and self.environment_id in (None, environment_id)


Resolver = Callable[[_Principal, dict[str, Any]], Any]


class FakeRailway(FakeApi):
    """In-memory Railway: projects, environments, services, service instances, deployments.

    Deployments created by `deploymentRollback`/`deploymentRedeploy`/`serviceInstanceRedeploy`
    show `deploy_path` statuses for the first `deploy_polls` `deployment(id)` polls and reach
    `deploy_outcome` on the next one (or after `deploy_seconds` of `clock` time); on SUCCESS
    the previously active deployment goes REMOVING, and REMOVED once `drain_requests` more
    requests have been answered (the overlap window, counted in requests).

    UNCONFIRMED choices and their flags: validation-error HTTP status
    (`validation_error_status`, 200); project tokens may run mutations
    (`project_token_can_mutate`, True); `numReplicas: 0` accepted (`allow_zero_replicas`);
    replica changes resize the running deployment without a redeploy
    (`replicas_apply_immediately`); `X-RateLimit-Reset` as Unix seconds or ISO
    (`rate_limit_reset_format`); 429 body as GraphQL `errors` JSON or plain text
    (`rate_limit_body`); page size when neither `first` nor `last` is sent
    (`default_page_size`). `includeDeleted` is accepted and ignored.
    """

    def __init__(
        self,
        *,
        token: str = "railway-test-token",
        latency: float = 0.0,
        clock: Clock = time.time,
        deploy_polls: int = 2,
        deploy_seconds: float | None = None,
        deploy_path: tuple[str, ...] = ("INITIALIZING", "DEPLOYING"),
        deploy_outcome: Literal["SUCCESS", "FAILED", "CRASHED"] = "SUCCESS",
        drain_requests: int = 1,
        validation_error_status: Literal[200, 400] = 200,
        project_token_can_mutate: bool = True,
        allow_zero_replicas: bool = True,
        replicas_apply_immediately: bool = True,
        rate_limit: int = 10_000,
        rate_limit_window: float = 3600.0,
        rate_limit_reset_format: Literal["epoch", "iso"] = "epoch",
        rate_limit_body: Literal["graphql", "text"] = "graphql",
        default_page_size: int = 100,
    ) -> None:
        super().__init__(latency=latency, clock=clock)
        self.deploy_polls = deploy_polls
        self.deploy_seconds = deploy_seconds
        self.deploy_path = deploy_path
        self.deploy_outcome = deploy_outcome
        self.drain_requests = drain_requests
        self.validation_error_status = validation_error_status
        self.project_token_can_mutate = project_token_can_mutate
        self.allow_zero_replicas = allow_zero_replicas
        self.replicas_apply_immediately = replicas_apply_immediately
        self.rate_limit_reset_format = rate_limit_reset_format
        self.rate_limit_body = rate_limit_body
        self.default_page_size = default_page_size
        self._rate = RateWindow(rate_limit, rate_limit_window, clock)
        self._last_rate: RateState | None = None
        self._ids = itertools.count(1)
        self._ticks = 0
        self._account_tokens: dict[str, frozenset[str] | None] = {token: None}
        self._project_tokens: dict[str, tuple[str, str, str]] = {}  # -> (id, project, env)
        self._projects: dict[str, str] = {}
        self._environments: dict[str, str] = {}  # env id -> project id
        self._services: dict[str, str] = {}  # service id -> project id
        self._instances: dict[tuple[str, str], RailwayServiceInstance] = {}
        self._deployments: dict[str, RailwayDeployment] = {}
        self._resolvers: dict[str, Resolver] = {
            "deployments": self._q_deployments,
            "deployment": self._q_deployment,
            "serviceInstance": self._q_service_instance,
            "projectToken": self._q_project_token,
            "deploymentRollback": self._m_rollback,
            "deploymentRedeploy": self._m_redeploy,
            "deploymentRestart": self._m_restart,
            "deploymentStop": self._m_stop,
            "deploymentRemove": self._m_remove,
            "deploymentCancel": self._m_cancel,
            "serviceInstanceRedeploy": self._m_service_redeploy,
            "serviceInstanceUpdate": self._m_service_update,
            "environmentPatchCommit": self._m_environment_patch,
        }

    # ----- seeding and inspection (call from any thread) -----

    def add_account_token(self, token: str, *, projects: Iterable[str] | None = None) -> None:
        """An account/workspace token (`Authorization: Bearer`), limited to `projects`."""
        with self.lock:
            self._account_tokens[token] = None if projects is None else frozenset(projects)

    def add_project_token(self, token: str, *, project_id: str, environment_id: str) -> None:
        """A project token (`Project-Access-Token`) bound to one environment of one project."""
        with self.lock:
            self._project_tokens[token] = (self._new_id(), project_id, environment_id)

    def add_project(self, name: str = "app") -> str:
        with self.lock:
            project_id = self._new_id()
            self._projects[project_id] = name
            return project_id

    def add_environment(self, project_id: str, name: str = "production") -> str:
        with self.lock:
            env_id = self._new_id()
            self._environments[env_id] = project_id
            for service_id in [s for s, p in self._services.items() if p == project_id]:
                self._add_instance(service_id, env_id, "us-west2", 1)
            return env_id

    def add_service(self, project_id: str, *, replicas: int = 1, region: str = "us-west2") -> str:
        """A service with an instance in every environment of the project (now and later)."""
        with self.lock:
            service_id = self._new_id()
            self._services[service_id] = project_id
            for env_id in [e for e, p in self._environments.items() if p == project_id]:
                self._add_instance(service_id, env_id, region, replicas)
            return service_id

    def add_deployment(
        self,
        service_id: str,
        environment_id: str,
        *,
        status: str = "SUCCESS",
        created_at: float | None = None,
        meta: dict[str, Any] | None = None,
        can_rollback: bool | None = None,
    ) -> str:
        """Add a deployment; a new SUCCESS one supersedes (REMOVED) the active one."""
        if status not in STATUSES:
            raise ValueError(f"unknown Railway deployment status {status!r}")
        with self.lock:
            if status == "SUCCESS":
                for old in self._active(service_id, environment_id):
                    self._set_status(old, "REMOVED")
            dep = self._new_deployment(service_id, environment_id, status, meta or {})
            dep.created_at = dep.updated_at = (
                created_at if created_at is not None else dep.created_at
            )
            dep.can_rollback = (
                status in _RUNNING | {"REMOVED"} if can_rollback is None else can_rollback
            )
            return dep.id

    def deployment(self, deployment_id: str) -> RailwayDeployment:
        """The live state object (mutate only under `fake.lock`)."""
        return self._deployments[deployment_id]

    def service_instance(self, service_id: str, environment_id: str) -> RailwayServiceInstance:
        return self._instances[(service_id, environment_id)]

    def active_deployment(self, service_id: str, environment_id: str) -> str | None:
        with self.lock:
            active = self._active(service_id, environment_id)
            return active[0].id if active else None

    def secrets(self) -> Iterable[str]:
        return [*self._account_tokens, *self._project_tokens]

    # ----- FakeApi hooks -----

    def describe(self, call: ApiCall) -> tuple[str, bool]:
        body = call.body if isinstance(call.body, dict) else {}
        try:
            op = parse_operation(str(body.get("query", "")), body.get("operationName"))
        except GraphQLError:
            return "<invalid>", False
        return ",".join(f.name for f in op.fields), op.kind == "mutation"

    def admit(self, call: ApiCall, route: str) -> web.Response | None:
        state = self._last_rate = self._rate.hit()
        return self._too_many(state) if state.exceeded else None

    def fault_response(self, fault: ReplyFault) -> web.Response:
        self._last_rate = None
        if isinstance(fault, RateLimited):
            reset = self.clock() + fault.retry_after
            return self._too_many(RateState(self._rate.limit, 0, reset, fault.retry_after, True))
        if isinstance(fault, ErrorReply):
            code = {"extensions": {"code": fault.code}} if fault.code else {}
            error = {"message": fault.message, **code}
            return web.json_response({"data": None, "errors": [error]}, status=fault.status or 200)
        return web.json_response({"errors": [{"message": fault.message}]}, status=fault.status)

    def finish(self, call: ApiCall, response: web.Response) -> None:
        if self._last_rate is not None:
            self._rate_headers(response, self._last_rate)

    def dispatch(self, call: ApiCall) -> web.Response:
        if call.path.rstrip("/") != "/graphql/v2":
            return web.json_response({"errors": [{"message": "Not Found"}]}, status=404)
        if call.method != "POST":
            return web.json_response({"errors": [{"message": "Use POST"}]}, status=405)
        self._tick()
        body = call.body
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            error = {"message": "Must provide query string."}
            return web.json_response({"errors": [error]}, status=400)
        try:
            op = parse_operation(body["query"], body.get("operationName"))
            _validate(op)
            variables = _coerce_variables(op, body.get("variables") or {})
            root = "Mutation" if op.kind == "mutation" else "Query"
            calls = [(f, _coerce_args(root, f, variables)) for f in op.fields]
        except GraphQLError as exc:
            status = self.validation_error_status
            return web.json_response({"errors": [{"message": exc.message}]}, status=status)
        try:
            who = self._authenticate(call)
            if op.kind == "mutation" and who.token_id and not self.project_token_can_mutate:
                raise GraphQLError("Not Authorized")
        except GraphQLError as exc:
            return web.json_response({"data": None, "errors": [{"message": exc.message}]})
        data: dict[str, Any] = {}
        for f, args in calls:
            try:
                answer = self._resolvers[f.name](who, args)
                data[f.key] = _project(answer, TYPES[root][f.name][0], f)
            except GraphQLError as exc:
                errors = [{"message": exc.message, "path": [f.key]}]
                return web.json_response({"data": None, "errors": errors})
        return web.json_response({"data": data})

    # ----- queries -----

    def _q_deployments(self, who: _Principal, args: dict[str, Any]) -> Any:
        where = args["input"]
        project, env = where.get("projectId"), where.get("environmentId")
        service = where.get("serviceId")
        if (project and not who.allows(project, env or who.environment_id)) or (
            env and who.environment_id not in (None, env)
        ):
            raise GraphQLError("Not Authorized")
        status = where.get("status") or {}
        wanted, unwanted = status.get("in"), status.get("notIn") or []
        items = sorted(
            (
                d
                for d in self._deployments.values()
                if who.allows(d.project_id, d.environment_id)
                and project in (None, d.project_id)
                and env in (None, d.environment_id)
                and service in (None, d.service_id)
                and (wanted is None or d.status in wanted)
                and d.status not in unwanted
            ),
            key=lambda d: (d.created_at, d.seq),
            reverse=True,
        )
        return self._connection(items, args)

    def _q_deployment(self, who: _Principal, args: dict[str, Any]) -> Any:
        dep = self._find(who, args["id"])
        if dep.progress is not None:
            dep.progress.polls += 1
            self._advance(dep)
        return self._deployment_json(dep)

    def _q_service_instance(self, who: _Principal, args: dict[str, Any]) -> Any:
        return self._instance_json(self._instance(who, args["serviceId"], args["environmentId"]))

    def _q_project_token(self, who: _Principal, args: dict[str, Any]) -> Any:
        if who.token_id is None or who.projects is None or who.environment_id is None:
            raise GraphQLError("Not Authorized")
        project = next(iter(who.projects))
        created = _iso(self.clock())
        return {"id": who.token_id, "name": "fake-token", "projectId": project,
                "environmentId": who.environment_id, "displayToken": "****",
                "createdAt": created}  # fmt: skip

    # ----- mutations -----

    def _m_rollback(self, who: _Principal, args: dict[str, Any]) -> Any:
        dep = self._find(who, args["id"])
        if not dep.can_rollback:
            raise GraphQLError(CANNOT_ROLLBACK)
        self._spawn(dep)
        return True

    def _m_redeploy(self, who: _Principal, args: dict[str, Any]) -> Any:
        return self._deployment_json(self._spawn(self._find(who, args["id"])))

    def _m_restart(self, who: _Principal, args: dict[str, Any]) -> Any:
        dep = self._find(who, args["id"])
        dep.updated_at = self.clock()
        return True

    def _m_stop(self, who: _Principal, args: dict[str, Any]) -> Any:
        dep = self._find(who, args["id"])
        dep.stopped = True
        dep.updated_at = self.clock()
        return True

    def _m_remove(self, who: _Principal, args: dict[str, Any]) -> Any:
        dep = self._find(who, args["id"])
        dep.progress = None
        self._set_status(dep, "REMOVED")
        return True

    def _m_cancel(self, who: _Principal, args: dict[str, Any]) -> Any:
        dep = self._find(who, args["id"])
        if dep.status not in IN_PROGRESS:
            raise GraphQLError("Deployment is not in progress")
        return self._m_remove(who, args)

    def _m_service_redeploy(self, who: _Principal, args: dict[str, Any]) -> Any:
        inst = self._instance(who, args["serviceId"], args["environmentId"])
        latest = self._latest(inst)
        if latest is None:
            raise GraphQLError("No deployment to redeploy")
        self._spawn(latest)
        return True

    def _m_service_update(self, who: _Principal, args: dict[str, Any]) -> Any:
        service = args["serviceId"]
        project = self._services.get(service, "")
        env_ids = [args["environmentId"]] if args.get("environmentId") else [
            e for (s, e) in self._instances if s == service and who.allows(project, e)
        ]  # fmt: skip
        changes = dict(args["input"])
        replicas = changes.pop("numReplicas", None)
        if replicas is not None and (
            replicas < 0 or (replicas == 0 and not self.allow_zero_replicas)
        ):
            raise GraphQLError(f"Invalid number of replicas: {replicas}")
        for env_id in env_ids or [""]:
            inst = self._instance(who, service, env_id)
            inst.settings.update(changes)
            inst.region = changes.get("region") or inst.region
            if replicas is not None:
                inst.replicas_by_region = {inst.region: replicas}
                self._resize(inst)
        return True

    def _m_environment_patch(self, who: _Principal, args: dict[str, Any]) -> Any:
        env_id, patch = args["environmentId"], args.get("patch") or {}
        services = patch.get("services", {}) if isinstance(patch, dict) else None
        if not isinstance(services, dict):
            raise GraphQLError("Invalid environment patch")
        for service_id, config in services.items():
            inst = self._instance(who, service_id, env_id)
            regions = (config.get("deploy") or {}).get("multiRegionConfig") or {}
            for region, value in regions.items():
                if value is None:
                    inst.replicas_by_region.pop(region, None)
                else:
                    inst.replicas_by_region[region] = int(value["numReplicas"])
            self._resize(inst, immediate=True)  # docs: "without a separate redeploy"
        return f"commit-{self._new_id()}"

    # ----- state machine -----

    def _spawn(self, source: RailwayDeployment) -> RailwayDeployment:
        """A new deployment of `source`'s image, meta and variables, started now."""
        first = self.deploy_path[0] if self.deploy_polls or self.deploy_seconds else "QUEUED"
        dep = self._new_deployment(source.service_id, source.environment_id, first, source.meta)
        dep.progress = Progress(self.deploy_path, self.deploy_outcome, self.clock())
        self._advance(dep)
        return dep

    def _advance(self, dep: RailwayDeployment) -> None:
        p = dep.progress
        if p is None:
            return
        if self.deploy_seconds is not None:
            share = (self.clock() - p.started) / self.deploy_seconds if self.deploy_seconds else 1
            done, index = share >= 1, int(share * len(p.path))
        else:
            done = p.polls > self.deploy_polls
            index = (max(p.polls - 1, 0) * len(p.path)) // max(self.deploy_polls, 1)
        if not done:
            self._set_status(dep, p.path[min(index, len(p.path) - 1)])
            return
        dep.progress = None
        self._set_status(dep, p.outcome)
        if p.outcome == "SUCCESS":
            dep.can_rollback = True
            for old in self._active(dep.service_id, dep.environment_id, also_crashed=True):
                if old is not dep:
                    self._set_status(old, "REMOVING")
                    old.removing_since = self._ticks

    def _tick(self) -> None:
        """Once per request: finish draining REMOVING deployments, advance timed ones."""
        self._ticks += 1
        for dep in list(self._deployments.values()):
            if (
                dep.removing_since is not None
                and self._ticks - dep.removing_since > self.drain_requests
            ):
                dep.removing_since = None
                self._set_status(dep, "REMOVED")
            if dep.progress is not None and self.deploy_seconds is not None:
                self._advance(dep)

    def _resize(self, inst: RailwayServiceInstance, *, immediate: bool | None = None) -> None:
        if immediate if immediate is not None else self.replicas_apply_immediately:
            for dep in self._active(inst.service_id, inst.environment_id):
                dep.replicas = inst.total_replicas

    def _set_status(self, dep: RailwayDeployment, status: str) -> None:
        if dep.status != status:
            dep.status = status
            dep.updated_at = self.clock()

    # ----- lookups and serialisation -----

    def _authenticate(self, call: ApiCall) -> _Principal:
        project_token = call.headers.get("Project-Access-Token")
        if project_token is not None:
            if project_token not in self._project_tokens:
                raise GraphQLError("Project Token not found")
            token_id, project, env = self._project_tokens[project_token]
            return _Principal(frozenset({project}), env, token_id)
        auth = call.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if token is None or token not in self._account_tokens:
            raise GraphQLError("Not Authorized")
        return _Principal(self._account_tokens[token])

    def _find(self, who: _Principal, deployment_id: str) -> RailwayDeployment:
        dep = self._deployments.get(deployment_id)
        if dep is None:
            raise GraphQLError(NOT_FOUND)
        if not who.allows(dep.project_id, dep.environment_id):
            raise GraphQLError("Not Authorized")
        return dep

    def _instance(self, who: _Principal, service: str, env: str) -> RailwayServiceInstance:
        inst = self._instances.get((service, env))
        if inst is None:
            raise GraphQLError("ServiceInstance not found")
        if not who.allows(self._services[service], env):
            raise GraphQLError("Not Authorized")
        return inst

    def _active(
        self, service: str, env: str, *, also_crashed: bool = False
    ) -> list[RailwayDeployment]:
        states = _RUNNING | {"CRASHED"} if also_crashed else _RUNNING
        return sorted(
            (
                d
                for d in self._deployments.values()
                if (d.service_id, d.environment_id) == (service, env)
                and d.status in states
                and not (d.stopped and not also_crashed)
            ),
            key=lambda d: (d.created_at, d.seq),
            reverse=True,
        )

    def _latest(self, inst: RailwayServiceInstance) -> RailwayDeployment | None:
        mine = [
            d
            for d in self._deployments.values()
            if (d.service_id, d.environment_id) == (inst.service_id, inst.environment_id)
        ]
        return max(mine, key=lambda d: (d.created_at, d.seq), default=None)

    def _new_id(self) -> str:
        return str(uuid.UUID(int=next(self._ids)))

    def _add_instance(self, service_id: str, env_id: str, region: str, replicas: int) -> None:
        inst = RailwayServiceInstance(
            self._new_id(), service_id, env_id, region, {region: replicas}
        )
        self._instances[(service_id, env_id)] = inst

    def _new_deployment(
        self, service_id: str, env_id: str, status: str, meta: dict[str, Any]
    ) -> RailwayDeployment:
        now = self.clock()
        seq = next(self._ids)
        inst = self._instances[(service_id, env_id)]
        dep = RailwayDeployment(
            id=str(uuid.UUID(int=seq)), seq=seq, project_id=self._services[service_id],
            environment_id=env_id, service_id=service_id, status=status, created_at=now,
            updated_at=now, meta=json.loads(json.dumps(meta)), can_rollback=False,
            replicas=inst.total_replicas,
        )  # fmt: skip
        self._deployments[dep.id] = dep
        return dep

    def _connection(self, items: list[RailwayDeployment], args: dict[str, Any]) -> Any:
        """A Relay connection, newest first; cursors encode (createdAt, sequence)."""
        keys = [(d.created_at, d.seq) for d in items]
        start, end = 0, len(items)
        if args.get("after") is not None:
            after = _decode_cursor(args["after"])
            start = sum(1 for k in keys if k >= after)
        if args.get("before") is not None:
            end = sum(1 for k in keys if k > _decode_cursor(args["before"]))
        first, last = args.get("first"), args.get("last")
        if (first or 0) < 0 or (last or 0) < 0:
            raise GraphQLError("`first` and `last` must be non-negative")
        if first is None and last is None:
            first = self.default_page_size
        end = min(end, start + first) if first is not None else end
        start = max(start, end - last) if last is not None else start
        edges = [{"cursor": _cursor(d), "node": self._deployment_json(d)} for d in items[start:end]]
        page_info = {
            "hasNextPage": end < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        }
        return {"edges": edges, "pageInfo": page_info}

    def _deployment_json(self, d: RailwayDeployment) -> dict[str, Any]:
        host = f"{d.service_id[-6:]}-{d.seq}.up.railway.app"
        return {
            "id": d.id, "status": d.status, "createdAt": _iso(d.created_at),
            "updatedAt": _iso(d.updated_at), "statusUpdatedAt": _iso(d.updated_at),
            "projectId": d.project_id, "environmentId": d.environment_id,
            "serviceId": d.service_id, "staticUrl": host, "url": f"https://{host}",
            "meta": d.meta, "canRollback": d.can_rollback,
            "canRedeploy": d.status not in IN_PROGRESS, "deploymentStopped": d.stopped,
            "snapshotId": None,
            "creator": {"id": "user-fake", "name": "Fake", "email": "fake@example.com",
                        "avatar": None},
            "instances": [{"id": f"{d.id}-{i}", "status": _instance_status(d)}
                          for i in range(d.replicas if _instance_status(d) else 0)],
        }  # fmt: skip

    def _instance_json(self, inst: RailwayServiceInstance) -> dict[str, Any]:
        latest = self._latest(inst)
        settings = inst.settings
        return {
            "id": inst.id, "serviceId": inst.service_id, "environmentId": inst.environment_id,
            "numReplicas": inst.num_replicas, "region": inst.region,
            "sleepApplication": settings.get("sleepApplication", False),
            "restartPolicyType": settings.get("restartPolicyType", "ON_FAILURE"),
            "restartPolicyMaxRetries": settings.get("restartPolicyMaxRetries", 10),
            "healthcheckPath": settings.get("healthcheckPath"),
            "startCommand": settings.get("startCommand"),
            "latestDeployment": self._deployment_json(latest) if latest else None,
            "activeDeployments": [self._deployment_json(d) for d in
                                  self._active(inst.service_id, inst.environment_id)],
        }  # fmt: skip

    def _too_many(self, state: RateState) -> web.Response:
        if self.rate_limit_body == "text":
            response = web.Response(status=429, text="Too Many Requests")
        else:
            error = {"message": "Rate limit exceeded. Please try again later."}
            response = web.json_response({"errors": [error]}, status=429)
        response.headers["Retry-After"] = str(state.retry_after)
        self._rate_headers(response, state)
        return response

    def _rate_headers(self, response: web.Response, state: RateState) -> None:
        reset = _iso(state.reset_at) if self.rate_limit_reset_format == "iso" else state.reset_at
        response.headers.setdefault("X-RateLimit-Limit", str(state.limit))
        response.headers.setdefault("X-RateLimit-Remaining", str(state.remaining))
        response.headers.setdefault(
            "X-RateLimit-Reset", str(int(reset) if isinstance(reset, float) else reset)
        )


def _instance_status(d: RailwayDeployment) -> str | None:
    if d.status in _RUNNING:
        return "STOPPED" if d.stopped else "RUNNING"
    return {"REMOVING": "REMOVING", "REMOVED": "REMOVED", "CRASHED": "CRASHED",
            "DEPLOYING": "INITIALIZING"}.get(d.status)  # fmt: skip


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cursor(d: RailwayDeployment) -> str:
    return base64.b64encode(f"{d.created_at!r}|{d.seq}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        created, seq = base64.b64decode(cursor).decode().split("|")
        return float(created), int(seq)
    except ValueError as exc:
        raise GraphQLError(f"Invalid cursor: {cursor}") from exc
