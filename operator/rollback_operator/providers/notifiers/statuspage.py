"""Atlassian Statuspage: one public incident per rollback, opened when it starts, closed at the end.

Why this module exists: it is the runbook's "update the status page" as a `Notifier` over
Statuspage's manage API (docs/providers.md, ST1-ST7). `started` opens an incident with the
policy's `incident` title, status, impact and message (by default the runbook's "Service
Degradation", investigating, major, "We're currently experiencing issues..."), and component
statuses by mode: a quick rollback degrades performance, a full one stops traffic, a major
outage. `finished` updates the same incident: a succeeded
rollback resolves it and sets the components back to `operational` in one PATCH (the finished
notice of a Succeeded rollback comes after verification passed, so a `monitoring` stop would
only leave an incident open that nothing would ever close); a failed, partly failed or aborted
one moves it to `identified` with an update saying so (and which layers stay offline when it
left traffic stopped: such an incident is never resolved here), and leaves components and
closing to people.

Statuspage pages are public, so incidents carry no namespace, reason, contact or report: only
the targets, the outcome, and the rollback uid as a reference (in the body and `metadata`).
That reference is how a crash between creating an incident and recording its id is survived:
before creating, `notify` looks through the page's unresolved incidents for one that carries
the uid and adopts it. The same look comes before resending a create or an update whose
answer was lost, so the page never shows a second incident or a repeated update.

Statuspage rate-limits with 420 (historically) or 429 (ST6), and may put its error text in
`message` or `error` (ST5); `_Shaping` presents both as the shared wire layer expects.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from rollback_operator.api import policy
from rollback_operator.providers import errors, http
from rollback_operator.providers.base import Journal, Notice, StepResult
from rollback_operator.providers.context import BuildContext

Json = dict[str, Any]
COMPONENT_STATUS = {"quick": "degraded_performance", "full": "major_outage"}
FAILED_WORDS = {
    "PartiallyFailed": "completed only in part",
    "Aborted": "was stopped before it completed",
}
PAGE_SIZE = 100
MAX_PAGES = 5


class StatuspageNotifier:
    """`Notifier` keeping one incident per rollback on one Statuspage page."""

    name = "statuspage"

    def __init__(
        self, config: policy.Statuspage, api_key: str, options: http.Options | None = None
    ) -> None:
        self._config = config
        self._key = api_key.strip()
        self._options = options or http.Options()
        self._path = f"/pages/{config.page_id}/incidents"

    async def notify(self, notice: Notice, key: str, journal: Journal) -> StepResult:
        if notice.kind == "breach":
            return StepResult("rule breaches are not posted on the status page")
        options = dataclasses.replace(self._options, transport=_Shaping(self._options.transport))
        auth = {"Authorization": f"OAuth {self._key}"}
        wire = http.Http("statuspage", self._config.api_url, auth, options)
        try:
            async with wire.session() as s:
                if notice.kind == "started":
                    return await self._open(s, notice, journal)
                return await self._close(s, notice, journal)
        except errors.ProviderError as error:
            error.message = error.message.replace(self._key, "***")
            error.args = (error.message,)
            raise

    # ----- started -----

    async def _open(self, s: http.Session, notice: Notice, journal: Journal) -> StepResult:
        known = journal.recorded.get("incident")
        if known:
            return StepResult(f"incident {known} is already open", {"incident": known})
        found = await self._find(s, notice.uid)
        if found is not None:
            await journal.record(incident=found["id"])
            return StepResult(f"adopted incident {found['id']} opened earlier", _ids(found))
        wanted = self._config.incident
        body = wanted.message + _reference(notice)
        incident = await self._create(s, notice, wanted.status, body)
        await journal.record(incident=incident["id"])
        status = COMPONENT_STATUS.get(notice.mode, COMPONENT_STATUS["quick"])
        parts = f", components {status}" if self._config.component_ids else ""
        message = f"opened incident {incident['id']} ({wanted.status}{parts})"
        return StepResult(message, _ids(incident))

    # ----- finished -----

    async def _close(self, s: http.Session, notice: Notice, journal: Journal) -> StepResult:
        incident = await self._current(s, journal.recorded.get("incident"), notice.uid)
        if incident is None and not notice.failed:
            return StepResult("no incident is open for this rollback; nothing to resolve")
        if incident is None:
            incident = await self._create(s, notice, "identified", _failure(notice, ref=True))
            await journal.record(incident=incident["id"])
            return StepResult(f"opened incident {incident['id']} (identified)", _ids(incident))
        return await self._update(s, incident, self._closing(notice))

    async def _update(self, s: http.Session, incident: Json, fields: Json) -> StepResult:
        """PATCH `fields` onto `incident` unless it is resolved or already says so."""
        number = str(incident["id"])
        if incident.get("status") == "resolved":
            return StepResult(f"incident {number} is already resolved", _ids(incident))
        if _has_update(incident, fields):
            return StepResult(f"incident {number} already says so", _ids(incident))
        call = http.Call("update incident", "PATCH", f"{self._path}/{number}",
                         json={"incident": fields}, idempotent=False)  # fmt: skip

        async def landed() -> Json | None:
            again = await self._read(s, number)
            return again if again and _has_update(again, fields) else None

        updated = await self._once(s, call, landed)
        return StepResult(f"incident {number} {fields['status']}", _ids(updated))

    def _closing(self, notice: Notice) -> Json:
        if notice.failed or notice.traffic_stopped:  # never resolved while traffic is stopped
            return {"status": "identified", "body": _failure(notice, ref=False)}
        components = dict.fromkeys(self._config.component_ids, "operational")
        return {"status": "resolved", "body": _resolved(notice), "components": components}

    async def _current(self, s: http.Session, known: str | None, uid: str) -> Json | None:
        """The incident recorded for this rollback, else an unresolved one that carries `uid`."""
        return await self._read(s, known) if known else await self._find(s, uid)

    # ----- calls -----

    async def _create(self, s: http.Session, notice: Notice, status: str, body: str) -> Json:
        component = COMPONENT_STATUS.get(notice.mode, COMPONENT_STATUS["quick"])
        ids = self._config.component_ids
        fields = {
            "name": self._config.incident.title,
            "status": status,
            "body": body,
            "impact_override": self._config.incident.impact,
            "component_ids": ids,
            "components": dict.fromkeys(ids, component),
            "metadata": {"rollback_operator": {"uid": notice.uid}},
        }
        call = http.Call("open incident", "POST", self._path, json={"incident": fields},
                         idempotent=False)  # fmt: skip
        return await self._once(s, call, lambda: self._find(s, notice.uid))

    async def _once(
        self, s: http.Session, call: http.Call, landed: Callable[[], Awaitable[Json | None]]
    ) -> Json:
        """Send `call`, which must not repeat; after a lost answer, resend if it did not land."""
        retry, opts, attempt = self._options.retry, self._options, 0
        while True:
            attempt += 1
            try:
                return await http.json_object(s, call)
            except errors.RateLimitedError:
                raise  # not acted on, and the wire layer already waited as long as it should
            except errors.RetryableError:
                if attempt >= retry.attempts:
                    raise
                found = await landed()
                if found is not None:
                    return found
                await opts.sleep(retry.backoff(attempt, opts.jitter))

    async def _read(self, s: http.Session, incident: str) -> Json | None:
        try:
            return await http.json_object(
                s, http.Call("read incident", "GET", f"{self._path}/{incident}")
            )
        except errors.NotFoundError:
            return None  # deleted by a person: treated as never opened

    async def _find(self, s: http.Session, uid: str) -> Json | None:
        """An unresolved incident that carries `uid` (newest pages first, a bounded search)."""
        for page in range(1, MAX_PAGES + 1):
            params = {"page": str(page), "per_page": str(PAGE_SIZE)}
            call = http.Call("find incident", "GET", f"{self._path}/unresolved", params)
            listed = await _json_list(s, call)
            found = next((i for i in listed if isinstance(i, dict) and _carries(i, uid)), None)
            if found is not None or len(listed) < PAGE_SIZE:
                return found
        return None


async def _json_list(s: http.Session, call: http.Call) -> list[Any]:
    answer: list[Any] = await http.json_answer(s, call, list)
    return answer


# ----- what the page says -----


def _resolved(notice: Notice) -> str:
    to = f" to {notice.version}" if notice.version else ""
    return f"The rollback{to} is complete and our checks passed. Service is operating normally."


def _failure(notice: Notice, *, ref: bool) -> str:
    verb = FAILED_WORDS.get(notice.phase, "did not complete")
    text = f"The rollback of the {_and(notice.targets)} {verb}."
    if notice.traffic_stopped:
        text += f" The {_and(notice.traffic_stopped)} remain offline until we bring them back."
    text += " Our engineers are working on it."
    return text + (_reference(notice) if ref else "")


def _reference(notice: Notice) -> str:
    return f"\n\nReference: rollback {notice.uid}"


def _and(targets: tuple[str, ...]) -> str:
    """`frontend`, `frontend and backend`, `frontend, backend and database`."""
    if len(targets) < 2:
        return targets[0] if targets else "app"
    return f"{', '.join(targets[:-1])} and {targets[-1]}"


def _carries(incident: Json, uid: str) -> bool:
    meta = (incident.get("metadata") or {}).get("rollback_operator") or {}
    if isinstance(meta, dict) and meta.get("uid") == uid:
        return True
    bodies = [u.get("body") or "" for u in incident.get("incident_updates") or []]
    return any(uid in str(text) for text in [incident.get("name") or "", *bodies])


def _has_update(incident: Json, fields: Json) -> bool:
    """Whether one of the incident's updates already has `fields`' status and body."""
    wanted = (fields["status"], fields["body"])
    return any(
        (u.get("status"), u.get("body")) == wanted for u in incident.get("incident_updates") or []
    )


def _ids(incident: Json) -> dict[str, str]:
    ids = {"incident": str(incident["id"])}
    return ids | ({"shortlink": str(incident["shortlink"])} if incident.get("shortlink") else {})


# ----- the wire -----


class _Shaping(httpx.AsyncBaseTransport):
    """Presents a 420 as the 429 it means, and an `error` text as the `message` it is."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None) -> None:
        self._inner = inner or http.shared_transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code < 400:
            return response
        text = _error_text(await response.aread())
        if response.status_code == 420:
            text = f"rate limited (HTTP 420){': ' + text if text else ''}"
        status = 429 if response.status_code == 420 else response.status_code
        return httpx.Response(status, headers=_kept(response.headers), json={"message": text})


def _error_text(raw: bytes) -> str | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:300] or None
    if not isinstance(body, dict):
        return None
    value = body.get("message") or body.get("error") or body.get("errors")
    return "; ".join(map(str, value)) if isinstance(value, list) else str(value or "") or None


def _kept(headers: httpx.Headers) -> list[tuple[str, str]]:
    dropped = {"content-length", "content-type", "content-encoding", "transfer-encoding"}
    return [(k, v) for k, v in headers.items() if k.lower() not in dropped]


async def build(config: policy.Statuspage, context: BuildContext) -> StatuspageNotifier:
    """The notifier of a policy's `notifications.statuspage` block."""
    return StatuspageNotifier(config, await context.secret(config.api_key_secret_ref))
