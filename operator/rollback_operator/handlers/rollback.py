"""The Rollback daemon: validate, find the policy, build providers, hand over to the engine.

One daemon per Rollback. It exits once the rollback reaches a terminal phase; after an operator
restart kopf starts it again, and the engine resumes from the recorded status.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import kopf
from pydantic import ValidationError

from rollback_operator.api import GROUP, TRIGGER_LABEL, VERSION
from rollback_operator.api.conditions import ConditionType
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import TERMINAL_PHASES, Rollback
from rollback_operator.api.validation import describe
from rollback_operator.handlers import references, restorepoint
from rollback_operator.handlers.deps import Deps
from rollback_operator.handlers.live import LiveRollback
from rollback_operator.providers.base import Providers
from rollback_operator.providers.errors import ProviderError
from rollback_operator.reconcile import monitoring, traffic
from rollback_operator.reconcile.engine import Engine
from rollback_operator.reconcile.planner import check_against_policy
from rollback_operator.telemetry import logs

logger = logging.getLogger(__name__)
Prepared = tuple[Rollback, RollbackPolicy, Providers]
RECHECK_SECONDS = 5.0


def _terminal(body: kopf.Body) -> bool:
    return body.get("status", {}).get("phase") in {p.value for p in TERMINAL_PHASES}


def _idle(body: kopf.Body) -> bool:
    """Nothing to do: the rollback ended and left no traffic stopped. (A finished rollback that
    did keeps its daemon, which waits for the resume-traffic annotation: kopf never starts
    again a daemon that ended by itself.)"""
    if not _terminal(body):
        return False
    conditions = body.get("status", {}).get("conditions") or []
    return not any(
        c.get("type") == ConditionType.TRAFFIC_STOPPED and c.get("status") == "True"
        for c in conditions
    )


def _waiting_for_resume(body: kopf.Body) -> bool:
    """A finished rollback that left traffic stopped, and nobody asked to resume it yet."""
    return _terminal(body) and not traffic.requested(body.metadata.annotations)


async def prepare(body: kopf.Body, policies: Any, deps: Deps) -> Prepared | str:
    """The parsed rollback, its policy and providers; or why they cannot be had."""
    try:
        rollback = Rollback.model_validate(dict(body))
    except ValidationError as error:
        return describe(error)
    namespace, ref = rollback.metadata.namespace, rollback.spec.policy_ref.name
    check = partial(_policy_problem, rollback)
    resolved = await references.resolve(policies, namespace, ref, deps, check)
    if isinstance(resolved, str):
        return resolved
    policy, providers = resolved
    if providers.metrics is None and policy.spec.rules and deps.metrics is not None:
        try:  # rules are watched in verification and sampled for the report
            providers.metrics = await deps.metrics.build(policy, deps.kube)
        except ProviderError as error:  # never blocks a rollback; verification says why
            providers.metrics = monitoring.Unavailable(error)
    return rollback, policy, providers


def _policy_problem(rollback: Rollback, policy: RollbackPolicy) -> str | None:
    return check_against_policy(rollback.spec, policy.spec)


async def run_rollback(
    *,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    memo: Any,
    policy_index: Any = None,
    rollback_index: Any = None,
    restorepoint_index: Any = None,
    **_: Any,
) -> None:
    """Drive one Rollback to its end (or resume the traffic it left stopped, once asked), or
    wait while its input is bad. While it runs, its uid is in `deps.runs`: a deletion handler
    takes over only once kopf's cancellation has ended it (`handlers.deletion`)."""
    deps: Deps = memo
    uid = body.metadata.uid or ""
    deps.runs.add(uid)
    try:
        await _drive(body, stopped, deps, policy_index, rollback_index, restorepoint_index)
    finally:
        deps.runs.discard(uid)
        if not _deleted(stopped):  # else the deletion handler goes on from its record
            deps.records.pop(uid, None)


def _deleted(stopped: kopf.DaemonStopped) -> bool:
    """Whether kopf stopped the daemon because the Rollback is being deleted."""
    reason = stopped.reason
    return reason is not None and bool(reason & kopf.DaemonStoppingReason.RESOURCE_DELETED)


async def _drive(
    body: kopf.Body, stopped: kopf.DaemonStopped, deps: Deps, policy_index: Any,
    rollback_index: Any, points: Any = None,
) -> None:  # fmt: skip
    logs.bind_rollback(body.metadata.namespace or "", body.metadata.name or "")
    while not stopped and not _idle(body):
        if _waiting_for_resume(body):
            await stopped.wait(RECHECK_SECONDS)
            continue
        namespace = body.metadata.namespace or ""
        policy = (body.get("spec", {}).get("policyRef") or {}).get("name", "")
        live = LiveRollback(body, stopped, deps, Peers(rollback_index, (namespace, policy)))
        prepared = await prepare(body, policy_index, deps)
        if not isinstance(prepared, str):  # to.restorePoint: the point, once it succeeded
            prepared = restorepoint.attach(prepared[0], prepared[2], points) or prepared
        if isinstance(prepared, str):
            await live.invalid(prepared)
            if await live.pause(RECHECK_SECONDS):
                return
            continue
        rollback, policy_obj, providers = prepared
        engine = Engine(
            recorder=live,
            controls=live,
            clock=deps.clock,
            reports=live,
            retry=deps.retry,
            tick=deps.settings.poll_interval,
            notice_patience=deps.settings.notice_patience,
            trigger=rollback.metadata.labels.get(TRIGGER_LABEL, "manual"),
        )
        ended_before = _terminal(body)
        phase = await engine.run(rollback, policy_obj.spec, providers)
        logger.info("Rollback %s/%s ended in %s", namespace, body.metadata.name, phase)
        if phase is None or ended_before or not traffic.held(live.recorded()):
            return  # a resume that failed is tried again when the operator restarts
        while not stopped and not _terminal(body):  # the live body catches up with the record
            await stopped.wait(0.2)


class Peers:
    """The live set of rollbacks that share this rollback's policy."""

    def __init__(self, index: Any, key: tuple[str, str]) -> None:
        self.index, self.key = index, key

    def __iter__(self) -> Any:
        return iter(list(self.index.get(self.key, [])))


def register(registry: kopf.OperatorRegistry, settle: float = 0.0) -> None:
    """Register the Rollback daemon (it reads both indexes of `handlers.index`).

    `settle`: seconds a daemon waits before it acts, so that replicas started together see each
    other in the peering object (and all but one pause) before any of them acts.
    """
    kopf.daemon(
        GROUP,
        VERSION,
        "rollbacks",
        id="run",
        registry=registry,
        cancellation_timeout=10.0,
        initial_delay=settle or None,
        when=lambda body, **_: not _idle(body),
    )(run_rollback)
