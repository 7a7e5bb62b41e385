"""Slack incoming webhooks: one readable message per rollback notice.

Why this module exists: it is the `Notifier` the runbook's communication plan starts with, a
Block Kit message (with a plain `text` fallback for notifications) that says what is rolled
back (namespace/name, mode, targets with from -> to), why, how it went, where the report is
and, when it failed, whom to call and which layers it left without traffic, with the command
that resumes them (docs/providers.md, S1-S5).

The webhook URL is the credential. It never reaches the httpx client: the client talks to a
placeholder path and `_Webhook`, the transport, swaps in the real URL at the last moment, so
httpx's own log lines, request objects and exceptions cannot carry it. The same transport turns
Slack's plain-text error bodies (`invalid_payload`, `no_service`, ...: S2, S3) into the JSON
shape the shared wire layer reads, so 429 + Retry-After (S4), 5xx retries and the error classes
come from `providers.http` like every other adapter.

Idempotency: a webhook cannot deduplicate, so after Slack answered 200 the result names
`posted_<kind>=<key>` (one slot per notice kind, as the journal is shared by a rollback's
notices) and `notify` checks the journal for it first: a retry or an operator restart never
posts twice. The engine keeps a result's ids with the step's next write, which comes before any
other provider call, so the post needs no write of its own (it was one status patch per notice).
Two windows remain, both unavoidable with webhooks: a crash between Slack's 200 and that write,
and a resend after a 5xx or a timed-out answer (a lost "rollback failed" message costs more
than a repeated one, as Alertmanager also judges). Each can repeat one message, never more.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import httpx

from rollback_operator.api import policy
from rollback_operator.providers import endpoints, errors, http
from rollback_operator.providers.base import Journal, Notice, StepResult
from rollback_operator.providers.context import BuildContext

PLACEHOLDER_PATH = "/services/***"
_TEXT_LIMIT = 2900  # a section's text may hold 3000 characters, a field's 2000
_HEADER_LIMIT = 150
_ERROR_CODE = re.compile(r"[a-z_]{2,64}")
EXPLAINED = {
    "invalid_payload": "Slack could not read the message",
    "no_text": "the message had no text",
    "invalid_blocks": "Slack refused the message's blocks",
    "invalid_blocks_format": "Slack refused the message's blocks",
    "channel_not_found": "the webhook's channel no longer exists",
    "channel_is_archived": "the webhook's channel is archived",
    "action_prohibited": "a workspace admin restricted posting to this channel",
    "posting_to_general_channel_denied": "only admins may post to this channel",
    "no_service": "the webhook was removed or disabled; create a new one and update its Secret",
    "invalid_token": "the webhook URL is not valid; check its Secret",
    "team_disabled": "the Slack workspace is disabled",
    "rate_limited": "too many messages; Slack asked us to slow down",
}
CREDENTIAL_CODES = frozenset({"no_service", "invalid_token", "no_service_id", "no_team"})
FAILED_WORDS = {"PartiallyFailed": "partially failed", "Aborted": "aborted"}


class SlackNotifier:
    """`Notifier` posting to one incoming webhook."""

    name = "slack"

    def __init__(self, webhook_url: str, options: http.Options | None = None) -> None:
        self._url = webhook_url.strip()
        self._options = options or http.Options()
        parsed = httpx.URL(self._url) if "://" in self._url else None
        self._hidden = sorted({self._url, *_secret_parts(parsed)}, key=len, reverse=True)

    async def notify(self, notice: Notice, key: str, journal: Journal) -> StepResult:
        slot = f"posted_{notice.kind}"
        if journal.recorded.get(slot) == key:
            return StepResult("already posted to Slack", {slot: key})
        if not self._url.startswith(("https://", "http://")):
            raise errors.PermanentError(
                "the webhook Secret does not hold an http(s) URL", provider=self.name
            )
        webhook = _Webhook(self._url, self._options.transport)
        wire = http.Http("slack", _origin(self._url), {}, _with(self._options, webhook))
        call = http.Call("notify", "POST", PLACEHOLDER_PATH, json=message(notice),
                         label="incoming webhook")  # fmt: skip
        try:
            async with wire.session() as session:
                await session.send(call)
        except errors.ProviderError as error:
            raise self._clean(error, webhook.code) from None
        return StepResult(f"posted the {notice.kind} message to Slack", {slot: key})

    def _clean(self, error: errors.ProviderError, code: str | None) -> errors.ProviderError:
        """`error` without the URL in it, as UnauthorizedError when the webhook is not valid."""
        text = error.message
        for hidden in self._hidden:
            text = text.replace(hidden, "***")
        if code in CREDENTIAL_CODES and not isinstance(error, errors.UnauthorizedError):
            return errors.UnauthorizedError(text, provider=error.provider)
        error.message, error.args = text, (text,)
        return error


# ----- the message -----


def message(notice: Notice) -> dict[str, Any]:
    """The webhook payload: Block Kit blocks and the `text` fallback notifications show."""
    stopped = notice.traffic_stopped
    dark = f" — traffic still stopped: {', '.join(stopped)}" if stopped else ""
    text = f"{title(notice)} — {_reason_line(notice)}{dark}"
    return {"text": _escape(text), "blocks": _blocks(notice)}


def title(notice: Notice) -> str:
    """`Rollback started: prod/web`, `... succeeded`, `... failed` (or partially failed...)."""
    if notice.kind == "breach":
        return f"Rule {notice.phase}: {notice.namespace}/{notice.name}"
    if notice.kind == "started":
        verb = "started"
    elif notice.failed:
        verb = FAILED_WORDS.get(notice.phase, "failed")
    else:
        verb = "succeeded"
    return f"Rollback {verb}: {notice.namespace}/{notice.name}"


def _blocks(notice: Notice) -> list[dict[str, Any]]:
    header = f"{_icon(notice)} {title(notice)}"[:_HEADER_LIMIT]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "fields": [_mrkdwn(f"*{k}*\n{v}", 1900) for k, v in _facts(notice)]},
    ]
    blocks += [_section(f"*{k}*\n{v}") for k, v in _sections(notice)]
    blocks.append({"type": "context", "elements": [_mrkdwn(_footer(notice))]})
    return blocks


def _icon(notice: Notice) -> str:
    if notice.kind == "breach":
        return ":rotating_light:" if notice.phase == "Critical" else ":warning:"
    if notice.kind == "started":
        return ":rewind:"
    return ":x:" if notice.failed else ":white_check_mark:"


def _facts(notice: Notice) -> Iterator[tuple[str, str]]:
    yield "Mode", _escape(notice.mode)
    yield "Trigger", "automatic (policy)" if notice.trigger == "policy" else "manual"
    yield "Phase", _escape(notice.phase)
    if notice.version:
        yield "Version", f"`{_escape(notice.version)}`"


def _sections(notice: Notice) -> Iterator[tuple[str, str]]:
    yield "What", _what(notice)
    yield "Why", _escape(_reason_line(notice))
    if notice.summary:
        yield "Progress" if notice.kind == "started" else "Outcome", _escape(notice.summary)
    if notice.traffic_stopped:
        yield "Traffic still stopped", _stopped(notice)
    if notice.failed and notice.contacts:
        yield "Contacts", "\n".join(f"• {_escape(c)}" for c in notice.contacts)


def _stopped(notice: Notice) -> str:
    """Which layers serve no traffic, plainly, and the command that brings them back."""
    layers = ", ".join(notice.traffic_stopped)
    lead = f"{_escape(layers)}: production serves no traffic there until someone resumes it."
    return f"{lead}\nResume: `{_escape(notice.resume_hint)}`" if notice.resume_hint else lead


def _what(notice: Notice) -> str:
    if not notice.moves:
        return "Targets: " + ", ".join(notice.targets)
    return "\n".join(f"• {target}: {_move(change)}" for target, change in notice.moves)


def _move(change: str) -> str:
    before, arrow, after = change.partition(" -> ")
    if not arrow:
        return _escape(change)
    return f"`{_escape(before)}` → `{_escape(after)}`"


def _reason_line(notice: Notice) -> str:
    reason = notice.reason or "no reason given"
    return f"automatic: {reason}" if notice.trigger == "policy" else reason


def _footer(notice: Notice) -> str:
    report = f"Report: ConfigMap `{notice.namespace}/{notice.report}`" if notice.report else ""
    owner = "Policy" if notice.kind == "breach" else "Rollback"
    parts = [report, f"{owner} uid `{notice.uid}`"]
    return " · ".join(_escape(p) for p in parts if p)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str, limit: int = _TEXT_LIMIT) -> dict[str, str]:
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return {"type": "mrkdwn", "text": short}


def _escape(text: str) -> str:
    """Slack's three control characters, so names and reasons are shown, not interpreted."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ----- the wire -----


