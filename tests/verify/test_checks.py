"""The post-rollback checklist: HTTP checks against a real server, retries within the window."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web

from rollback_operator.api.policy import Expect, HealthCheck
from rollback_operator.providers.verification.checklist import (
    Checklist,
    FunctionCheck,
    HttpCheck,
    meets,
)
from sandbox.fakes.http_server import RunningServer


class Flaky:
    """A health endpoint that answers 503 a number of times, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def health(self, _: web.Request) -> web.Response:
        self.calls += 1
        if self.calls <= self.failures:
            return web.Response(status=503, text="warming up")
        return web.json_response({"status": "ok"})


@pytest.fixture
def flaky(request: pytest.FixtureRequest) -> Iterator[tuple[Flaky, str]]:
    endpoint = Flaky(getattr(request, "param", 0))
    app = web.Application()
    app.router.add_get("/health", endpoint.health)
    with RunningServer(app).start() as server:
        yield endpoint, f"{server.url}/health"


def _check(url: str, status: int = 200) -> HttpCheck:
    return HttpCheck(HealthCheck(name="api", url=url, expect_status=status))


async def test_http_check_passes_on_the_expected_status(flaky: tuple[Flaky, str]) -> None:
    result = await _check(flaky[1]).run()
    assert result.passed
    assert result.message.startswith("200 in ")


async def test_http_check_fails_on_another_status(flaky: tuple[Flaky, str]) -> None:
    result = await _check(flaky[1], status=204).run()
    assert not result.passed
    assert "expected 204" in result.message


async def test_http_check_fails_cleanly_when_nothing_listens() -> None:
    result = await _check("http://127.0.0.1:9/health").run()
    assert not result.passed
    assert result.message == "ConnectError"


@pytest.mark.parametrize("flaky", [2], indirect=True)
async def test_checklist_retries_a_failing_check_until_it_passes_in_the_window(
    flaky: tuple[Flaky, str],
) -> None:
    endpoint, url = flaky
    results = await Checklist([_check(url)], window=5.0, interval=0.01).verify()
    assert results[0].passed
    assert endpoint.calls == 3


@pytest.mark.parametrize("flaky", [1000], indirect=True)
async def test_checklist_gives_up_when_the_window_ends(flaky: tuple[Flaky, str]) -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    checklist = Checklist([_check(flaky[1])], window=10.0, interval=2.0, sleep=sleep,
                          clock=lambda: now[0])  # fmt: skip
    results = await checklist.verify()
    assert not results[0].passed
    assert flaky[0].calls == 6  # t = 0, 2, 4, 6, 8, 10


async def test_function_check_reports_the_probe_error_as_the_message() -> None:
    async def broken() -> str:
        raise RuntimeError("bucket not reachable")

    result = await FunctionCheck("storage", broken).run()
    assert (result.passed, result.message) == (False, "bucket not reachable")


@pytest.mark.parametrize(
    ("value", "expect", "problem"),
    [
        (5, Expect(min=1), None),
        (0, Expect(min=1), "0 is below 1"),
        (12, Expect(max=10), "12 is above 10"),
        ("ok", Expect(equals="ok"), None),
        ("bad", Expect(equals="ok"), "'bad' is not 'ok'"),
        ("x", Expect(min=1), "'x' is not a number"),
    ],
)
def test_sql_expectations(value: object, expect: Expect, problem: str | None) -> None:
    assert meets(value, expect) == problem
