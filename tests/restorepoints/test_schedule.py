"""The schedule takes one point per slot, in UTC, and `keep` lets go only of scheduled points
that ended, oldest first, never the newest that succeeded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rollback_operator.api import TRIGGER_LABEL
from rollback_operator.api.restorepoint import Keep, RestorePoint
from rollback_operator.reconcile import schedule

NOW = datetime(2026, 12, 7, 13, 30, tzinfo=UTC)
CRON = "0 */6 * * *"


def point(name: str, created: datetime, phase: str = "Succeeded", *, trigger: str = "schedule",
          policy: str = "mindmate") -> RestorePoint:  # fmt: skip
    return RestorePoint.model_validate({
        "metadata": {"name": name, "creationTimestamp": created.isoformat(),
                     "labels": {TRIGGER_LABEL: trigger}},
        "spec": {"policyRef": {"name": policy}},
        "status": {"phase": phase},
    })  # fmt: skip


def test_the_due_slot_is_the_newest_past_one_after_the_policy_was_made() -> None:
    slot = datetime(2026, 12, 7, 12, tzinfo=UTC)
    assert schedule.due(CRON, NOW, since=NOW - timedelta(days=1), taken=[]) == slot
    assert schedule.due(CRON, NOW, since=NOW - timedelta(minutes=5), taken=[]) is None
    assert schedule.next_slot(CRON, NOW) == datetime(2026, 12, 7, 18, tzinfo=UTC)
    assert schedule.point_name("mindmate", slot) == "mindmate-202612071200"


def test_a_slot_already_taken_is_not_due_again_and_a_missed_one_is_taken_once() -> None:
    since = NOW - timedelta(days=3)
    taken = [point("a", datetime(2026, 12, 7, 12, 0, 1, tzinfo=UTC))]
    assert schedule.due(CRON, NOW, since, taken) is None
    stale = [point("b", datetime(2026, 12, 4, 0, 0, 1, tzinfo=UTC))]  # the operator was down
    assert schedule.due(CRON, NOW, since, stale) == datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_a_cron_slot_at_the_minute_itself_is_due() -> None:
    at = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    assert schedule.last_slot(CRON, at) == at


def test_keep_count_lets_go_of_the_oldest_scheduled_points_that_ended() -> None:
    times = [NOW - timedelta(hours=6 * i) for i in range(5)]
    points = [point(f"p{i}", t) for i, t in enumerate(times)]
    points.append(point("manual", NOW - timedelta(days=9), trigger="manual"))
    mine = schedule.scheduled(points, "mindmate")
    assert [p.metadata.name for p in mine] == ["p0", "p1", "p2", "p3", "p4"]
    gone = schedule.expired(mine, Keep(count=3), NOW)
    assert [p.metadata.name for p in gone] == ["p3", "p4"]


def test_keep_max_age_lets_go_of_old_ones_but_never_the_newest_that_succeeded() -> None:
    points = [
        point("failed-new", NOW - timedelta(hours=1), "Failed"),
        point("running", NOW - timedelta(days=40), "Running"),
        point("good-old", NOW - timedelta(days=31)),
        point("older", NOW - timedelta(days=32)),
    ]
    mine = schedule.scheduled(points, "mindmate")
    gone = schedule.expired(mine, Keep(max_age="30d"), NOW)
    assert [p.metadata.name for p in gone] == ["older"]


def test_points_of_another_policy_are_never_this_schedules() -> None:
    points = [point("other", NOW - timedelta(days=90), policy="other")]
    assert schedule.scheduled(points, "mindmate") == []
