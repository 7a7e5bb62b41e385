"""Helm for the chart tests: lint and render the chart with Helm's own Go library.

There is no helm binary on our machines. helm-sdkpy bundles Helm's library but needs Python
3.12, so `scripts/helm-env.sh` builds a cached 3.12 venv and these helpers run
`helm_driver.py` with it in a subprocess. Helm has no client-only `template` there: a render is
an install into a fresh emulated cluster (`tests/kube`), which also proves that the objects
are accepted by an API server that knows their kinds (the chart's CRDs included).
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import yaml

from sandbox.kube.cluster import REPO_ROOT, EmulatedCluster

CHART = REPO_ROOT / "charts" / "rollback-operator"
DRIVER = Path(__file__).with_name("helm_driver.py")
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
def helm_python() -> str:
    """The Python of the helm venv, built on first use (about 6 s with a warm pip cache)."""
    script = REPO_ROOT / "scripts" / "helm-env.sh"
    done = subprocess.run([str(script)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/helm-env.sh failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def _driver(*args: str) -> Any:
    done = subprocess.run(
        [helm_python(), str(DRIVER), *args], capture_output=True, text=True, timeout=300
    )
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"helm_driver.py crashed ({done.returncode}):\n{done.stderr}") from None


def lint(chart: Path = CHART) -> Manifest:
    """Helm's lint result: {"Messages": [{"Severity", "Path", "Err"}], "Errors": ...}."""
    result: Manifest = _driver("lint", str(chart))
    return result


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

    def container(self) -> Manifest:
        containers: list[Manifest] = self.one("Deployment")["spec"]["template"]["spec"][
            "containers"
        ]
        assert len(containers) == 1
        return containers[0]

    def env(self) -> dict[str, Any]:
        """The operator container's env: plain values as strings, valueFrom as dicts."""
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in self.container()["env"]}


@dataclass
class Job:
    """One `helm install`: the release `release` of the chart into `namespace` of `cluster`."""

    cluster: EmulatedCluster
    values: Manifest
    release: str = "rollback-operator"
    namespace: str = "operators"


def install_many(jobs: list[Job], chart: Path = CHART) -> list[Rendered | HelmError]:
    """Run every install in one helm process (loading Helm's library is most of the cost)."""
    if not jobs:
        return []
    for job in jobs:
        prepare(job.cluster, job.values, job.namespace)
    jobs_file = jobs[0].cluster.workdir / "helm-jobs.json"
    jobs_file.write_text(json.dumps([
        {"kubeconfig": str(j.cluster.kubeconfig), "namespace": j.namespace,
         "release": j.release, "values": j.values} for j in jobs
    ]))  # fmt: skip
    results = _driver("install", str(chart), "--jobs", str(jobs_file))
    assert isinstance(results, list), results
    assert len(results) == len(jobs), results
    return [
        HelmError(found["error"]) if "error" in found else
        Rendered(job.values, found["manifest"], (found.get("info") or {}).get("notes", ""))
        for job, found in zip(jobs, results, strict=True)
    ]  # fmt: skip


def install(
    cluster: EmulatedCluster,
    values: Manifest,
    *,
    release: str = "rollback-operator",
    namespace: str = "operators",
    chart: Path = CHART,
) -> Rendered:
    """`helm install` into the emulated cluster; HelmError if Helm refuses."""
    (result,) = install_many([Job(cluster, values, release, namespace)], chart)
    if isinstance(result, HelmError):
        raise result
    return result


def prepare(cluster: EmulatedCluster, values: Manifest, namespace: str) -> None:
    """What the chart expects to exist: namespaces, and the Prometheus Operator's CRD."""
    wanted: list[tuple[str, Manifest]] = [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}})
        for n in sorted({namespace, *values.get("watchNamespaces", [])})
    ]
    if (values.get("metrics") or {}).get("serviceMonitor", {}).get("enabled"):
        wanted.append(("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                       SERVICE_MONITOR_CRD))  # fmt: skip
    with httpx.Client(base_url=cluster.url) as client:
        for path, body in wanted:
            answer = client.post(path, json=body)
            assert answer.status_code in (201, 409), answer.text  # 409: it exists already


def render_many(workdir: Path, value_sets: dict[str, Manifest]) -> dict[str, Rendered]:
    """Install each value set into a fresh emulated cluster of its own (started in parallel)."""
    clusters = {name: EmulatedCluster(workdir / name) for name in value_sets}
    with ExitStack() as stack:
        for cluster in clusters.values():
            stack.callback(cluster.stop)
        with ThreadPoolExecutor(max_workers=len(clusters)) as pool:
            list(pool.map(EmulatedCluster.start, clusters.values()))
        jobs = [Job(clusters[name], values) for name, values in value_sets.items()]
        results = install_many(jobs)
    rendered: dict[str, Rendered] = {}
    for name, result in zip(value_sets, results, strict=True):
        if isinstance(result, HelmError):
            raise HelmError(f"{name}: {result}")
        rendered[name] = result
    return rendered
