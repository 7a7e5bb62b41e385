"""Helm for the chart tests: the real `helm` binary, against the real API server.

`scripts/kube-env.sh` builds helm from its Go module beside kube-apiserver. `render` is
`helm install --dry-run`: Helm checks the values against values.schema.json, renders the
templates and the notes, and validates every object against the server's OpenAPI, changing
nothing (the server must know the kinds: `prepare` installs kopf's peering CRDs and the
Prometheus Operator's ServiceMonitor CRD). `install`, `upgrade` and `uninstall` change a real
API server through its admin kubeconfig; Helm keeps the release in a Secret of its namespace.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.apiserver.server import REPO_ROOT, KubeApiServer, binaries

CHART = REPO_ROOT / "charts" / "rollback-operator"
RELEASE = "rollback-operator"
NAMESPACE = "operators"
Manifest = dict[str, Any]

# What a cluster with the Prometheus Operator has: enough of its CRD for a ServiceMonitor.
SERVICE_MONITOR_CRD: Manifest = yaml.safe_load("""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, plural: servicemonitors, singular: servicemonitor}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
""")


class HelmError(AssertionError):
    """Helm refused: a failed lint, a schema violation or a failed install."""


@cache
def helm_binary() -> Path:
    """The helm built by scripts/kube-env.sh (built now if this machine has none)."""
    return binaries() / "helm"


def helm(*args: str, server: KubeApiServer | None = None, timeout: float = 120) -> str:
    """Run helm (against `server` as its admin, if given); its stdout, or HelmError."""
    argv = [str(helm_binary()), *args]
    if server is not None:
        argv += ["--kubeconfig", str(server.admin_kubeconfig)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        output = f"{done.stdout[-3000:]}{done.stderr}"
        raise HelmError(f"helm {' '.join(args)} failed ({done.returncode}):\n{output}")
    return done.stdout


def lint(chart: Path = CHART) -> str:
    """`helm lint --strict`'s report; HelmError if it finds an error."""
    return helm("lint", "--strict", str(chart))


@dataclass
class Rendered:
    """One release: the values it was given, the manifest Helm applied, and its notes."""

    values: Manifest
    manifest: str
    notes: str = ""
    docs: list[Manifest] = field(init=False)

    def __post_init__(self) -> None:
        self.docs = [d for d in yaml.safe_load_all(self.manifest) if d]

    def kinds(self) -> list[str]:
        return [d["kind"] for d in self.docs]

    def of_kind(self, kind: str) -> list[Manifest]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str) -> Manifest:
        found = self.of_kind(kind)
        assert len(found) == 1, f"{len(found)} {kind} objects rendered"
        return found[0]

    def named(self, kind: str, name: str) -> Manifest:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
        return found[0]

    def operator_role(self) -> Manifest:
        """The ClusterRole bound to the operator (the others are for people)."""
        binding = self.one("ClusterRoleBinding")
        return self.named("ClusterRole", binding["roleRef"]["name"])

    def container(self) -> Manifest:
        containers: list[Manifest] = self.one("Deployment")["spec"]["template"]["spec"][
            "containers"
        ]
        assert len(containers) == 1
        return containers[0]

    def env(self) -> dict[str, Any]:
        """The operator container's env: plain values as strings, valueFrom as dicts."""
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in self.container()["env"]}


def _values_file(values: Manifest, workdir: Path, name: str) -> Path:
    path = workdir / f"{name}.values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _release(output: str, values: Manifest) -> Rendered:
    release = json.loads(output)
    return Rendered(
        values, release.get("manifest", ""), (release.get("info") or {}).get("notes", "")
    )


def render(
    server: KubeApiServer, values: Manifest, workdir: Path, *, release: str = RELEASE
) -> Rendered:
    """What `helm install` would apply with `values`, validated by `server` but not applied;
    HelmError if Helm refuses the values, the templates or an object."""
    workdir.mkdir(parents=True, exist_ok=True)
    values_file = _values_file(values, workdir, release)
    output = helm("install", release, str(CHART), "--namespace", NAMESPACE, "--dry-run",
                  "--output", "json", "--values", str(values_file), server=server)  # fmt: skip
    return _release(output, values)


def install(
    server: KubeApiServer, values: Manifest, workdir: Path, *, chart: Path = CHART,
    release: str = RELEASE, namespace: str = NAMESPACE,
) -> Rendered:  # fmt: skip
    """`helm install` into the real server (creating the namespace); HelmError if Helm refuses."""
    prepare(server, values)
    values_file = _values_file(values, workdir, release)
    output = helm("install", release, str(chart), "--namespace", namespace, "--create-namespace",
                  "--output", "json", "--values", str(values_file), server=server)  # fmt: skip
    return _release(output, values)


def upgrade(
    server: KubeApiServer, values: Manifest, workdir: Path, *, chart: Path = CHART,
    release: str = RELEASE, namespace: str = NAMESPACE,
) -> Rendered:  # fmt: skip
    """`helm upgrade` of the release to `chart` with `values`."""
    values_file = _values_file(values, workdir, f"{release}-upgrade")
    output = helm("upgrade", release, str(chart), "--namespace", namespace, "--output", "json",
                  "--values", str(values_file), server=server)  # fmt: skip
    return _release(output, values)


def uninstall(server: KubeApiServer, *, release: str = RELEASE, namespace: str = NAMESPACE) -> str:
    """`helm uninstall` of the release; Helm's report (it names what it kept)."""
    return helm("uninstall", release, "--namespace", namespace, server=server)


def prepare(server: KubeApiServer, values: Manifest) -> None:
    """What the chart expects to exist: the watched namespaces, and the Prometheus Operator's
    CRD when a ServiceMonitor is wanted."""
    wanted: list[Manifest] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        for name in sorted(values.get("watchNamespaces", []))
    ]
    if (values.get("metrics") or {}).get("serviceMonitor", {}).get("enabled"):
        wanted.append(SERVICE_MONITOR_CRD)
    if wanted:
        server.apply(*wanted)


def peering_crds() -> list[Manifest]:
    """kopf's peering CRDs, as the chart's crds/ holds them."""
    text = (CHART / "crds" / "kopf-peering.yml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def know_the_kinds(server: KubeApiServer) -> None:
    """Make `server` know every kind the chart may render (for `render`'s dry runs)."""
    crds = [*peering_crds(), SERVICE_MONITOR_CRD]
    server.apply(*crds)
    names = [f"crd/{crd['metadata']['name']}" for crd in crds]
    server.kubectl("wait", "--for=condition=Established", "--timeout=30s", *names)
