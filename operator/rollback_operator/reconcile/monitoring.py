"""The policy's rules watched around a rollback: sampled for the report, held clear to verify.

The runbook's "Monitoring During Rollback" says to watch error rates, response times, cache hit
rate and database connections while rolling back; its "Post-Rollback Verification" says they
must be healthy afterwards. Both come from the policy's rules and its metrics source:

- `sample_rules` reads each rule over the rollback's time range (the source keeps history, so
  a restarted operator samples the same range) and condenses it to min, max, last and the worst
  level reached, for `status.monitoring` and the report.
- `hold_clear` waits `verification.window` and fails a critical rule as soon as its critical
  threshold has held for the rule's `for` (at most the window) inside that window.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from rollback_operator.api.common import format_duration, parse_duration
from rollback_operator.api.rollback import CheckResult, MonitoredRule
from rollback_operator.api.rules import NoData, Rule, Threshold
from rollback_operator.providers.base import MetricsSource, Sample
from rollback_operator.providers.errors import ProviderError
from rollback_operator.reconcile.ports import Stopping
from rollback_operator.reconcile.rules import past

POINTS = 60  # points per sampled range: enough to see a spike, few enough for one request
MIN_STEP = timedelta(seconds=1)
Pause = Callable[[float], Awaitable[bool]]  # wait up to n seconds; True when stopping


class Unavailable:
    """A MetricsSource that could not be built: every call raises why, so verification fails
    with that reason and the report says it, instead of the rules being skipped in silence."""

    def __init__(self, error: ProviderError) -> None:
        self.error = error

    async def query(self, expr: str, at: datetime) -> Sample:
        raise self.error

    async def query_all(self, exprs: Sequence[str], at: datetime) -> list[Sample | ProviderError]:
        return [self.error for _ in exprs]

    async def history(
        self, expr: str, at: datetime, window: timedelta, step: timedelta
    ) -> list[Sample]:
        raise self.error


def thresholds_text(rule: Rule) -> str:
    """'warning > 0.02, critical > 0.05' for the report."""
    parts = [
        f"{name} {_bound(t)}"
        for name, t in (("warning", rule.warning), ("critical", rule.critical))
        if t is not None
    ]
    return ", ".join(parts)


def level(rule: Rule, value: float | None) -> str:
    """Clear, Warning, Critical or NoData for one value (noData: breach counts as Critical)."""
    if rule.critical is not None and past(rule.critical, value, rule.no_data):
        return "Critical"
    if rule.warning is not None and past(rule.warning, value, rule.no_data):
        return "Warning"
    return "NoData" if _missing(value) else "Clear"


def summarize(rule: Rule, samples: Sequence[Sample]) -> MonitoredRule:
    """min, max, last and the worst level of `samples` (oldest first)."""
    values = [s.value for s in samples if s.value is not None and not math.isnan(s.value)]
    levels = {level(rule, s.value) for s in samples}
    worst = next((w for w in ("Critical", "Warning", "Clear") if w in levels), "NoData")
    return MonitoredRule(
        name=rule.name,
        thresholds=thresholds_text(rule),
        samples=len(values),
        min=min(values) if values else None,
        max=max(values) if values else None,
        last=values[-1] if values else None,
        worst=worst,
    )


def span_step(span: timedelta, points: int = POINTS) -> timedelta:
    """A whole-second step that splits `span` into at most `points` points."""
    seconds = math.ceil(span.total_seconds() / max(points, 1))
    return max(MIN_STEP, timedelta(seconds=seconds))


async def sample_rules(
    rules: Sequence[Rule], source: MetricsSource, start: datetime, end: datetime
) -> list[MonitoredRule]:
    """Every rule over [start, end]; a rule whose query fails says why instead of numbers."""
    span = max(end - start, timedelta(0))
    step = span_step(span)

    async def one(rule: Rule) -> MonitoredRule:
        try:
            history = await source.history(rule.query, end, span, step)
        except ProviderError as error:
            return MonitoredRule(
                name=rule.name, thresholds=thresholds_text(rule), message=str(error)[:300]
            )
        return summarize(rule, history)

    return list(await asyncio.gather(*(one(r) for r in rules)))


def sustained(rule: Rule, samples: Sequence[Sample], hold: timedelta) -> Sample | None:
    """The first sample at which the critical threshold had held for `hold`, else None."""
    critical = rule.critical
    if critical is None:
        return None
    since: datetime | None = None
    for sample in samples:
        if not past(critical, sample.value, rule.no_data):
            since = None
            continue
        since = since or sample.at
        if sample.at - since >= hold:
            return sample
    return None


async def hold_clear(
    rules: Sequence[Rule],
    source: MetricsSource,
    window: timedelta,
    now: Callable[[], datetime],
    pause: Pause,
    interval: float = 5.0,
) -> list[CheckResult]:
    """One result per critical rule: passed when the rule stayed clear for `window`.

    Looks every `interval` seconds at the range since the watch began and fails a rule at once
    when its critical threshold held for `for` (at most `window`) in it; the watch ends with the
    first failure. A zero window watches nothing: right after a rollback, rules over a rate
    window still show the incident, so only a window longer than that says anything.
    """
    watched = [r for r in rules if r.critical is not None]
    if not watched or window <= timedelta(0):
        return []
    start = now()
    step = span_step(window)
    results: dict[str, CheckResult] = {}
    failures: dict[str, str] = {}
    peaks: dict[str, float] = {}
    while True:
        at = now()
        elapsed = min(at - start, window)
        if elapsed >= step:
            for rule in watched:
                if rule.name in results:
                    continue
                verdict = await _look(rule, source, at, elapsed, step, window, peaks)
                if isinstance(verdict, CheckResult):
                    results[rule.name] = verdict
                elif verdict:
                    failures[rule.name] = verdict
        if results:  # one rule failed: verification has failed, the others say how far
            for rule in watched:  # they got
                results.setdefault(rule.name, _so_far(rule, at - start, window, peaks))
            break
        if at - start >= window:
            for rule in watched:
                results.setdefault(rule.name, _cleared(rule, window, peaks, failures))
            break
        remaining = (window - (at - start)).total_seconds()
        if await pause(max(0.0, min(interval, remaining))):
            raise Stopping  # verification is redone from its start after the restart
    return [results[r.name] for r in watched]


async def _look(
    rule: Rule,
    source: MetricsSource,
    at: datetime,
    elapsed: timedelta,
    step: timedelta,
    window: timedelta,
    peaks: dict[str, float],
) -> CheckResult | str:
    """A failed CheckResult when the rule breached; else why it could not be read ('' if read)."""
    try:
        history = await source.history(rule.query, at, elapsed, step)
    except ProviderError as error:
        return _unread(error)
    values = [s.value for s in history if s.value is not None and not math.isnan(s.value)]
    if values:
        extreme = max(values) if rule.critical and rule.critical.above is not None else min(values)
        peaks[rule.name] = extreme
    hold = min(parse_duration(rule.for_), window)
    hit = sustained(rule, history, hold)
    if hit is None:
        return ""
    held = f" for {format_duration(hold)}" if hold > timedelta(0) else ""
    return CheckResult(
        name=f"rule {rule.name}",
        passed=False,
        message=f"{_number(hit.value)} past critical {_bound(rule.critical)}{held} at "
        f"{hit.at.strftime('%H:%M:%S')} UTC",
    )


def _cleared(
    rule: Rule, window: timedelta, peaks: dict[str, float], failures: dict[str, str]
) -> CheckResult:
    name = f"rule {rule.name}"
    if rule.name in failures and rule.name not in peaks:
        why = failures[rule.name]
        return CheckResult(name=name, passed=False, message=f"could not confirm clear: {why}")
    if rule.name not in peaks:
        if rule.no_data == NoData.IGNORE:
            return CheckResult(name=name, passed=True, message="no data (noData: ignore)")
        message = f"could not confirm clear: no data (noData: {rule.no_data.value})"
        return CheckResult(name=name, passed=False, message=message)
    return CheckResult(
        name=name,
        passed=True,
        message=f"clear for {format_duration(window)} (worst {_number(peaks[rule.name])}, "
        f"critical {_bound(rule.critical)})",
    )


def _so_far(
    rule: Rule, watched: timedelta, window: timedelta, peaks: dict[str, float]
) -> CheckResult:
    worst = f"worst {_number(peaks[rule.name])}" if rule.name in peaks else "no data"
    return CheckResult(
        name=f"rule {rule.name}",
        passed=True,
        message=f"clear for {format_duration(watched)} of {format_duration(window)} ({worst}); "
        "the watch ended when another rule failed",
    )


def _unread(error: ProviderError) -> str:
    return f"metrics unreadable: {str(error)[:200]}"


def _bound(threshold: Threshold | None) -> str:
    if threshold is None:
        return "-"
    if threshold.above is not None:
        return f"> {threshold.above:g}"
    return f"< {threshold.below:g}"


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _number(value: float | None) -> str:
    return "no data" if _missing(value) else f"{value:.4g}"
