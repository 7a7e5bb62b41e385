"""The runbook's order as data: which steps a rollback runs, in which groups, and their traits.

`full`: notify -> stop traffic -> safety backup -> restore database -> restore storage ->
deploy previous -> verify -> report -> notify. `quick`: notify -> frontend and backend instant
rollback in parallel -> verify -> report -> notify. `resume-traffic` is not planned: it is added
when a failed or aborted rollback gives traffic back (`reconcile.traffic`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rollback_operator.api.common import Target
from rollback_operator.api.rollback import StepStatus

NOTIFY_STARTED = "notify-started"
STOP_TRAFFIC = "stop-traffic"
SAFETY_BACKUP = "safety-backup"
RESTORE_DATABASE = "restore-database"
RESTORE_STORAGE = "restore-storage"
DEPLOY_PREVIOUS = "deploy-previous"
INSTANT_ROLLBACK = "instant-rollback"
RESUME_TRAFFIC = "resume-traffic"
VERIFY = "verify"
REPORT = "report"
NOTIFY_FINISHED = "notify-finished"


@dataclass(frozen=True)
class Trait:
    """How the engine treats a step."""

    destructive: bool = False  # changes what users see or the data they have
    critical: bool = True  # its failure changes the rollback's outcome
    always: bool = False  # runs even after a failure or an abort
    parallel: bool = False  # consecutive parallel steps run together
    cut_safely: bool = False  # an attempt cut short may stay unfinished: it changes nothing
    record_start: bool = True  # its start is durable before it acts (False: it only reads,
    # rewrites its own output, or tells people: a redo is harmless, or tells them again, which
    # a crash after the telling did before too; nobody needs to know it began)


TRAITS: dict[str, Trait] = {
    NOTIFY_STARTED: Trait(critical=False, record_start=False),
    STOP_TRAFFIC: Trait(destructive=True),
    SAFETY_BACKUP: Trait(cut_safely=True),
    RESTORE_DATABASE: Trait(destructive=True),
    RESTORE_STORAGE: Trait(destructive=True),
    DEPLOY_PREVIOUS: Trait(destructive=True),
    INSTANT_ROLLBACK: Trait(destructive=True, parallel=True),
    RESUME_TRAFFIC: Trait(critical=False, always=True, parallel=True),
    VERIFY: Trait(cut_safely=True, record_start=False),
    REPORT: Trait(critical=False, always=True, record_start=False),
    NOTIFY_FINISHED: Trait(critical=False, always=True, record_start=False),
}

TRAFFIC_TARGETS = (Target.FRONTEND, Target.BACKEND)


def steps_for(mode: str, targets: list[Target], *, safety_backup: bool) -> list[StepStatus]:
    """The ordered, all-Pending step list of a rollback."""
    chosen = set(targets)
    traffic = [t for t in TRAFFIC_TARGETS if t in chosen]
    steps: list[tuple[str, Target | None]] = [(NOTIFY_STARTED, None)]
    if mode == "quick":
        steps += [(INSTANT_ROLLBACK, t) for t in traffic]
    else:
        steps += [(STOP_TRAFFIC, t) for t in traffic]
        if Target.DATABASE in chosen:
            if safety_backup:
                steps.append((SAFETY_BACKUP, Target.DATABASE))
            steps.append((RESTORE_DATABASE, Target.DATABASE))
        if Target.STORAGE in chosen:
            steps.append((RESTORE_STORAGE, Target.STORAGE))
        steps += [(DEPLOY_PREVIOUS, t) for t in traffic]
    steps += [(VERIFY, None), (REPORT, None), (NOTIFY_FINISHED, None)]
    return [StepStatus(name=name, target=target) for name, target in steps]


def groups(steps: list[StepStatus]) -> list[list[int]]:
    """Indexes of `steps` in execution groups: parallel neighbours share a group."""
    out: list[list[int]] = []
    for index, step in enumerate(steps):
        previous = steps[index - 1] if index else None
        joins = previous is not None and TRAITS[step.name].parallel and previous.name == step.name
        if joins:
            out[-1].append(index)
        else:
            out.append([index])
    return out


def idempotency_key(uid: str, step: StepStatus) -> str:
    """The key every write of a step carries, so a retry is harmless."""
    return f"{uid}/{step.name}/{step.target.value if step.target else '-'}"
