"""Before kopf starts: peering decided from what the cluster holds, ports tried.

The peering cases run against an in-memory list of kopf's peering objects (`tests/apiserver/
test_without_helm_e2e.py` runs the operator itself on a real API server); the port cases bind
real sockets.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollback_operator.preflight import StartupError, check_ports, decide_peering
from rollback_operator.providers.errors import NotFoundError, PermanentError, RetryableError
from rollback_operator.settings import Settings
from sandbox.services import free_port


class Peerings:
    """kopf's peering objects by (plural, namespace); a plural absent: its CRD is missing."""

    def __init__(self, objects: dict[tuple[str, str | None], list[str]]) -> None:
        self.objects = objects
        self.failure: Exception | None = None

    async def names(
        self, group: str, version: str, plural: str, namespace: str | None
    ) -> list[str]:
        assert (group, version) == ("kopf.dev", "v1")
        if self.failure is not None:
            raise self.failure
        if not any(p == plural for p, _ in self.objects):
            raise NotFoundError(f"{plural}.{group} not found", provider="kubernetes")
        return self.objects.get((plural, namespace), [])


CLUSTER = ("clusterkopfpeerings", None)
NO_CRD = Peerings({})


async def test_without_the_peering_crd_the_operator_runs_standalone_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        decided = await decide_peering(Settings(all_namespaces=True), NO_CRD)
    assert decided.standalone is True
    assert "Running standalone" in caplog.text
    assert "clusterkopfpeerings.kopf.dev is not installed" in caplog.text


async def test_with_the_crd_but_not_the_object_it_runs_standalone_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crd_only = Peerings({CLUSTER: ["someone-else"]})
    with caplog.at_level(logging.WARNING):
        decided = await decide_peering(Settings(all_namespaces=True), crd_only)
    assert decided.standalone is True
    assert "no ClusterKopfPeering 'rollback-operator'" in caplog.text


async def test_with_the_crd_and_the_object_it_peers() -> None:
    ready = Peerings({CLUSTER: ["rollback-operator"]})
    assert (await decide_peering(Settings(all_namespaces=True), ready)).standalone is False


async def test_peering_asked_for_by_name_refuses_to_start_without_it() -> None:
    asked = Settings(all_namespaces=True, peering_name="rollback-operator")
    with pytest.raises(StartupError, match=r"peering is required .* is not installed"):
        await decide_peering(asked, NO_CRD)


async def test_peering_asked_for_by_the_environment_refuses_to_start_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROLLBACK_OPERATOR_STANDALONE", "false")
    with pytest.raises(StartupError, match="--standalone"):
        await decide_peering(Settings(namespaces=["prod"]), Peerings({("kopfpeerings", "x"): []}))


async def test_standalone_asks_the_cluster_nothing() -> None:
    never = Peerings({})
    never.failure = AssertionError("peering looked up although standalone")
    assert (await decide_peering(Settings(standalone=True), never)).standalone is True


async def test_a_namespace_without_the_object_among_peered_ones_refuses_to_start() -> None:
    partial = Peerings({("kopfpeerings", "prod"): ["rollback-operator"]})
    settings = Settings(namespaces=["prod", "staging"])
    with pytest.raises(StartupError, match="no KopfPeering 'rollback-operator' in namespace sta"):
        await decide_peering(settings, partial)


async def test_peering_objects_it_may_not_list_are_named_in_the_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    denied = Peerings({CLUSTER: []})
    denied.failure = PermanentError("clusterkopfpeerings.kopf.dev: access denied (403)")
    with caplog.at_level(logging.WARNING):
        decided = await decide_peering(Settings(all_namespaces=True), denied)
    assert decided.standalone is True
    assert "cannot be listed (clusterkopfpeerings.kopf.dev: access denied (403))" in caplog.text


async def test_an_api_server_that_keeps_failing_is_a_startup_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("rollback_operator.preflight.PAUSE", 0.0)
    down = Peerings({CLUSTER: []})
    down.failure = RetryableError("clusterkopfpeerings.kopf.dev: HTTP 503")
    with pytest.raises(StartupError, match="cannot ask the API server about peering"):
        await decide_peering(Settings(all_namespaces=True), down)


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_a_taken_liveness_port_names_the_port_and_the_flag(taken: int) -> None:
    settings = Settings(liveness_endpoint=f"http://0.0.0.0:{taken}/healthz", metrics_port=0)
    with pytest.raises(StartupError) as caught:
        check_ports(settings)
    message = str(caught.value)
    assert f"port {taken} (liveness endpoint http://0.0.0.0:{taken}/healthz)" in message
    assert "--liveness" in message
    assert "\n" not in message


def test_a_taken_metrics_port_names_the_port_and_the_flag(taken: int) -> None:
    free = f"http://127.0.0.1:{free_port()}/healthz"
    with pytest.raises(StartupError, match=rf"port {taken} \(/metrics\).*--metrics-port"):
        check_ports(Settings(liveness_endpoint=free, metrics_port=taken))


def test_free_ports_and_disabled_servers_pass() -> None:
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    check_ports(Settings(liveness_endpoint=liveness, metrics_port=free_port()))
    check_ports(Settings(liveness_endpoint=None, metrics_port=0))


def test_without_a_cluster_configuration_the_run_stops_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.kubeconfig"
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    flags = ["--kubeconfig", str(missing), "--liveness", liveness, "--metrics-port", "0"]
    argv = [sys.executable, "-m", "rollback_operator", "run", "--all-namespaces", *flags]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("rollback-operator: error: no usable Kubernetes configuration")
    assert str(missing) in last
