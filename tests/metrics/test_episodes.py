"""`for` judged from the metric's history: flapping, late starts, restarts, dips.

The rule here is a plain gauge with `warning: {above: 0.03}`, `critical: {above: 0.05}` and
`for: 5m`, evaluated every 30 s, so what each test writes is exactly what the rule sees, and
times can be asserted to the step.
"""

from __future__ import annotations

from datetime import timedelta

from rollback_operator.api.policy import RollbackPolicyStatus
from sandbox.services.prometheus import PrometheusServer
from tests.metrics.conftest import MakeHarness
from tests.metrics.world import MemoryHost, Series, minutes, origin, policy, rule

HIGH, LOW = 0.08, 0.02
STEP = timedelta(seconds=30)


def _gauge_policy(
    prometheus: PrometheusServer, series: Series, **spec: object
) -> dict[str, object]:
    query = f'g{{test="{series.label}"}}'
    return policy(prometheus.url, [rule("errors", query, warning={"above": 0.03})], **spec)


def _status(status: RollbackPolicyStatus) -> dict[str, object]:
    found = status.rules[0]
    return {"state": found.state.value, "since": found.since, "episode": found.episode}


async def test_a_metric_flapping_faster_than_for_never_rolls_back(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(31), lambda t: HIGH if (t - t0) // minutes(2) % 2 else LOW)
    run = harness(_gauge_policy(prometheus, series))
    await run.run(t0 + minutes(1), t0 + minutes(31))
    states = {s for _, s in run.states("errors")}
    assert states == {"Ok", "Pending"}
    assert run.host.rollbacks == []
    assert run.host.events == []


async def test_a_metric_flapping_slower_than_for_rolls_back_once_for_30_minutes(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()  # 6 minutes high, 1 minute low, four times over: four held breaches
    series.gauge(
        "g", t0, t0 + minutes(31), lambda t: LOW if (t - t0) % minutes(7) < minutes(1) else HIGH
    )
    run = harness(_gauge_policy(prometheus, series), MemoryHost(finish_rollbacks=True))
    await run.run(t0 + minutes(1), t0 + minutes(31))
    assert len(run.host.rollbacks) == 1
    assert run.host.stored["suppressed"] == {"Cooldown": 3}
    assert run.host.reasons().count("RuleCritical") == 4  # once per breach, not per round
    assert run.host.reasons().count("RuleWarning") == 0  # critical and warning held together
    assert [state for _, state in run.host.notices] == ["Critical"] * 4  # a notice per Event
    assert len({key for key, _ in run.host.notices}) == 4


async def test_a_breach_seven_minutes_old_at_start_acts_at_the_first_evaluation(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    start = t0 + minutes(10)
    series.gauge("g", t0, start + minutes(1), lambda t: HIGH if t >= start - minutes(7) else LOW)
    run = harness(_gauge_policy(prometheus, series))
    status = await run.at(start)
    found = status.rules[0]
    assert found.state.value == "Critical"
    assert found.value == HIGH
    assert found.since is not None
    assert found.since <= start - minutes(5)
    assert len(run.host.rollbacks) == 1
    created = run.host.rollbacks[0]
    meta = created["metadata"]
    assert meta["generateName"] == "mindmate-auto-"
    assert meta["labels"]["rollback.mindmate.app/trigger"] == "policy"
    assert (
        meta["ownerReferences"][0] | {"kind": "RollbackPolicy", "name": "mindmate"}
        == (meta["ownerReferences"][0])
    )
    assert meta["ownerReferences"][0]["uid"] == run.manifest["metadata"]["uid"]
    assert created["spec"]["reason"] == ("RollbackPolicy mindmate: errors 0.08 above 0.05 for 5m")
    assert status.last_automatic_rollback is not None
    assert status.cooldown_until == start + timedelta(hours=1)
    assert run.host.reasons() == ["RuleCritical", "AutomaticRollback"]


async def test_a_restart_in_the_middle_of_pending_neither_resets_nor_skips_it(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    breach = t0 + minutes(10)
    series.gauge("g", t0, t0 + minutes(20), lambda t: HIGH if t >= breach else LOW)
    first = harness(_gauge_policy(prometheus, series))
    await first.run(breach - minutes(1), breach + minutes(2))
    pending = _status(first.history[-1][1])
    assert pending["state"] == "Pending"
    assert pending["since"] == breach

    second = harness(first.manifest, first.host)  # a new operator: only the stored status
    await second.restart()
    await second.run(breach + minutes(2) + STEP, breach + minutes(7))
    critical = second.first("errors", "Critical")
    assert critical == breach + minutes(5), second.states("errors")
    assert all(_status(s)["since"] == breach for _, s in second.history)
    assert len(second.host.rollbacks) == 1


async def test_a_restart_during_a_breach_already_acted_on_creates_nothing_more(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(20), lambda t: HIGH)
    first = harness(_gauge_policy(prometheus, series))
    await first.run(t0 + minutes(6), t0 + minutes(8))
    second = harness(first.manifest, first.host)
    await second.run(t0 + minutes(8) + STEP, t0 + minutes(12))
    assert len(second.host.rollbacks) == 1
    assert second.host.reasons().count("RuleCritical") == 1


async def test_a_crash_between_creating_and_recording_adopts_the_rollback(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(20), lambda t: HIGH)
    run = harness(_gauge_policy(prometheus, series))
    await run.run(t0 + minutes(5), t0 + minutes(6))  # Pending, then Critical with a Rollback
    assert len(run.host.rollbacks) == 1
    lost = dict(run.host.stored)  # the status saved before the Rollback was created
    rules = [dict(r) for r in lost["rules"]]
    rules[0]["episode"] = {"since": rules[0]["episode"]["since"]}
    run.host.stored = {**lost, "rules": rules, "lastAutomaticRollback": None}
    status = await run.at(t0 + minutes(6) + STEP)
    assert len(run.host.rollbacks) == 1
    assert status.rules[0].episode is not None
    assert status.rules[0].episode.rollback == run.host.rollbacks[0]["metadata"]["name"]


async def test_a_dip_under_the_threshold_inside_the_window_resets_the_clock(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    dip = t0 + minutes(4)
    series.gauge("g", t0, t0 + minutes(15), lambda t: LOW if dip <= t < dip + STEP else HIGH)
    run = harness(_gauge_policy(prometheus, series))
    await run.run(t0 + minutes(3), t0 + minutes(12))
    assert run.first("errors", "Critical") == dip + STEP + minutes(5)
    assert len(run.host.rollbacks) == 1


async def test_warning_comes_before_critical_and_each_is_announced_once(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(20), lambda t: 0.04 if t < t0 + minutes(8) else HIGH)
    run = harness(_gauge_policy(prometheus, series))
    await run.run(t0 + minutes(5), t0 + minutes(15))
    assert run.first("errors", "Warning") == t0 + minutes(5)
    assert run.first("errors", "Critical") == t0 + minutes(13)
    assert run.host.reasons() == ["RuleWarning", "RuleCritical", "AutomaticRollback"]
    breaching = run.history[-1][1]
    assert breaching.breaching_rules == 1
    condition = next(c for c in breaching.conditions if c.type == "Breaching")
    assert condition.status == "True"
    assert "errors Critical" in condition.message


async def test_recovery_ends_the_episode_and_clears_breaching(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(20), lambda t: HIGH if t < t0 + minutes(10) else LOW)
    run = harness(_gauge_policy(prometheus, series))
    await run.run(t0 + minutes(6), t0 + minutes(11))
    final = run.history[-1][1]
    assert final.rules[0].state.value == "Ok"
    assert final.rules[0].episode is None
    assert final.rules[0].since == t0 + minutes(10)
    assert final.breaching_rules == 0
    assert next(c for c in final.conditions if c.type == "Breaching").status == "False"
