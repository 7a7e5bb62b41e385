"""The app's metrics, written into the real Prometheus: a healthy past, then live samples.

Why this module exists: every rule of the runbook's policy needs its metric, or it sits in
NoData and the demo shows nothing but the one rule that breaks. `Traffic` writes two minutes of
healthy history at once (remote write accepts past timestamps), then one sample a second from a
background thread, as an exporter scraped every second would. Request counters grow at rates
that depend on the app: while the bad release is live and failing, half the API's requests
answer 500, so the policy's `api-error-rate` climbs past its thresholds; once the operator has
rolled the release back, errors stop by themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sandbox.demo.app import App
from sandbox.services.prometheus import PrometheusServer

Key = tuple[tuple[str, str], ...]
API, FRONTEND = {"service": "api"}, {"service": "frontend"}
BUCKETS = {"0.1": 0.60, "0.25": 0.92, "0.5": 0.985, "1": 0.998, "+Inf": 1.0}
"""Share of API requests answered within each bucket: p95 is about 0.3 s (the rule warns at
0.5 s)."""
GAUGES = {
    (("__name__", "pg_stat_activity_count"),): 12.0,
    (("__name__", "pg_settings_max_connections"),): 100.0,
}
HISTORY = timedelta(minutes=2)  # increase(...[1m]) looks back a minute
HISTORY_STEP = timedelta(seconds=1)
LIVE_STEP = 1.0


def key(name: str, labels: Mapping[str, str] | None = None) -> Key:
    """A series' identity: its name and labels, sorted."""
    return tuple(sorted({"__name__": name, **(labels or {})}.items()))


def rates(failing: bool) -> dict[Key, float]:
    """Per-second increase of every counter; the API fails half its requests when `failing`."""
    api_errors = 50.0 if failing else 0.3
    found = {
        key("http_requests_total", {**API, "code": "200"}): 100.0 - api_errors,
        key("http_requests_total", {**API, "code": "500"}): api_errors,
        key("http_requests_total", {**FRONTEND, "code": "200"}): 199.6,
        key("http_requests_total", {**FRONTEND, "code": "500"}): 0.4,
        key("db_connection_failures_total"): 0.0,
        key("cache_hits_total"): 95.0,
        key("cache_requests_total"): 100.0,
    }
    for le, share in BUCKETS.items():
        found[key("http_request_duration_seconds_bucket", {**API, "le": le})] = 100.0 * share
    return found


@dataclass
class Traffic:
    """Counters and gauges of the app, kept in step with it and written to Prometheus."""

    prometheus: PrometheusServer
    app: App
    totals: dict[Key, float] = field(default_factory=dict)
    written: int = 0
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def backfill(self, now: datetime) -> None:
        """Healthy samples every second over the last two minutes, in one request."""
        points: dict[Key, list[tuple[datetime, float]]] = {}
        at = now - HISTORY
        while at <= now:
            for series, value in self._advance(HISTORY_STEP.total_seconds(), failing=False):
                points.setdefault(series, []).append((at, value))
            at += HISTORY_STEP
        self.prometheus.write_series([(dict(s), p) for s, p in points.items()])
        self.written += sum(len(p) for p in points.values())

    def start(self) -> None:
        """Write one sample of every series a second, in a background thread."""
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(LIVE_STEP):
                now = datetime.now(UTC)
                samples = self._advance(LIVE_STEP, failing=self.app.failing())
                self.prometheus.write_series([(dict(s), [(now, v)]) for s, v in samples])
                self.written += len(samples)
        except BaseException as error:  # the demo reports it; a silent feeder would mislead
            self.error = error

    def _advance(self, seconds: float, *, failing: bool) -> list[tuple[Key, float]]:
        """Grow every counter by `seconds` of traffic; every series with its new value."""
        for series, per_second in rates(failing).items():
            self.totals[series] = self.totals.get(series, 0.0) + per_second * seconds
        return [*self.totals.items(), *GAUGES.items()]
