"""Fault matrix, rollback level: a persistent fault in one provider during a real Rollback run
by the operator process (real API server, real adapters with production HTTP retries and
timeouts; the step runner's retries 0.05-0.2 s apart instead of 2-60 s).

Claims: every Rollback ends, within a bound, in Failed or PartiallyFailed with the failing step
(or the Planned condition) naming the cause; a failing notifier never fails a rollback: it ends
Succeeded with the notify steps Failed and the reason recorded; a Prometheus that keeps failing
turns the rule to Error (never a stale Ok) and starts no rollback. No credential shows in any
status, Event or log line.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from mypy_boto3_s3 import S3Client

from sandbox import manifests
from sandbox.fakes.fault_proxy import FaultProxy, s3_error
from sandbox.fakes.http_server import Dropped, RateLimited, ServerError, Slow
from sandbox.fakes.saas import VERCEL_TOKEN, serving
from sandbox.services.postgres import PostgresServer
from sandbox.services.prometheus import PrometheusServer
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server
from tests.apiserver.namespace import KubeNamespace
from tests.apiserver.server import KubeApiServer
from tests.db import world
from tests.e2e.bed import Bed
from tests.faults.matrix import Outcome, Recorder
from tests.faults.saas import served
from tests.faults.scenarios import (
    FAILED,
    NO_TARGETS,
    Manifest,
    Scenario,
    Terminator,
    backend_policy,
    frontend_policy,
    rollback,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REAL = ("frontend", "backend", "database", "storage")
BOUND = 150.0
"""Seconds every scenario must end within (production HTTP retries, all side by side)."""
ENDED = {"Succeeded", "Failed", "PartiallyFailed", "Aborted", "Planned"}


class FaultBed(Bed):
    """The e2e bed whose operator also uses the real Slack, Statuspage and PagerDuty adapters
    (talking to their fakes, which inject the faults): a failing notifier must never fail a
    rollback."""

    def start(self, *, wait: bool = True, real: tuple[str, ...] = ()) -> None:
        super().start(wait=wait, real=(*real, "notifiers"))


def _saas_scenarios(stack: ExitStack) -> list[Scenario]:
    out = []
    s = stack.enter_context(serving())
    s.vercel.inject(ServerError(500), route="POST /v1/projects/*/rollback/*", times=None)
    out.append(
        Scenario(
            "vercel-500",
            "vercel",
            "rollback",
            "500",
            [
                frontend_policy("vercel-500", s.vercel_url, s.project),
                rollback("vercel-500", "vercel-500", ["frontend"]),
            ],
            FAILED,
            ("instant-rollback", "HTTP 500", "gave up after 5 attempts"),
        )
    )
    s = stack.enter_context(serving())
    out.append(
        Scenario(
            "vercel-token",
            "vercel",
            "plan",
            "bad-credentials",
            [
                manifests.secret("vercel-bad", {"token": "vercel-wrong-4e11"}),
                frontend_policy("vercel-token", s.vercel_url, s.project, "vercel-bad"),
                rollback("vercel-token", "vercel-token", ["frontend"]),
            ],
            frozenset({"Failed"}),
            ("Planning failed", "HTTP 403"),
            ["vercel-wrong-4e11"],
        )
    )
    s = stack.enter_context(serving())
    s.railway.inject(RateLimited(retry_after=1), route="deploymentRollback", times=None)
    ids = (s.railway_project, s.env, s.service)
    out.append(
        Scenario(
            "railway-429",
            "railway",
            "rollback",
            "429",
            [
                backend_policy("railway-429", s.railway_url, ids),
                rollback("railway-429", "railway-429", ["backend"]),
            ],
            FAILED,
            ("instant-rollback", "HTTP 429", "gave up after 5 attempts"),
        )
    )
    s = stack.enter_context(serving())
    s.railway.inject(Dropped(), route="deploymentRollback", times=None)
    ids = (s.railway_project, s.env, s.service)
    out.append(
        Scenario(
            "railway-dropped",
            "railway",
            "rollback",
            "dropped",
            [
                backend_policy("railway-dropped", s.railway_url, ids),
                rollback("railway-dropped", "railway-dropped", ["backend"]),
            ],
            FAILED,
            ("instant-rollback", "connection failed", "gave up after 5"),
        )
    )
    return out  # fmt: skip


def _notifier_scenarios(stack: ExitStack) -> list[Scenario]:
    slack, status, pager = (stack.enter_context(served(n)) for n in ("slack", "statuspage",
                                                                      "pagerduty"))  # fmt: skip
    slack.fake.inject(ServerError(500), times=None)
    silent = stack.enter_context(served("slack"))  # answers nothing for a minute
    silent.fake.inject(Slow(60.0), times=None)
    pager.fake.inject(RateLimited(retry_after=1), times=None)
    channels: dict[str, tuple[dict[str, Any], dict[str, str], str, tuple[str, ...]]] = {
        "slack": ({"slack": {"webhookSecretRef": {"name": "slack-hook", "key": "url"}}},
                  {"url": slack.secret}, "500", ("slack: notify", "HTTP 500")),
        "statuspage": ({"statuspage": {"pageId": "page01", "apiUrl": f"{status.url}/v1",
                        "apiKeySecretRef": {"name": "sp-key", "key": "key"}}},
                       {"key": status.bad_secret}, "bad-credentials", ("statuspage", "HTTP 401")),
        "pagerduty": ({"pagerduty": {"apiUrl": f"{pager.url}/v2/enqueue",
                       "routingKeySecretRef": {"name": "pd-key", "key": "routing-key"}}},
                      {"routing-key": pager.secret}, "429", ("pagerduty: send", "HTTP 429")),
    }  # fmt: skip
    out = []
    for name, (notifications, data, fault, words) in channels.items():
        s = stack.enter_context(serving())  # an app of its own: the three roll back at once
        config: dict[str, Any] = next(iter(notifications.values()))
        ref = next(v for k, v in config.items() if k.endswith("SecretRef"))
        out.append(Scenario(
            f"{name}-{fault}", name, "notify", fault,
            [manifests.secret(ref["name"], data),
             frontend_policy(f"{name}-{fault}", s.vercel_url, s.project,
                             notifications=notifications),
             rollback(f"{name}-{fault}", f"{name}-{fault}", ["frontend"], label=True)],
            frozenset({"Succeeded"}), ("notify-started", *words), list(data.values()),
        ))  # fmt: skip
    s = stack.enter_context(serving())  # a channel that never answers holds nothing
    hook = {"slack": {"webhookSecretRef": {"name": "slack-silent", "key": "url"}}}
    out.append(Scenario(
        "slack-timeout", "slack", "notify", "timeout",
        [manifests.secret("slack-silent", {"url": silent.secret}),
         frontend_policy("slack-timeout", s.vercel_url, s.project, notifications=hook),
         rollback("slack-timeout", "slack-timeout", ["frontend"], label=True)],
        frozenset({"Succeeded"}),
        ("notify-started: slack: no answer within 10s; the rollback went on without waiting",),
        [silent.secret],
    ))  # fmt: skip
    return out


def _datastore_scenarios(stack: ExitStack, pg: PostgresServer, s3: S3Client, s3_url: str,
                         prometheus_url: str) -> list[Scenario]:  # fmt: skip
    out = []
    backups = world.make_bucket(s3, versioned=False)
    dbs = []
    for n in range(2):
        db = world.Db(pg, f"rf_{n}_{uuid.uuid4().hex[:8]}")
        pg.psql("postgres", f"CREATE DATABASE {db.name}")
        db.seed(["alice", "bob"])
        world.put(s3, backups, f"{world.PREFIX}{db.name}/nightly.dump", db.dump("custom"))
        db.seed(["alice", "bob", "mallory"])
        dbs.append(db)
    store = {"endpointUrl": s3_url, "credentialsSecretRef": {"name": "aws"}}

    def db_policy(name: str, db: world.Db, secret: str) -> Manifest:
        pg_target = {
            "urlSecretRef": {"name": secret, "key": "url"},
            "backups": {"bucket": backups, "prefix": f"{world.PREFIX}{db.name}/"},
        }
        return manifests.policy(name, targets={**NO_TARGETS, "database": {"postgres": pg_target}},
                               objectStore=store)  # fmt: skip

    wrong = pg.url_for(dbs[0].name, password="wrong-pw-5a0e")
    out.append(Scenario("postgres-password", "postgres", "plan", "bad-credentials",
                        [manifests.secret("db-wrong", {"url": wrong}),
                         db_policy("postgres-password", dbs[0], "db-wrong"),
                         rollback("postgres-password", "postgres-password", ["database"],
                                  mode="full")],
                        frozenset({"Failed"}), ("Planning failed", "refused the credentials"),
                        [wrong, "wrong-pw-5a0e", pg.password]))  # fmt: skip
    killer = Terminator(dbs[1])
    out.append(Scenario("postgres-dropped", "postgres", "restore", "dropped",
                        [manifests.secret("db-kill", {"url": dbs[1].url}),
                         db_policy("postgres-dropped", dbs[1], "db-kill"),
                         rollback("postgres-dropped", "postgres-dropped", ["database"],
                                  mode="full")],
                        FAILED, ("restore-database", "terminating connection",
                                 "gave up after 5 attempts"), [pg.password],
                        stop=killer.stop, check=lambda: dbs[1].notes() == ["alice", "bob",
                                                                           "mallory"]))  # fmt: skip
    files = world.make_bucket(s3, versioned=True)
    world.put(s3, files, "a.txt", b"v1")
    as_of = world.next_second().isoformat().replace("+00:00", "Z")
    world.put(s3, files, "a.txt", b"v2")
    for fault, reply, words in (
        ("bad-credentials", s3_error(403, "AccessDenied", "Access Denied"), ("AccessDenied",)),
        ("500", s3_error(500, "InternalError", "We encountered an internal error."),
         ("InternalError", "gave up after 5 attempts")),
    ):  # fmt: skip
        proxy = FaultProxy(s3_url, shape="s3")
        proxy.inject(reply, method="PUT", times=None)  # reads pass: the plan is made
        url = stack.enter_context(proxy.serve()).url
        name = f"s3-{fault}"
        targets = {**NO_TARGETS, "storage": {"s3": {"bucket": files}}}
        out.append(Scenario(name, "s3", "storage restore", fault,
                            [manifests.policy(name, targets=targets,
                                             objectStore={**store, "endpointUrl": url}),
                             rollback(name, name, ["storage"], mode="full",
                                      to={"storage": {"asOf": as_of}})],
                            FAILED, ("restore-storage", *words), [SECRET_ACCESS_KEY],
                            check=lambda: world.objects(s3, files) == {"a.txt": b"v2"},
                            ))  # fmt: skip
    proxy = FaultProxy(prometheus_url, shape="prometheus")
    proxy.inject(ServerError(500), times=None)
    url = stack.enter_context(proxy.serve()).url
    rule = {"name": "api-errors", "query": "vector(1)", "critical": {"above": 0.5},
            "for": "1m", "autoRollback": True}  # fmt: skip
    out.append(Scenario("prometheus-500", "prometheus", "rule evaluation", "500",
                        [manifests.policy("prometheus-500", metrics={"prometheus": {"url": url}},
                                         targets={**NO_TARGETS, "frontend": {"vercel": {
                                             "projectId": "p", "apiUrl": url}}},
                                         automaticRollback={"targets": ["frontend"]},
                                         evaluationInterval="1s", rules=[rule])],
                        frozenset({"Error"}), ("HTTP 500",), rule=True))  # fmt: skip
    return out


# ----- running them all in one operator -----


def _status(bed: Bed, scenario: Scenario) -> tuple[str | None, dict[str, Any]]:
    if scenario.rule:
        status = bed.get("rollbackpolicy", scenario.name).get("status", {})
        rules = status.get("rules") or [{}]
        state = rules[0].get("state")
        return (state if state in ("Error", "Ok", "Critical") else None), status
    status = bed.get("rollback", scenario.name).get("status", {})
    phase = status.get("phase")
    return (phase if phase in ENDED else None), status


def _message(scenario: Scenario, status: dict[str, Any]) -> str:
    """The record's words about the cause: the failed steps and the conditions."""
    if scenario.rule:
        return " ".join(str(r.get("message")) for r in status.get("rules", []))
    failed = [f"{s['name']}: {s.get('message')}" for s in status.get("steps", [])
              if s.get("state") == "Failed"]  # fmt: skip
    planned = [c.get("message", "") for c in status.get("conditions", [])
               if c["type"] in ("Planned", "Ready") and c.get("status") == "False"]  # fmt: skip
    return " | ".join(failed + planned)


