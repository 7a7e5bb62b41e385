"""Everything the demo runs, started together and stopped in reverse: no cluster needed.

Why this module exists: the demo is the product on a laptop, so it starts the same parts the
end-to-end tests use (`sandbox/services`, `sandbox/kube`, `sandbox/fakes`) and the operator
exactly as users run it: `rollback-operator run` in its own process, with the real adapters,
against the emulated Kubernetes API. The slow starts (PostgreSQL's initdb, moto,
Prometheus, the emulator) run in parallel threads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mypy_boto3_s3 import S3Client

from rollback_operator.api.targets import ObjectStore
from rollback_operator.providers.objectstore import s3api
from sandbox.demo import app as demo_app
from sandbox.fakes import saas as saas_fakes
from sandbox.fakes.slack_server import FakeSlack
from sandbox.kube.cluster import REPO_ROOT, EmulatedCluster
from sandbox.services import free_port, stop_process
from sandbox.services.postgres import PostgresServer
from sandbox.services.prometheus import PrometheusServer
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server

WATCHED = (
    "rollback.mindmate.app/v1alpha1/rollbacks",
    "rollback.mindmate.app/v1alpha1/rollbackpolicies",
)
SLACK_CHANNEL = "#incidents"
Say = Callable[[str], None]
T = TypeVar("T")


class Operator:
    """`rollback-operator run` as a child process, its output in a log file."""

    def __init__(self, cluster: EmulatedCluster, log: Path, namespace: str) -> None:
        self.cluster, self.log, self.namespace = cluster, log, namespace
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        """Start the process (it takes a few seconds to import and connect); the fakes listen
        on loopback, so it may send them credentials (`--allow-endpoint`)."""
        argv = [sys.executable, "-m", "rollback_operator", "run", "--standalone",
                "--namespace", self.namespace, "--kubeconfig", str(self.cluster.kubeconfig),
                "--liveness", f"http://127.0.0.1:{free_port()}/healthz",
                "--allow-endpoint", "http://127.0.0.1"]  # fmt: skip
        env = {**os.environ, "ROLLBACK_OPERATOR_POLL_INTERVAL": "0.2",
               "ROLLBACK_OPERATOR_METRICS_PORT": str(free_port())}  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until it watches Rollbacks and RollbackPolicies."""
        deadline = time.monotonic() + timeout
        for resource in WATCHED:
            while True:
                self.check()
                try:
                    self.cluster.wait_for_watch(resource, namespace=self.namespace, timeout=0.5)
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the operator watched no {resource} in time") from None

    def check(self) -> None:
        """RuntimeError when the operator has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the operator exited with code {self.process.returncode}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process is not None:
            stop_process(self.process)

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass
class Stack:
    """The running parts and how to reach them."""

    workdir: Path
    cluster: EmulatedCluster
    postgres: PostgresServer
    s3_server: S3Server
    s3: S3Client
    prometheus: PrometheusServer
    saas: saas_fakes.Saas
    slack: FakeSlack
    slack_url: str
    app: demo_app.App
    health_url: str
    operator: Operator


def _timed(say: Say, what: str, start: Callable[[], T], where: Callable[[T], str]) -> T:
    began = time.monotonic()
    started = start()
    say(f"{what:<34} {where(started):<36} {time.monotonic() - began:4.1f}s")
    return started


def _in_parallel(calls: list[Callable[[], Any]]) -> None:
    """Run every call at once and wait for all; the first error is raised after."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
    for future in futures:
        future.result()


@contextmanager
def started(workdir: Path, say: Say, *, namespace: str) -> Iterator[Stack]:
    """Start every part (printing each), yield them, stop them all at the end."""
    with ExitStack() as stack:
        cluster = EmulatedCluster(workdir / "cluster")
        postgres, s3_server, prometheus = PostgresServer(), S3Server(), PrometheusServer()
        starts: list[tuple[str, Callable[[], Any], Callable[[Any], str], Callable[[], Any]]] = [
            ("Kubernetes API (emulated)", cluster.start, lambda c: c.url, cluster.stop),
            ("PostgreSQL 15", postgres.start, lambda p: f"127.0.0.1:{p.port}", postgres.stop),
            ("S3 (moto_server)", s3_server.start, lambda s: s.url, s3_server.stop),
            ("Prometheus", prometheus.start, lambda p: p.url, prometheus.stop),
        ]
        stack.callback(_in_parallel, [stop for *_, stop in starts])  # no-op if never started
        with ThreadPoolExecutor(max_workers=len(starts)) as pool:
            futures = [pool.submit(_timed, say, w, s, u) for w, s, u, _ in starts]
            for future in futures:
                future.result()
        for crd in sorted((REPO_ROOT / "crds").glob("*.yaml")):
            cluster.apply_file(crd)
        say(f"{'CRDs installed':<34} {'rollbacks, rollbackpolicies':<36}")
        saas = stack.enter_context(saas_fakes.serving(latency=0.05, job_seconds=1.0,
                                                      deploy_seconds=1.5))  # fmt: skip
        say(f"{'Vercel (fake)':<34} {saas.vercel_url:<36}")
        say(f"{'Railway (fake)':<34} {saas.railway_url:<36}")
        slack = FakeSlack(rate=5.0, burst=10)
        slack_server = stack.enter_context(slack.serve())
        slack_url = slack_server.url + slack.add_webhook(SLACK_CHANNEL)
        say(f"{'Slack (fake)':<34} {slack_server.url:<36}")
        the_app = demo_app.App(saas)
        health_url = stack.enter_context(demo_app.serving(the_app))
        say(f"{'Mind Mate app /health':<34} {health_url:<36}")
        store = ObjectStore(region="us-east-1", endpoint_url=s3_server.url)
        s3 = s3api.client(store, s3api.Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY))
        operator = Operator(cluster, workdir / "operator.log", namespace)
        stack.callback(operator.stop)
        operator.launch()
        yield Stack(workdir, cluster, postgres, s3_server, s3, prometheus, saas, slack,
                    slack_url, the_app, health_url, operator)  # fmt: skip
