"""Judging one rule from what its metric says: state, value, since, and the breach episode.

Why this module exists: the runbook's "error rate above 5% for 5 minutes" must mean the same
thing whether the operator has watched for an hour or has just started. So `for` is judged from
the metric's history, not from how long the operator has been watching: a rule is held when
every point of the window `[now - for, now]`, at steps no longer than the evaluation interval,
is past its threshold. So a breach that has already lasted `for` when the operator (re)starts
is acted on at the first evaluation, one that has not is never acted on early, and a point back
under the threshold inside the window resets the clock. The history is fetched only while the
metric is past a threshold now, so a healthy rule costs no more than its share of one query.

No data (an empty result, or NaN such as 0/0 at zero traffic) follows the rule's `noData`:
`ignore` reports NoData and ends any breach, `breach` counts a missing value as past every
threshold, `hold` keeps the last state. +Inf and -Inf are values like any other. A failed query
is `Error`, never `Ok`, and keeps the episode, so an outage of the metrics source does not end
a breach or start a new one.

The episode (status `rules[].episode`) is what makes actions happen once per breach: it starts at
the first step past a threshold and ends when the rule is Ok again; `automatic` records on it
what was announced and which Rollback it created. Pure: no I/O, time comes in the Observation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rollback_operator.api.common import parse_duration
from rollback_operator.api.rules import Episode, NoData, Rule, RuleState, RuleStatus, Threshold
from rollback_operator.providers.base import Sample


@dataclass(frozen=True)
class Observation:
    """What one evaluation learned about a rule's metric at `at`."""

    at: datetime
    value: float | None = None
    """The value now; None when the query returned no data."""
    history: Sequence[Sample] = ()
    """Every step of the `for` window, oldest first, when `wants_history` asked for it."""
    error: str | None = None
    """Why the query failed; the rule is then in Error."""
    unreachable: bool = False
    """The failure is the metrics source's (down, refusing us), not the query's."""


def window(rule: Rule) -> timedelta:
    """The rule's `for`."""
    return parse_duration(rule.for_)


def step(rule: Rule, interval: timedelta) -> timedelta:
    """The history's resolution: the longest step that divides `for` evenly and is no longer
    than the evaluation interval, so the window's first point is exactly `for` ago."""
    span = window(rule)
    return span / math.ceil(span / interval)


def wants_history(rule: Rule, value: float | None) -> bool:
    """Whether judging needs the window: only when `for` is set and the value is past now."""
    return window(rule) > timedelta(0) and _level(rule, value) is not None


def judge(rule: Rule, previous: RuleStatus | None, seen: Observation) -> RuleStatus:
    """The rule's new status from its previous one and what was just observed."""
    if seen.error is not None:
        return _failed(rule, previous, seen)
    if _missing(seen.value) and rule.no_data == NoData.HOLD:
        return _held_over(rule, previous, seen)
    level = _level(rule, seen.value)
    if level is None:
        state = RuleState.NO_DATA if _missing(seen.value) else RuleState.OK
        return _steady(rule, previous, seen, state)
    state = _breach_state(rule, level, seen.history)
    episode = _episode(rule, previous, seen)
    return RuleStatus(
        name=rule.name,
        state=state,
        value=_finite(seen.value),
        since=episode.since,
        last_evaluated=seen.at,
        message=_describe(rule, state, seen.value, episode.since),
        episode=episode,
    )


def past(threshold: Threshold, value: float | None, no_data: NoData) -> bool:
    """Whether one value is past `threshold`; a missing value only when noData is breach."""
    if _missing(value):
        return no_data == NoData.BREACH
    assert value is not None
    return threshold.breached_by(value)


def _level(rule: Rule, value: float | None) -> RuleState | None:
    """Critical or Warning when `value` is past that threshold now, else None."""
    if rule.critical is not None and past(rule.critical, value, rule.no_data):
        return RuleState.CRITICAL
    if rule.warning is not None and past(rule.warning, value, rule.no_data):
        return RuleState.WARNING
    return None


