"""Where `kubectl rollback` connects, and as whom, by kubectl's rules, on a real API server:
--kubeconfig and --context before KUBECONFIG, KUBECONFIG files merged, the in-cluster
ServiceAccount only when no kubeconfig exists, and an exec credential plugin's token."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_operator.plugin_kube import Kube, KubeError, path_of
from rollback_operator.plugin_kubeconfig import ConfigError, load
from tests.apiserver.server import KubeApiServer

PLUGIN = Path(sys.executable).parent / "kubectl-rollback"
UNREACHABLE = "https://127.0.0.1:9"  # the discard port: nothing answers there


def plugin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The plugin as kubectl runs it, with only the environment given (no KUBECONFIG)."""
    base = {"PATH": os.environ["PATH"], "HOME": str(Path(env["HOME"]) if env else "/nonexistent")}
    return subprocess.run(
        [str(PLUGIN), *args], capture_output=True, text=True, env=base | (env or {}), timeout=60
    )


def kubeconfig(server: KubeApiServer, **changes: Any) -> dict[str, Any]:
    """The admin kubeconfig with `changes` merged at the top level."""
    config: dict[str, Any] = yaml.safe_load(server.admin_kubeconfig.read_text())
    return config | changes


def write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def two_contexts(server: KubeApiServer, namespace: str) -> dict[str, Any]:
    """`broken` (current: a server nobody runs) and `good` (the real one, in `namespace`)."""
    config = kubeconfig(server)
    cluster, user = config["clusters"][0], config["users"][0]
    config["clusters"] = [cluster, {"name": "nowhere", "cluster": {"server": UNREACHABLE}}]
    config["contexts"] = [
        {"name": "broken", "context": {"cluster": "nowhere", "user": user["name"]}},
        {"name": "good", "context": {"cluster": cluster["name"], "user": user["name"],
                                     "namespace": namespace}},
    ]  # fmt: skip
    config["current-context"] = "broken"
    return config


def test_context_picks_the_cluster_and_its_namespace(
    apiserver_with_crds: KubeApiServer, apiserver_namespace: str, tmp_path: Path
) -> None:
    config = write(tmp_path / "config", two_contexts(apiserver_with_crds, apiserver_namespace))

    chosen = plugin("--kubeconfig", str(config), "--context", "good", "list", "-o", "json")
    current = plugin("--kubeconfig", str(config), "list")

    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout)["items"] == []
    assert current.returncode == 1
    assert "cannot reach https://127.0.0.1:9" in current.stderr


def test_an_unknown_context_is_named_with_the_known_ones(
    apiserver: KubeApiServer, apiserver_namespace: str, tmp_path: Path
) -> None:
    config = write(tmp_path / "config", two_contexts(apiserver, apiserver_namespace))

    run = plugin("--kubeconfig", str(config), "--context", "prod", "list")

    assert run.returncode == 1
    assert "context 'prod' not found" in run.stderr
    assert "contexts: broken, good" in run.stderr


def test_kubeconfig_files_are_merged_and_the_first_to_set_a_value_wins(
    apiserver_with_crds: KubeApiServer, apiserver_namespace: str, tmp_path: Path
) -> None:
    full = two_contexts(apiserver_with_crds, apiserver_namespace)
    first = write(tmp_path / "first", {"current-context": "good"})
    second = write(tmp_path / "second", full)
    env = {"HOME": str(tmp_path), "KUBECONFIG": f"{first}{os.pathsep}{second}"}

    run = plugin("list", "-o", "json", env=env)

    assert run.returncode == 0, run.stderr


def test_the_kubeconfig_flag_comes_before_the_in_cluster_service_account(
    apiserver_with_crds: KubeApiServer, tmp_path: Path
) -> None:
    account = _service_account(tmp_path / "sa", apiserver_with_crds, token="not-a-real-token")
    in_pod = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "9"}
    config = str(apiserver_with_crds.admin_kubeconfig)

    conn = load(config, environ=in_pod, service_account=account)

    assert conn.server == apiserver_with_crds.url
    assert Kube(conn).get("/api/v1/namespaces/default")["metadata"]["name"] == "default"


def test_in_a_pod_without_kubeconfig_the_service_account_serves(
    apiserver_with_crds: KubeApiServer, apiserver_namespace: str, tmp_path: Path
) -> None:
    token = apiserver_with_crds.token("admin")
    account = _service_account(tmp_path / "sa", apiserver_with_crds, token, apiserver_namespace)
    port = apiserver_with_crds.url.rsplit(":", 1)[1]
    in_pod = {"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "127.0.0.1",
              "KUBERNETES_SERVICE_PORT": port}  # fmt: skip

    conn = load(environ=in_pod, service_account=account)
    listed = Kube(conn).get(path_of("rollbacks", conn.namespace))

    assert (conn.namespace, listed["items"]) == (apiserver_namespace, [])
    with pytest.raises(ConfigError, match="--context admin: no kubeconfig found"):
        load(context="admin", environ=in_pod, service_account=account)


def _service_account(
    where: Path, server: KubeApiServer, token: str, namespace: str = "default"
) -> Path:
    """The files a pod's ServiceAccount mount holds."""
    where.mkdir()
    (where / "token").write_text(token)
    (where / "ca.crt").write_bytes(server.ca_cert.read_bytes())
    (where / "namespace").write_text(namespace)
    return where


def test_an_exec_credential_plugin_supplies_the_token(
    apiserver_with_crds: KubeApiServer, apiserver_namespace: str, tmp_path: Path
) -> None:
    token = apiserver_with_crds.token("admin")
    helper = tmp_path / "get-token"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": token}}  # fmt: skip
    helper.write_text(f"#!/bin/sh\ntest -n \"$KUBERNETES_EXEC_INFO\" || exit 7\n"
                      f"echo '{json.dumps(credential)}'\n")  # fmt: skip
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    config = kubeconfig(apiserver_with_crds)
    config["users"] = [{"name": config["users"][0]["name"], "user": {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(helper),
        "interactiveMode": "Never"}}}]  # fmt: skip
    path = write(tmp_path / "config", config)

    run = plugin("--kubeconfig", str(path), "-n", apiserver_namespace, "list")

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "No rollbacks."


def test_a_refusal_carries_the_api_servers_reason(
    apiserver_with_crds: KubeApiServer, apiserver_namespace: str
) -> None:
    alice = str(apiserver_with_crds.user_kubeconfig("alice"))

    run = plugin("--kubeconfig", alice, "-n", apiserver_namespace, "list")

    assert run.returncode == 1
    assert "no permission" in run.stderr
    assert 'User "alice" cannot list resource "rollbacks"' in run.stderr


def test_a_missing_object_is_a_kube_error_that_says_not_found(
    apiserver_with_crds: KubeApiServer, apiserver_namespace: str
) -> None:
    conn = load(str(apiserver_with_crds.admin_kubeconfig))

    with pytest.raises(KubeError) as raised:
        Kube(conn).get(path_of("rollbacks", apiserver_namespace, "nope"))

    assert raised.value.not_found
    assert '"nope" not found' in str(raised.value)
