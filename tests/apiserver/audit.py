"""The real API server's audit log: who asked for what, and which watches are open now.

Why this module exists: tests need two facts only the server knows. Before a test creates
objects for an operator it waits until the operator watches them (`open_watches`); and the
chart's RBAC test needs every call the operator's ServiceAccount made, with the server's
answer (`calls`: a 403 there is a permission the chart lacks). kube-apiserver writes both to
its audit log (JSON lines) under `POLICY`: every request of a ServiceAccount, and every watch
of anyone, at the Metadata level (no bodies, so no Secret value reaches the file).

A watch is open from its `ResponseStarted` event (the server has registered it before it
answers) until its `ResponseComplete` event, matched by `auditID`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
        {"level": "Metadata", "verbs": ["watch"]},
        {"level": "None"},
    ],
}


@dataclass(frozen=True)
class Call:
    """One finished request, in RBAC's terms, with the server's answer."""

    user: str
    verb: str
    group: str
    resource: str  # "rollbacks" or "rollbacks/status"
    namespace: str | None
    name: str | None
    code: int


@dataclass(frozen=True)
class Watch:
    """One open watch: who watches which resource ("group/version/plural"), and where."""

    user: str
    resource: str
    namespace: str | None


class AuditLog:
    """Reads the log as it grows, remembering the open watches; safe across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._open: dict[str, Watch] = {}
        self._lock = threading.Lock()

    def open_watches(self) -> set[Watch]:
        """Every watch the server has started and not yet ended, as of now."""
        with self._lock:
            for event in self._news():
                self._track(event)
            return set(self._open.values())

    def _news(self) -> list[dict[str, Any]]:
        """The complete lines written since the last read, parsed."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as log:
            log.seek(self._offset)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def _track(self, event: dict[str, Any]) -> None:
        if event.get("verb") != "watch" or "objectRef" not in event:
            return
        if event["stage"] == "ResponseStarted":
            self._open[event["auditID"]] = _watch(event)
        elif event["stage"] in ("ResponseComplete", "Panic"):
            self._open.pop(event["auditID"], None)


def calls(path: Path, user: str) -> list[Call]:
    """Every resource request of `user` that the server has answered, in order."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        event = json.loads(line)
        ref = event.get("objectRef")
        if event["user"]["username"] != user or event["stage"] != "ResponseComplete" or not ref:
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        code = int(event.get("responseStatus", {}).get("code", 0))
        group, namespace, name = ref.get("apiGroup", ""), ref.get("namespace"), ref.get("name")
        found.append(Call(user, event["verb"], group, resource, namespace, name, code))
    return found


def _watch(event: dict[str, Any]) -> Watch:
    ref = event["objectRef"]
    group = f"{ref['apiGroup']}/" if ref.get("apiGroup") else ""
    resource = f"{group}{ref.get('apiVersion', '')}/{ref['resource']}"
    return Watch(event["user"]["username"], resource, ref.get("namespace"))
