"""Railway's public GraphQL API as the Railway adapter calls it: documents, statuses, paging.

Why this module exists: the adapter (`railway.py`) decides what to do; this module knows how
Railway is asked. Railway answers most failures as HTTP 200 with an `errors` array
(docs/providers.md#R4), so every answer is inspected and its messages are mapped to the error
hierarchy (R5). Deployments list as a Relay connection, filtered by service, environment and
status (R8); a deployment says whether its instances have all stopped (`deploymentStopped`)
and what each instance does (R22).

Within one operation's session, a read is asked once: a list page already read (same
variables), or a deployment already seen (read alone or on a page), is answered from what the
session read, until the session sends a mutation, which forgets it all. Reads whose point is to
see a change (polls, the search for a rollback's new deployment) pass `fresh` and always ask.
Nothing is kept across sessions: each operation (a plan, a rollback) opens its own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
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
    changes: bool = False
    """A mutation: sending it may change what every earlier read answered."""


LIST = Gql(
    "deployments",
    f"""
query Deployments($input: DeploymentListInput!, $first: Int, $after: String) {{
  deployments(input: $input, first: $first, after: $after) {{
    edges {{ node {{ {NODE} }} }} pageInfo {{ hasNextPage endCursor }} }} }}""",
)
ONE = Gql("deployment", f"query Deployment($id: String!) {{ deployment(id: $id) {{ {NODE} }} }}")
ROLLBACK = Gql(
    "deploymentRollback",
    "mutation Rollback($id: String!) { deploymentRollback(id: $id) }",
    changes=True,
)
STOP = Gql(
    "deploymentStop", "mutation Stop($id: String!) { deploymentStop(id: $id) }", changes=True
)

ACTIVE = frozenset({"SUCCESS", "SLEEPING"})
WAS_GOOD = frozenset({"SUCCESS", "SLEEPING", "REMOVING", "REMOVED"})
ENDED_BADLY = frozenset({"FAILED", "CRASHED", "REMOVED", "REMOVING", "SKIPPED"})
ON_ITS_WAY = frozenset({"INITIALIZING", "QUEUED", "WAITING", "BUILDING", "DEPLOYING"})
"""Statuses of a deployment that goes live by itself when it finishes, replacing whatever went
live after it was created (R24); NEEDS_APPROVAL waits for a person, as a new push would."""
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


@dataclass
class Session:
    """One operation's HTTP session and what it read since it last sent a mutation."""

    http: http.Session
    pages: dict[str, Json] = field(default_factory=dict)
    """List pages by their variables (as JSON)."""
    seen: dict[str, Json] = field(default_factory=dict)
    """Deployments by id, from single reads and from pages."""

    def keep(self, key: str, page: Json) -> None:
        """Remember `page` and every deployment on it."""
        self.pages[key] = page
        self.seen |= {e["node"]["id"]: e["node"] for e in page["edges"]}

    def forget(self) -> None:
        """Forget every read: what comes next may have changed any of them."""
        self.pages.clear()
        self.seen.clear()


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
    async def session(self) -> AsyncIterator[Session]:
        """One HTTP session for the calls of one operation, with nothing read yet."""
        async with self.http.session() as s:
            yield Session(s)

    def error(self, message: str, kind: type[errors.ProviderError]) -> errors.ProviderError:
        """An error of `kind`, scrubbed of credentials."""
        return self.http.error(message, kind)

    async def deployment(
        self, s: Session, operation: str, deployment_id: str, *, fresh: bool = False
    ) -> Json:
        """One deployment by id (R10); unless `fresh`, as this session last saw it, if it did."""
        if not fresh and deployment_id in s.seen:
            return dict(s.seen[deployment_id])
        dep = dict((await self.gql(s, operation, ONE, {"id": deployment_id}))["deployment"])
        s.seen[deployment_id] = dep
        return dict(dep)

    async def page(
        self,
        s: Session,
        operation: str,
        after: str | None,
        statuses: Collection[str] | None = None,
        *,
        fresh: bool = False,
    ) -> Json:
        """One page of the service's deployments (only those in `statuses`, if given); unless
        `fresh`, the same page this session read already, if it did."""
        where = self._where | ({"status": {"in": sorted(statuses)}} if statuses else {})
        variables = {"input": where, "first": self.pacing.page_size, "after": after}
        key = json.dumps(variables, sort_keys=True)
        if not fresh and key in s.pages:
            return s.pages[key]
        page = dict((await self.gql(s, operation, LIST, variables))["deployments"])
        s.keep(key, page)
        return page

    async def find(
        self,
        s: Session,
        operation: str,
        wanted: Callable[[Json], bool],
        statuses: Collection[str] | None = None,
        *,
        fresh: bool = False,
    ) -> Json | None:
        """The first deployment of the service, in the order listed, that `wanted` accepts."""
        after: str | None = None
        for _ in range(self.pacing.max_pages):
            page = await self.page(s, operation, after, statuses, fresh=fresh)
            found = next((e["node"] for e in page["edges"] if wanted(e["node"])), None)
            info = page.get("pageInfo") or {}
            after = info.get("endCursor") if info.get("hasNextPage") else None
            if found is not None or after is None:
                return found
        message = f"{operation}: nothing suitable in the newest {self.pacing.max_pages} pages"
        raise self.error(message + "; pin the deployment", errors.PermanentError)

    async def every(
        self, s: Session, operation: str, statuses: Collection[str], *, fresh: bool = False
    ) -> list[Json]:
        """Every deployment of the service in `statuses` (a short list: the active ones)."""
        found: list[Json] = []

        def keep(dep: Json) -> bool:
            found.append(dep)
            return False

        await self.find(s, operation, keep, statuses, fresh=fresh)
        return found

    async def gql(
        self,
        s: Session,
        operation: str,
        query: Gql,
        variables: Json,
        *,
        idempotent: bool = True,
    ) -> Json:
        """`data` of a GraphQL answer; its `errors` (even inside HTTP 200) raised as ours.

        A mutation makes `s` forget what it read, before it is sent: even one that fails may
        have changed something."""
        if query.changes:
            s.forget()
        body = {"query": query.text, "variables": variables}
        call = http.Call(operation, "POST", self._path, None, body, query.field, idempotent)
        answer = await http.json_object(s.http, call)
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
