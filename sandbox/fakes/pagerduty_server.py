"""A stateful fake of PagerDuty's Events API v2 (`POST /v2/enqueue`), over real HTTP.

Why this module exists: the PagerDuty notifier must be tested on the wire (routing key in the
body, 202/400/429, deduplication) without paging anyone. Behaviour follows docs/providers.md
PD1-PD6: known routing keys, each an integration of a service; alerts keyed by (routing key,
dedup key) with state `triggered | acknowledged | resolved`; a `trigger` creates or re-triggers
the open alert and generates a dedup key when none is given; `acknowledge`/`resolve` with no
open alert are dropped yet answered 202; a trigger after resolution opens a new alert; strict
validation answered 400 with an `errors` list; a per-key sliding window of about 120 events a
minute answered 429.

Uncertain points (docs/providers.md PD5, PD6, PD7; where this fake is kinder:
docs/providers.md#kinder, item 13), each a flag or a documented guess: the literal
`status`/`message` strings of 202 and 400 (the v1 ones), the 429 body, no `Retry-After` on 429
(`retry_after_header` adds one), the `errors` texts (the routing-key ones are as reported by
users of the real API), and 400 for a well-formed but unknown key.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from sandbox.fakes.http_server import ApiCall, Clock, FakeApi, RateLimited, ReplyFault, ServerError

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
MAX_EVENT_BYTES = 512 * 1024
_ALNUM = re.compile(r"[A-Za-z0-9]+")
Json = dict[str, Any]
AlertState = Literal["triggered", "acknowledged", "resolved"]


@dataclass
class Alert:
    """One alert of one integration; `events` are the accepted events that touched it."""

    service: str
    dedup_key: str
    severity: str
    summary: str
    state: AlertState = "triggered"
    events: list[Json] = field(default_factory=list)


class FakePagerDuty(FakeApi):
    """In-memory PagerDuty account with Events v2 integrations and their alerts."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        clock: Clock = time.time,
        rate_limit: int = 120,
        retry_after_header: bool = False,
    ) -> None:
        super().__init__(latency=latency, clock=clock)
        self.rate_limit = rate_limit
        self.retry_after_header = retry_after_header
        self._keys: dict[str, str] = {}  # routing key -> service
        self._alerts: list[Alert] = []
        self._seen: dict[str, collections.deque[float]] = {}
        self.dropped: list[Json] = []
        """acknowledge/resolve events that found no open alert (answered 202, did nothing)."""

    # ----- seeding and inspection (call from any thread) -----

    def add_integration(self, service: str) -> str:
        """A new Events v2 integration on `service`; returns its 32-character routing key."""
        key = secrets.token_hex(16)
        with self.lock:
            self._keys[key] = service
        return key

    def alerts(self, service: str | None = None) -> list[Alert]:
        with self.lock:
            return [a for a in self._alerts if service in (None, a.service)]

    def secrets(self) -> Iterable[str]:
        return list(self._keys)

    def shown(self) -> list[Any]:
        with self.lock:
            return [dataclasses.asdict(a) for a in self._alerts] + list(self.dropped)

    # ----- FakeApi hooks -----

    def describe(self, call: ApiCall) -> tuple[str, bool]:
        action = call.body.get("event_action") if isinstance(call.body, dict) else None
        return f"{call.method} {call.path}:{action or '?'}", call.method == "POST"

    def admit(self, call: ApiCall, route: str) -> web.Response | None:
        key = call.body.get("routing_key") if isinstance(call.body, dict) else None
        if not isinstance(key, str) or key not in self._keys:
            return None
        now, seen = self.clock(), self._seen.setdefault(key, collections.deque())
        while seen and now - seen[0] >= 60.0:
            seen.popleft()
        if len(seen) >= self.rate_limit:
            return self._throttled(max(1, int(60.0 - (now - seen[0])) + 1))
        seen.append(now)
        return None

    def fault_response(self, fault: ReplyFault) -> web.Response:
        if isinstance(fault, RateLimited):
            return self._throttled(fault.retry_after)
        if isinstance(fault, ServerError):
            body = {"status": "error", "message": fault.message}
            return web.json_response(body, status=fault.status)
        return _invalid([fault.message], fault.status or 400)

    def finish(self, call: ApiCall, response: web.Response) -> None:
        response.headers.setdefault("X-Request-Id", uuid.uuid4().hex)

    def dispatch(self, call: ApiCall) -> web.Response:
        if call.path != "/v2/enqueue":
            return web.json_response({"status": "not found", "message": "Not Found"}, status=404)
        if call.method != "POST":
            return web.json_response({"status": "error", "message": "Not Allowed"}, status=405)
        if call.json_error or not isinstance(call.body, dict):
            return _invalid(["Event object is not valid JSON"])
        event: Json = call.body
        problems = self._problems(event)
        if problems:
            return _invalid(problems)
        dedup = str(event.get("dedup_key") or uuid.uuid4().hex)
        self._apply(self._keys[event["routing_key"]], event, dedup)
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": dedup}, status=202
        )

    # ----- events -----

    def _problems(self, event: Json) -> list[str]:
        problems = _key_problems(event.get("routing_key"), self._keys)
        if event.get("event_action") not in ACTIONS:
            problems.append("'event_action' is missing or invalid")
        if len(str(event.get("dedup_key") or "")) > 255:
            problems.append("'dedup_key' is too long (max 255 characters)")
        if event.get("event_action") == "trigger":
            problems += _payload_problems(event.get("payload"))
        if len(json.dumps(event)) > MAX_EVENT_BYTES:
            problems.append("Event is larger than 512 KB")
        return problems

    def _apply(self, service: str, event: Json, dedup: str) -> None:
        open_ = next(
            (a for a in self._alerts if (a.service, a.dedup_key) == (service, dedup)
             and a.state != "resolved"),
            None,
        )  # fmt: skip
        logged = {k: v for k, v in event.items() if k != "routing_key"}
        action = event["event_action"]
        if action == "trigger" and open_ is None:
            payload = event["payload"]
            open_ = Alert(service, dedup, payload["severity"], payload["summary"])
            self._alerts.append(open_)
        elif open_ is None:
            self.dropped.append(logged)
            return
        elif action != "trigger":
            open_.state = "acknowledged" if action == "acknowledge" else "resolved"
        open_.events.append(logged)

    def _throttled(self, retry_after: int) -> web.Response:
        response = web.json_response(
            {"status": "throttle exceeded",
             "message": "Requests for this service are arriving too quickly. Please retry later."},
            status=429,
        )  # fmt: skip
        if self.retry_after_header:
            response.headers["Retry-After"] = str(retry_after)
        return response


def _key_problems(key: Any, known: dict[str, str]) -> list[str]:
    if not isinstance(key, str) or not key:
        return ["'routing_key' is missing or blank"]
    problems = []
    if len(key) != 32:
        problems.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    if not _ALNUM.fullmatch(key):
        problems.append("'routing_key' cannot contain non-alphanumeric characters.")
    return problems or ([] if key in known else ["Invalid routing key"])


def _payload_problems(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or blank"]
    problems = [
        f"'payload.{name}' is missing or blank"
        for name in ("summary", "source", "severity")
        if not str(payload.get(name) or "").strip()
    ]
    if payload.get("severity") and payload["severity"] not in SEVERITIES:
        problems.append(f"'payload.severity' is invalid (must be one of {', '.join(SEVERITIES)})")
    if len(str(payload.get("summary") or "")) > 1024:
        problems.append("'payload.summary' is too long (max 1024 characters)")
    return problems


def _invalid(problems: list[str], status: int = 400) -> web.Response:
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": problems}
    return web.json_response(body, status=status)
