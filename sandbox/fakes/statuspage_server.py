"""A stateful fake of Atlassian Statuspage's manage API (incidents and components), over HTTP.

Why this module exists: the Statuspage notifier must be tested on the wire (OAuth key header,
the incident lifecycle, component statuses, the unresolved-incident lookup that survives a
crash, 420/429 rate limits, both error-body shapes) without touching a real page. Behaviour
follows docs/providers.md ST1-ST7: keys allowed on pages; components with a status; incidents
with their `incident_updates` history, an update appended on create and on every change of
status or new `body`; `monitoring_at`/`resolved_at` stamped; strict validation (422); 401 for a
bad key, 404 for an unknown page or incident; a per-key limit over 60 s.

Routes, under `/v1`, with an optional `.json` suffix: `GET|POST /pages/{p}/incidents`,
`GET /pages/{p}/incidents/unresolved`, `GET|PATCH /pages/{p}/incidents/{i}`. Components
change through an incident's `components` map, as the notifier changes them; PUT, DELETE and
the components endpoints are not served (405/404).

Uncertain points (docs/providers.md ST5, ST6, ST7; where this fake is kinder:
docs/providers.md#kinder, item 11), each a flag: the rate-limit status (`rate_limit_status`,
429; 420 optional), the error body key (`error_key`, `message`; `error` optional); also: a key
not allowed on a page gets 404; `impact` is the override, else derived from the worst affected
component; `q` matches the name and the update bodies.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from sandbox.fakes.http_server import (
    ApiCall,
    Clock,
    FakeApi,
    RateLimited,
    RateWindow,
    ReplyFault,
    ServerError,
)

REALTIME = ("investigating", "identified", "monitoring", "resolved")
SCHEDULED = ("scheduled", "in_progress", "verifying", "completed")
CLOSED = ("resolved", "completed")
IMPACTS = ("none", "maintenance", "minor", "major", "critical")
COMPONENT_STATUSES = (
    "operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"
)  # fmt: skip
DERIVED_IMPACT = {"under_maintenance": "maintenance", "degraded_performance": "minor",
                  "partial_outage": "major", "major_outage": "critical"}  # fmt: skip
Json = dict[str, Any]


class Invalid(Exception):
    """A request the API refuses, with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Component:
    id: str
    name: str
    status: str = "operational"


@dataclass
class Incident:
    id: str
    page_id: str
    name: str
    created_at: str
    status: str = "investigating"
    impact_override: str | None = None
    impact: str = "none"
    monitoring_at: str | None = None
    resolved_at: str | None = None
    updated_at: str | None = None
    component_ids: list[str] = field(default_factory=list)
    metadata: Json = field(default_factory=dict)
    updates: list[Json] = field(default_factory=list)


@dataclass
class Page:
    id: str
    components: dict[str, Component] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)


Handler = Callable[[ApiCall, Page, dict[str, str]], web.Response]


