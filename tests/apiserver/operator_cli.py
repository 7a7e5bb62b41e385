"""`rollback-operator` as the README runs it, against the real API server.

The CRDs are what `rollback-operator crds` prints, piped into `kubectl apply -f -`; the
operator is the `rollback-operator run ...` console script as a child process, its output in a
file that the leak scan reads. Nothing here adds a flag of its own: each test says which ones
it passes, and why.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from sandbox.services import stop_process
from tests import leakscan
from tests.apiserver.server import REPO_ROOT, KubeApiServer

CLI = Path(sys.executable).with_name("rollback-operator")
"""The console script `pip install` put beside this Python: the README's `rollback-operator`."""


def apply_printed_crds(server: KubeApiServer) -> None:
    """`rollback-operator crds | kubectl apply -f -`, then wait until the server serves them."""
    printed = subprocess.run(
        [str(CLI), "crds"], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    server.kubectl("apply", "-f", "-", stdin=printed.stdout)
    names = [f"crd/{crd['metadata']['name']}" for crd in yaml.safe_load_all(printed.stdout)]
    server.kubectl("wait", "--for=condition=Established", "--timeout=30s", *names)


class OperatorRun:
    """One `rollback-operator <args>` process and its combined output."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv = [str(CLI), *args]
        self.log = log
        leakscan.watch_file(log, f"{log.name} ({' '.join(args[:1])})")
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def exit_code(self, timeout: float) -> int | None:
        """Its exit code, or None if it still runs after `timeout` seconds."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int:
        return stop_process(self.process)


def wait_for(check: Any, what: str, run: OperatorRun, timeout: float = 30.0) -> Any:
    """Poll `check()` until it returns something true; fail naming `what` with the log."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if run.process.poll() is not None or time.monotonic() > deadline:
            state = f"exited {run.process.returncode}" if run.process.poll() is not None else "ran"
            raise AssertionError(f"no {what} within {timeout}s (the operator {state}):\n"
                                 f"{run.output()[-4000:]}")  # fmt: skip
        time.sleep(0.2)
    return found


def get(server: KubeApiServer, kind: str, name: str, namespace: str) -> dict[str, Any]:
    """One object as JSON."""
    done = server.kubectl("get", kind, name, "-n", namespace, "-o", "json")
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def events(server: KubeApiServer, namespace: str, name: str) -> list[dict[str, Any]]:
    """The Events about object `name` in `namespace`."""
    listed = json.loads(server.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    return [e for e in listed["items"] if e.get("involvedObject", {}).get("name") == name]


def condition(body: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """The condition of `type_` in a body's status, if any."""
    conditions: list[dict[str, Any]] = body.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == type_), None)
