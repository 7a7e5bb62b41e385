"""Fault matrix, adapter level, for Prometheus: a fault proxy between the source and a real
Prometheus.

Claims: a fault that clears is retried and the query answers; a fault that persists ends in its
error class, naming the API call, without the Authorization header's secret. `query_all` does
not raise: each rule gets the error in its place (so each rule's state becomes Error, never a
stale Ok). Prometheus has no credentials of its own: refused credentials are the proxy
answering 401, as the authenticating proxy in front of a real one does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers import errors
from rollback_operator.providers.base import Sample
from rollback_operator.providers.metrics import prometheus
from sandbox import manifests
from sandbox.fakes.fault_proxy import FaultProxy, Reply
from tests.faults.matrix import PERSISTENT, Outcome, Recorder, error_class
from tests.faults.saas import FAULTS, closed_url
from tests.providers.conftest import FAKES, DictSecrets, VirtualTime, fast_options

AUTH = "Bearer prom-fault-secret-81f2"
OPERATIONS = ("query", "query all rules", "history")
REFUSED = Reply(401, b"Unauthorized\n", {"Content-Type": "text/plain"})
WORDS = {"query": "query", "query all rules": "query", "history": "query_range"}


async def run(url: str, operation: str, time: VirtualTime) -> Any:
    """Build the source as the operator does (from a policy and its Secret) and ask it."""
    manifest = manifests.policy(
        namespace="prod",
        metrics={"prometheus": {"url": url, "authSecretRef": {"name": "prom", "key": "auth"}}},
    )
    factory = prometheus.PrometheusFactory(fast_options(time), endpoints=FAKES)
    secrets = DictSecrets({("prod", "prom", "auth"): AUTH})
    now = datetime.now(UTC)
    try:
        source = await factory.build(RollbackPolicy.model_validate(manifest), secrets)
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "query": lambda: source.query("vector(1)", now),
            "query all rules": lambda: source.query_all(["vector(1)", "vector(2)"], now),
            "history": lambda: source.history(
                "vector(1)", now, timedelta(minutes=5), timedelta(minutes=1)
            ),
        }
        answer = await calls[operation]()
    finally:
        await factory.close()
    if operation == "query all rules":
        failed = [a for a in answer if isinstance(a, errors.ProviderError)]
        if failed:
            assert len(failed) == len(answer), answer
            raise failed[0]
    return answer


def values(answer: Any) -> list[float | None]:
    samples = answer if isinstance(answer, list) else [answer]
    assert all(isinstance(s, Sample) for s in samples), samples
    return [s.value for s in samples]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_fault_that_clears_is_retried_and_the_query_answers(
    prometheus_proxy: tuple[FaultProxy, str], operation: str, fault: str, recorder: Recorder
) -> None:
    proxy, url = prometheus_proxy
    time = VirtualTime()
    proxy.inject(FAULTS[fault], times=1)

    answer = await run(url, operation, time)

    recorder.add(Outcome("adapter", "prometheus", operation, fault, "transient", "recovered",
                         f"{len(proxy.records)} requests, {proxy.faulted()} faulted"))  # fmt: skip
    assert proxy.faulted() == 1
    expected = {"query": [1.0], "query all rules": [1.0, 2.0], "history": [1.0] * 6}
    assert values(answer) == expected[operation]
    if fault == "429":
        assert time.sleeps[0] >= 1.0


@pytest.mark.parametrize("fault", PERSISTENT)
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_fault_that_persists_ends_in_its_error_class_naming_the_call(
    prometheus_proxy: tuple[FaultProxy, str], operation: str, fault: str, recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    proxy, url = prometheus_proxy
    if fault in FAULTS:
        proxy.inject(FAULTS[fault], times=None)
    elif fault == "bad-credentials":
        proxy.inject(REFUSED, times=None)

    with pytest.raises(errors.ProviderError) as raised:
        await run(closed_url() if fault == "unreachable" else url, operation, VirtualTime())

    error = raised.value
    recorder.add(Outcome("adapter", "prometheus", operation, fault, "persistent",
                         error_class(error), str(error)))  # fmt: skip
    assert type(error) is PERSISTENT[fault], f"{type(error).__name__}: {error}"
    assert f"prometheus: {WORDS[operation]}: GET /api/v1/" in str(error), str(error)
    secret = AUTH.split()[1]
    assert secret not in f"{error} {error.args!r} {caplog.text}"