class FakeStatuspage(FakeApi):
    """In-memory Statuspage account: API keys, pages, components and incidents."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        clock: Clock = time.time,
        rate_limit: int = 60,
        rate_limit_status: Literal[420, 429] = 429,
        error_key: Literal["message", "error"] = "message",
    ) -> None:
        super().__init__(latency=latency, clock=clock)
        self.rate_limit_status = rate_limit_status
        self.error_key = error_key
        self._rate = RateWindow(rate_limit, 60.0, clock)
        self._keys: dict[str, set[str]] = {}
        self._pages: dict[str, Page] = {}
        self._ids = itertools.count(1)
        pages, i = r"/v1/pages/(?P<page>[^/]+)", r"(?P<incident>[^/]+)"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", rf"{pages}/incidents/unresolved", self._unresolved),
            ("GET", rf"{pages}/incidents", self._list),
            ("POST", rf"{pages}/incidents", self._create),
            ("GET", rf"{pages}/incidents/{i}", self._get),
            ("PATCH", rf"{pages}/incidents/{i}", self._update),
        ]
        self._routes = [(m, re.compile(r), h) for m, r, h in routes]

    # ----- seeding and inspection (call from any thread) -----

    def add_page(self, page_id: str, components: Iterable[str] = (), *, key: str) -> list[str]:
        """A page with named components (their ids are returned), writable with `key`."""
        with self.lock:
            page = self._pages.setdefault(page_id, Page(page_id))
            self._keys.setdefault(key, set()).add(page_id)
            made = [Component(f"cmp{next(self._ids):04d}", name) for name in components]
            page.components |= {c.id: c for c in made}
            return [c.id for c in made]

    def incidents(self, page_id: str) -> list[Incident]:
        with self.lock:
            return list(self._pages[page_id].incidents.values())

    def component_status(self, page_id: str, component_id: str) -> str:
        with self.lock:
            return self._pages[page_id].components[component_id].status

    def secrets(self) -> Iterable[str]:
        return list(self._keys)

    def shown(self) -> list[Any]:
        with self.lock:
            pages = list(self._pages.values())
            return [dataclasses.asdict(i) for page in pages for i in page.incidents.values()]

    # ----- FakeApi hooks -----

    def describe(self, call: ApiCall) -> tuple[str, bool]:
        return f"{call.method} {call.path.removesuffix('.json')}", call.method != "GET"

    def admit(self, call: ApiCall, route: str) -> web.Response | None:
        key = self._key(call)
        if key not in self._keys:
            return None
        state = self._rate.hit(key)
        return self._rate_limited(state.retry_after) if state.exceeded else None

    def fault_response(self, fault: ReplyFault) -> web.Response:
        if isinstance(fault, RateLimited):
            return self._rate_limited(fault.retry_after)
        if isinstance(fault, ServerError):
            return self._error(fault.status, fault.message)
        return self._error(fault.status or 422, fault.message)

    def finish(self, call: ApiCall, response: web.Response) -> None:
        response.headers.setdefault("X-Request-Id", f"fake-{next(self._ids)}")

    def dispatch(self, call: ApiCall) -> web.Response:
        if self._key(call) not in self._keys:
            return self._error(401, "Could not authenticate")
        path, allowed = call.path.removesuffix(".json"), False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            allowed = allowed or bool(match)
            if match and method == call.method:
                page = self._pages.get(match["page"])
                if page is None or page.id not in self._keys[self._key(call)]:
                    return self._error(404, "The requested resource could not be found")
                try:
                    return handler(call, page, match.groupdict())
                except Invalid as invalid:
                    return self._error(invalid.status, str(invalid))
        if allowed:
            return self._error(405, f"{call.method} is not allowed here")
        return self._error(404, "The requested resource could not be found")

    # ----- incidents -----

    def _create(self, call: ApiCall, page: Page, _: dict[str, str]) -> web.Response:
        fields = _wrapped(call, "incident")
        if not str(fields.get("name") or "").strip():
            raise Invalid(422, "Name can't be blank")
        now = self._now()
        incident = Incident(f"inc{next(self._ids):05d}", page.id, str(fields["name"]), now)
        self._apply(page, incident, {"status": "investigating", **fields}, created=True)
        page.incidents[incident.id] = incident
        return web.json_response(self._incident_json(page, incident), status=201)

    def _update(self, call: ApiCall, page: Page, params: dict[str, str]) -> web.Response:
        incident = self._incident(page, params["incident"])
        self._apply(page, incident, _wrapped(call, "incident"), created=False)
        return web.json_response(self._incident_json(page, incident))

    def _get(self, call: ApiCall, page: Page, params: dict[str, str]) -> web.Response:
        incident = self._incident(page, params["incident"])
        return web.json_response(self._incident_json(page, incident))

    def _unresolved(self, call: ApiCall, page: Page, _: dict[str, str]) -> web.Response:
        open_ = [i for i in page.incidents.values() if i.status not in CLOSED]
        return self._paged(call, page, open_, "per_page")

    def _list(self, call: ApiCall, page: Page, _: dict[str, str]) -> web.Response:
        q = call.query.get("q", "")
        found = [i for i in page.incidents.values() if q in i.name or _in_bodies(q, i)]
        return self._paged(call, page, found, "limit")

    def _paged(self, call: ApiCall, page: Page, found: list[Incident], size: str) -> web.Response:
        try:
            per_page = int(call.query.get(size, "100"))
            number = int(call.query.get("page", "1"))
        except ValueError as exc:
            raise Invalid(400, "page and per_page must be numbers") from exc
        found.sort(key=lambda i: (i.created_at, i.id), reverse=True)
        chunk = found[(number - 1) * per_page : number * per_page]
        return web.json_response([self._incident_json(page, i) for i in chunk])

    def _apply(self, page: Page, incident: Incident, fields: Json, *, created: bool) -> None:
        """Validate every field first, then change the incident and its components."""
        _check(page, fields)
        before, now = incident.status, self._now()
        incident.name = str(fields.get("name", incident.name))
        incident.status = str(fields.get("status", incident.status))
        incident.impact_override = fields.get("impact_override", incident.impact_override)
        incident.metadata = fields.get("metadata", incident.metadata)
        incident.component_ids = list(fields.get("component_ids", incident.component_ids))
        affected = []
        for cid, status in (fields.get("components") or {}).items():
            component = page.components[cid]
            affected.append({"code": cid, "name": component.name,
                             "old_status": component.status, "new_status": status})  # fmt: skip
            component.status = status
            incident.component_ids += [cid] if cid not in incident.component_ids else []
        incident.impact = incident.impact_override or _derived(page, incident)
        if incident.status == "monitoring" and incident.monitoring_at is None:
            incident.monitoring_at = now
        incident.resolved_at = now if incident.status in CLOSED else None
        incident.updated_at = now
        if created or incident.status != before or "body" in fields:
            incident.updates.append(
                {"id": f"upd{next(self._ids):05d}", "incident_id": incident.id,
                 "status": incident.status, "body": str(fields.get("body") or ""),
                 "created_at": now, "updated_at": now, "display_at": now,
                 "affected_components": affected,
                 "deliver_notifications": bool(fields.get("deliver_notifications", True)),
                 "custom_tweet": None, "tweet_id": None, "twitter_updated_at": None,
                 "wants_twitter_update": False}
            )  # fmt: skip

    def _incident(self, page: Page, incident_id: str) -> Incident:
        incident = page.incidents.get(incident_id)
        if incident is None:
            raise Invalid(404, "The requested resource could not be found")
        return incident

    def _incident_json(self, page: Page, incident: Incident) -> Json:
        components = [page.components[c] for c in incident.component_ids if c in page.components]
        return {
            "id": incident.id, "page_id": page.id, "name": incident.name,
            "status": incident.status, "impact": incident.impact,
            "impact_override": incident.impact_override,
            "created_at": incident.created_at, "updated_at": incident.updated_at,
            "started_at": incident.created_at, "monitoring_at": incident.monitoring_at,
            "resolved_at": incident.resolved_at,
            "shortlink": f"https://stspg.io/{incident.id}",
            "components": [_component_json(page, c) for c in components],
            "incident_updates": list(reversed(incident.updates)),
            "metadata": incident.metadata,
            "postmortem_body": None, "postmortem_published_at": None,
            "scheduled_for": None, "scheduled_until": None,
        }  # fmt: skip

    # ----- helpers -----

    def _key(self, call: ApiCall) -> str:
        auth = call.headers.get("Authorization", "")
        return auth[6:] if auth.startswith("OAuth ") else call.query.get("api_key", "")

    def _now(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")

    def _error(self, status: int, message: str) -> web.Response:
        return web.json_response({self.error_key: message}, status=status)

    def _rate_limited(self, retry_after: int) -> web.Response:
        response = self._error(self.rate_limit_status, "Rate limit exceeded")
        response.headers["Retry-After"] = str(retry_after)
        return response


def _wrapped(call: ApiCall, name: str) -> Json:
    if call.json_error or not isinstance(call.body, dict):
        raise Invalid(400, "The request body is not valid JSON")
    inner = call.body.get(name)
    if not isinstance(inner, dict):
        raise Invalid(400, f"param is missing or the value is empty: {name}")
    return inner


def _check(page: Page, fields: Json) -> None:
    """422 for any value the API would refuse."""
    ids, components = fields.get("component_ids") or [], fields.get("components") or {}
    metadata = fields.get("metadata") or {}
    if not (isinstance(ids, list) and isinstance(components, dict) and isinstance(metadata, dict)):
        raise Invalid(422, "component_ids, components and metadata have the wrong type")
    problems = {
        "Name is too long": len(str(fields.get("name", ""))) > 255,
        "Body is too long": len(str(fields.get("body") or "")) > 25000,
        "Status is not included in the list": fields.get("status", "investigating")
        not in REALTIME + SCHEDULED,
        "Impact override is not included in the list": fields.get("impact_override", "none")
        not in IMPACTS,
        "Component ids are invalid": any(c not in page.components for c in ids),
        "Components are invalid": any(
            c not in page.components or s not in COMPONENT_STATUSES for c, s in components.items()
        ),
        "Metadata values must be objects": not all(isinstance(v, dict) for v in metadata.values()),
    }
    for message, broken in problems.items():
        if broken:
            raise Invalid(422, message)


def _derived(page: Page, incident: Incident) -> str:
    statuses = [page.components[c].status for c in incident.component_ids if c in page.components]
    impacts = [DERIVED_IMPACT.get(s, "none") for s in statuses]
    return max(impacts, key=IMPACTS.index, default="none")


def _in_bodies(q: str, incident: Incident) -> bool:
    return any(q in str(u.get("body") or "") for u in incident.updates)


def _component_json(page: Page, component: Component) -> Json:
    return {"id": component.id, "page_id": page.id, "group_id": None, "name": component.name,
            "description": None, "position": 1, "status": component.status, "showcase": True,
            "only_show_if_degraded": False, "group": False}  # fmt: skip
