"""Bad input on a planned rollback keeps its phase; a fix gives the phase's own summary back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rollback_operator.api.conditions import ConditionType, find
from rollback_operator.api.rollback import Phase, RollbackStatus
from rollback_operator.reconcile import transitions

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "phase", [Phase.AWAITING_APPROVAL, Phase.QUEUED, Phase.RUNNING, Phase.VERIFYING]
)
def test_bad_input_on_a_planned_rollback_stalls_it_in_its_phase_until_fixed(phase: Phase) -> None:
    status = RollbackStatus(phase=phase, accepted_generation=1)
    transitions.invalid(status, "policy gone", now=NOW, generation=1)
    assert status.phase == phase
    assert transitions.is_invalid(status)
    assert transitions.input_fixed(status, now=NOW, generation=1)
    assert status.phase == phase
    stalled = find(status.conditions, ConditionType.STALLED)
    assert stalled is not None
    assert stalled.status == "False"
    assert not transitions.input_fixed(status, now=NOW, generation=1)


def test_bad_input_before_planning_shows_as_pending() -> None:
    status = RollbackStatus()
    transitions.invalid(status, "policy gone", now=NOW, generation=1)
    assert status.phase == Phase.PENDING
    assert transitions.is_invalid(status)
