"""What a fake API was asked, kept for tests to read, with every credential blanked out.

Why this module exists: tests assert on the calls a fake received (how many mutations, which
routes, which bodies), and the log they read must never hold a secret the leak scan would
flag, so each call is redacted before it is recorded: credential headers entirely (keeping an
auth scheme word), known secrets wherever they appear in a path, query or body.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REDACTED = "***REDACTED***"
_SECRET_HEADERS = frozenset({"authorization", "project-access-token", "cookie", "x-api-key"})


@dataclass(frozen=True)
class RequestRecord:
    """One call as the fake saw it; credentials are already redacted."""

    method: str
    path: str
    route: str
    query: Mapping[str, str]
    body: Any
    headers: Mapping[str, str]
    status: int | None
    """HTTP status answered; None when the connection closed first (`Dropped`, client gone)."""
    mutating: bool
    fault: str | None
    """Class name of the injected fault that shaped this answer, if any."""
    arrived: int = 0
    """When the call arrived, on the fake's own count of arrivals and answers."""
    answered: int = 0
    """When it was answered (or dropped), on the same count."""

    def overlaps(self, other: RequestRecord) -> bool:
        """Both calls were in flight at once: each arrived before the other was answered."""
        return self.arrived < other.answered and other.arrived < self.answered


class RequestLog:
    """Thread-safe, append-only list of `RequestRecord`s with a few query helpers."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._grew = threading.Condition(self._lock)

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
            self._grew.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until at least `count` records exist (calls end in the server's thread)."""
        with self._lock:
            return self._grew.wait_for(lambda: len(self._records) >= count, timeout)

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def matching(self, route: str = "*", *, mutating: bool | None = None) -> list[RequestRecord]:
        return [
            r
            for r in self.records
            if fnmatch.fnmatchcase(r.route, route) and mutating in (None, r.mutating)
        ]

    def count_mutating(self, route: str = "*") -> int:
        """Mutating calls that reached the fake, whatever their outcome."""
        return len(self.matching(route, mutating=True))

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """Replace every occurrence of a secret inside strings, lists and dicts."""
    secret_list = [s for s in secrets if s]
    if isinstance(value, str):
        for secret in secret_list:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, list):
        return [redact(v, secret_list) for v in value]
    if isinstance(value, dict):
        return {k: redact(v, secret_list) for k, v in value.items()}
    return value


def redact_headers(headers: Mapping[str, str], secrets: Iterable[str]) -> dict[str, str]:
    """Blank credential headers entirely (keeping an auth scheme word) and scrub the rest."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS:
            scheme, _, rest = value.partition(" ")
            out[name] = f"{scheme} {REDACTED}" if rest else REDACTED
        else:
            out[name] = redact(value, secrets)
    return out
