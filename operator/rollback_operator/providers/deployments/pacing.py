"""How a deployment adapter waits for the rollback it asked for, and how far back it looks.

Both hosts start a rollback and then poll until it is done, and both page back through their
deployments to find the last good one; they differ only in the numbers (`vercel.PACING`,
`railway.PACING`), which tests shrink with `dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass


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
