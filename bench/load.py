"""Benchmark: 100 quick Rollbacks on 100 policies at once, through one operator process.

The real operator process runs on the real API server (or, with `--bed emulator`, the emulator)
with the real Vercel, Railway and Slack adapters, against the fake Vercel, Railway and Slack
servers (one project, one service and one Slack webhook per app, no added latency; Railway's
adapter polls its deployment every 2 s, so one rollback takes about 4-5 s even alone).
Verification (none configured) is the in-memory fake. The notifications go to Slack as in
production: the in-memory notifier of the tests saves its world file on every notice, a cost
that grows with every rollback and that no real notifier has. Measured in the same run:

1. Baseline: quick rollbacks of spare apps, one at a time (median apply -> Succeeded).
2. Load: one policy per app and one quick Rollback per policy, all created at once; time until
   every one has Succeeded, p50/p95 per rollback (its status.finishedAt - the time it was
   created), and the ratios against the baseline.
3. The operator's CPU seconds (utime + stime from /proc) and peak RSS (VmHWM), and the API's
   (kube-apiserver and etcd, or the emulator), to show which process is the bottleneck; on the
   real API server, the writes per rollback it counted during the burst (`bench.apicalls`);
   and this process's (the fake SaaS servers and the client), to show that it is not the
   bottleneck.

    python -m bench.load [--rollbacks 100] [--solo 3] [--bed apiserver|emulator]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench import apicalls, beds, timeline
from sandbox import manifests
from sandbox.fakes.railway_server import FakeRailway
from sandbox.fakes.saas import HOUR_MS, RAILWAY_TOKEN, VERCEL_TOKEN, Saas
from sandbox.fakes.slack_server import FakeSlack
from sandbox.fakes.vercel_server import FakeVercel
from tests.apiserver.namespace import KubeNamespace
from tests.e2e.bed import WATCHED, Bed

GROUP = "/apis/rollback.mindmate.app/v1alpha1"
POLICIES = "rollback.mindmate.app/v1alpha1/rollbackpolicies"
WEBHOOKS = "slack-webhooks"
"""The Secret holding each app's Slack webhook URL under the app's name."""
ENDED = {"Succeeded", "Failed", "PartiallyFailed"}
API_NAMES = {"apiserver": "real API server (kube-apiserver, etcd)", "emulator": "emulated API"}
API_PROCESSES = {"apiserver": "kube-apiserver + etcd", "emulator": "emulator"}
Manifest = dict[str, Any]
RAILWAY_DEPLOY_SECONDS = 3.0
"""How long a Railway rollback's deployment takes to go live, however often it is read, as
Railway's builds do (docs/providers.md#R11, kinder item 14); the adapter, polling every 2 s,
sees it live at its poll 4 s after asking, as it did when the fake counted reads."""
VERCEL_JOB_SECONDS = 0.5
"""How long a Vercel rollback's alias job takes to end, however often the project is read
(docs/providers.md kinder item 16); counting reads charged an adapter that looks less often."""


@dataclass(frozen=True)
class App:
    """One app: a Vercel project and a Railway service, each with an old and a live deploy."""

    name: str
    project: str
    old: str
    service: str
    env: str
    railway_project: str
    railway_old: str


@dataclass
class Fleet:
    """The fake SaaS servers, seeded with `apps`."""

    vercel: FakeVercel
    railway: FakeRailway
    slack: FakeSlack
    vercel_url: str
    railway_url: str
    slack_url: str
    apps: list[App] = field(default_factory=list)
    webhooks: dict[str, str] = field(default_factory=dict)  # app name -> webhook URL

    def add(self, name: str) -> App:
        start = int(time.time() * 1000) - 100 * HOUR_MS
        project = self.vercel.add_project(name)
        old = self.vercel.add_deployment(project, created_at=start)
        self.vercel.add_deployment(project, created_at=start + HOUR_MS)
        railway_project = self.railway.add_project(name)
        env = self.railway.add_environment(railway_project)
        service = self.railway.add_service(railway_project, replicas=2)
        r_old = self.railway.add_deployment(service, env, created_at=time.time() - 7200)
        self.railway.add_deployment(service, env, created_at=time.time() - 3600)
        app = App(name, project, old, service, env, railway_project, r_old)
        self.apps.append(app)
        self.webhooks[name] = self.slack_url + self.slack.add_webhook(f"#{name}")
        return app

    def policy(self, app: App) -> Manifest:
        """The app's policy: frontend and backend on the fakes, no database or storage, its
        Slack channel told."""
        vercel = {"projectId": app.project, "apiUrl": self.vercel_url}
        railway = {"projectId": app.railway_project, "environmentId": app.env,
                   "serviceId": app.service,
                   "apiUrl": f"{self.railway_url}/graphql/v2"}  # fmt: skip
        targets = {"frontend": {"vercel": vercel}, "backend": {"railway": railway},
                   "database": None, "storage": None}  # fmt: skip
        slack = {"webhookSecretRef": {"name": WEBHOOKS, "key": app.name}}
        return manifests.policy(app.name, targets=targets, notifications={"slack": slack})

    def changes(self, apps: list[App]) -> list[str]:
        """What is wrong with the fakes' record for `apps`: each rolled back exactly once, now
        live on its old deployment, and its channel told twice (started, finished). Empty when
        all is well."""
        calls = self.vercel.log.matching("POST /v1/projects/*/rollback/*")
        vercel = Counter(r.path.split("/")[3] for r in calls)
        calls = self.railway.log.matching("deploymentRollback", mutating=True)
        railway = Counter(_rollback_target(r.body) for r in calls)
        problems = []
        for app in apps:
            if vercel[app.project] != 1 or railway[app.railway_old] != 1:
                problems.append(f"{app.name}: {vercel[app.project]} Vercel and "
                                f"{railway[app.railway_old]} Railway rollback calls")  # fmt: skip
            if self.vercel.production_deployment(app.project) != app.old:
                problems.append(f"{app.name}: Vercel is not live on {app.old}")
            if (told := len(self.slack.messages(f"#{app.name}"))) != 2:
                problems.append(f"{app.name}: {told} Slack messages")
        return problems


def _rollback_target(body: Any) -> str:
    variables = body.get("variables", {}) if isinstance(body, dict) else {}
    return str(variables.get("id", "?"))


@contextmanager
def fleet() -> Iterator[Fleet]:
    """Serve the fakes (no latency) for the duration of the block."""
    vercel = FakeVercel(token=VERCEL_TOKEN, job_seconds=VERCEL_JOB_SECONDS)
    railway = FakeRailway(
        token=RAILWAY_TOKEN, rate_limit=1_000_000, deploy_seconds=RAILWAY_DEPLOY_SECONDS
    )
    slack = FakeSlack()
    with ExitStack() as stack:
        v_url = stack.enter_context(vercel.serve()).url
        r_url = stack.enter_context(railway.serve()).url
        s_url = stack.enter_context(slack.serve()).url
        yield Fleet(vercel, railway, slack, v_url, r_url, s_url)


# ----- the API -----


def create(api: httpx.Client, ns: str, plural: str, bodies: list[Manifest]) -> dict[str, float]:
    """POST every body into namespace `ns`; when each was created (time.time())."""
    created = {}
    for body in bodies:
        body = {**body, "metadata": {**body["metadata"], "namespace": ns}}
        api.post(f"{GROUP}/namespaces/{ns}/{plural}", json=body).raise_for_status()
        created[body["metadata"]["name"]] = time.time()
    return created


def wait_all(api: httpx.Client, ns: str, names: set[str], timeout: float) -> dict[str, Manifest]:
    """Follow the Rollbacks of `ns` until every one of `names` has ended; their bodies.

    A watch, not a poll of the list: on the real API server a list of 100 Rollbacks is about a
    megabyte (statuses and managedFields), and listing it four times a second cost the server
    and this process (where the fake SaaS servers run) more CPU than the operator used."""
    deadline = time.monotonic() + timeout
    path = f"{GROUP}/namespaces/{ns}/rollbacks"
    listed = api.get(path).json()
    ended = {i["metadata"]["name"]: i for i in listed["items"] if _ended(i, names)}
    version = listed["metadata"]["resourceVersion"]
    while len(ended) < len(names) and (left := deadline - time.monotonic()) > 0:
        params = {"watch": "true", "resourceVersion": version,
                  "timeoutSeconds": str(max(1, min(int(left), 50)))}  # fmt: skip
        with api.stream("GET", path, params=params) as answer:
            for line in answer.iter_lines():
                event = json.loads(line)
                if event["type"] == "ERROR":  # expired: list again
                    return {**ended, **wait_all(api, ns, names - set(ended), left)}
                body = event["object"]
                version = body["metadata"]["resourceVersion"]
                if _ended(body, names):
                    ended[body["metadata"]["name"]] = body
                if len(ended) == len(names):
                    break
    return ended


def _ended(body: Manifest, names: set[str]) -> bool:
    return body["metadata"]["name"] in names and body.get("status", {}).get("phase") in ENDED


def seconds_taken(body: Manifest, created: float, stamp: str = "finishedAt") -> float:
    """status.finishedAt (or another status time) - the moment the client created it."""
    when = datetime.fromisoformat(body["status"][stamp].replace("Z", "+00:00"))
    return when.timestamp() - created


def secrets(api: httpx.Client, ns: str, fakes: Fleet) -> None:
    """The fakes' token Secrets and every app's Slack webhook, in namespace `ns`."""
    for secret in [*Saas.secrets(), manifests.secret(WEBHOOKS, fakes.webhooks)]:
        secret["metadata"]["namespace"] = ns
        api.post(f"/api/v1/namespaces/{ns}/secrets", json=secret).raise_for_status()


# ----- the processes -----


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int, field_name: str) -> float:
    """A /proc/<pid>/status memory field (VmRSS, VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ----- the benchmark -----


@dataclass
class Figures:
    """What one run measured."""

    solo: list[float] = field(default_factory=list)
    solo_waited: list[float] = field(default_factory=list)
    took: list[float] = field(default_factory=list)
    waited: list[float] = field(default_factory=list)  # created -> status.startedAt
    all_done: float = 0.0
    cpu: float = 0.0
    api_cpu: float = 0.0
    bench_cpu: float = 0.0  # this process: the fake SaaS servers and the API client
    rss_before: float = 0.0
    hwm: float = 0.0
    problems: list[str] = field(default_factory=list)
    phases: Counter[str] = field(default_factory=Counter)
    writes: str | None = None  # per rollback, as the real API server counted them
    steps_alone: timeline.Moments = field(default_factory=dict)
    steps_burst: timeline.Moments = field(default_factory=dict)


def run(bed: Bed, fakes: Fleet, rollbacks: int, solo: int) -> Figures:
    """Baseline, then the burst; the operator must already watch Rollbacks and policies."""
    assert bed.process is not None
    pid, api_pids, ns = bed.process.pid, beds.api_pids(bed), bed.namespace
    figures = Figures()
    with bed.cluster.client(timeout=60) as api:
        spare = [fakes.add(f"solo-{i}") for i in range(solo)]
        apps = [fakes.add(f"app-{i:03d}") for i in range(rollbacks)]
        secrets(api, ns, fakes)
        create(api, ns, "rollbackpolicies", [fakes.policy(a) for a in spare + apps])
        for app in spare:
            created = create(api, ns, "rollbacks", [rollback_for(app)])
            body = wait_all(api, ns, {app.name}, timeout=120)[app.name]
            figures.solo.append(seconds_taken(body, created[app.name]))
            figures.solo_waited.append(seconds_taken(body, created[app.name], "startedAt"))
            for key, values in timeline.moments({app.name: body}, created).items():
                figures.steps_alone.setdefault(key, []).extend(values)
        figures.rss_before = memory_mib(pid, "VmRSS")
        counted = apicalls.read(api) if isinstance(bed.cluster, KubeNamespace) else None
        cpu, api_cpu, bench_cpu = cpu_seconds(pid), _total_cpu(api_pids), _own_cpu()
        started = time.time()
        created = create(api, ns, "rollbacks", [rollback_for(a) for a in apps])
        bodies = wait_all(api, ns, set(created), timeout=60 + 2 * rollbacks)
        figures.all_done = time.time() - started
        figures.cpu = cpu_seconds(pid) - cpu
        figures.api_cpu = _total_cpu(api_pids) - api_cpu
        figures.bench_cpu = _own_cpu() - bench_cpu
        figures.hwm = memory_mib(pid, "VmHWM")
        if counted is not None:
            figures.writes = apicalls.per_rollback(counted, apicalls.read(api), rollbacks)
        figures.took = [seconds_taken(b, created[n]) for n, b in bodies.items()]
        figures.waited = [seconds_taken(b, created[n], "startedAt") for n, b in bodies.items()]
        figures.phases = Counter(b["status"]["phase"] for b in bodies.values())
        figures.steps_burst = timeline.moments(bodies, created)
        figures.phases["(not ended)"] = len(created) - len(bodies)
        figures.problems = fakes.changes(spare + apps)
    return figures


def _total_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def _own_cpu() -> float:
    """User + system CPU seconds of this process, every thread (the fakes serve in threads)."""
    return cpu_seconds(os.getpid())


def rollback_for(app: App) -> Manifest:
    """A quick Rollback of `app` under its own policy."""
    body = manifests.rollback(app.name)
    body["spec"]["policyRef"] = {"name": app.name}
    return body


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(f: Figures, rollbacks: int, kind: str) -> None:
    solo = statistics.median(f.solo)
    p50, p95 = percentile(f.took, 0.5), percentile(f.took, 0.95)
    print(f"{rollbacks} quick rollbacks on {rollbacks} policies at once (real adapters, fakes)")
    print(f"  on the {API_NAMES[kind]}")
    print(f"  outcome: {dict(f.phases)}; fake-side problems: {len(f.problems)}")
    for problem in f.problems[:10]:
        print(f"    {problem}")
    print(f"  alone (baseline, {len(f.solo)} runs): median {solo:.2f}s")
    print(f"  all {rollbacks} done in {f.all_done:.1f}s; per rollback p50 {p50:.2f}s, "
          f"p95 {p95:.2f}s, max {max(f.took):.2f}s")  # fmt: skip
    print(f"  created -> started: p50 {percentile(f.waited, 0.5):.2f}s, "
          f"p95 {percentile(f.waited, 0.95):.2f}s; alone "
          f"{statistics.median(f.solo_waited):.2f}s")  # fmt: skip
    print(f"  ratio all-done / alone: {f.all_done / solo:.2f} "
          f"(1.0 = fully parallel, {rollbacks} = one at a time)")  # fmt: skip
    print(f"  ratio p50 under load / alone: {p50 / solo:.2f}")
    share, each = f.cpu / f.all_done, f.cpu / rollbacks * 1000
    print(f"  operator CPU: {f.cpu:.1f}s over {f.all_done:.1f}s ({share:.0%} of one core), "
          f"{each:.0f} ms per rollback")  # fmt: skip
    print(
        f"  {API_PROCESSES[kind]} CPU: {f.api_cpu:.1f}s ({f.api_cpu / f.all_done:.0%} of one core)"
    )
    print(f"  this process (fake SaaS servers, client) CPU: {f.bench_cpu:.1f}s")
    print(f"  operator RSS: {f.rss_before:.0f} MiB before the burst, peak (VmHWM) {f.hwm:.0f} MiB")
    if f.writes:
        print(f"  {f.writes}")
    print("\n".join(timeline.lines(f.steps_alone, f.steps_burst)))


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollbacks", type=int, default=100)
    parser.add_argument("--solo", type=int, default=3)
    parser.add_argument("--bed", choices=beds.KINDS, default="apiserver")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        beds.opened(args.bed, Path(tmp)) as bed,
        fleet() as fakes,
    ):
        try:  # stopped also when it never comes up
            bed.start(wait=False, real=("frontend", "backend", "notifiers"))
            bed.wait_for_watch(WATCHED, timeout=beds.START_TIMEOUT)
            bed.wait_for_watch(POLICIES, timeout=beds.START_TIMEOUT)
            figures = run(bed, fakes, args.rollbacks, args.solo)
        finally:
            bed.stop()
    report(figures, args.rollbacks, args.bed)


if __name__ == "__main__":
    main()
