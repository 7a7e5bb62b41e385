"""The step engine, driven against in-memory fakes: order, records, gates, faults and resume."""

from __future__ import annotations

from typing import Any

import pytest

from rollback_operator.api.conditions import ConditionType, find
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import Phase, Rollback, StepState
from rollback_operator.providers.base import Providers
from rollback_operator.reconcile.engine import Engine
from rollback_operator.reconcile.runner import RESUMED, RetryPolicy
from sandbox import manifests
from sandbox.fakes.host import MemoryHost, MemoryReports, SteppingClock
from sandbox.fakes.memory import FakeProviderFactory, FakeWorld

DESTRUCTIVE_OPS = [
    "frontend.stop_traffic",
    "backend.stop_traffic",
    "database.safety_backup",
    "database.restore",
    "storage.restore",
    "frontend.rollback",
    "backend.rollback",
    "frontend.resume_traffic",
    "backend.resume_traffic",
]


class Harness:
    """One rollback, its world and its host."""

    def __init__(self, policy_changes: dict[str, Any] | None = None, **spec: Any) -> None:
        self.world = FakeWorld()
        self.host = MemoryHost()
        self.reports = MemoryReports()
        self.policy = RollbackPolicy.model_validate(manifests.policy(**(policy_changes or {})))
        self.rollback = Rollback.model_validate(manifests.stored(manifests.rollback(**spec)))

    async def providers(self) -> Providers:
        return await FakeProviderFactory(self.world).build(self.policy, _NoSecrets())

    def engine(self) -> Engine:
        retry = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)
        return Engine(
            recorder=self.host,
            controls=self.host,
            clock=SteppingClock(),
            reports=self.reports,
            retry=retry,
            tick=0.0,
        )

    async def run(self) -> Phase | None:
        return await self.engine().run(self.rollback, self.policy.spec, await self.providers())

    async def resume(self) -> Phase | None:
        self.rollback.status = self.host.last.model_copy(deep=True)
        return await self.run()

    def steps(self) -> list[tuple[str, str | None, StepState]]:
        return [
            (s.name, s.target.value if s.target else None, s.state) for s in self.host.last.steps
        ]

    def condition(self, type_: ConditionType) -> str | None:
        found = find(self.host.last.conditions, type_)
        return found.status if found else None


class _NoSecrets:
    async def read(self, namespace: str, name: str, key: str) -> str:
        raise AssertionError("fakes read no secrets")


async def test_quick_rollback_moves_frontend_and_backend_and_succeeds() -> None:
    h = Harness()
    assert await h.run() == Phase.SUCCEEDED
    assert h.world.state["frontend"]["live"] == "dpl_old"
    assert h.world.state["backend"]["live"] == "d-old"
    assert [name for name, _, _ in h.steps()] == [
        "notify-started",
        "instant-rollback",
        "instant-rollback",
        "verify",
        "report",
        "notify-finished",
    ]
    assert all(state == StepState.SUCCEEDED for _, _, state in h.steps())
    assert h.condition(ConditionType.READY) == "True"
    assert h.condition(ConditionType.STALLED) == "False"
    assert h.host.last.plan
    assert h.host.last.plan.frontend
    assert h.host.last.plan.frontend.from_ == "dpl_new"
    assert h.host.released


async def test_full_rollback_runs_the_runbook_order_and_restores_every_layer() -> None:
    h = Harness(mode="full")
    assert await h.run() == Phase.SUCCEEDED
    assert [(n, t) for n, t, _ in h.steps()] == [
        ("notify-started", None),
        ("stop-traffic", "frontend"),
        ("stop-traffic", "backend"),
        ("safety-backup", "database"),
        ("restore-database", "database"),
        ("restore-storage", "storage"),
        ("deploy-previous", "frontend"),
        ("deploy-previous", "backend"),
        ("verify", None),
        ("report", None),
        ("notify-finished", None),
    ]
    world = h.world.state
    assert world["frontend"] == {**world["frontend"], "live": "dpl_old", "serving": True}
    assert world["backend"] == {**world["backend"], "live": "d-old", "serving": True}
    assert world["database"]["contents"] == "restored from backup_20240101.dump"
    assert len(world["database"]["safety"]) == 1
    assert all(h.world.calls(op) == 1 for op in DESTRUCTIVE_OPS)
    plan = h.host.last.plan
    assert plan
    assert plan.database
    assert plan.database.data_loss_window


async def test_each_step_is_recorded_before_the_next_begins() -> None:
    h = Harness(mode="full")
    await h.run()
    names = [s.name for s in h.host.last.steps]
    for index in range(1, len(names)):
        started_next = next(
            st for st in h.host.statuses if st.steps and st.steps[index].state != StepState.PENDING
        )
        assert started_next.steps[index - 1].state == StepState.SUCCEEDED, names[index]


