"""The one way the operator reaches S3: a boto3 client built from a policy's ObjectStore,
blocking calls moved off the event loop, and botocore errors turned into our error classes.

boto3 is synchronous, so every call goes through `call` (a worker thread): the loop keeps serving
other rollbacks while a restore copies thousands of objects. Error messages carry the S3 error
code and operation, never a credential.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import boto3
from botocore import exceptions as boto_errors
from botocore.config import Config

from rollback_operator.api.targets import ObjectStore
from rollback_operator.providers.errors import (
    NotFoundError,
    PermanentError,
    ProviderError,
    RetryableError,
    UnauthorizedError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

P = ParamSpec("P")
T = TypeVar("T")
PROVIDER = "s3"
CHUNK = 1 << 20

_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NoSuchUpload", "NotFound", "404"}
_UNAUTHORIZED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "403",
}
_TRANSIENT = (
    boto_errors.ConnectionError,  # includes connect timeouts and closed connections
    boto_errors.ConnectionClosedError,  # a dropped connection (an HTTPClientError, not the above)
    boto_errors.ReadTimeoutError,
    boto_errors.ResponseStreamingError,
    boto_errors.IncompleteReadError,
)
_RETRYABLE = {"SlowDown", "Throttling", "RequestTimeout", "InternalError", "ServiceUnavailable"}


@dataclass(frozen=True)
class Credentials:
    """An access key pair read from a Secret; the secret half never shows in a repr."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


def client(store: ObjectStore, credentials: Credentials | None, *, pool: int = 32) -> S3Client:
    """An S3 client for `store`; path addressing when an endpoint (MinIO, R2, moto) is set."""
    config = Config(
        max_pool_connections=pool,
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=120,
        s3={"addressing_style": "path" if store.endpoint_url else "auto"},
    )
    session = boto3.session.Session()  # its own session: nothing shared with other clients
    return session.client(
        "s3",
        region_name=store.region,
        endpoint_url=store.endpoint_url,
        config=config,
        aws_access_key_id=credentials.access_key_id if credentials else None,
        aws_secret_access_key=credentials.secret_access_key if credentials else None,
    )


async def call(what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking boto3 call in a thread; S3 errors become ProviderErrors about `what`."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except (boto_errors.ClientError, boto_errors.BotoCoreError) as error:
        raise translate(error, what) from error


def guarded(what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`call` for code already in a worker thread: same error mapping, no thread hop."""
    try:
        return fn(*args, **kwargs)
    except (boto_errors.ClientError, boto_errors.BotoCoreError) as error:
        raise translate(error, what) from error


def translate(error: Exception, what: str) -> ProviderError:
    """Our error class for a botocore error, with a message fit for status and Events."""
    if isinstance(error, boto_errors.ClientError):
        return _client_error(error, what)
    if isinstance(error, _TRANSIENT):
        return RetryableError(f"{what}: the object store connection failed", provider=PROVIDER)
    if isinstance(error, boto_errors.NoCredentialsError):
        return UnauthorizedError(f"{what}: no S3 credentials", provider=PROVIDER)
    return PermanentError(f"{what}: {type(error).__name__}", provider=PROVIDER)


def error_code(error: boto_errors.ClientError) -> str:
    """The S3 error code (NoSuchKey, AccessDenied, ...) or the HTTP status as text."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code or str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _client_error(error: boto_errors.ClientError, what: str) -> ProviderError:
    code = error_code(error)
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    detail = str(error.response.get("Error", {}).get("Message", ""))[:200]
    text = f"{what}: {code}" + (f" ({detail})" if detail else "")
    if code in _NOT_FOUND or status == 404:
        return NotFoundError(text, provider=PROVIDER)
    if code in _UNAUTHORIZED or status == 403:
        return UnauthorizedError(text, provider=PROVIDER)
    if code in _RETRYABLE or status >= 500 or status == 429:
        return RetryableError(text, provider=PROVIDER)
    return PermanentError(text, provider=PROVIDER)


async def pages(what: str, paginated: Iterable[T]) -> AsyncIterator[T]:
    """The pages of a boto3 paginator, fetched one at a time so memory stays flat."""
    iterator = iter(paginated)
    while True:
        page = await call(what, next, iterator, None)
        if page is None:
            return
        yield page


async def read_range(
    what: str, s3: S3Client, bucket: str, key: str, size: int, *, start: int = 0
) -> bytes:
    """`size` bytes of an object from `start` (fewer when it is shorter)."""
    span = f"bytes={start}-{start + size - 1}"
    response = await call(what, s3.get_object, Bucket=bucket, Key=key, Range=span)
    body = response["Body"]
    try:
        return await call(what, body.read)
    finally:
        body.close()


async def windows(
    what: str, s3: S3Client, bucket: str, key: str, expected: int, *, window: int
) -> AsyncIterator[bytes]:
    """An object's bytes as ranged reads of `window` bytes: cheap to stop after the first few."""
    for start in range(0, expected, window):
        yield await read_range(what, s3, bucket, key, min(window, expected - start), start=start)


async def stream(
    what: str, s3: S3Client, bucket: str, key: str, expected: int, *, chunk: int = CHUNK
) -> AsyncIterator[bytes]:
    """An object's bytes in chunks, read off the loop; RetryableError if it ends short."""
    response = await call(what, s3.get_object, Bucket=bucket, Key=key)
    body = response["Body"]
    chunks = body.iter_chunks(chunk)
    received = 0
    try:
        while True:
            data = await call(what, next, chunks, b"")
            if not data:
                break
            received += len(data)
            yield data
    finally:
        body.close()
    if received != expected:
        raise RetryableError(
            f"{what}: the download ended after {received} of {expected} bytes", provider=PROVIDER
        )
