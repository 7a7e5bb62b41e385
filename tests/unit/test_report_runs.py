"""The report step of Rollbacks applied one after another under one name: each run's record is
its own, in the namespace's deployment log and the archive, whatever the cluster still holds
of the earlier one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import Rollback, StepState
from rollback_operator.providers.errors import PermanentError
from rollback_operator.reconcile.engine import Engine
from rollback_operator.reconcile.runner import RetryPolicy
from rollback_operator.reconcile.steplist import REPORT
from sandbox import manifests
from sandbox.fakes.host import MemoryHost, MemoryReports, SteppingClock
from sandbox.fakes.memory import FakeProviderFactory, FakeWorld

REFUSAL = "ConfigMap default/rb-1-report exists and was not created by the operator for rb-1"


@dataclass
class MemoryArchive:
    """A report archive in memory: reports by location, the log's lines in order."""

    reports: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    async def store(
        self, namespace: str, name: str, markdown: str, *, uid: str, created: datetime
    ) -> str:
        where = f"mem://{namespace}/{name}/{created:%Y%m%dT%H%M%SZ}-{uid[:8]}.md"
        self.reports[where] = markdown
        return where

    async def log(self, line: str, marker: str) -> bool:
        if any(old.endswith(marker) for old in self.lines):
            return False
        self.lines.append(line)
        return True


class RefusingReports(MemoryReports):
    """The namespace where `rb-1-report` is still the earlier Rollback's."""

    async def store(self, markdown: str) -> str:
        raise PermanentError(REFUSAL, provider="kubernetes")


class _NoSecrets:
    async def read(self, namespace: str, name: str, key: str) -> str:
        raise AssertionError("fakes read no secrets")


async def _run(
    reports: MemoryReports, archive: MemoryArchive | None, reason: str
) -> tuple[Rollback, MemoryHost]:
    """Run a new Rollback `rb-1` (a uid of its own, its clock starting where every run's does,
    so both runs start in the same second) to its end."""
    policy = RollbackPolicy.model_validate(manifests.policy())
    rollback = Rollback.model_validate(
        manifests.stored(manifests.rollback(targets=["frontend"], reason=reason))
    )
    world = FakeWorld()
    providers = await FakeProviderFactory(world).build(policy, _NoSecrets())
    providers.archive = archive
    host = MemoryHost()
    retry = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)
    engine = Engine(
        recorder=host, controls=host, clock=SteppingClock(), reports=reports, retry=retry, tick=0.0
    )
    await engine.run(rollback, policy.spec, providers)
    return rollback, host


async def test_a_name_applied_again_adds_its_own_line_to_the_namespaces_log() -> None:
    reports = MemoryReports()
    await _run(reports, None, "first outage")
    await _run(reports, None, "second outage")
    reasons = sorted(line.split(" - ")[2] for line in reports.log_lines.values())
    assert reasons == ["Reason: first outage", "Reason: second outage"], reports.log_lines


async def test_an_earlier_runs_configmap_still_there_costs_only_the_copy_in_the_cluster() -> None:
    archive = MemoryArchive()
    reports = RefusingReports()
    rollback, host = await _run(reports, archive, "second outage")

    [(where, markdown)] = archive.reports.items()
    assert "second outage" in markdown
    assert where.endswith(f"-{rollback.metadata.uid[:8]}.md")
    assert [line.rsplit(" - ", 1)[-1] for line in archive.lines] == [where]
    assert [line.rsplit(" - ", 1)[-1] for line in reports.log_lines.values()] == [where]
    step = next(s for s in host.last.steps if s.name == REPORT)
    assert step.state == StepState.FAILED
    assert REFUSAL in (step.message or "")
    assert f"the report is in {where}" in (step.message or "")
    assert host.last.report_ref is not None  # the run's report is named where it is
    assert (host.last.report_ref.config_map, host.last.report_ref.s3_key) == (None, where)
