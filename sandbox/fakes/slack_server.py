"""A stateful fake of Slack incoming webhooks, served over real HTTP.

Why this module exists: the Slack notifier must be tested on the wire (the URL as the only
credential, plain-text error bodies, 429 + Retry-After) without posting to Slack. Behaviour
follows docs/providers.md S1-S4: registered webhook paths, each with a channel and a state; JSON
validation (`text` or non-empty `blocks`/`attachments`); Slack's plain-text error strings with
their statuses; a token bucket of about one message per second with a small burst; and a log of
every payload received.

Uncertain points (docs/providers.md S3, S4; where this fake is kinder: docs/providers.md#kinder,
item 10), each a constructor flag: the answer for a URL that names no webhook
(`unknown_webhook`, default 403 `invalid_token`; 404 `no_service` is also seen); the 429 body
(`rate_limited`); the bucket's scope (per webhook here).
"""

from __future__ import annotations

import itertools
import math
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from sandbox.fakes.http_server import ApiCall, Clock, FakeApi, RateLimited, ReplyFault, ServerError

WebhookState = Literal["active", "archived", "revoked", "prohibited", "channel_deleted"]
STATE_ERRORS: dict[str, tuple[int, str]] = {
    "archived": (410, "channel_is_archived"),
    "revoked": (404, "no_service"),
    "prohibited": (403, "action_prohibited"),
    "channel_deleted": (404, "channel_not_found"),
}
MAX_ATTACHMENTS = 100
MAX_BLOCKS = 50


@dataclass
class Webhook:
    """One incoming webhook: the secret path, its fixed channel, and what it received."""

    path: str
    channel: str
    state: WebhookState = "active"
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TokenBucket:
    """`rate` tokens a second up to `burst`; a post takes one."""

    rate: float
    burst: int
    clock: Clock
    tokens: float = -1.0
    at: float = 0.0

    def take(self) -> int | None:
        """None when a token was taken, else whole seconds until one is available."""
        now = self.clock()
        if self.tokens < 0:
            self.tokens, self.at = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self.tokens) / self.rate))


class FakeSlack(FakeApi):
    """In-memory Slack workspace that accepts incoming-webhook posts."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        clock: Clock = time.time,
        rate: float = 1.0,
        burst: int = 5,
        unknown_webhook: tuple[int, str] = (403, "invalid_token"),
        rate_limited_body: str = "rate_limited",
    ) -> None:
        super().__init__(latency=latency, clock=clock)
        self.unknown_webhook = unknown_webhook
        self.rate_limited_body = rate_limited_body
        self._rate, self._burst = rate, burst
        self._webhooks: dict[str, Webhook] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._ts = itertools.count(1)

    # ----- seeding and inspection (call from any thread) -----

    def add_webhook(self, channel: str, *, state: WebhookState = "active") -> str:
        """Register a webhook posting to `channel`; returns its secret path."""
        path = f"/services/T{secrets.token_hex(4).upper()}/B{secrets.token_hex(4).upper()}/"
        path += secrets.token_urlsafe(18)
        with self.lock:
            self._webhooks[path] = Webhook(path, channel, state)
        return path

    def set_state(self, path: str, state: WebhookState) -> None:
        with self.lock:
            self._webhooks[path].state = state

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every payload accepted, oldest first (for one channel if given)."""
        with self.lock:
            hooks = self._webhooks.values()
            return [m for h in hooks if channel in (None, h.channel) for m in h.messages]

    def secrets(self) -> Iterable[str]:
        return [p.rsplit("/", 1)[1] for p in self._webhooks]

    def shown(self) -> list[Any]:
        return self.messages()

    # ----- FakeApi hooks -----

    def describe(self, call: ApiCall) -> tuple[str, bool]:
        hook = self._webhooks.get(call.path)
        return f"{call.method} webhook:{hook.channel if hook else '?'}", call.method == "POST"

    def admit(self, call: ApiCall, route: str) -> web.Response | None:
        hook = self._webhooks.get(call.path)
        if hook is None or call.method != "POST":
            return None
        bucket = self._buckets.setdefault(
            hook.path, TokenBucket(self._rate, self._burst, self.clock)
        )
        wait = bucket.take()
        return None if wait is None else self._rate_limited(wait)

    def dispatch(self, call: ApiCall) -> web.Response:
        hook = self._webhooks.get(call.path)
        if hook is None:
            return _text(*self.unknown_webhook)
        if call.method != "POST":
            return _text(405, "invalid_method")
        if hook.state != "active":
            return _text(*STATE_ERRORS[hook.state])
        problem = _payload_problem(call)
        if problem is not None:
            return _text(400, problem)
        hook.messages.append({**call.body, "_channel": hook.channel, "_ts": f"{next(self._ts)}"})
        return _text(200, "ok")

    def fault_response(self, fault: ReplyFault) -> web.Response:
        if isinstance(fault, RateLimited):
            return self._rate_limited(fault.retry_after)
        if isinstance(fault, ServerError):
            return _text(fault.status, fault.message)
        return _text(fault.status or 400, fault.code or fault.message)

    def finish(self, call: ApiCall, response: web.Response) -> None:
        response.headers.setdefault("X-Slack-Backend", "fake")

    def _rate_limited(self, retry_after: int) -> web.Response:
        response = _text(429, self.rate_limited_body)
        response.headers["Retry-After"] = str(retry_after)
        return response


def _payload_problem(call: ApiCall) -> str | None:
    """Slack's error string for a body it would refuse, or None."""
    content_type = call.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if call.json_error or content_type != "application/json" or not isinstance(call.body, dict):
        return "invalid_payload"
    body: dict[str, Any] = call.body
    blocks, attachments = body.get("blocks"), body.get("attachments")
    if not (body.get("text") or blocks or attachments):
        return "no_text"
    if blocks is not None and not _valid_blocks(blocks):
        return "invalid_blocks"
    if isinstance(attachments, list) and len(attachments) > MAX_ATTACHMENTS:
        return "too_many_attachments"
    return None


def _valid_blocks(blocks: Any) -> bool:
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return False
    return all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")
