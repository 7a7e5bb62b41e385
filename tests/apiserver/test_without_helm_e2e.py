"""The README's path without Helm, on a real API server, as a new user walks it.

`rollback-operator crds | kubectl apply -f -`, then `rollback-operator run --all-namespaces
--kubeconfig ...`: kopf's peering CRDs are not installed, so the operator runs standalone and
says so (a WARNING), and a Rollback with `dryRun: true` gets a status. Peering asked for
explicitly, or a liveness or metrics port already taken (a second operator on the host), stops
it at once with one line naming the cause and the flag to change, never a traceback.

The API server is this module's own: an operator watching every namespace must not act on other
tests' objects, and kopf's peering CRDs must stay absent. Vercel and Railway are the sandbox's
fake servers, reached through the real adapters.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import manifests
from sandbox.fakes import saas
from sandbox.services import free_port
from tests.apiserver.operator_cli import OperatorRun, apply_printed_crds, get, wait_for
from tests.apiserver.server import KubeApiServer

pytestmark = pytest.mark.e2e
LIVENESS, METRICS = 8080, 8090  # the defaults the README's command runs with


@pytest.fixture(scope="module")
def cluster(apiserver: KubeApiServer) -> Iterator[KubeApiServer]:
    """A real API server of this module's own, with the CRDs `rollback-operator crds` prints."""
    with KubeApiServer(users=(), bin_dir=apiserver.bin_dir) as server:
        apply_printed_crds(server)
        yield server


@pytest.fixture(scope="module")
def fakes() -> Iterator[saas.Saas]:
    with saas.serving() as world:
        yield world


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@contextmanager
def _holding(port: int) -> Iterator[None]:
    """`port` taken for the block: by this test, or already by something else on the host."""
    with socket.socket() as holder:
        if _is_free(port):
            holder.bind(("0.0.0.0", port))
            holder.listen()
        yield


def _own_ports() -> list[str]:
    return ["--liveness", f"http://127.0.0.1:{free_port()}/healthz",
            "--metrics-port", str(free_port())]  # fmt: skip


def _readme_ports() -> list[str]:
    """None, as the README runs it; ports of its own only when another program on this host
    holds a default one (that is the port test's subject, not this one's)."""
    return [] if _is_free(LIVENESS) and _is_free(METRICS) else _own_ports()


def _policy(fakes: saas.Saas) -> dict[str, Any]:
    """The fakes' policy, frontend and backend only (a dry run plans just those)."""
    policy = fakes.policy()
    targets = policy["spec"]["targets"]
    policy["spec"]["targets"] = {k: targets[k] for k in ("frontend", "backend")}
    policy["spec"].pop("objectStore", None)
    return policy


def _run(
    cluster: KubeApiServer, log: Path, *flags: str, env: dict[str, str] | None = None
) -> OperatorRun:
    kubeconfig = str(cluster.admin_kubeconfig)
    args = ["run", "--all-namespaces", "--kubeconfig", kubeconfig, *flags]
    return OperatorRun(args, log, env=env)


def _allowing(fakes: saas.Saas) -> dict[str, str]:
    """The environment, plus the one setting a real user would not need: credentials may go
    to the fakes, which are not the providers' official hosts (`--allow-endpoint`)."""
    allowed = f"{fakes.vercel_url},{fakes.railway_url}"
    return {**os.environ, "ROLLBACK_OPERATOR_ALLOWED_ENDPOINTS": allowed}


def test_the_readme_path_gives_an_operator_that_runs_standalone_and_says_so(
    cluster: KubeApiServer, fakes: saas.Saas, tmp_path: Path
) -> None:
    cluster.apply(*saas.Saas.secrets(), _policy(fakes))
    run = _run(cluster, tmp_path / "operator.log", *_readme_ports(), env=_allowing(fakes))
    try:
        cluster.apply(manifests.rollback("first-look", dryRun=True))

        def planned() -> dict[str, Any] | None:
            body = get(cluster, "rollbacks.rollback.mindmate.app", "first-look", "default")
            return body if body.get("status", {}).get("phase") == "Planned" else None

        body = wait_for(planned, "phase Planned", run, timeout=60)
        assert body["status"]["plan"]["frontend"]["to"] == fakes.old
        assert body["status"]["plan"]["backend"]["to"] == fakes.railway_old
        warning = [line for line in run.output().splitlines() if "Running standalone" in line]
        assert len(warning) == 1, run.output()[-3000:]
        assert " WARNING " in warning[0]
        assert "clusterkopfpeerings.kopf.dev is not installed" in warning[0]
    finally:
        run.stop()


def _refused(run: OperatorRun) -> str:
    """The one line a refused start prints; fails on anything else (a traceback, a hang)."""
    code = run.exit_code(timeout=30)
    output = run.output()
    assert code == 1, f"exit {code}:\n{output[-3000:]}"
    lines = output.strip().splitlines()
    assert len(lines) == 1, output[-3000:]
    assert lines[0].startswith("rollback-operator: error: ")
    return lines[0]


def test_peering_asked_for_without_its_crd_refuses_to_start_in_one_line(
    cluster: KubeApiServer, tmp_path: Path
) -> None:
    run = _run(cluster, tmp_path / "operator.log", "--peering", "rollback-operator", *_own_ports())
    line = _refused(run)
    assert "peering is required" in line
    assert "clusterkopfpeerings.kopf.dev is not installed" in line
    assert "--standalone" in line


def test_a_taken_default_liveness_port_stops_it_naming_the_port_and_the_flag(
    cluster: KubeApiServer, tmp_path: Path
) -> None:
    with _holding(LIVENESS):
        line = _refused(_run(cluster, tmp_path / "operator.log"))
    assert f"port {LIVENESS} (liveness endpoint http://0.0.0.0:{LIVENESS}/healthz)" in line
    assert "--liveness" in line


def test_a_taken_default_metrics_port_stops_it_naming_the_port_and_the_flag(
    cluster: KubeApiServer, tmp_path: Path
) -> None:
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    with _holding(METRICS):
        line = _refused(_run(cluster, tmp_path / "operator.log", "--liveness", liveness))
    assert f"port {METRICS} (/metrics)" in line
    assert "--metrics-port" in line


def test_a_second_operator_on_the_same_ports_stops_and_the_first_keeps_running(
    cluster: KubeApiServer, tmp_path: Path
) -> None:
    ports = _own_ports()
    first = _run(cluster, tmp_path / "first.log", "--standalone", *ports)
    try:
        health = ports[1]

        def healthy() -> bool:
            try:
                return httpx.get(health, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, "a healthy first operator", first)
        line = _refused(_run(cluster, tmp_path / "second.log", "--standalone", *ports))
        assert f"port {ports[1].split(':')[2].split('/')[0]} (liveness endpoint" in line
        assert first.process.poll() is None, "the first operator stopped"
    finally:
        first.stop()