@pytest.fixture(scope="module")
def ran(
    tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer, s3_server: S3Server,
    s3: S3Client, prometheus: PrometheusServer, apiserver_with_crds: KubeApiServer,
) -> Iterator[dict[str, tuple[Scenario, str | None, dict[str, Any], str]]]:  # fmt: skip
    """Every scenario applied to one operator; each one's end state, once all have ended."""
    workdir = tmp_path_factory.mktemp("rollback-faults")
    with ExitStack() as stack:
        bed = FaultBed(KubeNamespace(apiserver_with_crds, workdir / "kube"), workdir)
        stack.callback(bed.stop)
        scenarios = _saas_scenarios(stack) + _notifier_scenarios(stack)
        scenarios += _datastore_scenarios(stack, pg_server, s3, s3_server.url,
                                          prometheus.url)  # fmt: skip
        for scenario in scenarios:
            stack.callback(scenario.stop)
        bed.start(real=REAL)
        shared = [manifests.secret("vercel", {"token": VERCEL_TOKEN}),
                  manifests.secret("railway", {"token": "railway-e2e-token-93ac"}),
                  manifests.secret("aws", {"access-key-id": ACCESS_KEY_ID,
                                          "secret-access-key": SECRET_ACCESS_KEY})]  # fmt: skip
        for manifest in shared + [m for s in scenarios for m in s.manifests]:
            bed.apply(manifest)
        ended: dict[str, tuple[Scenario, str | None, dict[str, Any], str]] = {}
        deadline = time.monotonic() + BOUND
        while len(ended) < len(scenarios) and time.monotonic() < deadline:
            for scenario in scenarios:
                if scenario.name not in ended:
                    end, status = _status(bed, scenario)
                    if end is not None:
                        ended[scenario.name] = (scenario, end, status, "")
            time.sleep(0.5)
        for scenario in scenarios:  # what the stuck ones show, for the failure message
            if scenario.name not in ended:
                ended[scenario.name] = (scenario, None, _status(bed, scenario)[1], "")
        events = json.dumps([bed.events_for(s.name) for s in scenarios])
        logs = bed.logs()
        yield {n: (s, end, st, events + logs) for n, (s, end, st, _) in ended.items()}


