"""Railway's public GraphQL API as the Railway adapter calls it: documents, statuses, paging.

Why this module exists: the adapter (`railway.py`) decides what to do; this module knows how
Railway is asked. Railway answers most failures as HTTP 200 with an `errors` array
(docs/providers.md#R4), so every answer is inspected and its messages are mapped to the error
hierarchy (R5). Deployments list as a Relay connection, filtered by service, environment and
status (R8); a deployment says whether its instances have all stopped (`deploymentStopped`)
and what each instance does (R22).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rollback_operator.api import targets
from rollback_operator.providers import errors, http, http_failures
from rollback_operator.providers.deployments.pacing import Pacing

Json = dict[str, Any]
NODE = (
    "id status createdAt canRollback meta serviceId environmentId deploymentStopped "
    "instances { status }"
)


@dataclass(frozen=True)
class Gql:
    """One GraphQL document and the root field whose answer it wants."""

    field: str
    text: str


LIST = Gql(
    "deployments",
    f"""
query Deployments($input: DeploymentListInput!, $first: Int, $after: String) {{
  deployments(input: $input, first: $first, after: $after) {{
    edges {{ node {{ {NODE} }} }} pageInfo {{ hasNextPage endCursor }} }} }}""",
)
ONE = Gql("deployment", f"query Deployment($id: String!) {{ deployment(id: $id) {{ {NODE} }} }}")
ROLLBACK = Gql(
    "deploymentRollback", "mutation Rollback($id: String!) { deploymentRollback(id: $id) }"
)
STOP = Gql("deploymentStop", "mutation Stop($id: String!) { deploymentStop(id: $id) }")

ACTIVE = frozenset({"SUCCESS", "SLEEPING"})
WAS_GOOD = frozenset({"SUCCESS", "SLEEPING", "REMOVING", "REMOVED"})
ENDED_BADLY = frozenset({"FAILED", "CRASHED", "REMOVED", "REMOVING", "SKIPPED"})
UP = frozenset({"RUNNING", "RESTARTING", "INITIALIZING", "CREATED"})
"""Instance statuses of an instance that runs or is about to (R22)."""
_ERRORS: tuple[tuple[tuple[str, ...], type[errors.ProviderError]], ...] = (
    (("not authorized", "project token not found", "two factor"), errors.UnauthorizedError),
    (("rate limit", "too many requests"), errors.RateLimitedError),
    (("not found",), errors.NotFoundError),
)


def serves(dep: Json) -> bool:
    """Whether the deployment is active and was not stopped (it takes traffic, R22)."""
    return dep["status"] in ACTIVE and not dep.get("deploymentStopped")


def gone(dep: Json) -> bool:
    """Whether the deployment is stopped and none of its instances runs any more (R22)."""
    up = [i for i in dep.get("instances") or [] if i.get("status") in UP]
    return bool(dep.get("deploymentStopped")) and not up


class RailwayApi:
    """One service in one environment, as GraphQL calls."""

    def __init__(
        self,
        config: targets.RailwayTarget,
        token: str,
        options: http.Options | None,
        pacing: Pacing,
    ) -> None:
        url = urlsplit(config.api_url)
        auth = (
            {"Authorization": f"Bearer {token}"} if config.token_type == "account"
            else {"Project-Access-Token": token}
        )  # fmt: skip
        self.http = http.Http("railway", f"{url.scheme}://{url.netloc}", auth, options)
        self.pacing = pacing
        self.instance = {"serviceId": config.service_id, "environmentId": config.environment_id}
        self._path = url.path or "/"
        self._where = {"projectId": config.project_id, **self.instance}

    @asynccontextmanager
    async def session(self) -> AsyncIterator[http.Session]:
        """One HTTP session for the calls of one operation."""
        async with self.http.session() as s:
            yield s

    def error(self, message: str, kind: type[errors.ProviderError]) -> errors.ProviderError:
        """An error of `kind`, scrubbed of credentials."""
        return self.http.error(message, kind)

    async def deployment(self, s: http.Session, operation: str, deployment_id: str) -> Json:
        """One deployment by id (R10)."""
        return dict((await self.gql(s, operation, ONE, {"id": deployment_id}))["deployment"])

    async def page(
        self,
        s: http.Session,
        operation: str,
        after: str | None,
        statuses: Collection[str] | None = None,
    ) -> Json:
        """One page of the service's deployments (only those in `statuses`, if given)."""
        where = self._where | ({"status": {"in": sorted(statuses)}} if statuses else {})
        variables = {"input": where, "first": self.pacing.page_size, "after": after}
        return dict((await self.gql(s, operation, LIST, variables))["deployments"])

    async def find(
        self,
        s: http.Session,
        operation: str,
        wanted: Callable[[Json], bool],
        statuses: Collection[str] | None = None,
    ) -> Json | None:
        """The first deployment of the service, in the order listed, that `wanted` accepts."""
        after: str | None = None
        for _ in range(self.pacing.max_pages):
            page = await self.page(s, operation, after, statuses)
            found = next((e["node"] for e in page["edges"] if wanted(e["node"])), None)
            info = page.get("pageInfo") or {}
            after = info.get("endCursor") if info.get("hasNextPage") else None
            if found is not None or after is None:
                return found
        message = f"{operation}: nothing suitable in the newest {self.pacing.max_pages} pages"
        raise self.error(message + "; pin the deployment", errors.PermanentError)

    async def every(self, s: http.Session, operation: str, statuses: Collection[str]) -> list[Json]:
        """Every deployment of the service in `statuses` (a short list: the active ones)."""
        found: list[Json] = []

        def keep(dep: Json) -> bool:
            found.append(dep)
            return False

        await self.find(s, operation, keep, statuses)
        return found

    async def gql(
        self,
        s: http.Session,
        operation: str,
        query: Gql,
        variables: Json,
        *,
        idempotent: bool = True,
    ) -> Json:
        """`data` of a GraphQL answer; its `errors` (even inside HTTP 200) raised as ours."""
        body = {"query": query.text, "variables": variables}
        call = http.Call(operation, "POST", self._path, None, body, query.field, idempotent)
        answer = await http.json_object(s, call)
        if answer.get("errors"):
            raise self._graphql_error(call, answer["errors"])
        data = answer.get("data")
        if not isinstance(data, dict) or data.get(query.field) is None:
            message = f"{operation}: {call.describe()}: answer has no data"
            raise self.error(message, errors.PermanentError)
        return data

    def _graphql_error(self, call: http.Call, listed: Any) -> errors.ProviderError:
        text = "; ".join(
            http_failures.graphql_messages(listed if isinstance(listed, list) else [listed])
        )
        text = text[:300]
        kind = next((k for words, k in _ERRORS if any(w in text.lower() for w in words)), None)
        message = f"{call.operation}: {call.describe()}: {text}"
        return self.error(message, kind or errors.PermanentError)
