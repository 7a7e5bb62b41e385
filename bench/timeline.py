"""Where a rollback's time goes: when each step started and ended, after the rollback's creation.

Why this module exists: `bench.load` says how much longer a rollback takes in a burst than
alone, not where. Every step records its start and end in the Rollback's status, so the
bodies the benchmark already waits for tell, step by step, which part grew (the wait to start,
the notice, the frontend's or the backend's instant rollback, the report). `load` prints the
median of each moment alone and in the burst, side by side, from the same run.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from datetime import datetime
from typing import Any

Moments = dict[str, list[float]]
"""'<step>[/<target>] started|ended' -> seconds after creation, one value per rollback."""


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def moments(bodies: Mapping[str, Any], created: Mapping[str, float]) -> Moments:
    """Each step's start and end (and the rollback's), seconds after each rollback's creation."""
    found: Moments = {}
    for name, body in bodies.items():
        status, since = body.get("status", {}), created[name]
        for step in [{"name": "rollback", **status}, *status.get("steps", [])]:
            label = step["name"] + (f"/{step['target']}" if step.get("target") else "")
            for field, word in (("startedAt", "started"), ("finishedAt", "ended")):
                if step.get(field):
                    found.setdefault(f"{label} {word}", []).append(_at(step[field]) - since)
    return found


def lines(alone: Moments, burst: Moments) -> list[str]:
    """One line a moment, in the order of the burst's medians: alone, in the burst, the ratio."""
    rows = [f"  {'moment (s after creation, median)':44s} {'alone':>7s} {'burst':>7s} {'x':>6s}"]
    for key in sorted(burst, key=lambda k: statistics.median(burst[k])):
        was, now = statistics.median(alone.get(key) or [0.0]), statistics.median(burst[key])
        ratio = f"{now / was:6.1f}" if was > 0.005 else f"{'':6s}"
        rows.append(f"  {key:44s} {was:7.2f} {now:7.2f} {ratio}")
    return rows
