"""The end-to-end test bed: a namespace of the real API server, the real operator as a process.

Each test gets a namespace of its own on the run's kube-apiserver (`tests.apiserver`), with
the CRDs installed once per run; the operator watches that namespace only. It runs with fake
providers whose world is a JSON file (see `sandbox.fakes.memory`), so a test can SIGKILL the
operator, start it again, and still count every provider call. `Kube` is what the bed needs of
a cluster: a benchmark may hand it the emulator instead (`bench/beds.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import pytest
import yaml

from sandbox.fakes.memory import FakeWorld
from sandbox.services import stop_process
from tests import leakscan
from tests.apiserver.namespace import KubeNamespace
from tests.apiserver.server import REPO_ROOT, KubeApiServer

Manifest = dict[str, Any]
LOOPBACK_FAKES = ["--allow-endpoint", "http://127.0.0.1"]
"""The fakes listen on loopback: the operator may send them credentials (over plain http)."""
WATCHED = "rollback.mindmate.app/v1alpha1/rollbacks"
QUALIFIED = {
    "rollback": "rollbacks.rollback.mindmate.app",
    "rollbackpolicy": "rollbackpolicies.rollback.mindmate.app",
}


class Kube(Protocol):
    """What a bed needs of its cluster: one namespace, kubectl there, and a client."""

    namespace: str

    @property
    def kubeconfig(self) -> Path: ...

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]: ...

    def kubectl_argv(self, *args: str) -> list[str]: ...

    def apply_file(self, path: Path | str) -> subprocess.CompletedProcess[str]: ...

    def wait_for_watch(
        self, resource: str, *, namespace: str | None = None, timeout: float = 10.0
    ) -> None: ...

    def client(self, timeout: float = 30.0) -> httpx.Client: ...


class Bed:
    """One namespace, one world file, and the operator process that acts on them."""

    def __init__(self, cluster: Kube, workdir: Path) -> None:
        self.cluster, self.workdir = cluster, workdir
        self.namespace = cluster.namespace
        self.world_path = workdir / "world.json"
        self.process: subprocess.Popen[bytes] | None = None
        self.replicas: dict[str, subprocess.Popen[bytes]] = {}  # peered operators, by identity
        self.starts = 0
        FakeWorld(path=self.world_path).save()

    # -- the operator ---------------------------------------------------------------------
    def start(self, *, wait: bool = True, real: tuple[str, ...] = ()) -> None:
        """Start the operator; by default wait until it watches Rollbacks.

        `real` names targets served by the real adapters (the rest by in-memory fakes).
        """
        self.starts += 1
        log = (self.workdir / f"operator-{self.starts}.log").open("wb")
        argv = [sys.executable, "-m", "tests.operator_process", "--real", ",".join(real)]
        argv += ["--kubeconfig", str(self.cluster.kubeconfig), "--world", str(self.world_path)]
        argv += ["--namespace", self.namespace, *LOOPBACK_FAKES, *self.flags()]
        self.process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_for_watch(WATCHED)

    def wait_for_watch(self, resource: str, timeout: float = 30.0) -> None:
        """Block until an operator watches `resource` ("group/version/plural") here."""
        try:
            self.cluster.wait_for_watch(resource, namespace=self.namespace, timeout=timeout)
        except TimeoutError as error:
            raise AssertionError(f"{error}:\n{self.logs()[-4000:]}") from error

    def flags(self) -> list[str]:
        """More flags for each start of the operator process (a subclass adds its own)."""
        return []

    def start_replica(
        self, identity: str, priority: int | None, *, peering: str, lifetime: int = 3
    ) -> None:
        """Start one more operator that peers through the object `peering` with `priority`
        (None: the operator's default, from its start time).

        `identity` becomes its kopf identity (POD_ID, as in a pod) and names its log file. Its
        fakes share the world file (see `tests.e2e.shared_world`). A peer silent for `lifetime`
        seconds counts as dead. Returns at once: an outranked replica opens no watches.
        """
        argv = [sys.executable, "-m", "tests.operator_process", "--world", str(self.world_path)]
        argv += ["--kubeconfig", str(self.cluster.kubeconfig), "--peering", peering]
        argv += ["--namespace", self.namespace, *LOOPBACK_FAKES]
        argv += ["--peering-lifetime", str(lifetime)]
        argv += ["--priority", str(priority)] if priority is not None else []
        env = {**os.environ, "POD_ID": identity}
        log = self.replica_log(identity).open("wb")
        self.replicas[identity] = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def replica_log(self, identity: str) -> Path:
        """Where the replica `identity` logs."""
        return self.workdir / f"operator-{identity}.log"

    def wait_exit(self, timeout: float = 30.0) -> int:
        """The operator's exit code once it ends (-9 after a crash point fired)."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; replicas too."""
        for process in [self.process, *self.replicas.values()]:
            if process is not None:
                stop_process(process)

    def logs(self) -> str:
        """Every operator log, for failure messages."""
        return "\n".join(p.read_text() for p in sorted(self.workdir.glob("operator-*.log")))

    # -- the world ------------------------------------------------------------------------
    def world(self) -> FakeWorld:
        """The fakes' state as the operator last saved it."""
        return FakeWorld.load(self.world_path)

    def edit_world(self, **changes: Any) -> FakeWorld:
        """Change the world before the operator starts."""
        world = self.world()
        world.state.update(changes)
        world.save()
        return world

    # -- the API --------------------------------------------------------------------------
    def apply(self, manifest: Manifest) -> None:
        """kubectl apply a manifest given as a dict, in this bed's namespace if it names one."""
        metadata = manifest.get("metadata", {})
        if "namespace" in metadata:
            manifest = {**manifest, "metadata": {**metadata, "namespace": self.namespace}}
        self.cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))

    def get(self, kind: str, name: str) -> Manifest:
        """One object as JSON (`rollback`, `rollbackpolicy` or a built-in kind)."""
        resource = QUALIFIED.get(kind, kind)
        found: Manifest = json.loads(
            self.cluster.kubectl("get", resource, name, "-o", "json").stdout
        )
        return found

    def events_for(self, name: str) -> list[Manifest]:
        """Events whose involvedObject is `name`."""
        items = json.loads(self.cluster.kubectl("get", "events", "-o", "json").stdout)["items"]
        return [e for e in items if e.get("involvedObject", {}).get("name") == name]

    def wait_for(self, name: str, phases: set[str], timeout: float = 30.0) -> Manifest:
        """Poll a Rollback until its phase is one of `phases`."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.get("rollback", name)
            if body.get("status", {}).get("phase") in phases:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{name} stuck in {body.get('status', {}).get('phase')}: "
                    f"{json.dumps(body.get('status'), indent=1)}\n{self.logs()[-4000:]}"
                )
            time.sleep(0.05)

    def condition(self, body: Manifest, type_: str) -> Manifest:
        """The condition of `type_` in a body's status."""
        conditions: list[Manifest] = body.get("status", {}).get("conditions", [])
        found = [c for c in conditions if c["type"] == type_]
        assert found, f"no {type_} condition in {body.get('status')}"
        return found[0]


B = TypeVar("B", bound=Bed)


def open_bed(kind: type[B], server: KubeApiServer, tmp_path: Path) -> Iterator[B]:
    """A new namespace and world for a test, torn down after it; the leak scan reads its logs
    and the namespace's objects."""
    namespace = KubeNamespace(server, tmp_path / "kube")
    test_bed = kind(namespace, tmp_path)
    try:
        yield test_bed
    finally:
        test_bed.stop()
        leakscan.capture_objects(namespace.objects, f"namespace {namespace.namespace}")
        for path in [*sorted(tmp_path.glob("operator-*.log")), test_bed.world_path]:
            leakscan.watch_file(path, f"{path.name} of {tmp_path.name}")


@pytest.fixture
def bed(apiserver_with_crds: KubeApiServer, tmp_path: Path) -> Iterator[Bed]:
    """A new namespace on the run's API server and a new world; the operator is not started."""
    yield from open_bed(Bed, apiserver_with_crds, tmp_path)