async def test_dry_run_plans_and_changes_nothing() -> None:
    h = Harness(mode="full", dryRun=True)
    assert await h.run() == Phase.PLANNED
    assert h.world.state["calls"] == {}
    assert h.host.last.plan
    assert h.host.last.plan.storage
    assert h.condition(ConditionType.PLANNED) == "True"
    assert h.condition(ConditionType.READY) == "True"
    assert all(state == StepState.PENDING for _, _, state in h.steps())


async def test_approval_gate_waits_until_the_annotation_appears() -> None:
    h = Harness(requireApproval=True)
    h.host.on_pause = ["", "", "approve"]
    assert await h.run() == Phase.SUCCEEDED
    assert h.host.pauses == 3
    phases = [s.phase for s in h.host.statuses]
    assert Phase.AWAITING_APPROVAL in phases
    assert h.host.last.approved_by == "alice"
    assert h.condition(ConditionType.APPROVED) == "True"


async def test_abort_before_approval_changes_nothing() -> None:
    h = Harness(requireApproval=True)
    h.host.on_pause = ["abort"]
    assert await h.run() == Phase.ABORTED
    assert h.world.state["calls"] == {}
    assert h.world.state["notices"] == []
    assert h.condition(ConditionType.STALLED) == "True"


async def test_abort_mid_run_skips_steps_not_started_and_keeps_the_record() -> None:
    h = Harness(mode="full")
    h.world.inject("database.restore", {"kind": "retryable"})
    h.host.on_pause = ["abort"]
    assert await h.run() == Phase.ABORTED
    states = {(n, t): s for n, t, s in h.steps()}
    assert states[("stop-traffic", "frontend")] == StepState.SUCCEEDED
    assert states[("restore-database", "database")] == StepState.SUCCEEDED
    assert states[("restore-storage", "storage")] == StepState.SKIPPED
    assert states[("report", None)] == StepState.SUCCEEDED
    assert h.world.calls("storage.restore") == 0
    assert "Aborted; already done: stop-traffic (frontend)" in (h.host.last.message or "")


async def test_transient_error_is_retried_and_attempts_are_recorded() -> None:
    h = Harness()
    h.world.inject("backend.rollback", {"kind": "rate-limited", "retry_after": 0})
    assert await h.run() == Phase.SUCCEEDED
    backend = next(s for s in h.host.last.steps if s.target and s.target.value == "backend")
    assert backend.attempts == 2
    assert "StepRetrying" in h.host.reasons()


async def test_retries_give_up_after_max_attempts_and_fail_the_step() -> None:
    h = Harness()
    h.world.inject("frontend.rollback", *[{"kind": "retryable"}] * 3)
    assert await h.run() == Phase.PARTIALLY_FAILED
    front = next(s for s in h.host.last.steps if s.target and s.target.value == "frontend")
    assert front.state == StepState.FAILED
    assert front.message
    assert front.message.startswith("gave up after 3 attempts")


async def test_permanent_failure_of_first_destructive_step_fails_and_skips_the_rest() -> None:
    h = Harness(mode="full")
    h.world.inject("frontend.stop_traffic", {"kind": "permanent"})
    assert await h.run() == Phase.FAILED
    states = {(n, t): s for n, t, s in h.steps()}
    assert states[("stop-traffic", "frontend")] == StepState.FAILED
    assert states[("restore-database", "database")] == StepState.SKIPPED
    assert states[("notify-finished", None)] == StepState.SUCCEEDED
    assert h.world.calls("database.restore") == 0
    assert h.condition(ConditionType.STALLED) == "True"
    assert h.condition(ConditionType.READY) == "False"


async def test_one_target_failing_in_quick_mode_is_a_partial_failure() -> None:
    h = Harness()
    h.world.inject("backend.rollback", {"kind": "permanent"})
    assert await h.run() == Phase.PARTIALLY_FAILED
    assert h.world.state["frontend"]["live"] == "dpl_old"


async def test_failed_verification_is_a_partial_failure_with_verified_false() -> None:
    h = Harness()
    h.world.state["checks"] = [{"name": "api", "passed": False, "message": "503"}]
    assert await h.run() == Phase.PARTIALLY_FAILED
    assert h.condition(ConditionType.VERIFIED) == "False"
    assert h.host.last.verification[0].message == "503"


async def test_planning_failure_ends_failed_without_touching_anything() -> None:
    h = Harness(to={"frontend": {"deploymentId": "dpl_missing"}})
    assert await h.run() == Phase.FAILED
    assert h.world.state["calls"] == {}
    assert h.host.last.steps == []
    assert "dpl_missing" in (h.host.last.message or "")


async def test_queued_rollback_records_its_position_and_runs_when_admitted() -> None:
    h = Harness()
    h.host.queue = [2, 1]
    assert await h.run() == Phase.SUCCEEDED
    positions = [s.queue_position for s in h.host.statuses if s.phase == Phase.QUEUED]
    assert 2 in positions
    assert 1 in positions
    assert h.host.last.queue_position is None


