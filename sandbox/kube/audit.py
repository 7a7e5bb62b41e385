"""An audit log for the emulated API: who asked for what, as RBAC sees it.

The chart's RBAC must grant exactly the calls the operator makes. The API server's audit log
is how one finds them on a real cluster; this is the emulator's. When the emulator process
starts with ``KUBE_EMULATOR_AUDIT_LOG=PATH``, every resource request appends one JSON line to
PATH: the caller (its bearer token, so a test can give the operator its own identity) and the
RBAC attributes of the request (verb, API group, resource, subresource, namespace, name).
Discovery (``/api``, ``/apis``, ``/version``) is not a resource request and is not logged.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import kmock

ENV = "KUBE_EMULATOR_AUDIT_LOG"


@dataclass(frozen=True)
class Entry:
    """One request, in RBAC's terms."""

    user: str
    verb: str
    group: str
    resource: str  # "rollbacks" or "rollbacks/status"
    namespace: str | None
    name: str | None


def verb(method: str, name: str | None, params: dict[str, str]) -> str:
    """The RBAC verb of an HTTP request (the API server's own mapping)."""
    method = method.upper()
    if method == "GET":
        if params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if name else "list"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def entry(request: kmock.Request) -> Entry | None:
    """The audit entry of a request, or None for discovery and other non-resource URLs."""
    resource = request.resource
    if resource is None or not resource.plural:
        return None
    token = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
    plural = f"{resource.plural}/{request.subresource}" if request.subresource else resource.plural
    return Entry(
        user=token.removeprefix("Bearer ").strip(),
        verb=verb(str(request.method.value), request.name, dict(request.params)),
        group=resource.group or "",
        resource=plural,
        namespace=request.namespace,
        name=request.name,
    )


def record(request: kmock.Request) -> None:
    """Append the request to the audit log, if the emulator was started with one."""
    path = os.environ.get(ENV)
    if not path:
        return
    found = entry(request)
    if found is not None:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(asdict(found)) + "\n")


def read(path: Path) -> list[Entry]:
    """Every entry of an audit log, in order."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Entry(**json.loads(line)) for line in lines if line.strip()]