class _Webhook(httpx.AsyncBaseTransport):
    """Sends to the secret URL; shapes Slack's plain-text errors as `{code, message}` JSON."""

    def __init__(self, url: str, inner: httpx.AsyncBaseTransport | None) -> None:
        self._url = httpx.URL(url)
        self._inner = inner or http.shared_transport()
        self.code: str | None = None
        """Slack's error string of the last failed answer."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        real = httpx.Request(request.method, self._url, headers=request.headers,
                             stream=request.stream, extensions=request.extensions)  # fmt: skip
        response = await self._inner.handle_async_request(real)
        if response.is_success:
            return response
        text = (await response.aread()).decode("utf-8", "replace").strip()
        self.code = text if _ERROR_CODE.fullmatch(text) else None
        body = {"code": self.code, "message": EXPLAINED.get(text, text[:200])}
        return httpx.Response(response.status_code, headers=_kept(response.headers), json=body)


def _secret_parts(url: httpx.URL | None) -> list[str]:
    """The webhook's path and its last segment: each alone would still be the credential."""
    if url is None:
        return []
    parts = [url.path, url.path.rstrip("/").rsplit("/", 1)[-1]]
    return [p for p in parts if len(p) >= 8]


def _kept(headers: httpx.Headers) -> list[tuple[str, str]]:
    dropped = {"content-length", "content-type", "content-encoding", "transfer-encoding"}
    return [(k, v) for k, v in headers.items() if k.lower() not in dropped]


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(path="/", query=None, fragment=None)).rstrip("/")


def _with(options: http.Options, transport: httpx.AsyncBaseTransport) -> http.Options:
    return dataclasses.replace(options, transport=transport)


async def build(config: policy.Slack, context: BuildContext) -> SlackNotifier:
    """The notifier of a policy's `notifications.slack` block."""
    url = await context.secret(config.webhook_secret_ref)
    context.endpoints.check_secret_url(
        "spec.notifications.slack.webhookSecretRef", url, endpoints.OFFICIAL["slack"]
    )
    return SlackNotifier(url)
