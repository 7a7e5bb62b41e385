"""No data, failing queries, and what stops an automatic rollback: suspend, cooldown,
maxRollbacks, a rollback of the same targets already running, and an API server that refuses
the Rollback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from rollback_operator.api.policy import RollbackRef
from rollback_operator.providers.errors import PermanentError
from sandbox.services import free_port
from sandbox.services.prometheus import PrometheusServer
from tests.metrics.conftest import MakeHarness
from tests.metrics.world import MemoryHost, Series, minutes, origin, policy, rule

HIGH, LOW = 0.08, 0.02


def _policy(url: str, query: str, *, rule_fields: Any = None, **spec: Any) -> dict[str, Any]:
    return policy(url, [rule("errors", query, **(rule_fields or {}))], **spec)


def _query(series: Series) -> str:
    return f'g{{test="{series.label}"}}'


# -- no data -----------------------------------------------------------------------------------


async def test_no_data_ignored_is_reported_and_never_acted_on(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    run = harness(_policy(prometheus.url, _query(series), rule_fields={"noData": "ignore"}))
    t0 = origin()
    await run.run(t0, t0 + minutes(10))
    assert {s for _, s in run.states("errors")} == {"NoData"}
    last = run.history[-1][1].rules[0]
    assert last.since == t0
    assert last.message == "no data: empty result"
    assert run.host.rollbacks == []
    assert run.host.events == []


async def test_nan_is_no_data_not_a_value(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(10), lambda t: 0.0)
    run = harness(_policy(prometheus.url, f"{_query(series)} / {_query(series)}"))
    status = await run.at(t0 + minutes(9))
    assert status.rules[0].state.value == "NoData"
    assert status.rules[0].message == "no data: the value is NaN"


async def test_infinity_is_a_value_past_an_above_threshold(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(10), lambda t: 1.0)
    run = harness(_policy(prometheus.url, f"{_query(series)} / 0"))
    status = await run.at(t0 + minutes(9))
    assert status.rules[0].state.value == "Critical"
    assert status.rules[0].value is None
    assert "+Inf above 0.05" in (status.rules[0].message or "")


async def test_no_data_as_breach_rolls_back_once_missing_for_the_whole_window(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()  # data until minute 5; the 5-minute lookback keeps it visible until minute 10
    series.gauge("g", t0, t0 + minutes(5), lambda t: LOW)
    run = harness(_policy(prometheus.url, _query(series), rule_fields={"noData": "breach"}))
    await run.run(t0 + minutes(4), t0 + minutes(16))
    assert run.first("errors", "Pending") == t0 + minutes(10) + minutes(0.5)
    assert run.first("errors", "Critical") == t0 + minutes(15) + minutes(0.5)
    assert len(run.host.rollbacks) == 1


async def test_no_data_held_keeps_the_last_state_and_its_breach(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(8), lambda t: HIGH)
    run = harness(_policy(prometheus.url, _query(series), rule_fields={"noData": "hold"}))
    await run.run(t0 + minutes(6), t0 + minutes(20))
    states = [s for _, s in run.states("errors")]
    assert set(states) == {"Critical"}
    last = run.history[-1][1].rules[0]
    assert last.message == "no data: empty result; holding Critical"
    assert last.value is None
    assert len(run.host.rollbacks) == 1
    assert run.host.reasons().count("RuleCritical") == 1


async def test_no_data_held_with_nothing_to_hold_is_no_data(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    run = harness(_policy(prometheus.url, _query(series), rule_fields={"noData": "hold"}))
    status = await run.at(origin())
    assert status.rules[0].state.value == "NoData"


# -- failing queries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "words"),
    [("sum(rate(g[1m]", "parse error"), ('{__name__=~"g|h", test="{label}"}', "aggregate")],
    ids=["bad-query", "two-series"],
)
async def test_a_query_that_cannot_answer_is_an_error_and_the_policy_not_ready(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness, query: str, words: str
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(5), lambda t: LOW)
    series.gauge("h", t0, t0 + minutes(5), lambda t: LOW)
    run = harness(_policy(prometheus.url, query.replace("{label}", series.label)))
    first, second = await run.at(t0 + minutes(2)), await run.at(t0 + minutes(3))
    found = second.rules[0]
    assert found.state.value == "Error"
    assert words in (found.message or "")
    assert found.errors == 2
    assert found.since == first.rules[0].since == t0 + minutes(2)
    ready = next(c for c in second.conditions if c.type == "Ready")
    assert ready.status == "False"
    assert ready.reason == "QueryFailed"
    assert words in ready.message


async def test_an_unreachable_source_is_an_error_never_ok_and_a_condition(
    series: Series, harness: MakeHarness
) -> None:
    run = harness(_policy(f"http://127.0.0.1:{free_port()}", _query(series)))
    await run.run(origin(), origin() + minutes(1))
    assert {s for _, s in run.states("errors")} == {"Error"}
    ready = next(c for c in run.history[-1][1].conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "MetricsUnreachable")
    assert "connection failed" in ready.message
    breaching = next(c for c in run.history[-1][1].conditions if c.type == "Breaching")
    assert breaching.status == "Unknown"  # cannot tell, so neither True nor False
    assert run.host.reasons() == ["MetricsUnreachable"]  # once, when it went away


async def test_an_error_during_a_breach_neither_ends_it_nor_starts_another(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(20), lambda t: HIGH)
    manifest = _policy(prometheus.url, _query(series))
    run = harness(manifest)
    await run.at(t0 + minutes(6))
    manifest["spec"]["metrics"]["prometheus"]["url"] = f"http://127.0.0.1:{free_port()}"
    await run.at(t0 + minutes(6.5))
    manifest["spec"]["metrics"]["prometheus"]["url"] = prometheus.url
    await run.run(t0 + minutes(7), t0 + minutes(8))
    assert [s for _, s in run.states("errors")] == [
        "Critical",
        "Error",
        "Critical",
        "Critical",
        "Critical",
    ]
    assert len(run.host.rollbacks) == 1
    assert run.host.reasons().count("RuleCritical") == 1


# -- gates -------------------------------------------------------------------------------------


async def test_suspend_keeps_evaluating_and_rolls_back_once_lifted(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(20), lambda t: HIGH)
    manifest = _policy(prometheus.url, _query(series), suspend=True)
    run = harness(manifest)
    await run.run(t0 + minutes(6), t0 + minutes(8))
    assert run.host.rollbacks == []
    assert run.host.stored["suppressed"] == {"Suspended": 1}
    assert run.host.reasons() == ["RuleCritical", "Suspended"]
    manifest["spec"]["suspend"] = False
    await run.at(t0 + minutes(8.5))
    assert len(run.host.rollbacks) == 1


async def test_cooldown_blocks_a_second_breach_until_it_has_passed(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()  # two breaches, 10 minutes apart, the second lasting past the cooldown
    series.gauge("g", t0, t0 + minutes(40),
                 lambda t: LOW if minutes(8) <= t - t0 < minutes(10) else HIGH)  # fmt: skip
    spec = {"automaticRollback": {"cooldown": "20m"}}
    run = harness(
        _policy(prometheus.url, _query(series), **spec), MemoryHost(finish_rollbacks=True)
    )
    await run.run(t0 + minutes(5), t0 + minutes(30))
    assert [r["created"] for r in run.host.rollbacks] == [t0 + minutes(5), t0 + minutes(25)]
    assert run.host.stored["suppressed"] == {"Cooldown": 1}


async def test_max_rollbacks_in_the_window_blocks_the_next_one(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()  # three breaches, 7 minutes apart; cooldown 1m; at most two per hour
    series.gauge("g", t0, t0 + minutes(25),
                 lambda t: LOW if (t - t0) % minutes(7) < minutes(1) else HIGH)  # fmt: skip
    spec = {"automaticRollback": {"cooldown": "1m", "maxRollbacks": {"count": 2, "window": "1h"}}}
    run = harness(
        _policy(prometheus.url, _query(series), **spec), MemoryHost(finish_rollbacks=True)
    )
    await run.run(t0 + minutes(1), t0 + minutes(21))
    assert len(run.host.rollbacks) == 2
    assert run.host.stored["suppressed"] == {"MaxRollbacks": 1}
    assert len(run.host.stored["automaticRollbacks"]) == 2


async def test_an_active_manual_rollback_blocks_the_automatic_one_for_that_breach(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(20), lambda t: HIGH)
    host = MemoryHost()
    host.add_rollback("by-hand", "Running", ["frontend"])
    run = harness(_policy(prometheus.url, _query(series)), host)
    await run.run(t0 + minutes(6), t0 + minutes(7))
    host.rollbacks[0]["status"]["phase"] = "Succeeded"
    await run.run(t0 + minutes(7.5), t0 + minutes(9))
    assert [r["metadata"]["name"] for r in host.rollbacks] == ["by-hand"]
    assert host.stored["suppressed"] == {"RollbackActive": 1}
    assert "rollback by-hand of the same targets is active" in host.events[-1][1]


async def test_a_rollback_of_other_targets_does_not_block(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(20), lambda t: HIGH)
    host = MemoryHost()
    host.add_rollback("db-only", "Running", ["database"])
    run = harness(_policy(prometheus.url, _query(series)), host)
    await run.at(t0 + minutes(6))
    assert len(host.rollbacks) == 2


# -- refused -----------------------------------------------------------------------------------

FREEZE = (
    "rollbacks: HTTP 422 Unprocessable Entity: rollbacks.rollback.mindmate.app is forbidden: "
    "ValidatingAdmissionPolicy 'change-freeze' denied request: no rollbacks during the freeze"
)


@dataclass
class RefusingHost(MemoryHost):
    """An API server that refuses every Rollback (`refusal`) until it is set to None."""

    refusal: str | None = FREEZE

    async def create_rollback(self, body: dict[str, Any]) -> RollbackRef:
        if self.refusal is not None:
            raise PermanentError(self.refusal, provider="kubernetes")
        return await super().create_rollback(body)


def _condition(stored: dict[str, Any], type_: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in stored["conditions"] if c["type"] == type_]
    assert found, stored["conditions"]
    return found[0]


async def test_a_refused_rollback_stalls_the_policy_with_one_event_until_one_is_created(
    prometheus: PrometheusServer, series: Series, harness: MakeHarness
) -> None:
    t0 = origin()
    series.gauge("g", t0, t0 + minutes(20), lambda t: HIGH)
    host = RefusingHost()
    run = harness(_policy(prometheus.url, _query(series)), host)
    await run.run(t0 + minutes(6), t0 + minutes(8))  # five rounds, each refused
    assert host.rollbacks == []
    stalled = _condition(host.stored, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "RollbackRefused")
    assert "no rollbacks during the freeze" in stalled["message"]
    assert host.reasons() == ["RuleCritical", "RollbackRefused"]
    assert "rule errors" in host.events[-1][1]
    assert host.stored["suppressed"] == {"RollbackRefused": 1}
    host.refusal = None
    await run.at(t0 + minutes(8.5))
    assert len(host.rollbacks) == 1
    cleared = _condition(host.stored, "Stalled")
    assert (cleared["status"], cleared["reason"]) == ("False", "AutomaticRollback")
