"""A stateful fake of Railway's public GraphQL API (`POST /graphql/v2`) for the operator's tests.

Why this module exists: the operator's Railway adapter must be tested over real HTTP (both
token headers, GraphQL `errors` inside HTTP 200, Relay pagination, `deploymentRollback`
returning a bare Boolean and spawning a deployment that moves through statuses, replica
changes, 429s and transport faults) without talking to Railway. Behaviour follows
docs/providers.md R1-R24; uncertain points are constructor flags of `FakeRailway` whose defaults
are the documented primary behaviour. Where this fake is still kinder than the facts:
docs/providers.md#kinder, items 3-6, 8, 12 and 17 (a deployment seeded on its way moves only
when a test ends it, `end_deployment`).

Requests are parsed by a small GraphQL parser (`graphql`), checked against the slice of
Railway's schema in `railway_model` (`graphql_schema`: unknown fields and arguments, missing
required arguments, variable types, sub-selections on scalars such as
`deploymentRollback { id }`) and answered with exactly the selected fields; its root fields are
the supported ones. The state, and how deployments move, live in `railway_world`; this module
is the API over them: authentication, resolvers, rate limits and faults.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from aiohttp import web

from sandbox.fakes.graphql import GraphQLError, parse_operation
from sandbox.fakes.graphql_schema import root_type
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
from sandbox.fakes.railway_model import (
    CANNOT_ROLLBACK,
    IN_PROGRESS,
    SCHEMA,
    Principal,
    connection,
    deployment_json,
    instance_json,
    iso,
)
from sandbox.fakes.railway_world import RailwayWorld

Resolver = Callable[[Principal, dict[str, Any]], Any]


class FakeRailway(FakeApi, RailwayWorld):
    """In-memory Railway: projects, environments, services, service instances, deployments.

    Deployments created by `deploymentRollback`/`deploymentRedeploy`/`serviceInstanceRedeploy`/
    `serviceInstanceDeployV2` show `deploy_path` statuses for the first `deploy_polls`
    `deployment(id)` polls and reach `deploy_outcome` on the next one (or after `deploy_seconds`
    of `clock` time); on SUCCESS every other active deployment goes REMOVING, whatever its age
    (R24, the harsh reading), and REMOVED once `drain_requests` more requests have been
    answered (the overlap window, counted in requests). A deploy of the service
    (`serviceInstanceDeployV2`, `serviceInstanceRedeploy`, `deploy_source`) builds its latest
    source, not what a rollback restored (docs/providers.md#R18). `deploymentStop` keeps the
    status SUCCESS and takes effect after `stop_requests` more requests: then
    `deploymentStopped` is true, the instances are STOPPED and the deployment serves nothing
    (R22).

    Uncertain points (docs/providers.md) and their flags: validation-error HTTP status
    (`validation_error_status`, 200; R4); project tokens may run mutations
    (`project_token_can_mutate`, True; R3); `numReplicas: 0` accepted (`allow_zero_replicas`;
    R19); replica changes are staged: they size the next deployment, not the running one,
    unless `replicas_apply_immediately` (R16, R17); `X-RateLimit-Reset` as Unix seconds or ISO
    (`rate_limit_reset_format`; R6); 429 body as GraphQL `errors` JSON or plain text
    (`rate_limit_body`; R6); page size when neither `first` nor `last` is sent
    (`default_page_size`; R8). `includeDeleted` is accepted and ignored.
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
        stop_requests: int = 1,
        validation_error_status: Literal[200, 400] = 200,
        project_token_can_mutate: bool = True,
        allow_zero_replicas: bool = True,
        replicas_apply_immediately: bool = False,
        rate_limit: int = 10_000,
        rate_limit_window: float = 3600.0,
        rate_limit_reset_format: Literal["epoch", "iso"] = "epoch",
        rate_limit_body: Literal["graphql", "text"] = "graphql",
        default_page_size: int = 100,
    ) -> None:
        FakeApi.__init__(self, latency=latency, clock=clock)
        RailwayWorld.__init__(
            self, token=token, deploy_polls=deploy_polls, deploy_seconds=deploy_seconds,
            deploy_path=deploy_path, deploy_outcome=deploy_outcome, drain_requests=drain_requests,
            stop_requests=stop_requests, replicas_apply_immediately=replicas_apply_immediately,
        )  # fmt: skip
        self.validation_error_status = validation_error_status
        self.project_token_can_mutate = project_token_can_mutate
        self.allow_zero_replicas = allow_zero_replicas
        self.rate_limit_reset_format = rate_limit_reset_format
        self.rate_limit_body = rate_limit_body
        self.default_page_size = default_page_size
        self._rate = RateWindow(rate_limit, rate_limit_window, clock)
        self._last_rate: RateState | None = None
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
            "serviceInstanceDeployV2": self._m_service_deploy,
            "serviceInstanceUpdate": self._m_service_update,
            "environmentPatchCommit": self._m_environment_patch,
        }

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
            SCHEMA.validate(op)
            variables = SCHEMA.coerce_variables(op, body.get("variables") or {})
            root = root_type(op)
            calls = [(f, SCHEMA.coerce_args(root, f, variables)) for f in op.fields]
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
                data[f.key] = SCHEMA.project(answer, SCHEMA.field_type(root, f.name), f)
            except GraphQLError as exc:
                errors = [{"message": exc.message, "path": [f.key]}]
                return web.json_response({"data": None, "errors": errors})
        return web.json_response({"data": data})

    # ----- queries -----

    def _q_deployments(self, who: Principal, args: dict[str, Any]) -> Any:
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
        return connection(items, args, self.default_page_size)

    def _q_deployment(self, who: Principal, args: dict[str, Any]) -> Any:
        dep = self._find(who, args["id"])
        if dep.progress is not None:
            dep.progress.polls += 1
            self._advance(dep)
        return deployment_json(dep)

    def _q_service_instance(self, who: Principal, args: dict[str, Any]) -> Any:
        inst = self._instance(who, args["serviceId"], args["environmentId"])
        active = self._active(inst.service_id, inst.environment_id)
        return instance_json(inst, self._latest(inst), active)

    def _q_project_token(self, who: Principal, args: dict[str, Any]) -> Any:
        if who.token_id is None or who.projects is None or who.environment_id is None:
            raise GraphQLError("Not Authorized")
        project = next(iter(who.projects))
        created = iso(self.clock())
        return {"id": who.token_id, "name": "fake-token", "projectId": project,
                "environmentId": who.environment_id, "displayToken": "****",
                "createdAt": created}  # fmt: skip

    # ----- mutations -----

    def _m_rollback(self, who: Principal, args: dict[str, Any]) -> Any:
        dep = self._find(who, args["id"])
        if not dep.can_rollback:
            raise GraphQLError(CANNOT_ROLLBACK)
        self._spawn(dep, origin="rollback")
        return True

    def _m_redeploy(self, who: Principal, args: dict[str, Any]) -> Any:
        return deployment_json(self._spawn(self._find(who, args["id"]), origin="redeploy"))

    def _m_restart(self, who: Principal, args: dict[str, Any]) -> Any:
        dep = self._find(who, args["id"])
        dep.updated_at = self.clock()
        return True

    def _m_stop(self, who: Principal, args: dict[str, Any]) -> Any:
        self._stop(self._find(who, args["id"]))
        return True

    def _m_remove(self, who: Principal, args: dict[str, Any]) -> Any:
        dep = self._find(who, args["id"])
        dep.progress = None
        self._set_status(dep, "REMOVED")
        return True

    def _m_cancel(self, who: Principal, args: dict[str, Any]) -> Any:
        dep = self._find(who, args["id"])
        if dep.status not in IN_PROGRESS:
            raise GraphQLError("Deployment is not in progress")
        return self._m_remove(who, args)

    def _m_service_redeploy(self, who: Principal, args: dict[str, Any]) -> Any:
        inst = self._instance(who, args["serviceId"], args["environmentId"])
        self._spawn(self._source(inst.service_id, inst.environment_id), origin="source")
        return True

    def _m_service_deploy(self, who: Principal, args: dict[str, Any]) -> Any:
        """Builds the service's latest source, whatever was rolled back to (R18)."""
        inst = self._instance(who, args["serviceId"], args["environmentId"])
        source = self._source(inst.service_id, inst.environment_id)
        if args.get("commitSha") not in (None, source.meta.get("commitHash")):
            raise GraphQLError("Commit not found")
        return self._spawn(source, origin="source").id

    def _m_service_update(self, who: Principal, args: dict[str, Any]) -> Any:
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

    def _m_environment_patch(self, who: Principal, args: dict[str, Any]) -> Any:
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

    # ----- callers and rate limits -----

    def _authenticate(self, call: ApiCall) -> Principal:
        project_token = call.headers.get("Project-Access-Token")
        if project_token is not None:
            if project_token not in self._project_tokens:
                raise GraphQLError("Project Token not found")
            token_id, project, env = self._project_tokens[project_token]
            return Principal(frozenset({project}), env, token_id)
        auth = call.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if token is None or token not in self._account_tokens:
            raise GraphQLError("Not Authorized")
        return Principal(self._account_tokens[token])

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
        reset = iso(state.reset_at) if self.rate_limit_reset_format == "iso" else state.reset_at
        response.headers.setdefault("X-RateLimit-Limit", str(state.limit))
        response.headers.setdefault("X-RateLimit-Remaining", str(state.remaining))
        response.headers.setdefault(
            "X-RateLimit-Reset", str(int(reset) if isinstance(reset, float) else reset)
        )
