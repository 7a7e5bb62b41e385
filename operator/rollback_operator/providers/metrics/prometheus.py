"""Prometheus as the `MetricsSource` of RollbackPolicy rules, over the shared HTTP layer.

Why this module exists: rules are PromQL and must come back as one number, or as a clear
reason why not. `/api/v1/query` answers a scalar, a vector, a matrix or a string
(docs/providers.md#PM3); here an empty vector is no data, a vector of more than one series is
an error that asks for an aggregation, and NaN/+Inf/-Inf are parsed into floats for the rule
logic to judge (PM4). `history` is a range
query (`/api/v1/query_range`) whose points are counted back from the evaluation time, so the
oldest is exactly `for` ago and the newest is now; every step is listed, those Prometheus had
no value for marked as such, so "past the threshold for 5m" is judged point by point. (The
subquery `min_over_time((QUERY)[5m:STEP])` aligns its points to multiples of STEP since the
epoch instead, and so calls a breach held up to one STEP before `for` has passed.)

`query_all` asks for all the rules of a policy in one request: each expression is tagged with
its index by `label_replace` and they are joined with `or`, and the answer is split again by
that label. A request costs the operator about a millisecond of CPU in httpx, so this is what
keeps a thousand policies cheap (bench/policy_eval.py). When Prometheus refuses the
combination (a scalar rule, one query with an error), the rules are asked one at a time, each
with its own answer or error, and that combination is not tried again.

Timeouts, retries with backoff and the error classes come from `providers.http`. One client per
Prometheus URL and credential is kept open and shared by every policy that names it, with a cap
on requests in flight, so a thousand policies do not open a thousand connection pools.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rules import Prometheus
from rollback_operator.providers import errors, http
from rollback_operator.providers.base import MetricsSource, Sample, SecretReader
from rollback_operator.providers.endpoints import OFFICIAL_ONLY, Endpoints
from rollback_operator.providers.errors import ProviderError

PROVIDER = "prometheus"
QUERY_PATH = "/api/v1/query"
RANGE_PATH = "/api/v1/query_range"
DEFAULT_OPTIONS = http.Options(
    retry=http.RequestRetries(
        attempts=3, base_delay=0.25, max_delay=2.0, budget=10.0, max_wait=5.0
    ),
    timeouts=httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=10.0),
)
IN_FLIGHT = 4
TAG = "rollback_operator_rule"
APART_LIMIT = 10_000
SECRET_TTL = 60.0
_NUMBERS = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf, "Inf": math.inf}


class PrometheusSource:
    """Queries one Prometheus at given times; see `providers.base.MetricsSource`."""

    def __init__(self, session: http.Session, in_flight: int = IN_FLIGHT) -> None:
        self._session = session
        self._gate = asyncio.Semaphore(in_flight)
        self._apart: set[tuple[str, ...]] = set()

    async def query(self, expr: str, at: datetime) -> Sample:
        data = await self._query(expr, at)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return Sample(at, number(result[1]))
        if kind == "vector" and isinstance(result, list):
            sample = self._sample(result, at)
            if isinstance(sample, ProviderError):
                raise sample
            return sample
        raise self._refuse(f"the query returned a {kind}; a rule needs a scalar or one series")

    async def query_all(self, exprs: Sequence[str], at: datetime) -> list[Sample | ProviderError]:
        key = tuple(exprs)
        if len(key) > 1 and key not in self._apart:
            try:
                return await self._together(key, at)
            except (errors.RetryableError, errors.UnauthorizedError, errors.NotFoundError) as e:
                return [e] * len(key)
            except errors.PermanentError:  # one of them cannot be combined: ask one at a time
                self._apart = self._apart if len(self._apart) < APART_LIMIT else set()
                self._apart.add(key)
        return list(await asyncio.gather(*(self._answer(e, at) for e in key)))

    async def history(
        self, expr: str, at: datetime, window: timedelta, step: timedelta
    ) -> list[Sample]:
        times = steps(at, window, step)
        params = {"query": expr, "start": _seconds(times[0]), "end": _seconds(times[-1]),
                  "step": f"{_ms(step) / 1000:.3f}"}  # fmt: skip
        data = await self._get(RANGE_PATH, params)
        result = data.get("result")
        if data.get("resultType") != "matrix" or not isinstance(result, list):
            raise self._refuse(f"the range query returned a {data.get('resultType')}")
        series = self._one(result)
        values = {_ms_of(t): number(v) for t, v in (series or {}).get("values", [])}
        return [Sample(t, values.get(_ms_of(t.timestamp()))) for t in times]

    async def _answer(self, expr: str, at: datetime) -> Sample | ProviderError:
        try:
            return await self.query(expr, at)
        except ProviderError as error:
            return error

    async def _together(self, exprs: tuple[str, ...], at: datetime) -> list[Sample | ProviderError]:
        """All `exprs` in one request: each tagged with its index by label_replace, joined by
        `or`; the answer is split by that label again."""
        tagged = [f'label_replace(({e}), "{TAG}", "{i}", "", "")' for i, e in enumerate(exprs)]
        data = await self._query(" or ".join(tagged), at)
        result = data.get("result")
        if data.get("resultType") != "vector" or not isinstance(result, list):
            raise self._refuse(f"the combined query returned a {data.get('resultType')}")
        parts: list[list[dict[str, Any]]] = [[] for _ in exprs]
        for series in result:
            index = int(series.get("metric", {}).pop(TAG, -1))
            if 0 <= index < len(exprs):
                parts[index].append(series)
        return [self._sample(part, at) for part in parts]

    def _sample(self, result: list[dict[str, Any]], at: datetime) -> Sample | ProviderError:
        try:
            series = self._one(result)
        except ProviderError as error:
            return error
        return Sample(at, None if series is None else number(series.get("value", [0, ""])[1]))

    async def _query(self, expr: str, at: datetime) -> dict[str, Any]:
        return await self._get(QUERY_PATH, {"query": expr, "time": _seconds(at)})

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        call = http.Call(path.rsplit("/", 1)[-1], "GET", path, params=params)
        async with self._gate:
            body = await http.json_object(self._session, call)
        data = body.get("data")
        if body.get("status") != "success" or not isinstance(data, dict):
            raise self._refuse(f"unexpected answer: status {body.get('status')!r}")
        return data

    def _one(self, result: list[Any]) -> dict[str, Any] | None:
        """The single series of a result, None when empty; an error when there are more."""
        if not result:
            return None
        if len(result) > 1:
            shown = ", ".join(_labels(s.get("metric", {})) for s in result[:3])
            more = f" and {len(result) - 3} more" if len(result) > 3 else ""
            raise self._refuse(
                f"the query returned {len(result)} series ({shown}{more}); a rule needs one "
                "value: aggregate it, for example with sum(...), max(...) or avg(...)"
            )
        series: dict[str, Any] = result[0]
        return series

    def _refuse(self, message: str) -> errors.PermanentError:
        error = self._session.http.error(message, errors.PermanentError)
        assert isinstance(error, errors.PermanentError)
        return error


def number(text: Any) -> float:
    """A Prometheus sample value ("0.5", "NaN", "+Inf", "-Inf") as a float."""
    if isinstance(text, str) and text in _NUMBERS:
        return _NUMBERS[text]
    try:
        return float(text)
    except (TypeError, ValueError):
        raise errors.PermanentError(f"not a number: {text!r}", provider=PROVIDER) from None


def steps(at: datetime, window: timedelta, step: timedelta) -> list[datetime]:
    """The times a range query evaluates: every `step` back from `at`, covering `window`."""
    size, end = _ms(step), _ms_of(at.timestamp())
    count = -(-_ms(window) // size)
    return [datetime.fromtimestamp((end - k * size) / 1000, UTC) for k in range(count, -1, -1)]


class PrometheusFactory:
    """Builds sources from `spec.metrics.prometheus`, sharing one client per URL and credential."""

    def __init__(
        self,
        options: http.Options = DEFAULT_OPTIONS,
        *,
        secret_ttl: float = SECRET_TTL,
        clock: Callable[[], float] = time.monotonic,
        endpoints: Endpoints = OFFICIAL_ONLY,
    ) -> None:
        self.options, self.secret_ttl, self.clock = options, secret_ttl, clock
        self.endpoints = endpoints
        self._sources: dict[tuple[str, str], tuple[PrometheusSource, httpx.AsyncClient]] = {}
        self._secrets: dict[tuple[str, str, str], tuple[float, str]] = {}

    async def build(self, policy: RollbackPolicy, secrets: SecretReader) -> MetricsSource:
        if policy.spec.metrics is None:
            raise errors.PermanentError("spec.metrics.prometheus is not set", provider=PROVIDER)
        config = policy.spec.metrics.prometheus
        if config.auth_secret_ref is not None:  # no Secret goes to a URL that is not allowed
            self.endpoints.check("spec.metrics.prometheus.url", str(config.url))
        header = await self._auth(config, policy.metadata.namespace, secrets)
        key = (config.url, header)
        if key not in self._sources:
            self._sources[key] = self._open(config.url, {"Authorization": header} if header else {})
        return self._sources[key][0]

    async def close(self) -> None:
        """Close every client."""
        clients = [client for _, client in self._sources.values()]
        self._sources.clear()
        for client in clients:
            await client.aclose()

    def _open(
        self, url: str, headers: Mapping[str, str]
    ) -> tuple[PrometheusSource, httpx.AsyncClient]:
        endpoint = http.Http(PROVIDER, url, headers, self.options)
        client = http.make_client(url.rstrip("/"), headers, self.options)
        return PrometheusSource(http.Session(endpoint, client)), client

    async def _auth(self, config: Prometheus, namespace: str, secrets: SecretReader) -> str:
        """The Authorization header value from the Secret, re-read after `secret_ttl`."""
        ref = config.auth_secret_ref
        if ref is None:
            return ""
        key, now = (namespace, ref.name, ref.key), self.clock()
        cached = self._secrets.get(key)
        if cached is None or now - cached[0] > self.secret_ttl:
            cached = (now, (await secrets.read(namespace, ref.name, ref.key)).strip())
            self._secrets[key] = cached
        return cached[1]


def _labels(metric: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def _ms(delta: timedelta) -> int:
    return max(1, round(delta.total_seconds() * 1000))


def _seconds(at: datetime) -> str:
    return f"{_ms_of(at.timestamp()) / 1000:.3f}"


def _ms_of(seconds: float) -> int:
    return round(float(seconds) * 1000)
