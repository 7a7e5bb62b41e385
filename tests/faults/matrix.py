"""The fault matrix as data: what each test observed, collected into one JSON file.

Why this module exists: the table in docs/reliability.md must be what the tests saw, not what
someone typed. Each fault test records one `Outcome` (provider, operation, fault, whether the
fault cleared, and what happened); at the end of the session the rows are merged into a JSON
file (`ROLLBACK_FAULT_MATRIX`, else `fault-matrix.json` in pytest's temp dir), and
`tests/faults/table.py` renders the Markdown from it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from rollback_operator.providers import errors

# What a fault that persists must end in, for an HTTP provider that honours Retry-After.
PERSISTENT: dict[str, type[errors.ProviderError]] = {
    "429": errors.RateLimitedError,
    "500": errors.RetryableError,
    "timeout": errors.RetryableError,
    "dropped": errors.RetryableError,
    "unreachable": errors.RetryableError,
    "bad-credentials": errors.UnauthorizedError,
}

Level = Literal["adapter", "rollback"]
Persistence = Literal["transient", "persistent"]

FAULTS = ("429", "500", "timeout", "dropped", "unreachable", "bad-credentials")
"""The columns: 429 with Retry-After, HTTP 500, a stall past the client's timeout, a
connection closed without an answer, nothing listening, and refused credentials."""

PROVIDERS = ("vercel", "railway", "postgres", "s3", "prometheus", "slack", "statuspage",
             "pagerduty")  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """One cell of the matrix as a test observed it."""

    level: Level
    provider: str
    operation: str
    fault: str
    persistence: Persistence
    outcome: str
    """`recovered` (retried, then succeeded), an error class name, `N/A`, or a phase."""
    detail: str = ""
    """The error message or the step message, as the operator shows it (never a secret)."""
    bug: str = ""
    """Set when the outcome is not the one the design asks for (its test is a strict xfail)."""

    def key(self) -> tuple[str, str, str, str, str]:
        return (self.level, self.provider, self.operation, self.fault, self.persistence)


def error_class(error: BaseException) -> str:
    """The `providers.errors` class name of an error (the finest one it is)."""
    assert isinstance(error, errors.ProviderError), f"not a provider error: {error!r}"
    return type(error).__name__


class Recorder:
    """Collects outcomes from the tests of one session (thread-safe)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, str, str, str], Outcome] = {}
        self._lock = threading.Lock()

    def add(self, outcome: Outcome) -> None:
        assert outcome.fault in FAULTS, outcome.fault
        assert outcome.provider in PROVIDERS, outcome.provider
        with self._lock:
            self._rows[outcome.key()] = outcome

    def rows(self) -> list[Outcome]:
        with self._lock:
            return list(self._rows.values())

    def merge_into(self, path: Path) -> None:
        """Write the rows into `path`, keeping rows of other cells already there."""
        merged = {row.key(): row for row in load(path)} if path.exists() else {}
        merged.update({row.key(): row for row in self.rows()})
        ordered = sorted(merged.values(), key=_order)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([asdict(r) for r in ordered], indent=1) + "\n")


def load(path: Path) -> list[Outcome]:
    """The rows of a matrix file."""
    return [Outcome(**row) for row in json.loads(path.read_text())]


def _order(row: Outcome) -> tuple[int, int, str, int, str, str]:
    return (
        0 if row.level == "adapter" else 1,
        PROVIDERS.index(row.provider),
        row.operation,
        FAULTS.index(row.fault),
        row.persistence,
        row.outcome,
    )
