"""What a policy does about its rules: announce each breach once, roll back once per breach.

Why this module exists: an automatic rollback is a destructive act taken without a person, so
the decision must be plain and testable: a rule that is Critical (held for `for`) with
`autoRollback` asks for one Rollback per episode; the request is suppressed when the policy is
suspended, a rollback of the same targets is active, the cooldown since the last automatic
rollback has not passed, or `maxRollbacks` are already used up in their window. Each suppression
is counted once per episode and reason in `status.suppressed`. Suspension, cooldown and the
window are re-checked at every evaluation, so a breach that outlasts them rolls back then; an
active rollback settles the episode for good (people are already acting on it).

Pure: these functions take the status and return a new one, plus what to announce or create.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rollback_operator.api import API_VERSION, GROUP, POLICY_LABEL, TRIGGER_LABEL
from rollback_operator.api.common import parse_duration
from rollback_operator.api.conditions import Reason
from rollback_operator.api.policy import RollbackPolicy, RollbackPolicyStatus, RollbackRef
from rollback_operator.api.rules import RuleState, RuleStatus
from rollback_operator.reconcile import rules as rule_logic

EPISODES_ANNOTATION = f"{GROUP}/episodes"
_SEVERITY: dict[RuleState | None, int] = {RuleState.WARNING: 1, RuleState.CRITICAL: 2}


@dataclass(frozen=True)
class Announcement:
    """A rule that just reached Warning or Critical in its episode: one Event, one notice."""

    rule: str
    state: RuleState
    message: str
    key: str
    """`<rule>@<episode start>/<state>`: the same announcement always has the same key."""


def episode_key(status: RuleStatus) -> str:
    """`<rule>@<episode start>`: names one breach of one rule."""
    assert status.episode is not None
    return f"{status.name}@{status.episode.since.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def announcements(status: RollbackPolicyStatus) -> tuple[RollbackPolicyStatus, list[Announcement]]:
    """Rules whose state is louder than anything announced in their episode; marked announced."""
    found: list[Announcement] = []
    rules: list[RuleStatus] = []
    for rule in status.rules:
        if not _news(rule):
            rules.append(rule)
            continue
        key = f"{episode_key(rule)}/{rule.state.value}"
        found.append(Announcement(rule.name, rule.state, rule.message or "", key))
        rules.append(_with_episode(rule, announced=rule.state))
    return status.model_copy(update={"rules": rules}), found


def _news(rule: RuleStatus) -> bool:
    """Warning or Critical, and louder than anything announced in its episode yet."""
    if rule.episode is None:
        return False
    return _SEVERITY.get(rule.state, 0) > _SEVERITY.get(rule.episode.announced, 0)


def due(policy: RollbackPolicy, status: RollbackPolicyStatus) -> list[RuleStatus]:
    """Critical rules with autoRollback whose episode has no Rollback and is not settled."""
    wanted = {r.name for r in policy.spec.rules if r.auto_rollback}
    return [
        r
        for r in status.rules
        if r.name in wanted
        and r.state == RuleState.CRITICAL
        and r.episode is not None
        and r.episode.rollback is None
        and r.episode.suppressed != Reason.ROLLBACK_ACTIVE.value
    ]


def gate(
    policy: RollbackPolicy, status: RollbackPolicyStatus, active: str | None, now: datetime
) -> tuple[Reason, str] | None:
    """Why an automatic rollback may not be created now, or None when it may."""
    auto = policy.spec.automatic_rollback
    if policy.spec.suspend:
        return Reason.SUSPENDED, "the policy is suspended (spec.suspend)"
    if active is not None:
        return Reason.ROLLBACK_ACTIVE, f"rollback {active} of the same targets is active"
    if status.cooldown_until is not None and now < status.cooldown_until:
        return Reason.COOLDOWN, f"in cooldown until {status.cooldown_until.isoformat()}"
    recent = _recent(status, now, auto.max_rollbacks.window)
    if len(recent) >= auto.max_rollbacks.count:
        return Reason.MAX_ROLLBACKS, (
            f"{len(recent)} automatic rollbacks in the last {auto.max_rollbacks.window} "
            f"(maxRollbacks {auto.max_rollbacks.count})"
        )
    return None


def suppress(
    status: RollbackPolicyStatus, rules: list[RuleStatus], reason: Reason
) -> tuple[RollbackPolicyStatus, list[str]]:
    """Mark `rules` suppressed for `reason`; count each episode once per reason.

    Returns the new status and the names of rules counted now (for one Event each).
    """
    names = {r.name for r in rules}
    counted = [r.name for r in rules if r.episode and r.episode.suppressed != reason.value]
    updated = [
        _with_episode(r, suppressed=reason.value) if r.name in names else r for r in status.rules
    ]
    suppressed = dict(status.suppressed)
    if counted:
        suppressed[reason.value] = suppressed.get(reason.value, 0) + len(counted)
    return status.model_copy(update={"rules": updated, "suppressed": suppressed}), counted


def record(
    policy: RollbackPolicy,
    status: RollbackPolicyStatus,
    rules: list[RuleStatus],
    created: RollbackRef,
) -> RollbackPolicyStatus:
    """Note the Rollback on each episode it serves, start the cooldown, count it in the window."""
    auto = policy.spec.automatic_rollback
    names = {r.name for r in rules}
    updated = [
        _with_episode(r, rollback=created.name) if r.name in names else r for r in status.rules
    ]
    known = _recent(status, created.time, auto.max_rollbacks.window)
    if all(r.name != created.name for r in known):
        known.append(created)
    latest = max(known, key=lambda r: r.time)
    return status.model_copy(
        update={
            "rules": updated,
            "automatic_rollbacks": known,
            "last_automatic_rollback": latest,
            "cooldown_until": latest.time + parse_duration(auto.cooldown),
        }
    )


def reason(policy: RollbackPolicy, rules: list[RuleStatus]) -> str:
    """`RollbackPolicy mindmate: api-error-rate 0.0909 above 0.05 for 5m; ...`."""
    specs = {r.name: r for r in policy.spec.rules}
    parts = [rule_logic.reason_text(specs[r.name], r) for r in rules]
    return f"RollbackPolicy {policy.metadata.name}: " + "; ".join(parts)


def manifest(policy: RollbackPolicy, rules: list[RuleStatus]) -> dict[str, Any]:
    """The Rollback to create: owned by the policy, labelled, naming the episodes it serves."""
    meta, auto = policy.metadata, policy.spec.automatic_rollback
    return {
        "apiVersion": API_VERSION,
        "kind": "Rollback",
        "metadata": {
            "generateName": f"{meta.name[:50]}-auto-",
            "namespace": meta.namespace,
            "labels": {TRIGGER_LABEL: "policy", POLICY_LABEL: meta.name},
            "annotations": {EPISODES_ANNOTATION: ",".join(episode_key(r) for r in rules)},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "RollbackPolicy",
                    "name": meta.name,
                    "uid": meta.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "policyRef": {"name": meta.name},
            "mode": auto.mode,
            "targets": [t.value for t in auto.targets],
            "reason": reason(policy, rules),
        },
    }


def _recent(status: RollbackPolicyStatus, now: datetime, window: str) -> list[RollbackRef]:
    start = now - parse_duration(window)
    return [r for r in status.automatic_rollbacks if r.time > start]


def _with_episode(rule: RuleStatus, **changes: Any) -> RuleStatus:
    assert rule.episode is not None
    return rule.model_copy(update={"episode": rule.episode.model_copy(update=changes)})
