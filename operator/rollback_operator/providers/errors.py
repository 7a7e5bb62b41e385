"""The error hierarchy every provider raises, so the engine can decide: retry, or fail the step.

Messages must never contain a secret: adapters build them from status codes, ids and the
provider's own error text, never from request headers or URLs with credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


class ProviderError(Exception):
    """Anything that went wrong talking to a provider."""

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider

    def __str__(self) -> str:
        return f"{self.provider}: {self.message}" if self.provider else self.message


class RetryableError(ProviderError):
    """A transient failure (timeout, connection reset, 5xx): trying again may work."""

    def __init__(
        self, message: str, *, provider: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class RateLimitedError(RetryableError):
    """The provider asked us to slow down (429); `retry_after` says for how long."""


class PermanentError(ProviderError):
    """A failure that repeating the same call will not fix."""


class NotFoundError(PermanentError):
    """The thing asked for does not exist (a deployment, a backup, a bucket)."""


class UnauthorizedError(PermanentError):
    """The credentials were refused or lack a permission."""


class Refused(PermanentError):
    """A 4xx other than 401/403/404, with the provider's status and error code to branch on."""

    def __init__(self, message: str, *, provider: str, status: int, code: str | None) -> None:
        super().__init__(message, provider=provider)
        self.status = status
        self.code = code


def first_provider_error(group: BaseExceptionGroup[BaseException]) -> ProviderError | None:
    """The first ProviderError in a task group's failure (nested groups in order), or None."""
    for error in group.exceptions:
        found = first_provider_error(error) if isinstance(error, BaseExceptionGroup) else error
        if isinstance(found, ProviderError):
            return found
    return None


async def in_order(*calls: Awaitable[Any]) -> list[Any]:
    """What `calls` return, run at the same time (the caller waits for the slowest, not for
    their sum). The error raised is the first in their order, whichever failed first, so the
    same failure always reads the same; the calls still running then are cancelled."""
    running = [asyncio.ensure_future(call) for call in calls]
    try:
        return [await call for call in running]
    finally:
        for call in running:
            if not call.done():
                call.cancel()
            elif not call.cancelled():
                call.exception()  # a later one's error: the first one's is raised
