"""The typed memo handed to every handler: settings, clients, provider factories, the clock.

Built once by the composition root (`app`); kopf copies memos per object, so `__copy__`
returns the same instance and every handler shares one set of clients.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rollback_operator.kube import KubeApi
from rollback_operator.providers.base import MetricsFactory, ProviderFactory
from rollback_operator.reconcile.runner import RetryPolicy
from rollback_operator.settings import Settings
from rollback_operator.telemetry.metrics import Telemetry


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Now, in UTC."""
        return datetime.now(UTC)


@dataclass
class Admission:
    """Rollbacks this process has let start, so two never start at once on the same targets."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    running: set[str] = field(default_factory=set)


@dataclass
class Deps:
    """Everything the handlers need."""

    settings: Settings
    kube: KubeApi
    providers: ProviderFactory
    clock: SystemClock = field(default_factory=SystemClock)
    admission: Admission = field(default_factory=Admission)
    metrics: MetricsFactory | None = None
    telemetry: Telemetry = field(default_factory=Telemetry)  # what /metrics serves
    runs: set[str] = field(default_factory=set)
    """uids of the Rollbacks whose daemon runs in this process now."""
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The status each Rollback's run last wrote from this process, by uid, kept while it may
    be needed: a deletion handler goes on from it (the watch may not have delivered it yet)."""
    told: set[str] = field(default_factory=set)
    """uids of objects whose held deletion this process already posted an Event about."""

    def __copy__(self) -> Deps:
        return self

    @property
    def retry(self) -> RetryPolicy:
        """The step retry policy from the settings."""
        s = self.settings
        return RetryPolicy(
            max_attempts=s.step_max_attempts,
            base_delay=s.step_base_delay,
            max_delay=s.step_max_delay,
            deadline=s.step_deadline,
        )
