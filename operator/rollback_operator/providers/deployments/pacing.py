"""How a deployment adapter waits for the rollback it asked for, and how far back it looks.

Both hosts start a rollback and then poll until it is done, and both page back through their
deployments to find the last good one; they differ only in the numbers (`vercel.PACING`,
`railway.PACING`), which tests shrink with `dataclasses.replace`. Every poll is a `Wait` on
the HTTP layer's clock, so tests with virtual time never sleep.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollback_operator.providers import errors, http


@dataclass(frozen=True, kw_only=True)
class Pacing:
    """The waits and the paging of one deployment adapter."""

    poll_interval: float
    """Seconds between two looks at a rollback in progress."""
    deadline: float
    """Seconds a rollback may take; past it the step fails this attempt and is retried."""
    page_size: int
    """Deployments asked for per page."""
    max_pages: int
    """Pages read before giving up on finding one (the step then asks for a pin)."""
    appear_deadline: float = 0.0
    """Seconds for the deployment a rollback makes to be listed, for a host that says only
    that it accepted the rollback (Railway)."""

    def wait(self, host: http.Http, seconds: float | None = None) -> Wait:
        """A wait on `host`'s clock that starts now and lasts `seconds` (by default `deadline`)."""
        return Wait(host, self.deadline if seconds is None else seconds, self.poll_interval)


class Wait:
    """One wait for a host's work: look, then `next`, until the look finds it done."""

    def __init__(self, host: http.Http, seconds: float, interval: float) -> None:
        self.seconds = seconds
        self._host, self._interval = host, interval
        self._until = host.options.clock() + seconds

    async def next(self, late: str) -> None:
        """Pause before the next look; once `seconds` have passed, fail with `late` instead
        (retryable: the step's next attempt finds the host's work and waits again)."""
        if self._host.options.clock() >= self._until:
            raise self._host.error(late, errors.RetryableError)
        await self._host.options.sleep(self._interval)
