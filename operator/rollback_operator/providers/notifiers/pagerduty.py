"""PagerDuty Events API v2: page someone when a rollback needs a person, resolve it when not.

Why this module exists: it is the optional pager of the runbook's communication plan
(docs/providers.md, PD1-PD7). A person who starts a rollback already knows about it, so only an
automatic (policy-triggered) start is paged, with severity `error`; any rollback that ends
Failed, PartiallyFailed or Aborted is paged with severity `critical`; a rollback that succeeds
resolves the alert, and only when something was triggered for it. A rollback that left traffic
stopped says so first in the alert's summary, with the command that resumes it in its details.

Every event of a rollback carries the same `dedup_key`, derived from its uid, so PagerDuty
itself folds repeats into one alert and drops a `resolve` with nothing open (PD3): sending an
event twice is harmless. The key is recorded in the journal before a trigger is sent (so the
success that follows a crash still resolves it), and `posted_<kind>=<key>` after PagerDuty accepted
the event (so a retried or restarted notify sends nothing at all).

The routing key is the credential and travels only in the request body, which the wire layer
never logs; a 400 that names the routing key is reported as UnauthorizedError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import httpx

from rollback_operator.api import policy
from rollback_operator.providers import errors, http
from rollback_operator.providers.base import Journal, Notice, StepResult
from rollback_operator.providers.context import BuildContext

Action = Literal["trigger", "resolve"]
SUMMARY_LIMIT = 1024


def dedup_key(uid: str) -> str:
    """The one alert key of a rollback."""
    return f"rollback-operator/{uid}"


class PagerDutyNotifier:
    """`Notifier` sending Events v2 to one integration (routing key)."""

    name = "pagerduty"

    def __init__(
        self, config: policy.PagerDuty, routing_key: str, options: http.Options | None = None
    ) -> None:
        url = httpx.URL(config.api_url)
        origin = str(url.copy_with(path="/", query=None, fragment=None)).rstrip("/")
        self._http = http.Http("pagerduty", origin, {}, options)
        self._path = url.path if url.path not in ("", "/") else "/v2/enqueue"
        self._key = routing_key.strip()

    async def notify(self, notice: Notice, key: str, journal: Journal) -> StepResult:
        if notice.kind == "breach":
            return StepResult("rule breaches page nobody: an automatic or failed rollback does")
        slot = f"posted_{notice.kind}"
        if journal.recorded.get(slot) == key:
            return StepResult("already sent to PagerDuty", {slot: key})
        action = _action(notice, journal.recorded)
        if action is None:
            return StepResult(_nothing_to_send(notice))
        dedup = dedup_key(notice.uid)
        if action == "trigger":
            await journal.record(dedup_key=dedup)
        await self._send(action, self._event(notice, action, dedup))
        await journal.record(**{slot: key})
        ids = {"dedup_key": dedup, slot: key}
        return StepResult(f"sent a {action} event to PagerDuty", ids)

    async def _send(self, action: Action, event: dict[str, Any]) -> None:
        call = http.Call(f"send {action}", "POST", self._path, json=event, label="events v2")
        try:
            async with self._http.session() as s:
                await http.json_object(s, call)
        except errors.ProviderError as error:
            raise self._clean(error) from None

    def _event(self, notice: Notice, action: Action, dedup: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "routing_key": self._key,
            "event_action": action,
            "dedup_key": dedup,
            "client": "rollback-operator",
        }
        return event | ({"payload": _payload(notice)} if action == "trigger" else {})

    def _clean(self, error: errors.ProviderError) -> errors.ProviderError:
        """`error` without the routing key; UnauthorizedError when PagerDuty refused the key."""
        text = error.message.replace(self._key, "***")
        refused_key = isinstance(error, errors.Refused) and "routing" in text.lower()
        if refused_key:
            return errors.UnauthorizedError(text, provider=error.provider)
        error.message, error.args = text, (text,)
        return error


def _action(notice: Notice, recorded: Mapping[str, str]) -> Action | None:
    if notice.kind == "started":
        return "trigger" if notice.trigger == "policy" else None
    if notice.failed:
        return "trigger"
    return "resolve" if recorded.get("dedup_key") else None


def _nothing_to_send(notice: Notice) -> str:
    if notice.kind == "started":
        return "a person started this rollback; nobody paged"
    return "nothing was paged for this rollback; nothing to resolve"


def _payload(notice: Notice) -> dict[str, Any]:
    where = f"{notice.namespace}/{notice.name}"
    what = f"({notice.mode}: {', '.join(notice.targets)})"
    if notice.kind == "started":
        summary = f"Automatic rollback started: {where} {what} - {notice.reason}"
    else:
        summary = f"Rollback {notice.phase}: {where} {what} - {notice.summary or notice.reason}"
    if notice.traffic_stopped:
        summary = f"TRAFFIC STILL STOPPED ({', '.join(notice.traffic_stopped)}): {summary}"
    return {
        "summary": summary[:SUMMARY_LIMIT],
        "source": where,
        "severity": "critical" if notice.failed else "error",
        "component": ", ".join(notice.targets),
        "group": notice.namespace,
        "class": "rollback",
        "custom_details": _details(notice),
    }


def _details(notice: Notice) -> dict[str, Any]:
    details: dict[str, Any] = {
        "rollback": f"{notice.namespace}/{notice.name}",
        "uid": notice.uid,
        "mode": notice.mode,
        "trigger": notice.trigger,
        "phase": notice.phase,
        "reason": notice.reason,
        "summary": notice.summary,
        "version": notice.version,
        "moves": dict(notice.moves),
        "report": f"ConfigMap {notice.namespace}/{notice.report}" if notice.report else "",
        "contacts": list(notice.contacts) if notice.failed else [],
        "traffic_stopped": list(notice.traffic_stopped),
        "resume": notice.resume_hint if notice.traffic_stopped else "",
    }
    return {k: v for k, v in details.items() if v}


async def build(config: policy.PagerDuty, context: BuildContext) -> PagerDutyNotifier:
    """The notifier of a policy's `notifications.pagerduty` block."""
    return PagerDutyNotifier(config, await context.secret(config.routing_key_secret_ref))
