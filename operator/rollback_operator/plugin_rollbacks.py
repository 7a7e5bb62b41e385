"""The kubectl plugin's Rollback commands: list, plan, start, approve, abort, status, report,
resume-traffic.

They only create Rollbacks, set annotations under the API group, and delete the dry-run
Rollbacks `plan` made; the operator does the rest. `status --watch` (and `start --wait`)
follows a rollback through the API server's watch until it ends and turns the outcome into the
exit code CI scripts test (see `plugin_args.EXIT_CODES`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rollback_operator.api import (
    ABORT_ANNOTATION,
    API_VERSION,
    APPROVED_BY_ANNOTATION,
    KEPT_FINISHED_ANNOTATION,
    KEPT_FOR_ANNOTATION,
    KEPT_REPORT_LABEL,
    KEPT_UID_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    RESUME_TRAFFIC_ANNOTATION,
    TRIGGER_LABEL,
)
from rollback_operator.plugin_args import (
    ABORTED,
    ERROR,
    FAILED,
    PARTIALLY_FAILED,
    SUCCEEDED,
    TIMED_OUT,
)
from rollback_operator.plugin_identity import username
from rollback_operator.plugin_kube import MERGE_PATCH, Kube, KubeError, path_of
from rollback_operator.plugin_view import document, plan, rollback_list, status, steps

Body = dict[str, Any]
OUTCOMES = {"Succeeded": SUCCEEDED, "Failed": FAILED,
            "PartiallyFailed": PARTIALLY_FAILED, "Aborted": ABORTED}  # fmt: skip
PLAN_LIMIT = 600.0
WATCH_CHUNK = 300.0


class PluginError(Exception):
    """A problem to print in one line, with exit code 1."""


def outcome(body: Body) -> int | None:
    """The exit code of a finished rollback, None while it runs. A dry run ends Planned; any
    other rollback passes Planned on its way."""
    phase = body.get("status", {}).get("phase")
    if phase == "Planned" and body.get("spec", {}).get("dryRun"):
        return SUCCEEDED
    return OUTCOMES.get(str(phase))


def list_rollbacks(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback list [-A] [-o json|yaml]`."""
    namespace = None if args.all_namespaces else args.namespace
    found = kube.get(path_of("rollbacks", namespace))
    items: list[Body] = found.get("items", [])
    if args.output:
        print(document({"apiVersion": "v1", "kind": "List", "items": items}, args.output))
    else:
        print(rollback_list(items, all_namespaces=namespace is None))
    return 0


_PIN_FIELD = {"frontend": "deploymentId", "backend": "deploymentId",
              "database": "backup", "storage": "asOf"}  # fmt: skip


def _pins(values: list[str]) -> dict[str, dict[str, str]]:
    pins = {}
    for value in values:
        target, _, pin = value.partition("=")
        if target not in _PIN_FIELD or not pin:
            raise PluginError(
                f"--to {value!r}: use TARGET=VALUE with one of {', '.join(_PIN_FIELD)}"
            )
        pins[target] = {_PIN_FIELD[target]: pin}
    return pins


def manifest(args: argparse.Namespace, namespace: str, *, dry_run: bool) -> Body:
    """The Rollback the `plan` or `start` command creates."""
    spec: Body = {"policyRef": {"name": args.policy}, "mode": args.mode}
    if args.targets:
        spec["targets"] = [t.strip() for t in args.targets.split(",") if t.strip()]
    if args.to:
        spec["to"] = _pins(args.to)
    spec |= {k: v for k, v in (("reason", args.reason), ("version", args.version)) if v}
    spec["dryRun"] = dry_run
    spec["requireApproval"] = bool(getattr(args, "require_approval", False))
    meta: Body = {"namespace": namespace, "labels": {TRIGGER_LABEL: "manual"}}
    meta |= {"name": args.name} if args.name else {"generateName": f"{args.policy}-manual-"}
    return {"apiVersion": API_VERSION, "kind": "Rollback", "metadata": meta, "spec": spec}


def _create(kube: Kube, args: argparse.Namespace, *, dry_run: bool) -> str:
    body = manifest(args, args.namespace, dry_run=dry_run)
    try:
        kube.get(path_of("rollbackpolicies", args.namespace, args.policy))
    except KubeError as error:
        if not error.not_found:
            raise
        raise PluginError(
            f"RollbackPolicy {args.policy!r} not found in namespace {args.namespace!r}"
        ) from None
    body["metadata"]["annotations"] = {REQUESTED_BY_ANNOTATION: username(kube)}
    created = kube.request("POST", path_of("rollbacks", args.namespace), body)
    name: str = created["metadata"]["name"]
    return name


