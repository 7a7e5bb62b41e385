"""Fault matrix, adapter level, for the SaaS providers: every operation x every fault.

Claims: a fault that clears after one answer is retried and the operation succeeds; a fault
that persists ends in its error class (429: RateLimitedError; 500, timeout, dropped, nothing
listening: RetryableError; refused credentials: UnauthorizedError), whose message names the
operation and holds no credential, and no credential reaches a log line either. Each outcome
goes into the matrix (`tests/faults/matrix.py`).
"""

from __future__ import annotations

import logging

import pytest

from rollback_operator.providers import errors
from tests.faults.matrix import PERSISTENT, Outcome, Recorder, error_class
from tests.faults.saas import FAULTS, NOTIFIER_NAMES, OPERATIONS, closed_url, subject

CELLS = [(p, op) for p in ("vercel", "railway") for op in OPERATIONS] + [
    (p, op) for p, names in NOTIFIER_NAMES.items() for op in names
]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize(("provider", "operation"), CELLS)
async def test_a_fault_that_clears_is_retried_and_the_operation_succeeds(
    provider: str, operation: str, fault: str, recorder: Recorder
) -> None:
    with subject(provider) as s:
        if s.prepare is not None:
            await s.prepare(operation)
        before = len(s.fake.log)
        s.inject(fault, times=1)

        await s.operations()[operation]()

        seen = s.fake.log.records[before:]
    faulted = [r for r in seen if r.fault is not None]
    recorder.add(Outcome("adapter", provider, operation, fault, "transient", "recovered",
                         f"{len(seen)} requests, {len(faulted)} faulted"))  # fmt: skip
    assert len(faulted) == 1, seen
    assert seen[-1].status is not None, seen[-1]
    assert seen[-1].status < 400, seen[-1]
    if fault == "429" and provider != "pagerduty":  # PagerDuty's 429 carries no Retry-After
        assert s.time.sleeps[0] >= 1.0


@pytest.mark.parametrize("fault", PERSISTENT)
@pytest.mark.parametrize(("provider", "operation"), CELLS)
async def test_a_fault_that_persists_ends_in_its_error_class_naming_the_operation(
    provider: str, operation: str, fault: str, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with subject(provider) as s:
        if s.prepare is not None:
            await s.prepare(operation)
        caplog.clear()
        credential = s.bad if fault == "bad-credentials" else None
        url = closed_url() if fault == "unreachable" else None
        if fault in FAULTS:
            s.inject(fault, times=None)

        with pytest.raises(errors.ProviderError) as raised:
            await s.operations(credential=credential, url=url)[operation]()

    error = raised.value
    recorder.add(Outcome("adapter", provider, operation, fault, "persistent",
                         error_class(error), str(error)))  # fmt: skip
    assert type(error) is PERSISTENT[fault], f"{type(error).__name__}: {error}"
    assert any(word in str(error) for word in s.names[operation]), str(error)
    for secret in s.secrets:
        assert secret not in f"{error} {error.args!r}"
        assert secret not in caplog.text
