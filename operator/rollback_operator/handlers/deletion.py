"""Deleting a Rollback or a RollbackPolicy mid-flight: never a rollback cut in half.

kopf cancels a Rollback's daemon as soon as the object is marked for deletion (no grace period:
a grace period would also delay an outranked replica's pause, and two replicas would act). The
step in flight is then where a crash would leave it: `Running` in the record. The deletion
handler below takes over once the daemon has ended, from the record, and runs the engine:

- deleted by a person: an abort, the safe way. The step cut short is finished (redone from its
  start, so its effect happens once), steps not started are skipped, traffic is given back if
  the policy says `resume`, and the report and the final notices (Slack, Statuspage,
  PagerDuty) say `Aborted`;
- deleted by its policy's cascade (an automatic Rollback whose policy is being deleted or is
  gone: a GitOps prune), once it has started: it runs to its end, as if nothing happened;
- traffic the rollback stopped and left stopped (`failurePolicy.traffic: keepStopped`) holds the
  deletion, with a Warning Event naming each layer and the command that resumes it: letting
  the object go would lose the only record that production is dark, and resuming on its own
  would override the policy. The resume-traffic annotation gives traffic back, then it goes.

Then the record is kept: a report that is not in the S3 archive is copied into a ConfigMap that
nothing owns (`<name>-report-<uid>`), since the report ConfigMap the Rollback owns goes with it.

A RollbackPolicy's deletion waits while a Rollback of it runs or holds traffic stopped: those
need the policy's providers to end well, also after an operator restart.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf
from pydantic import ValidationError

from rollback_operator.api import (
    GROUP,
    KEPT_FINISHED_ANNOTATION,
    KEPT_FOR_ANNOTATION,
    KEPT_REPORT_LABEL,
    KEPT_UID_ANNOTATION,
    POLICY_LABEL,
    TRIGGER_LABEL,
    VERSION,
)
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import STARTED_PHASES, TERMINAL_PHASES, Rollback, RollbackStatus
from rollback_operator.handlers import rollback as daemon
from rollback_operator.handlers.deps import Deps
from rollback_operator.handlers.live import LiveRollback
from rollback_operator.reconcile import report, traffic
from rollback_operator.reconcile.engine import Engine

logger = logging.getLogger(__name__)
RECHECK_SECONDS = 5.0


class Leaving(LiveRollback):
    """A Rollback being deleted, as the engine sees it while the deletion handler ends it."""

    def __init__(self, body: kopf.Body, deps: Deps, peers: Any, *, abort: bool) -> None:
        super().__init__(body, None, deps, peers)
        self._abort = abort

    def abort_requested(self) -> bool:
        return self._abort or super().abort_requested()


def needs_goodbye(body: kopf.Body, **_: Any) -> bool:
    """Whether deleting this Rollback needs the operator: it has not finished, it left traffic
    stopped, or its report is in no archive (the ConfigMap it owns goes with it)."""
    try:
        status = RollbackStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return True
    if status.phase not in TERMINAL_PHASES or traffic.held(status):
        return True
    ref = status.report_ref
    return ref is not None and bool(ref.config_map) and not ref.s3_key


async def rollback_deleted(
    *, body: kopf.Body, memo: Any, policy_index: Any = None, rollback_index: Any = None,
    **_: Any,
) -> None:  # fmt: skip
    """End the run of a Rollback being deleted (see the module docstring), then keep its report."""
    deps: Deps = memo
    uid = body.metadata.uid or ""
    if uid in deps.runs:
        raise kopf.TemporaryError("waiting for the rollback's daemon to stop", delay=0.5)
    latest = _with_record(body, deps.records.get(uid))
    live = await _end_run(latest, deps, policy_index, rollback_index)
    status = live.recorded()
    if traffic.held(status):
        await _hold(live, status)
    ended = _with_record(latest, live.recorded().wire())
    await _keep_report(deps, ended, policy_index)
    deps.records.pop(uid, None)


def _with_record(body: kopf.Body, status: dict[str, Any] | None) -> kopf.Body:
    """The body with the status this process wrote last (the watch may not have delivered
    it yet), when it wrote one."""
    if status is None:
        return body
    return kopf.Body(cast(kopf.RawBody, {**body, "status": status}))


async def _end_run(body: kopf.Body, deps: Deps, policies: Any, rollbacks: Any) -> Leaving:
    """Run the engine on the deleted Rollback: an abort, or its own end when its policy's
    cascade deleted it after it started. Returns the host, which holds the status it saved."""
    namespace = body.metadata.namespace or ""
    policy = (body.get("spec", {}).get("policyRef") or {}).get("name", "")
    recorded = RollbackStatus.model_validate(body.get("status") or {})
    started = recorded.phase in STARTED_PHASES
    cascade = started and _cascaded(body, policies)
    live = Leaving(body, deps, daemon.Peers(rollbacks, (namespace, policy)), abort=not cascade)
    if not _work_left(live, recorded):
        return live
    prepared = await daemon.prepare(body, policies, deps)
    if isinstance(prepared, str):
        if started or traffic.held(recorded):
            await live.event(warning=True, reason="DeletedUnfinished", message=(
                f"Deleted before it could end: {prepared}; its notices are not closed and "
                "its report is not written"
            ))  # fmt: skip
        return live
    rollback, policy_obj, providers = prepared
    if cascade:
        await live.event(warning=False, reason="DeletionDeferred", message=(
            f"Its RollbackPolicy {policy!r} is being deleted: the rollback runs to its end, "
            "then goes"
        ))  # fmt: skip
    engine = Engine(
        recorder=live, controls=live, clock=deps.clock, reports=live, retry=deps.retry,
        tick=deps.settings.poll_interval,
        trigger=rollback.metadata.labels.get(TRIGGER_LABEL, "manual"),
    )  # fmt: skip
    outcome = await engine.run(rollback, policy_obj.spec, providers)
    logger.info("Rollback %s/%s, deleted, ended in %s", namespace, rollback.metadata.name, outcome)
    return live


def _work_left(live: Leaving, status: RollbackStatus) -> bool:
    """Whether the engine has anything to do: a planned rollback that has not ended, or traffic
    it left stopped that someone asked to resume. One never planned changed nothing."""
    if status.phase in TERMINAL_PHASES:
        return traffic.held(status) and live.resume_requested()
    return status.accepted_generation is not None


def _cascaded(body: kopf.Body, policies: Any) -> bool:
    """Whether the policy that owns this Rollback is being deleted, or is gone (the garbage
    collector deletes an owned object only then)."""
    namespace = body.metadata.namespace or ""
    for owner in body.metadata.get("ownerReferences") or []:
        if owner.get("kind") != "RollbackPolicy":
            continue
        found = list((policies or {}).get((namespace, owner.get("name", "")), []))
        policy = found[0] if found else None
        if not isinstance(policy, RollbackPolicy):
            return policy is None  # gone; an invalid one is still there
        meta = policy.metadata
        if meta.uid != owner.get("uid") or meta.deletion_timestamp:
            return True
    return False


async def _hold(live: Leaving, status: RollbackStatus) -> None:
    """Keep the deletion waiting while traffic the rollback stopped is still stopped."""
    meta = live.body.metadata
    layers = ", ".join(t.value for t in traffic.stopped(status))
    message = (
        f"Deletion waits: traffic this rollback stopped is still stopped: {layers}. Give it "
        f"back with {traffic.resume_hint(meta.namespace or '', meta.name or '')}; the deletion "
        "then completes"
    )
    if (meta.uid or "") not in live.deps.told:
        await live.event(warning=True, reason="DeletionHeld", message=message)
        live.deps.told.add(meta.uid or "")
    raise kopf.TemporaryError(message, delay=RECHECK_SECONDS)


async def _keep_report(deps: Deps, body: kopf.Body, policies: Any) -> None:
    """Write a report the archive does not hold into a ConfigMap no object owns: rendered again
    from the final record (the operator never reads ConfigMaps)."""
    try:
        rollback = Rollback.model_validate(dict(body))
    except ValidationError:  # never valid, so never run: no report
        return
    status, meta = rollback.status, rollback.metadata
    ref = status.report_ref
    if ref is None or not ref.config_map or ref.s3_key:
        return
    found = list((policies or {}).get((meta.namespace, rollback.spec.policy_ref.name), []))
    policy = found[0] if found and isinstance(found[0], RollbackPolicy) else None
    contacts = tuple(report.contact_line(c) for c in policy.spec.contacts) if policy else ()
    trigger = meta.labels.get(TRIGGER_LABEL, "manual")
    now = status.finished_at or deps.clock.now()
    markdown = report.render(report.ReportInput(rollback, status, None, now, trigger, contacts))
    labels = {KEPT_REPORT_LABEL: "true", TRIGGER_LABEL: trigger}
    if len(rollback.spec.policy_ref.name) <= 63:
        labels[POLICY_LABEL] = rollback.spec.policy_ref.name
    kept = {
        "labels": labels,
        "annotations": {
            KEPT_FOR_ANNOTATION: meta.name,
            KEPT_UID_ANNOTATION: meta.uid,
            KEPT_FINISHED_ANNOTATION: now.isoformat(),
        },
    }
    await deps.kube.keep_config_map(
        meta.namespace, kept_name(meta.name, meta.uid), {"report.md": markdown}, kept
    )


def kept_name(name: str, uid: str) -> str:
    """The kept report's ConfigMap: the Rollback's name and the start of its uid (a Rollback
    applied again under the same name keeps a report of its own)."""
    return f"{name[:230]}-report-{uid[:8]}"


async def policy_deleted(
    *, body: kopf.Body, memo: Any, rollback_index: Any = None, **_: Any
) -> None:
    """Hold a RollbackPolicy's deletion while a Rollback of it runs or left traffic stopped."""
    deps: Deps = memo
    namespace, name = body.metadata.namespace or "", body.metadata.name or ""
    entries = list((rollback_index or {}).get((namespace, name), []))
    waiting = sorted(e.name for e in entries if e.phase in STARTED_PHASES or e.traffic_stopped)
    if not waiting:
        return
    message = (
        f"Deletion waits for Rollbacks of this policy: {', '.join(waiting)} (running, or "
        "holding traffic stopped); they need the policy to end well"
    )
    if (body.metadata.uid or "") not in deps.told:
        kopf.event(body, type="Normal", reason="DeletionWaiting", message=message)
        deps.told.add(body.metadata.uid or "")
    raise kopf.TemporaryError(message, delay=RECHECK_SECONDS)


def register(registry: kopf.OperatorRegistry) -> None:
    """Register both deletion handlers (each holds kopf's finalizer while it has work)."""
    kopf.on.delete(
        GROUP, VERSION, "rollbacks", id="end-run", registry=registry, when=needs_goodbye
    )(rollback_deleted)
    kopf.on.delete(GROUP, VERSION, "rollbackpolicies", id="hold-for-rollbacks", registry=registry)(
        policy_deleted
    )