def plan_rollback(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback plan POLICY`: a dry-run Rollback, shown, then deleted unless --keep."""
    name = _create(kube, args, dry_run=True)
    try:
        body, timed_out = follow(kube, args.namespace, name, PLAN_LIMIT)
    finally:
        if not args.keep:
            kube.request("DELETE", path_of("rollbacks", args.namespace, name))
    if args.output:
        print(document(body, args.output))
    else:
        print(f"Dry-run rollback {name}: {body.get('status', {}).get('phase')}")
        print(plan(body))
        print(steps(body))
        print(f"(kept: rollback/{name})" if args.keep else "(dry-run Rollback deleted; --keep "
              "keeps it)")  # fmt: skip
    return _finish(body, timed_out)


def start_rollback(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback start POLICY [--wait]`."""
    name = _create(kube, args, dry_run=False)
    print(f"rollback.{API_VERSION.split('/')[0]}/{name} created", flush=True)
    if not args.wait:
        return 0
    return _finish(*follow(kube, args.namespace, name, args.timeout, LiveView().show))


def _annotate(kube: Kube, args: argparse.Namespace, values: dict[str, str]) -> None:
    patch = {"metadata": {"annotations": values}}
    kube.request("PATCH", path_of("rollbacks", args.namespace, args.name), patch,
                 content_type=MERGE_PATCH)  # fmt: skip


def approve(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback approve NAME [--as USER]`: signed with the caller's Kubernetes
    username (`plugin_identity`), never a name typed in; nobody approves their own request."""
    who = username(kube)
    body = kube.get(path_of("rollbacks", args.namespace, args.name))
    asker = (body["metadata"].get("annotations") or {}).get(REQUESTED_BY_ANNOTATION, "")
    if asker.strip() == who:
        raise PluginError(
            f"rollback/{args.name} was requested by {who} (you): another person must approve it"
        )
    _annotate(kube, args, {APPROVED_BY_ANNOTATION: who})
    print(f"rollback/{args.name} approved by {who}")
    return 0


def abort(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback abort NAME`."""
    _annotate(kube, args, {ABORT_ANNOTATION: "true"})
    print(f"rollback/{args.name}: abort requested (steps not started will be skipped)")
    return 0


def resume_traffic(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback resume-traffic NAME`."""
    _annotate(kube, args, {RESUME_TRAFFIC_ANNOTATION: "true"})
    print(
        f"rollback/{args.name}: resume of stopped traffic requested (each layer on the "
        "version it runs now); watch the TrafficStopped condition with "
        f"`kubectl rollback status {args.name}`"
    )
    return 0


def show_status(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback status NAME [--watch [--timeout D]] [-o json|yaml]`."""
    if not args.watch:
        body = kube.get(path_of("rollbacks", args.namespace, args.name))
        print(document(body, args.output) if args.output else status(body))
        return 0
    show = None if args.output else LiveView().show
    body, timed_out = follow(kube, args.namespace, args.name, args.timeout, show)
    print(document(body, args.output) if args.output else status(body))
    return _finish(body, timed_out)


def report(kube: Kube, args: argparse.Namespace) -> int:
    """`kubectl rollback report NAME`: its report; once it is deleted, the one the operator kept."""
    try:
        body = kube.get(path_of("rollbacks", args.namespace, args.name))
    except KubeError as error:
        if not error.not_found:
            raise
        return _kept_report(kube, args.namespace, args.name)
    where = body.get("status", {}).get("reportRef") or {}
    ref, archived = where.get("configMap"), where.get("s3Key")
    if not ref and archived:
        raise PluginError(
            f"rollback/{args.name}'s report is only in the policy's backups bucket, at "
            f"{archived}: its ConfigMap could not be written (the report step says why)"
        )
    if not ref:
        raise PluginError(f"rollback/{args.name} has no report yet")
    found = kube.get(f"/api/v1/namespaces/{args.namespace}/configmaps/{ref}")
    print((found.get("data") or {}).get("report.md", ""))
    return 0


def _kept_report(kube: Kube, namespace: str, name: str) -> int:
    """Print the newest report the operator kept of deleted rollback `name` (a ConfigMap owned
    by nothing); stderr says which, and names older ones of Rollbacks that had the same name."""
    listed = kube.get(
        f"/api/v1/namespaces/{namespace}/configmaps", labelSelector=f"{KEPT_REPORT_LABEL}=true"
    )
    kept = sorted(
        (c for c in listed.get("items", []) if _annotation(c, KEPT_FOR_ANNOTATION) == name),
        key=_ended,
        reverse=True,
    )
    if not kept:
        raise PluginError(
            f"rollback/{name} not found, and no report of it was kept here (ConfigMaps labelled "
            f"{KEPT_REPORT_LABEL}=true); each Rollback of that name archived in S3 has its "
            f"report at reports/{namespace}/{name}/<created>-<uid8>.md in the policy's backups "
            "bucket (listed oldest first)"
        )
    newest, *older = kept
    uid = _annotation(newest, KEPT_UID_ANNOTATION) or "unknown"
    print(f"rollback/{name} is deleted; its report was kept in ConfigMap "
          f"{newest['metadata']['name']} (Rollback uid {uid})", file=sys.stderr)  # fmt: skip
    if older:
        names = ", ".join(c["metadata"]["name"] for c in older)
        print(f"older reports of Rollbacks named {name}: {names}", file=sys.stderr)
    print((newest.get("data") or {}).get("report.md", ""))
    return 0


def _ended(kept: Body) -> datetime:
    """When the Rollback of a kept report ended (its ConfigMap's creation, if it does not say)."""
    meta = kept["metadata"]
    when = _annotation(kept, KEPT_FINISHED_ANNOTATION) or meta.get("creationTimestamp")
    try:
        ended = datetime.fromisoformat(when or "")
    except ValueError:
        ended = datetime.min
    return ended if ended.tzinfo else ended.replace(tzinfo=UTC)


def _annotation(body: Body, key: str) -> str | None:
    found: str | None = (body["metadata"].get("annotations") or {}).get(key)
    return found


def _finish(body: Body, timed_out: bool) -> int:
    name, phase = body["metadata"]["name"], body.get("status", {}).get("phase", "Pending")
    if timed_out:
        print(f"rollback/{name} still {phase} when --timeout passed", file=sys.stderr)
        return TIMED_OUT
    code = outcome(body)
    return ERROR if code is None else code


def follow(
    kube: Kube, namespace: str, name: str, timeout: float,
    show: Callable[[Body], None] | None = None,
) -> tuple[Body, bool]:  # fmt: skip
    """Watch one rollback until it ends or `timeout` passes: (its last state, timed out)."""
    deadline = time.monotonic() + timeout
    body = kube.get(path_of("rollbacks", namespace, name))
    while True:
        if show is not None:
            show(body)
        if outcome(body) is not None:
            return body, False
        left = deadline - time.monotonic()
        if left <= 0:
            return body, True
        body = _next_change(kube, namespace, body, min(left, WATCH_CHUNK))


def _next_change(kube: Kube, namespace: str, body: Body, seconds: float) -> Body:
    """The rollback's next version, or the same one when `seconds` pass without a change."""
    meta = body["metadata"]
    events = kube.watch(
        path_of("rollbacks", namespace), seconds,
        fieldSelector=f"metadata.name={meta['name']}", resourceVersion=meta["resourceVersion"],
    )  # fmt: skip
    for event in events:
        kind = event.get("type")
        if kind in ("ADDED", "MODIFIED"):
            found: Body = event["object"]
            return found
        if kind == "DELETED":
            raise PluginError(f"rollback/{meta['name']} was deleted while watched")
        if kind == "ERROR":  # 410 Gone: the version is too old; read it afresh
            return kube.get(path_of("rollbacks", namespace, meta["name"]))
    return body


class LiveView:
    """Prints each phase and each step state once, as they change."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.shown: dict[tuple[str, str], str] = {}

    def show(self, body: Body) -> None:
        """Print what changed since the last call."""
        st = body.get("status", {})
        if st.get("phase", "Pending") != self.phase:
            self.phase = st.get("phase", "Pending")
            print(f"phase {self.phase}: {st.get('message', '')}", flush=True)
        for step in st.get("steps", []):
            key = (step["name"], step.get("target") or "")
            if self.shown.get(key) != step.get("state"):
                self.shown[key] = step.get("state", "")
                target = f" [{key[1]}]" if key[1] else ""
                print(f"  {self.shown[key]:<9} {key[0]}{target}: {step.get('message', '')}",
                      flush=True)  # fmt: skip