async def test_resume_redoes_the_interrupted_step_and_never_repeats_finished_ones() -> None:
    h = Harness(mode="full")
    h.world.inject("database.restore", {"kind": "retryable"})
    h.host.stop_after_pauses = 1
    assert await h.run() is None
    interrupted = next(s for s in h.host.last.steps if s.name == "restore-database")
    assert interrupted.state == StepState.RUNNING
    h.host.stop_after_pauses = None
    assert await h.resume() == Phase.SUCCEEDED
    redone = next(s for s in h.host.last.steps if s.name == "restore-database")
    assert redone.attempts == 2
    assert all(h.world.calls(op) == 1 for op in DESTRUCTIVE_OPS)
    assert any(st.steps[4].message == RESUMED for st in h.host.statuses if len(st.steps) > 4)


async def test_terminal_rollback_is_left_alone() -> None:
    h = Harness()
    await h.run()
    saves = len(h.host.statuses)
    assert await h.resume() == Phase.SUCCEEDED
    assert len(h.host.statuses) == saves


async def test_spec_change_after_planning_is_refused_with_a_condition() -> None:
    h = Harness(requireApproval=True)
    h.host.on_pause = ["", "approve"]
    h.host.stop_after_pauses = 1
    await h.run()
    h.host.generation_now = 2
    h.host.stop_after_pauses = None
    assert await h.resume() == Phase.SUCCEEDED
    assert h.condition(ConditionType.SPEC_CHANGE_REFUSED) == "True"
    assert h.host.last.accepted_generation == 1


@pytest.mark.parametrize("safety", [True, False], ids=["safety-on", "safety-off"])
async def test_safety_backup_step_follows_the_policy(safety: bool) -> None:
    changes = {"targets": {"database": {"postgres": {"safetyBackup": safety}}}}
    h = Harness(policy_changes=changes, mode="full", targets=["database"])
    assert await h.run() == Phase.SUCCEEDED
    assert ("safety-backup", "database", StepState.SUCCEEDED) in h.steps() or not safety
    assert h.world.calls("database.safety_backup") == int(safety)


async def test_finish_notice_reuses_what_the_start_notice_recorded_and_names_contacts() -> None:
    contacts = [{"role": "primary", "name": "Infra", "email": "infra@example.com"}]
    h = Harness(policy_changes={"contacts": contacts})
    h.world.inject("backend.rollback", {"kind": "permanent"})
    assert await h.run() == Phase.PARTIALLY_FAILED
    started, finished = h.world.state["notices"]
    assert started["thread"] is None
    assert finished["thread"] == f"thread-{started['key']}"
    assert finished["contacts"] == ["primary: Infra <infra@example.com>"]


async def test_report_records_plan_impact_steps_follow_ups_and_contacts() -> None:
    contacts = [{"role": "primary", "name": "Infra", "email": "infra@example.com"}]
    h = Harness(policy_changes={"contacts": contacts}, mode="full", version="v1.0.0")
    h.world.inject("storage.restore", {"kind": "permanent"})
    assert await h.run() == Phase.PARTIALLY_FAILED
    (report,) = h.reports.reports.values()
    assert "- Outcome: **PartiallyFailed**" in report
    assert "- Version: v1.0.0" in report
    assert "data-loss window (writes discarded): " in report
    assert "| restore-database | database | Succeeded | 1 |" in report
    assert "| restore-storage | storage | Failed | 1 |" in report
    assert "safetyBackup=safety/" in report
    assert "## Follow-ups" in report
    assert "- primary: Infra <infra@example.com>" in report


async def test_an_approval_by_the_requester_does_not_count_and_says_so_once() -> None:
    h = Harness(requireApproval=True)
    h.host.requester = "alice"
    h.host.on_pause = ["approve", "", "", "approve:bob"]
    assert await h.run() == Phase.SUCCEEDED
    approvals = [(s.phase, find(s.conditions, ConditionType.APPROVED)) for s in h.host.statuses]
    waiting = [c for phase, c in approvals if phase == Phase.AWAITING_APPROVAL]
    refused = [c for c in waiting if c is not None and c.reason == "SelfApproval"]
    assert refused, "no status said the self-approval was refused"
    condition = refused[-1]
    assert condition.status == "False"
    assert "alice requested this rollback" in condition.message
    assert h.host.reasons().count("SelfApproval") == 1
    assert h.host.last.approved_by == "bob"
    assert h.condition(ConditionType.APPROVED) == "True"


async def test_a_rollback_approved_only_by_its_requester_never_runs() -> None:
    h = Harness(requireApproval=True)
    h.host.requester = "alice"
    h.host.on_pause = ["approve", "", "", "abort"]
    assert await h.run() == Phase.ABORTED
    assert h.world.state["calls"] == {}
    assert h.host.last.approved_by is None
