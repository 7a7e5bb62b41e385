"""`kubectl rollback restore-point POLICY`: take a RestorePoint now; and the points a policy
has, for `candidates`.

Taking one is creating the RestorePoint (the operator takes it); `--wait` follows it until it
ends: exit 0 when it succeeded, 3 when it failed. Like the Rollback commands, this needs only
the plugin's small Kubernetes client.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from rollback_operator.api import API_VERSION
from rollback_operator.plugin_args import FAILED, SUCCEEDED, TIMED_OUT
from rollback_operator.plugin_kube import Kube, path_of

PLURAL = "restorepoints"
POLL_SECONDS = 1.0
ENDED = {"Succeeded": SUCCEEDED, "Failed": FAILED}


def take(kube: Kube, args: argparse.Namespace) -> int:
    """Create a RestorePoint of the policy now; with --wait, follow it to its end."""
    name = args.name or f"{args.policy}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    spec: dict[str, Any] = {"policyRef": {"name": args.policy}}
    if args.targets:
        spec["targets"] = [t.strip() for t in args.targets.split(",") if t.strip()]
    if args.reason:
        spec["reason"] = args.reason
    body = {"apiVersion": API_VERSION, "kind": "RestorePoint",
            "metadata": {"name": name, "namespace": args.namespace}, "spec": spec}  # fmt: skip
    kube.request("POST", path_of(PLURAL, args.namespace), body)
    print(f"restorepoint.{API_VERSION.split('/')[0]}/{name} created", flush=True)
    if not args.wait:
        return 0
    return _follow(kube, args.namespace, name, args.timeout)


def _follow(kube: Kube, namespace: str, name: str, timeout: float) -> int:
    deadline, said = time.monotonic() + timeout, ""
    while True:
        status = kube.get(path_of(PLURAL, namespace, name)).get("status", {})
        phase, message = status.get("phase", "Pending"), status.get("message", "")
        line = f"{phase}: {message}" if message else phase
        if line != said:
            print(line, flush=True)
            said = line
        if phase in ENDED:
            return ENDED[phase]
        if time.monotonic() > deadline:
            return TIMED_OUT
        time.sleep(POLL_SECONDS)


def of_policy(kube: Kube, namespace: str, policy: str) -> list[dict[str, Any]]:
    """The RestorePoints of `policy`, newest first."""
    items: list[dict[str, Any]] = kube.get(path_of(PLURAL, namespace)).get("items", [])
    mine = [p for p in items if p.get("spec", {}).get("policyRef", {}).get("name") == policy]
    return sorted(mine, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)


def note(point: dict[str, Any]) -> str:
    """What a point holds, in a few words: its dump and its storage moment."""
    status = point.get("status", {})
    parts = []
    if status.get("database"):
        parts.append(f"database {status['database'].get('backup')}")
    storage = status.get("storage") or {}
    if storage:
        parts.append(f"storage copy {storage['copy']}" if storage.get("copy") else
                     f"storage versions as of {storage.get('asOf')}")  # fmt: skip
    reason = point.get("spec", {}).get("reason")
    return "; ".join([*parts, *([reason] if reason else [])]) or status.get("message", "")
