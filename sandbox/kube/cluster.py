"""An emulated Kubernetes cluster in its own process, with a kubeconfig and a kubectl wrapper.

End-to-end tests and scripts run the operator, kubectl or helm as separate processes; those
need a URL and a kubeconfig, not an in-process object. ``EmulatedCluster`` starts
``python -m sandbox.kube`` from the repository root, waits for its port, writes a
kubeconfig next to it and runs ``/usr/bin/kubectl`` against it with the flags the emulator
needs (``--validate=false``: there is no OpenAPI document to validate against).
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import yaml

from sandbox import observers
from sandbox.services import stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBECTL = "/usr/bin/kubectl" if os.path.exists("/usr/bin/kubectl") else shutil.which("kubectl")
VALIDATING_COMMANDS = frozenset({"apply", "create", "replace"})
POLL_INTERVAL = 0.01


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl run; unlike its parent, its message includes kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {self.stderr}\nstdout: {self.output}"


class EmulatedCluster:
    """One emulator process plus its kubeconfig, all kept in ``workdir``.

    Usage::

        with EmulatedCluster(tmp_path) as cluster:
            cluster.apply_file("crds/rollback.yaml")
            cluster.kubectl("get", "rollbacks", "-o", "name")
    """

    def __init__(self, workdir: Path | str, *, startup_timeout: float = 10.0) -> None:
        self.workdir = Path(workdir)
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the cluster is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def log(self) -> Path:
        """The emulator's stdout and stderr."""
        return self.workdir / "emulator.log"

    def start(self) -> Self:
        """Start the emulator and return once it listens and the kubeconfig is written."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        portfile = self.workdir / "emulator.port"
        portfile.unlink(missing_ok=True)
        command = [sys.executable, "-m", "sandbox.kube", "--port", "0"]
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [*command, "--portfile", str(portfile)],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self.startup_timeout
        while not portfile.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulator did not start:\n{self.log.read_text()}")
            time.sleep(POLL_INTERVAL)
        self._port = int(portfile.read_text())
        self._write_kubeconfig()
        observers.file_written(self.log, f"emulator.log of {self.workdir}")
        return self

    def stop(self) -> int | None:
        """Stop the emulator (SIGTERM, then SIGKILL after 5 s); return its exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None and self._port is not None:  # e.g. the leak scan reads them
            observers.cluster_stopping(self.url, f"cluster {self.workdir}")
        return stop_process(process, timeout=5)

    def kubectl_argv(self, *args: str) -> list[str]:
        """The full kubectl command line, e.g. for ``subprocess.Popen`` of ``get -w``."""
        if KUBECTL is None:
            raise RuntimeError("kubectl is not installed")
        flags = ["--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.workdir / "cache")]
        if args and args[0] in VALIDATING_COMMANDS:
            args = (args[0], "--validate=false", *args[1:])
        return [KUBECTL, *flags, *args]

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raise KubectlError on failure if ``check``."""
        argv = self.kubectl_argv(*args)
        result = subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=timeout)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def apply_file(self, path: Path | str) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", str(path))

    def wait_for_watch(
        self, resource: str, *, namespace: str | None = None, timeout: float = 10.0
    ) -> None:
        """Block until someone watches ``resource`` (e.g. ``"example.test/v1/widgets"``).

        Create objects for an operator only after its watch is open: kopf reports ready before
        its watch request reaches the server, and an object created in between can arrive twice
        (through its list and its watch) or, while the watch subscribes, not at all.
        """
        wanted = {"resource": resource, "namespace": namespace}
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url) as client:
            while wanted not in client.get("/_emulator/watches").json()["watches"]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"nobody watches {resource} in {namespace} yet")
                time.sleep(POLL_INTERVAL)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": "dummy"}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "emulator", "namespace": "default"},
                }
            ],
            "current-context": "emulator",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
