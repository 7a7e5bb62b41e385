"""Fault matrix, adapter level, for S3: a fault proxy between the adapters and a moto server.

Claims: a fault that clears is retried (by botocore) and the operation does its work; a fault
that persists ends in a typed error naming the operation, without a credential. moto accepts
any signature, so refused credentials are the proxy answering 403 SignatureDoesNotMatch in
S3's XML shape, as AWS does.
"""

from __future__ import annotations

import logging

import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.providers import errors
from sandbox.fakes.fault_proxy import FaultProxy, ProxyFault, s3_error
from sandbox.services.s3 import SECRET_ACCESS_KEY
from tests.faults.datastores import Shelf, expect_done, fast_client, operations
from tests.faults.matrix import Outcome, Recorder, error_class
from tests.faults.saas import FAULTS, closed_url

OPERATIONS = ("storage plan", "storage restore", "report copy")
PERSISTENT: dict[str, type[errors.ProviderError]] = {
    "429": errors.RetryableError,  # botocore hides Retry-After; S3 itself answers 503 SlowDown
    "500": errors.RetryableError,
    "timeout": errors.RetryableError,
    "dropped": errors.RetryableError,
    "unreachable": errors.RetryableError,
    "bad-credentials": errors.UnauthorizedError,
}
BAD_SIGNATURE = s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated "
                         "does not match the signature you provided.")  # fmt: skip
WORDS = {
    "storage plan": ("bucket versioning", "listing"),
    "storage restore": ("bucket versioning", "listing", "cop", "hid"),
    "report copy": ("report",),
}
PERSISTENT_FAULTS = list(PERSISTENT)


@pytest.fixture(scope="module")
def shelf(s3: S3Client) -> Shelf:
    return Shelf.make(s3, prefixes=40)


def proxy_fault(fault: str) -> ProxyFault:
    return BAD_SIGNATURE if fault == "bad-credentials" else FAULTS[fault]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_fault_that_clears_is_retried_and_the_operation_succeeds(
    shelf: Shelf, s3_proxy: tuple[FaultProxy, str], operation: str, fault: str,
    recorder: Recorder,
) -> None:  # fmt: skip
    proxy, url = s3_proxy
    prefix = shelf.prefix()
    proxy.inject(proxy_fault(fault), times=1)

    result = await operations(shelf, fast_client(url), prefix)[operation]()

    recorder.add(Outcome("adapter", "s3", operation, fault, "transient", "recovered",
                         f"{len(proxy.records)} requests, {proxy.faulted()} faulted"))  # fmt: skip
    assert proxy.faulted() == 1
    expect_done(shelf, operation, prefix, result)


@pytest.mark.parametrize("fault", PERSISTENT_FAULTS)
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_fault_that_persists_ends_in_a_typed_error_naming_the_operation(
    shelf: Shelf, s3_proxy: tuple[FaultProxy, str], operation: str, fault: str,
    recorder: Recorder, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    proxy, url = s3_proxy
    prefix = shelf.prefix()
    if fault != "unreachable":
        proxy.inject(proxy_fault(fault), times=None)
    client = fast_client(closed_url() if fault == "unreachable" else url)

    with pytest.raises(errors.ProviderError) as raised:
        await operations(shelf, client, prefix)[operation]()

    error = raised.value
    recorder.add(Outcome("adapter", "s3", operation, fault, "persistent",
                         error_class(error), str(error)))  # fmt: skip
    assert isinstance(error, PERSISTENT[fault]), f"{type(error).__name__}: {error}"
    assert str(error).startswith("s3: "), str(error)
    assert any(word in str(error) for word in WORDS[operation]), str(error)
    assert SECRET_ACCESS_KEY not in f"{error} {error.args!r} {caplog.text}"
    if operation == "storage restore":
        assert shelf.contents(prefix) == {f"{prefix}a.txt": b"v2", f"{prefix}b.txt": b"v2"}
