"""The notifier contract, one table for Slack, Statuspage and PagerDuty, over real HTTP.

Claims: each notifier tells a rollback's story from start to finish as its channel should; a
notice is sent once per key, even by a new notifier after a restart; 429s are waited out and a
persistent one is a RateLimitedError; 5xx are retried and a persistent one is retryable;
provider refusals are PermanentErrors carrying the provider's words; refused credentials are
UnauthorizedErrors; and no credential ever reaches a result, an error or a log line.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from rollback_operator.providers import errors
from rollback_operator.providers.base import Notifier, StepResult
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.http_server import RateLimited, ServerError
from tests.notify.conftest import Harness, copied, key, notice, send

EXPECTED: dict[str, dict[str, list[str]]] = {
    "succeeded": {
        "slack": ["posted: started", "posted: succeeded"],
        "statuspage": ["#1 investigating web=degraded_performance api=degraded_performance",
                       "#1 resolved web=operational api=operational"],
        "pagerduty": [],
    },
    "failed": {
        "slack": ["posted: started", "posted: failed with contacts"],
        "statuspage": ["#1 investigating web=major_outage api=major_outage", "#1 identified"],
        "pagerduty": ["trigger critical", "alert triggered"],
    },
    "policy": {
        "slack": ["posted: started (automatic)", "posted: succeeded (automatic)"],
        "statuspage": ["#1 investigating web=degraded_performance api=degraded_performance",
                       "#1 resolved web=operational api=operational"],
        "pagerduty": ["trigger error", "resolve", "alert resolved"],
    },
}  # fmt: skip
STARTED = {  # after the started notice of a policy-made rollback only
    "slack": ["posted: started (automatic)"],
    "statuspage": ["#1 investigating web=degraded_performance api=degraded_performance"],
    "pagerduty": ["trigger error", "alert triggered"],
}


async def tell(notifier: Notifier, journal: MemoryJournal, scenario: str) -> list[StepResult]:
    """Send the started and then the finished notice of `scenario`, as the engine would (it
    keeps each result's ids in the journal)."""
    results = []
    for kind in ("started", "finished"):
        result = await notifier.notify(notice(kind, scenario), key(kind), journal)
        journal.ids.update(result.external_ids)
        results.append(result)
    return results


def assert_no_secret(harness: Harness, texts: list[str], logs: str) -> None:
    for secret in harness.leaks():
        for text in [*texts, logs]:
            assert secret not in text


def result_texts(results: list[StepResult]) -> list[str]:
    return [r.message for r in results] + [v for r in results for v in r.external_ids.values()]


def error_texts(error: BaseException) -> list[str]:
    return [str(error), repr(error), repr(error.args)]


# ----- the story -----


@pytest.mark.parametrize("scenario", EXPECTED)
async def test_a_rollback_is_told_from_start_to_finish(harness: Harness, scenario: str) -> None:
    await tell(harness.notifier(), MemoryJournal(), scenario)

    assert harness.effects() == EXPECTED[scenario][harness.name]


async def test_notifying_again_with_the_same_key_and_journal_sends_nothing(
    harness: Harness,
) -> None:
    journal = MemoryJournal()
    await tell(harness.notifier(), journal, "policy")
    writes, effects = harness.writes(), harness.effects()

    again = await tell(harness.notifier(), journal, "policy")
    after_restart = await tell(harness.notifier(), copied(journal), "policy")

    assert harness.writes() == writes
    assert harness.effects() == effects == EXPECTED["policy"][harness.name]
    assert [r.message for r in again] == [r.message for r in after_restart]


# ----- rate limits and server errors -----


async def test_a_429_is_waited_out_and_then_the_notice_goes(harness: Harness) -> None:
    harness.fake.inject(RateLimited(retry_after=1), route=harness.write_route, times=1)

    await send(harness.notifier(), "started", "policy")

    assert harness.effects() == STARTED[harness.name]
    assert harness.fake.log.matching(harness.write_route)[0].status == 429
    if harness.sends_retry_after:
        assert harness.time.sleeps[0] >= 1.0


async def test_a_persistent_429_is_a_rate_limited_error(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness.fake.inject(RateLimited(retry_after=1), times=None)

    with pytest.raises(errors.RateLimitedError) as raised:
        await send(harness.notifier(), "started", "policy")

    assert raised.value.retry_after == (1.0 if harness.sends_retry_after else None)
    assert harness.effects() == []
    assert_no_secret(harness, error_texts(raised.value), caplog.text)


async def test_a_5xx_is_retried(harness: Harness) -> None:
    harness.fake.inject(ServerError(503, "upstream unavailable"), route=harness.write_route)

    await send(harness.notifier(), "started", "policy")

    assert harness.effects() == STARTED[harness.name]


async def test_a_persistent_5xx_is_a_retryable_error(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness.fake.inject(ServerError(500, "rollup_error"), times=None)

    with pytest.raises(errors.RetryableError) as raised:
        await send(harness.notifier(), "started", "policy")

    assert not isinstance(raised.value, errors.RateLimitedError)
    assert "HTTP 500" in str(raised.value)
    assert harness.effects() == []
    assert_no_secret(harness, error_texts(raised.value), caplog.text)


# ----- refusals -----


async def test_a_refusal_is_a_permanent_error_with_the_providers_words(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness.fake.inject(harness.refusal, route=harness.write_route, times=None)

    with pytest.raises(errors.PermanentError) as raised:
        await send(harness.notifier(), "started", "policy")

    assert harness.refusal_text in str(raised.value)
    assert harness.writes() == 1, "a refusal is not sent again"
    assert_no_secret(harness, error_texts(raised.value), caplog.text)


async def test_refused_credentials_are_an_unauthorized_error(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = harness.build(harness.bad_secret)

    with pytest.raises(errors.UnauthorizedError) as raised:
        await send(notifier, "started", "policy")

    assert harness.effects() == []
    assert_no_secret(harness, error_texts(raised.value), caplog.text)


# ----- secrets -----


@pytest.mark.parametrize("scenario", EXPECTED)
async def test_no_credential_reaches_a_result_or_a_log_line(
    harness: Harness, scenario: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness.fake.inject(RateLimited(retry_after=1), times=1)
    harness.fake.inject(ServerError(502, "bad gateway"), times=1)

    results = await tell(harness.notifier(), MemoryJournal(), scenario)

    assert harness.effects() == EXPECTED[scenario][harness.name]
    assert_no_secret(harness, result_texts(results), caplog.text)
    if harness.fake.log.records:
        assert "retry" in caplog.text, "the retries were logged, so the log was really checked"


# ----- rule breaches (announced by a policy, outside any rollback) -----


async def test_a_rule_breach_goes_to_slack_only(harness: Harness) -> None:
    breach = dataclasses.replace(notice("started", "policy"), kind="breach", phase="Critical")
    result = await harness.notifier().notify(breach, "policy-uid/api@t/Critical", MemoryJournal())
    assert harness.writes() == (1 if harness.name == "slack" else 0), result.message