def _breach_state(rule: Rule, level: RuleState, history: Sequence[Sample]) -> RuleState:
    """Critical or Warning when held for the whole window (or `for` is 0s), else Pending."""
    instant = window(rule) <= timedelta(0)

    def held(threshold: Threshold | None) -> bool:
        if threshold is None:
            return False
        if instant:
            return True
        return bool(history) and all(past(threshold, s.value, rule.no_data) for s in history)

    if level == RuleState.CRITICAL and held(rule.critical):
        return RuleState.CRITICAL
    return RuleState.WARNING if held(rule.warning) else RuleState.PENDING


def _episode(rule: Rule, previous: RuleStatus | None, seen: Observation) -> Episode:
    """The breach this evaluation belongs to: the previous one, unless the history shows a
    step back under the threshold since it began; else a new one from its first step past."""
    loosest = rule.warning or rule.critical
    assert loosest is not None
    current = previous.episode if previous is not None else None
    safe = [s.at for s in seen.history if not past(loosest, s.value, rule.no_data)]
    last_safe = safe[-1] if safe else None
    if current is not None and (last_safe is None or last_safe <= current.since):
        return current
    after = [s.at for s in seen.history if last_safe is None or s.at > last_safe]
    return Episode(since=after[0] if after else seen.at)


def _steady(
    rule: Rule, previous: RuleStatus | None, seen: Observation, state: RuleState
) -> RuleStatus:
    """Ok or NoData: not a breach, so any episode ends here."""
    kept = previous is not None and previous.state == state and previous.since is not None
    message = _no_data_text(seen.value) if state == RuleState.NO_DATA else ""
    return RuleStatus(
        name=rule.name,
        state=state,
        value=_finite(seen.value),
        since=previous.since if kept and previous else seen.at,
        last_evaluated=seen.at,
        message=message or None,
    )


def _held_over(rule: Rule, previous: RuleStatus | None, seen: Observation) -> RuleStatus:
    """noData: hold keeps the last state (and its episode); NoData when there is none."""
    if previous is None or previous.state in (RuleState.ERROR, RuleState.NO_DATA):
        return _steady(rule, previous, seen, RuleState.NO_DATA)
    return previous.model_copy(
        update={
            "value": None,
            "last_evaluated": seen.at,
            "errors": 0,
            "message": f"{_no_data_text(seen.value)}; holding {previous.state.value}",
        }
    )


def _failed(rule: Rule, previous: RuleStatus | None, seen: Observation) -> RuleStatus:
    """Error, counting failures in a row; the episode is kept for when the source is back."""
    again = previous is not None and previous.state == RuleState.ERROR
    return RuleStatus(
        name=rule.name,
        state=RuleState.ERROR,
        since=previous.since if again and previous else seen.at,
        last_evaluated=seen.at,
        message=seen.error,
        errors=(previous.errors if previous else 0) + 1,
        episode=previous.episode if previous else None,
    )


def _describe(rule: Rule, state: RuleState, value: float | None, since: datetime) -> str:
    threshold, label = (
        (rule.critical, "critical")
        if state == RuleState.CRITICAL or rule.warning is None
        else (rule.warning, "warning")
    )
    assert threshold is not None
    shown = "no data" if _missing(value) else _number(value)
    bound = _bound(threshold)
    if state == RuleState.PENDING:
        return f"{shown} {bound}: past it since {_clock(since)}, waiting for {rule.for_}"
    held = f" for {rule.for_}" if window(rule) > timedelta(0) else ""
    return f"{shown} {bound} ({label}){held}"


def reason_text(rule: Rule, status: RuleStatus) -> str:
    """`api-error-rate 0.0909 above 0.05 for 5m`, for a Rollback's reason and Events."""
    threshold = rule.critical or rule.warning
    assert threshold is not None
    shown = "no data" if status.value is None else _number(status.value)
    held = f" for {rule.for_}" if window(rule) > timedelta(0) else ""
    return f"{rule.name} {shown} {_bound(threshold)}{held}"


def _bound(threshold: Threshold) -> str:
    if threshold.above is not None:
        return f"above {_number(threshold.above)}"
    return f"below {_number(threshold.below)}"


def _no_data_text(value: float | None) -> str:
    return "no data: the value is NaN" if value is not None else "no data: empty result"


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _number(value: float | None) -> str:
    if value is None:
        return "no data"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"


def _clock(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
