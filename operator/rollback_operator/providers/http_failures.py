"""What a provider's failed answer means: its error class, its own code and message, and how
long it asks us to wait.

Why this module exists: every adapter's API words a failure its own way (Vercel's `error`
object, GraphQL's `errors` array, Prometheus' `error` text, a bare `message`) and says when to
come back in `Retry-After` or a rate-limit reset header. `classify` turns any of them into one
`Failure`, which the retrying layer (`providers.http`) acts on and finally raises as a
`providers.errors` class.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from rollback_operator.providers import errors

_MESSAGE_LIMIT = 300
_STATUS_LABELS = {401: "unauthorized", 403: "unauthorized", 404: "not_found"}


@dataclass(frozen=True)
class Failure:
    """Why one attempt failed, before it becomes an exception."""

    detail: str
    kind: type[errors.ProviderError]
    retry_after: float | None = None
    sent: bool = True
    status: int | None = None
    code: str | None = None

    @property
    def retryable(self) -> bool:
        return issubclass(self.kind, errors.RetryableError)

    @property
    def label(self) -> str:
        """The kind of failure as a metric label."""
        if self.status is None:
            return "timeout" if self.detail.startswith("timed out") else "connection"
        if self.status == 429:
            return "rate_limited"
        if self.status >= 500:
            return "server_error"
        return _STATUS_LABELS.get(self.status, "refused")


def classify(response: httpx.Response, now: float) -> Failure:
    """The error class of a non-2xx answer, with the provider's own code and message."""
    status = response.status_code
    if status < 400:  # redirects are not followed: a moved API must be configured, not guessed
        moved = f"HTTP {status}: redirected; set apiUrl to the new address"
        return Failure(moved, errors.Refused, status=status)
    code, text = provider_error(response)
    detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {text}" if text else "")
    if status == 429:
        wait = retry_after(response.headers, now)
        return Failure(detail, errors.RateLimitedError, wait, status=status, code=code)
    if status >= 500:
        wait = retry_after(response.headers, now) if "Retry-After" in response.headers else None
        return Failure(detail, errors.RetryableError, wait, status=status, code=code)
    kind: type[errors.ProviderError] = {
        401: errors.UnauthorizedError,
        403: errors.UnauthorizedError,
        404: errors.NotFoundError,
    }.get(status, errors.Refused)
    return Failure(detail, kind, status=status, code=code)


def provider_error(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from Vercel's `error`, GraphQL's `errors`, Prometheus' `error` text,
    or a bare `message`."""
    try:
        body = response.json()
    except ValueError:
        return None, response.reason_phrase
    if not isinstance(body, dict):
        return None, response.reason_phrase
    error = body.get("error") or body.get("err")
    if isinstance(error, dict):
        return _text(error.get("code")), _short(error.get("message"))
    if isinstance(error, str) and error:  # Prometheus: {"errorType": "bad_data", "error": "..."}
        return _text(body.get("errorType")), _short(error)
    listed = body.get("errors")
    if isinstance(listed, list) and listed:
        return None, _short("; ".join(graphql_messages(listed)))
    return _text(body.get("code")), _short(body.get("message") or response.reason_phrase)


def graphql_messages(listed: list[Any]) -> list[str]:
    """The `message` of each entry of a GraphQL `errors` array."""
    return [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in listed]


def retry_after(headers: httpx.Headers, now: float) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or HTTP date) or `X-RateLimit-Reset`."""
    raw = headers.get("Retry-After")
    if raw is not None:
        return _seconds_or_date(raw.strip(), now)
    raw = headers.get("X-RateLimit-Reset")
    return _reset_at(raw.strip(), now) if raw is not None else None


def _seconds_or_date(raw: str, now: float) -> float | None:
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(raw).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _reset_at(raw: str, now: float) -> float | None:
    """A reset time as Unix seconds, Unix milliseconds, seconds from now, or ISO-8601."""
    try:
        value = float(raw)
    except ValueError:
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    if value > 1e12:
        value /= 1000.0
    return max(0.0, value - now) if value > 1e9 else max(0.0, value)


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _short(value: Any) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."
