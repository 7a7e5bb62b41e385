"""One namespace of the shared real API server, as a test bed sees its cluster.

Why this module exists: a fresh API server per test costs about 4 s (start and stop), so the
suites share one per run and isolate each test in a namespace of its own. `KubeNamespace`
gives a test what a cluster of its own would: an admin kubeconfig whose context names the
namespace (so `kubectl` and the operator land there without `-n`), kubectl, an httpx client
that authenticates, the leak scan's view of the namespace's objects, and `wait_for_watch`
read from the server's audit log.
"""

from __future__ import annotations

import secrets
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.apiserver.server import KubeApiServer

POLL_INTERVAL = 0.02
BUILT_IN = (
    "/api/v1/namespaces/{}/configmaps",
    "/api/v1/namespaces/{}/events",
    "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
)
"""Built-in kinds the operator writes (reports, Events, kopf's leases), for the leak scan."""


class KubeNamespace:
    """A new namespace on `server`, with its kubeconfig and kubectl cache in `workdir`."""

    def __init__(self, server: KubeApiServer, workdir: Path, name: str | None = None) -> None:
        self.server = server
        self.workdir = workdir
        self.namespace = name or f"test-{secrets.token_hex(4)}"
        workdir.mkdir(parents=True, exist_ok=True)
        server.apply(_namespace(self.namespace))
        config = yaml.safe_load(server.admin_kubeconfig.read_text())
        config["contexts"][0]["context"]["namespace"] = self.namespace
        self.kubeconfig.touch(mode=0o600)
        self.kubeconfig.write_text(yaml.safe_dump(config))

    @property
    def kubeconfig(self) -> Path:
        """The admin's kubeconfig, its context in this namespace."""
        return self.workdir / "kubeconfig"

    @property
    def url(self) -> str:
        return self.server.url

    def kubectl_argv(self, *args: str) -> list[str]:
        """The full kubectl command line, e.g. for `subprocess.Popen` of `get -w`."""
        return self.server.kubectl_argv(*args, kubeconfig=self.kubeconfig)

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl in this namespace as the admin; KubectlError on failure if `check`."""
        return self.server.kubectl(
            *args, kubeconfig=self.kubeconfig, check=check, stdin=stdin, timeout=timeout
        )

    def apply_file(self, path: Path | str) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", str(path))

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """An httpx client of the admin: base URL, bearer token and the server's CA."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.server.token('admin')}"},
            verify=ssl.create_default_context(cafile=str(self.server.ca_cert)),
            timeout=timeout,
        )

    def wait_for_watch(
        self, resource: str, *, namespace: str | None = None, timeout: float = 10.0
    ) -> None:
        """Block until someone watches `resource` ("group/version/plural") in `namespace`
        (None: cluster-wide); TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not any(
            (w.resource, w.namespace) == (resource, namespace)
            for w in self.server.audit.open_watches()
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody watches {resource} in {namespace} yet")
            time.sleep(POLL_INTERVAL)

    def objects(self) -> Iterator[dict[str, Any]]:
        """Every object in this namespace of the custom resources and of `BUILT_IN`, for the
        leak scan (Secrets are never read)."""
        with self.client(timeout=10) as client:
            paths = [path.format(self.namespace) for path in BUILT_IN]
            crds = client.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").json()
            for crd in crds.get("items", []):
                spec = crd["spec"]
                if spec["scope"] != "Namespaced":
                    continue
                for version in spec["versions"]:
                    if version.get("served", True):
                        group = f"/apis/{spec['group']}/{version['name']}"
                        paths.append(
                            f"{group}/namespaces/{self.namespace}/{spec['names']['plural']}"
                        )
            for path in paths:
                answer = client.get(path)
                if answer.status_code == 200:
                    listed = answer.json()
                    kind = str(listed.get("kind", "")).removesuffix("List")
                    for item in listed.get("items", []):  # a list's items carry no kind
                        yield {"kind": kind, **item}


def _namespace(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
