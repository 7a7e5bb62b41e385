"""One evaluation round of one RollbackPolicy: observe, judge, record, then act.

Why this module exists: the order of side effects is what makes automatic rollbacks safe across
crashes and restarts. A round:

1. observes every rule at the same instant (one request for all of them, plus one for the
   window of each rule past a threshold);
2. judges them (`rules`) and sums them up in conditions `Ready` and `Breaching`;
3. decides what to announce and whether a Rollback is due (`automatic`);
4. when it is about to act, saves the judged status first, so each breach's episode (and so
   its key) is durable before anything is sent or created;
5. posts the Events, then adopts the Rollback an earlier round already created for the same
   episode (found through the host) or creates one, or counts the suppression; a Rollback the
   API server refuses (invalid, forbidden, an admission policy) is counted as suppressed with
   reason RollbackRefused, posted once per episode, and turns the policy `Stalled` until one
   is created;
6. saves again.

A crash between 5 and 6 is harmless: the next round finds the Rollback by its episode key and
records it instead of creating another; an Event may be posted twice, never lost.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Protocol

from rollback_operator.api.common import parse_duration
from rollback_operator.api.conditions import ConditionType, Reason, find, set_condition
from rollback_operator.api.policy import RollbackPolicy, RollbackPolicyStatus, RollbackRef
from rollback_operator.api.rules import Rule, RuleState, RuleStatus
from rollback_operator.providers.base import MetricsSource, Sample
from rollback_operator.providers.errors import (
    NotFoundError,
    PermanentError,
    ProviderError,
    RetryableError,
    UnauthorizedError,
)
from rollback_operator.reconcile import automatic
from rollback_operator.reconcile import rules as rule_logic
from rollback_operator.reconcile.rules import Observation

_SOURCE_ERRORS = (RetryableError, UnauthorizedError, NotFoundError)


class PolicyHost(Protocol):
    """Where a round records and acts: the policy's status, its Events, Rollbacks."""

    async def save(self, status: RollbackPolicyStatus) -> None:
        """Persist the status; returns once the API server has it."""
        ...

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        """Post an Event about the policy."""
        ...

    async def notify(self, policy: RollbackPolicy, news: automatic.Announcement) -> None:
        """Tell the policy's notifiers; a failing notifier is reported, never raised."""
        ...

    def active_rollback(self, targets: frozenset[str]) -> str | None:
        """The name of a Rollback of this policy, on any of `targets`, not yet finished."""
        ...

    def existing_rollback(self, episodes: set[str]) -> RollbackRef | None:
        """An automatic Rollback already created for any of these episode keys."""
        ...

    async def create_rollback(self, body: dict[str, Any]) -> RollbackRef:
        """Create the Rollback; its name and creation time. PermanentError when the API
        server refuses it."""
        ...


def step(policy: RollbackPolicy) -> timedelta:
    """The evaluation interval: the history is never coarser than it."""
    return parse_duration(policy.spec.evaluation_interval)


async def observe(
    source: MetricsSource, rules: list[Rule], at: datetime, every: timedelta
) -> list[Observation]:
    """Every rule's value now (one request for all when the source allows), and the window of
    each rule whose value is past a threshold."""
    answers = await source.query_all([r.query for r in rules], at)
    pairs = zip(rules, answers, strict=True)
    return list(await asyncio.gather(*(_complete(source, r, a, at, every) for r, a in pairs)))


async def _complete(
    source: MetricsSource, rule: Rule, now: Sample | ProviderError, at: datetime, every: timedelta
) -> Observation:
    try:
        if isinstance(now, ProviderError):
            raise now
        history = []
        if rule_logic.wants_history(rule, now.value):
            span = rule_logic.window(rule)
            history = await source.history(rule.query, at, span, rule_logic.step(rule, every))
    except ProviderError as error:
        return Observation(at, error=str(error), unreachable=isinstance(error, _SOURCE_ERRORS))
    return Observation(at, now.value, tuple(history))


async def evaluate(
    policy: RollbackPolicy, source: MetricsSource, host: PolicyHost, now: datetime
) -> RollbackPolicyStatus:
    """Run one round (see the module docstring); returns the status saved."""
    seen = await observe(source, policy.spec.rules, now, step(policy))
    before = {r.name: r for r in policy.status.rules}
    pairs = zip(policy.spec.rules, seen, strict=True)
    judged = [rule_logic.judge(rule, before.get(rule.name), o) for rule, o in pairs]
    status = summarize(policy, policy.status.model_copy(update={"rules": judged}), seen, now)
    announced, news = automatic.announcements(status)
    wanted = automatic.due(policy, announced)
    adopted = host.existing_rollback({automatic.episode_key(r) for r in wanted}) if wanted else None
    blocked = _blocked(policy, announced, host, now) if wanted and not adopted else None
    if news or (wanted and not adopted and not blocked):
        await host.save(status)
    await _tell(policy, status, news, host)
    final = await _act(policy, announced, wanted, adopted, blocked, host, now)
    await host.save(final)
    return final


def summarize(
    policy: RollbackPolicy, status: RollbackPolicyStatus, seen: list[Observation], now: datetime
) -> RollbackPolicyStatus:
    """Conditions Ready and Breaching, the breaching count and observedGeneration."""
    generation = policy.metadata.generation
    loud = [r for r in status.rules if r.state in (RuleState.WARNING, RuleState.CRITICAL)]
    conditions = status.conditions
    ready = _readiness(policy, status, seen)
    for type_, (value, reason, message) in (
        (ConditionType.READY, ready),
        (ConditionType.BREACHING, _breaching(loud, ready)),
    ):
        conditions = set_condition(
            conditions, type_, value, reason, message, now=now, generation=generation
        )
    update = {"conditions": conditions, "breaching_rules": len(loud)}
    return status.model_copy(update={**update, "observed_generation": generation})


