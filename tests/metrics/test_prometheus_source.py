"""The Prometheus adapter against a real Prometheus: what a query's answer means for a rule."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers import http
from rollback_operator.providers.base import MetricsSource, Sample
from rollback_operator.providers.endpoints import Endpoints
from rollback_operator.providers.errors import PermanentError, RetryableError
from rollback_operator.providers.metrics.prometheus import PrometheusFactory, steps
from sandbox.services import free_port
from sandbox.services.prometheus import PrometheusServer
from tests.metrics.world import Series, minutes, origin, policy, rule

ALLOWED = Endpoints(("https://prometheus.test:9090",))  # may receive the Authorization header
FAST = http.Options(
    retry=http.RequestRetries(attempts=2, base_delay=0.01, max_delay=0.02, budget=2.0),
    timeouts=httpx.Timeout(connect=0.5, read=2.0, write=1.0, pool=1.0),
)
T0 = origin()


class Secrets:
    """One Secret key, and who asked for it."""

    def __init__(self, value: str) -> None:
        self.value, self.reads = value, 0

    async def read(self, namespace: str, name: str, key: str) -> str:
        self.reads += 1
        return self.value


def _policy(url: str, auth: bool = False) -> RollbackPolicy:
    body = policy(url, [rule("r", "up")])
    if auth:
        body["spec"]["metrics"]["prometheus"]["authSecretRef"] = {"name": "prom", "key": "auth"}
    return RollbackPolicy.model_validate(body)


@pytest_asyncio.fixture
async def source(prometheus: PrometheusServer) -> AsyncIterator[MetricsSource]:
    factory = PrometheusFactory(FAST)
    yield await factory.build(_policy(prometheus.url), Secrets(""))
    await factory.close()


@pytest.fixture
def written(series: Series) -> Series:
    """g{test=...}: 1 from T0 for 10 minutes, with a gap in minutes 4 and 5."""
    series.gauge(
        "g", T0, T0 + minutes(10), lambda t: None if 4 <= (t - T0).seconds / 60 < 6 else 1.0
    )
    series.gauge("h", T0, T0 + minutes(10), lambda t: 1.0, side="a")
    series.gauge("h", T0, T0 + minutes(10), lambda t: 2.0, side="b")
    return series


async def test_a_vector_of_one_series_is_its_value(source: MetricsSource, written: Series) -> None:
    sample = await source.query(f'sum(g{{test="{written.label}"}}) * 3', T0 + minutes(2))
    assert sample.value == 3.0
    assert sample.at == T0 + minutes(2)


async def test_a_scalar_is_its_value(source: MetricsSource, written: Series) -> None:
    sample = await source.query(f'scalar(g{{test="{written.label}"}}) + 1', T0 + minutes(2))
    assert sample.value == 2.0


async def test_an_empty_result_is_no_data(source: MetricsSource, written: Series) -> None:
    sample = await source.query(f'g{{test="{written.label}", absent="yes"}}', T0 + minutes(2))
    assert sample.value is None


@pytest.mark.parametrize(("expr", "check"), [
    ("0/0", math.isnan), ("1/0", lambda v: v == math.inf), ("-1/0", lambda v: v == -math.inf),
])  # fmt: skip
async def test_nan_and_infinities_arrive_as_floats(
    source: MetricsSource, expr: str, check: Callable[[float], bool]
) -> None:
    sample = await source.query(f"vector({expr})", T0)
    assert sample.value is not None
    assert check(sample.value)


async def test_more_than_one_series_is_an_error_asking_for_an_aggregation(
    source: MetricsSource, written: Series
) -> None:
    with pytest.raises(PermanentError) as raised:
        await source.query(f'h{{test="{written.label}"}}', T0 + minutes(2))
    text = str(raised.value)
    assert "2 series" in text
    assert "aggregate" in text
    assert 'side="a"' in text


async def test_a_bad_query_is_a_permanent_error_with_prometheus_words(
    source: MetricsSource,
) -> None:
    with pytest.raises(PermanentError) as raised:
        await source.query("sum(rate(x[1m]", T0)
    assert "parse error" in str(raised.value)


async def test_a_string_result_is_refused(source: MetricsSource) -> None:
    with pytest.raises(PermanentError, match="string"):
        await source.query('"text"', T0)


async def test_history_lists_every_step_and_marks_the_gaps(
    source: MetricsSource, written: Series
) -> None:
    at = T0 + minutes(10)
    points = await source.history(f'g{{test="{written.label}"}}', at, minutes(10), minutes(1))
    assert [p.at for p in points] == steps(at, minutes(10), minutes(1))
    # Minutes 4 and 5 have no samples; the 5-minute lookback fills them from minute 3.
    assert [p.value for p in points] == [1.0] * 11
    sparse = await source.history(
        f'g{{test="{written.label}"}} and on() (vector(time()) % 600 < 300)', at, minutes(10),
        minutes(1),
    )  # fmt: skip
    expected = [1.0 if p.at.timestamp() % 600 < 300 else None for p in sparse]
    assert [p.value for p in sparse] == expected
    assert None in expected


async def test_history_of_a_scalar_query_is_answered(
    source: MetricsSource, written: Series
) -> None:
    expr = f'scalar(g{{test="{written.label}"}})'
    points = await source.history(expr, T0 + minutes(3), minutes(2), timedelta(seconds=30))
    assert [p.value for p in points] == [1.0] * 5


def test_steps_count_back_from_the_evaluation_time_to_exactly_the_window() -> None:
    at = T0 + timedelta(seconds=95)
    got = steps(at, minutes(1), timedelta(seconds=30))
    assert got == [at - timedelta(seconds=s) for s in (60, 30, 0)]
    uneven = steps(at, minutes(1), timedelta(seconds=45))  # rounded up to cover the window
    assert uneven == [at - timedelta(seconds=s) for s in (90, 45, 0)]


async def test_an_unreachable_prometheus_is_a_retryable_error() -> None:
    factory = PrometheusFactory(FAST)
    try:
        source = await factory.build(_policy(f"http://127.0.0.1:{free_port()}"), Secrets(""))
        with pytest.raises(RetryableError, match="connection failed"):
            await source.query("up", T0)
    finally:
        await factory.close()


async def test_the_auth_header_comes_from_the_secret_and_never_shows_in_errors() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        return httpx.Response(400, json={"status": "error", "errorType": "bad_data",
                                         "error": "token Bearer s3cret-token refused"})  # fmt: skip

    options = http.Options(retry=FAST.retry, transport=httpx.MockTransport(answer))
    factory, secrets = PrometheusFactory(options, endpoints=ALLOWED), Secrets("Bearer s3cret-token")
    source = await factory.build(_policy("https://prometheus.test:9090", auth=True), secrets)
    with pytest.raises(PermanentError) as raised:
        await source.query("up", T0)
    await factory.build(_policy("https://prometheus.test:9090", auth=True), secrets)
    await factory.close()
    assert seen == ["Bearer s3cret-token"]
    assert "s3cret" not in str(raised.value)
    assert "bad_data" in str(raised.value)
    assert secrets.reads == 1  # cached for a minute, not read every round


async def test_a_server_error_is_retried_then_answered() -> None:
    answers = iter([httpx.Response(503, text="overloaded"), httpx.Response(
        200, json={"status": "success", "data": {"resultType": "scalar", "result": [0, "7"]}}
    )])  # fmt: skip
    options = http.Options(retry=FAST.retry, transport=httpx.MockTransport(lambda r: next(answers)))
    factory = PrometheusFactory(options)
    source = await factory.build(_policy("http://prometheus.test:9090"), Secrets(""))
    assert (await source.query("7", T0)).value == 7.0
    await factory.close()


class Counting(httpx.AsyncHTTPTransport):
    """The real transport, counting requests."""

    requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await super().handle_async_request(request)


@pytest_asyncio.fixture
async def counted(prometheus: PrometheusServer) -> AsyncIterator[tuple[MetricsSource, Counting]]:
    transport = Counting()
    factory = PrometheusFactory(http.Options(retry=FAST.retry, transport=transport))
    yield await factory.build(_policy(prometheus.url), Secrets("")), transport
    await factory.close()


async def test_all_rules_of_a_policy_are_asked_in_one_request(
    counted: tuple[MetricsSource, Counting], written: Series
) -> None:
    source, transport = counted
    label = written.label
    exprs = [f'max(g{{test="{label}"}})', f'g{{test="{label}", no="such"}}', f'h{{test="{label}"}}']
    one, none, two = await source.query_all(exprs, T0 + minutes(2))
    assert transport.requests == 1
    assert isinstance(one, Sample)
    assert one.value == 1.0
    assert isinstance(none, Sample)
    assert none.value is None
    assert isinstance(two, PermanentError)
    assert "2 series" in str(two)


async def test_one_rule_that_cannot_be_combined_is_asked_alone_from_then_on(
    counted: tuple[MetricsSource, Counting], written: Series
) -> None:
    source, transport = counted
    exprs = [f'max(g{{test="{written.label}"}})', "scalar(vector(2))", "sum(rate(x[1m]"]
    first = await source.query_all(exprs, T0 + minutes(2))
    assert transport.requests == 4  # the combined query, then each alone
    assert [getattr(a, "value", None) for a in first[:2]] == [1.0, 2.0]
    assert isinstance(first[2], PermanentError)
    assert "parse error" in str(first[2])
    await source.query_all(exprs, T0 + minutes(3))
    assert transport.requests == 7  # no second try at combining them


async def test_an_unreachable_source_fails_every_rule_of_the_request() -> None:
    factory = PrometheusFactory(FAST)
    source = await factory.build(_policy(f"http://127.0.0.1:{free_port()}"), Secrets(""))
    answers = await source.query_all(["up", "up * 2"], T0)
    await factory.close()
    assert all(isinstance(a, RetryableError) for a in answers)
