"""Load: 100 Rollbacks on 100 policies at once, and 1,000 policies evaluated on their interval.

The real operator process on the emulated Kubernetes API. Rollbacks go through the real Vercel,
Railway and Slack adapters to the fake servers, which count every change (`bench.load.Fleet`);
policies query a real Prometheus whose query log shows each evaluation of each policy. Speed is
measured by `bench/load.py` and `bench/policy_eval.py`; these tests claim only that everything
finishes, nothing is done twice, and no policy is starved or evaluated in a hot loop.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import load, policy_eval
from sandbox.services.prometheus import CONFIG, PrometheusServer
from tests.e2e.bed import Bed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROLLBACKS = 100
POLICIES = 1_000
INTERVAL = 10.0


@pytest.fixture
def fakes() -> Iterator[load.Fleet]:
    with load.fleet() as fleet:
        yield fleet


def test_a_hundred_rollbacks_at_once_all_succeed_and_change_each_app_once(
    bed: Bed, fakes: load.Fleet
) -> None:
    bed.start(real=("frontend", "backend", "notifiers"))
    bed.wait_for_watch(load.POLICIES)
    with bed.cluster.client(timeout=60) as api:
        ns = bed.namespace
        apps = [fakes.add(f"app-{i:03d}") for i in range(ROLLBACKS)]
        load.secrets(api, ns, fakes)
        load.create(api, ns, "rollbackpolicies", [fakes.policy(a) for a in apps])
        created = load.create(api, ns, "rollbacks", [load.rollback_for(a) for a in apps])
        bodies = load.wait_all(api, ns, set(created), timeout=600)
    assert sorted(set(created) - set(bodies)) == [], "stuck rollbacks"
    phases = {name: body["status"]["phase"] for name, body in bodies.items()}
    assert phases == dict.fromkeys(created, "Succeeded")
    retried = []
    for name, body in bodies.items():
        steps = body["status"]["steps"]
        assert [s["state"] for s in steps] == ["Succeeded"] * 6, steps  # notify, 2 targets, ...
        retried += [f"{name}/{s['name']}/{s.get('target')}: {s.get('message')}"
                    for s in steps if s["attempts"] > 1]  # fmt: skip
    print(f"{len(retried)} steps retried under load:", *retried[:10], sep="\n  ")
    # a retry is allowed (calls time out under load); a second change is not: one Vercel and
    # one Railway rollback per app, now live, and two Slack messages in its channel
    assert fakes.changes(apps) == []


class QueryLoggingPrometheus(PrometheusServer):
    """A Prometheus that logs every query it answers (`query_log_file`), one JSON per line."""

    @property
    def query_log(self) -> Path:
        assert self.dir is not None
        return self.dir / "queries.log"

    def _flags(self, directory: Path) -> list[str]:
        config = directory / "logging.yml"
        config.write_text(
            CONFIG.replace("global: {", f"global: {{query_log_file: {self.query_log}, ")
        )
        return [f"--config.file={config}", *super()._flags(directory)[1:]]


@pytest.fixture
def prometheus() -> Iterator[QueryLoggingPrometheus]:
    server = QueryLoggingPrometheus()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _evaluations(log: Path) -> dict[str, list[datetime]]:
    """App name -> when Prometheus answered each query about it."""
    found: dict[str, list[datetime]] = defaultdict(list)
    if not log.exists():
        return found
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        when = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00"))
        for app in set(re.findall(r'app="(app-\d+)"', entry["params"]["query"])):
            found[app].append(when)
    return found


def test_a_thousand_policies_are_each_evaluated_on_their_interval(
    bed: Bed, prometheus: QueryLoggingPrometheus
) -> None:
    names = [f"app-{i}" for i in range(POLICIES)]
    now = datetime.now(UTC)
    prometheus.write_series(
        [({"__name__": "connections_ratio", "app": n}, [(now, 0.5)]) for n in names]
    )
    bed.start()
    bed.wait_for_watch(load.POLICIES)
    rule = policy_eval._rules  # the connections rule: one query per policy and round
    bodies = [policy_eval._policy(n, prometheus.url, [rule(n)[3]], f"{INTERVAL:.0f}s")
              for n in names]  # fmt: skip
    started = time.monotonic()
    with bed.cluster.client(timeout=60) as api:
        policy_eval._create(api, bed.namespace, bodies)
    created = time.monotonic() - started
    # a liveness bound, not a speed claim: generous for 2 shared cores (bench/ measures speed)
    deadline = time.monotonic() + 12 * INTERVAL
    while True:
        seen = _evaluations(prometheus.query_log)
        starved = [n for n in names if len(seen.get(n, [])) < 2]
        if not starved or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    never = sum(1 for n in names if not seen.get(n))
    assert starved == [], (
        f"{len(starved)} policies evaluated fewer than twice ({never} never) "
        f"{12 * INTERVAL:.0f}s after {POLICIES} were created in {created:.0f}s: {starved[:5]}"
    )
    # not more often than the interval: answers arrive late under load, so count, don't time
    last = max(t for times in seen.values() for t in times)
    for name in names:
        window = (last - min(seen[name])).total_seconds()
        assert len(seen[name]) <= window / INTERVAL + 2, f"{name} evaluated too often"