def _breaching(
    loud: list[RuleStatus], ready: tuple[bool | None, Reason, str]
) -> tuple[bool | None, Reason, str]:
    """True naming the loud rules; False when all are clear; Unknown when some cannot tell."""
    if loud:
        return (
            True,
            Reason.RULES_BREACHING,
            "; ".join(f"{r.name} {r.state.value}: {r.message}" for r in loud),
        )
    if not ready[0]:
        return None, ready[1], ready[2]
    return False, Reason.RULES_CLEAR, "No rule is past its warning or critical threshold"


def _readiness(
    policy: RollbackPolicy, status: RollbackPolicyStatus, seen: list[Observation]
) -> tuple[bool | None, Reason, str]:
    failed = [(r, o) for r, o in zip(status.rules, seen, strict=True) if o.error is not None]
    if any(o.unreachable for _, o in failed):
        error = next(o.error for _, o in failed if o.unreachable)
        url = policy.spec.metrics.prometheus.url if policy.spec.metrics else "?"
        return False, Reason.METRICS_UNREACHABLE, f"Cannot query {url}: {error}"
    if failed:
        text = "; ".join(f"rule {r.name}: {o.error}" for r, o in failed)
        return False, Reason.QUERY_FAILED, text
    return True, Reason.EVALUATING, f"{len(status.rules)} rules evaluated"


def _blocked(
    policy: RollbackPolicy, status: RollbackPolicyStatus, host: PolicyHost, now: datetime
) -> tuple[Reason, str] | None:
    targets = frozenset(t.value for t in policy.spec.automatic_rollback.targets)
    return automatic.gate(policy, status, host.active_rollback(targets), now)


async def _tell(
    policy: RollbackPolicy,
    status: RollbackPolicyStatus,
    news: list[automatic.Announcement],
    host: PolicyHost,
) -> None:
    """One Event per rule entering Warning or Critical, and one when the source goes away."""
    for item in news:
        reason = Reason.RULE_CRITICAL if item.state == RuleState.CRITICAL else Reason.RULE_WARNING
        await host.event(warning=True, reason=reason.value, message=f"{item.rule}: {item.message}")
        await host.notify(policy, item)
    ready = find(status.conditions, ConditionType.READY)
    was = find(policy.status.conditions, ConditionType.READY)
    if ready is None or ready.reason != Reason.METRICS_UNREACHABLE.value:
        return
    if was is None or was.reason != ready.reason:
        await host.event(warning=True, reason=ready.reason, message=ready.message)


async def _act(
    policy: RollbackPolicy,
    status: RollbackPolicyStatus,
    wanted: list[RuleStatus],
    adopted: RollbackRef | None,
    blocked: tuple[Reason, str] | None,
    host: PolicyHost,
    now: datetime,
) -> RollbackPolicyStatus:
    """Adopt, suppress or create the Rollback for the rules that want one."""
    if not wanted:
        return status
    if adopted is not None:
        return automatic.record(policy, status, wanted, adopted)
    if blocked is not None:
        status, counted = automatic.suppress(status, wanted, blocked[0])
        for name in counted:
            message = f"Automatic rollback for rule {name} suppressed: {blocked[1]}"
            await host.event(warning=True, reason=blocked[0].value, message=message)
        return status
    try:
        created = await host.create_rollback(automatic.manifest(policy, wanted))
    except PermanentError as error:
        return await _refused(policy, status, wanted, error, host, now)
    message = f"Created Rollback {created.name}: {automatic.reason(policy, wanted)}"
    await host.event(warning=True, reason=Reason.AUTOMATIC_ROLLBACK.value, message=message)
    return _unstalled(policy, automatic.record(policy, status, wanted, created), message, now)


async def _refused(
    policy: RollbackPolicy,
    status: RollbackPolicyStatus,
    wanted: list[RuleStatus],
    error: PermanentError,
    host: PolicyHost,
    now: datetime,
) -> RollbackPolicyStatus:
    """The API server refused the Rollback (invalid, forbidden, a webhook said no): the policy
    is Stalled with reason RollbackRefused, each episode counts it and posts one Event; the
    next round tries again (a fixed policy, CRD or permission lets it through)."""
    status, counted = automatic.suppress(status, wanted, Reason.ROLLBACK_REFUSED)
    refusal = f"the API server refused the automatic Rollback: {error}"
    for name in counted:
        message = f"Automatic rollback for rule {name} not created: {refusal}"
        await host.event(warning=True, reason=Reason.ROLLBACK_REFUSED.value, message=message)
    conditions = set_condition(
        status.conditions, ConditionType.STALLED, True, Reason.ROLLBACK_REFUSED,
        f"No automatic rollback can be created: {refusal}",
        now=now, generation=policy.metadata.generation,
    )  # fmt: skip
    return status.model_copy(update={"conditions": conditions})


def _unstalled(
    policy: RollbackPolicy, status: RollbackPolicyStatus, message: str, now: datetime
) -> RollbackPolicyStatus:
    """Stalled no longer, once an automatic Rollback was created after a refusal."""
    stalled = find(status.conditions, ConditionType.STALLED)
    if stalled is None or stalled.reason != Reason.ROLLBACK_REFUSED.value:
        return status
    conditions = set_condition(
        status.conditions, ConditionType.STALLED, False, Reason.AUTOMATIC_ROLLBACK, message,
        now=now, generation=policy.metadata.generation,
    )  # fmt: skip
    return status.model_copy(update={"conditions": conditions})