NAMES = ["vercel-500", "vercel-token", "railway-429", "railway-dropped", "slack-500",
         "slack-timeout", "statuspage-bad-credentials", "pagerduty-429", "postgres-password",
         "postgres-dropped", "s3-bad-credentials", "s3-500", "prometheus-500"]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_a_persistent_fault_ends_the_rollback_with_its_cause_on_record(
    ran: dict[str, tuple[Scenario, str | None, dict[str, Any], str]], name: str,
    recorder: Recorder,
) -> None:  # fmt: skip
    scenario, end, status, seen = ran[name]
    message = _message(scenario, status)
    ended = end or f"stuck after {BOUND:.0f}s"
    recorder.add(Outcome("rollback", scenario.provider, scenario.operation, scenario.fault,
                         "persistent", ended, message[:400]))  # fmt: skip
    assert end is not None, f"{name} did not end within {BOUND}s: {json.dumps(status)[:3000]}"
    assert end in scenario.phases, f"{name} ended {end}: {message}"
    for word in scenario.words:
        assert word in message, f"{word!r} not in {message!r}"
    if scenario.check is not None:
        assert scenario.check(), f"{name}: the data changed"
    for secret in [*scenario.secrets, VERCEL_TOKEN, SECRET_ACCESS_KEY]:
        assert secret not in json.dumps(status) + seen
