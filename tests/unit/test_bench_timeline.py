"""The load benchmark's step timeline reads each step's moments after the rollback's creation."""

from __future__ import annotations

from datetime import UTC, datetime

from bench import timeline

CREATED = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC).timestamp()


def _body(started: str, backend_end: str) -> dict[str, object]:
    return {
        "status": {
            "startedAt": f"2026-12-07T12:00:{started}Z",
            "finishedAt": f"2026-12-07T12:00:{backend_end}Z",
            "steps": [
                {"name": "notify-started", "startedAt": f"2026-12-07T12:00:{started}Z"},
                {
                    "name": "instant-rollback",
                    "target": "backend",
                    "startedAt": f"2026-12-07T12:00:{started}Z",
                    "finishedAt": f"2026-12-07T12:00:{backend_end}Z",
                },
                {"name": "verify"},
            ],
        }
    }


def test_each_moment_is_seconds_after_its_own_rollbacks_creation() -> None:
    bodies = {"a": _body("01", "05"), "b": _body("03", "09")}
    found = timeline.moments(bodies, {"a": CREATED, "b": CREATED + 1})
    assert found["rollback started"] == [1.0, 2.0]
    assert found["instant-rollback/backend ended"] == [5.0, 8.0]
    assert found["notify-started started"] == [1.0, 2.0]
    assert "verify started" not in found  # a step that never ran has no moment


def test_the_lines_put_alone_beside_the_burst_with_their_ratio() -> None:
    alone = {"rollback started": [0.5], "rollback ended": [4.0]}
    burst = {"rollback ended": [10.0, 8.0, 9.0], "rollback started": [1.0]}
    header, first, second = timeline.lines(alone, burst)
    assert "alone" in header
    assert first.split() == ["rollback", "started", "0.50", "1.00", "2.0"]
    assert second.split() == ["rollback", "ended", "4.00", "9.00", "2.2"]
