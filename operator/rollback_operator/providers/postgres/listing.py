"""How backups are listed and shown: their order, their size in words, a candidate row each."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rollback_operator.providers.base import Candidate
from rollback_operator.providers.objectstore import layout

if TYPE_CHECKING:
    from rollback_operator.providers.postgres.database import Backup


def by_time(backup: Backup) -> tuple[datetime, str]:
    """Sort key: when it was taken, then its name (so equal times still order the same)."""
    return backup.taken_at, backup.name


def candidate(backup: Backup, state: str, default: bool) -> Candidate:
    """The backup as `kubectl rollback candidates` lists it."""
    safety = " (safety dump)" if layout.is_safety_dump(backup.name) else ""
    return Candidate(
        backup.name, backup.taken_at, state, False, default, size(backup.size) + safety
    )


def size(count: int) -> str:
    """A byte count for people: 512 B, 3.2 MiB."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"
