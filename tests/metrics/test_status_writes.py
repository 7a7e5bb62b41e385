"""When a round writes the policy's status: at once for anything that matters, and only every
few minutes for rule values that merely moved while all is calm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rollback_operator.handlers.policy_live import REFRESH, calm

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _status(value: float, at: datetime, state: str = "Ok", **extra: Any) -> dict[str, Any]:
    rule = {"name": "errors", "state": state, "value": value, "since": "2026-01-01T00:00:00Z",
            "lastEvaluated": at.isoformat().replace("+00:00", "Z")}  # fmt: skip
    return {"rules": [rule], "breachingRules": 0, **extra}


def test_a_moved_value_waits_while_the_stored_one_is_fresh() -> None:
    assert calm(_status(0.01, T0), _status(0.02, T0 + timedelta(seconds=30)), T0 + REFRESH / 2)


def test_a_moved_value_is_written_once_the_stored_one_is_stale() -> None:
    later = T0 + REFRESH
    assert not calm(_status(0.01, T0), _status(0.02, later), later)


def test_a_state_change_is_written_at_once() -> None:
    new = _status(0.09, T0 + timedelta(seconds=30), state="Pending")
    assert not calm(_status(0.01, T0), new, T0 + timedelta(seconds=30))


def test_any_other_field_is_written_at_once() -> None:
    new = _status(0.01, T0, suppressed={"Cooldown": 1})
    assert not calm(_status(0.01, T0), new, T0)


def test_a_status_never_written_is_written() -> None:
    assert not calm({}, _status(0.01, T0), T0)
