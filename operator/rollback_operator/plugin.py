"""`kubectl rollback ...`: the kubectl plugin (console script `kubectl-rollback`).

Lists, plans, starts, approves, aborts, resumes stopped traffic of, and shows rollbacks with
the current kubeconfig. It only creates Rollbacks and sets annotations under the API group; the
operator does the rest. The one exception is `candidates`, which asks the providers directly
(read-only), with the policy's Secrets read as the user, through the same adapters the operator
builds.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from collections.abc import Sequence
from typing import Any

import pydantic

from rollback_operator import plugin_view
from rollback_operator.api import (
    ABORT_ANNOTATION,
    API_VERSION,
    APPROVED_BY_ANNOTATION,
    RESUME_TRAFFIC_ANNOTATION,
    TRIGGER_LABEL,
)
from rollback_operator.api.policy import Notifications, RollbackPolicy, Verification
from rollback_operator.kube import KubeApi, ObjectApi, current_namespace
from rollback_operator.plugin_view import plan, rollback_list, status, steps
from rollback_operator.providers import registry
from rollback_operator.providers.base import Candidate, Providers, SecretReader
from rollback_operator.providers.endpoints import Endpoints
from rollback_operator.providers.errors import NotFoundError, PermanentError, ProviderError

FINAL = {"Planned", "Succeeded", "PartiallyFailed", "Failed", "Aborted"}
OK = {"Planned", "Succeeded"}
WAIT_LIMIT = 3600
INSTALL_HINT = "rollback-operator crds | kubectl apply -f -"


class PluginError(Exception):
    """A problem to print in one line, with exit code 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl rollback", description=__doc__)
    parser.add_argument("-n", "--namespace", default=None)
    parser.add_argument("--kubeconfig", default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="rollbacks in the namespace")
    candidates = sub.add_parser(
        "candidates", help="what each target can go back to: deployments and backups"
    )
    candidates.add_argument("policy")
    candidates.add_argument("--limit", type=_positive, default=10, help="per target (10)")
    candidates.add_argument(
        "--allow-endpoint", action="append", dest="allowed_endpoints", default=[],
        metavar="PREFIX", help="as `rollback-operator run`: a URL prefix that may receive the "
        "policy's tokens besides the providers' official APIs (repeatable)",
    )  # fmt: skip
    for name, text in (("plan", "dry-run rollback: print the plan"), ("start", "start one")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("policy")
        cmd.add_argument("--mode", choices=["quick", "full"], default="quick")
        cmd.add_argument("--targets", default=None, help="comma-separated, e.g. frontend,backend")
        cmd.add_argument(
            "--to",
            action="append",
            default=[],
            metavar="TARGET=VALUE",
            help="pin: frontend=dpl_x, backend=id, database=file, storage=RFC3339",
        )
        cmd.add_argument("--reason", default=None)
        cmd.add_argument("--version", default=None)
        cmd.add_argument("--name", default=None, help="default: generated from the policy")
    start = sub.choices["start"]
    start.add_argument("--require-approval", action="store_true")
    start.add_argument("--wait", action="store_true", help="show the steps live until the end")
    for name in ("approve", "abort", "status", "report"):
        cmd = sub.add_parser(name, help=f"{name} a rollback")
        cmd.add_argument("name")
    resume = sub.add_parser(
        "resume-traffic",
        help="serve traffic again that a failed or aborted full rollback left stopped",
    )
    resume.add_argument("name")
    sub.choices["approve"].add_argument("--as", dest="who", default=None)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


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


def manifest(args: argparse.Namespace, namespace: str, *, dry_run: bool) -> dict[str, Any]:
    """The Rollback the `plan` or `start` command creates."""
    spec: dict[str, Any] = {"policyRef": {"name": args.policy}, "mode": args.mode}
    if args.targets:
        spec["targets"] = [t.strip() for t in args.targets.split(",") if t.strip()]
    if args.to:
        spec["to"] = _pins(args.to)
    spec |= {k: v for k, v in (("reason", args.reason), ("version", args.version)) if v}
    spec["dryRun"] = dry_run
    spec["requireApproval"] = bool(getattr(args, "require_approval", False))
    meta: dict[str, Any] = {"namespace": namespace, "labels": {TRIGGER_LABEL: "manual"}}
    meta |= {"name": args.name} if args.name else {"generateName": f"{args.policy}-manual-"}
    return {"apiVersion": API_VERSION, "kind": "Rollback", "metadata": meta, "spec": spec}


class Plugin:
    """The commands, over one API connection."""

    def __init__(self, kube: KubeApi, namespace: str) -> None:
        self.kube, self.objects, self.namespace = kube, ObjectApi(kube), namespace

    async def list(self, _: argparse.Namespace) -> int:
        print(rollback_list(await self.objects.list("rollbacks", self.namespace)))
        return 0

    async def candidates(self, args: argparse.Namespace) -> int:
        policy = await self._policy(args.policy)
        endpoints = Endpoints(tuple(args.allowed_endpoints))
        providers = await registry.RealProviderFactory(endpoints).build(
            lookup_only(policy), UserSecrets(self.kube)
        )
        found = await candidates_of(providers, args.limit)
        print(plugin_view.candidates(policy, found))
        return 1 if any(isinstance(rows, str) for rows in found.values()) else 0

    async def _policy(self, name: str) -> RollbackPolicy:
        try:
            return RollbackPolicy.model_validate(await self._policy_body(name))
        except pydantic.ValidationError as error:
            raise PluginError(f"RollbackPolicy {name!r} is not valid: {error}") from None

    async def _policy_body(self, name: str) -> dict[str, Any]:
        try:
            return await self.objects.get("rollbackpolicies", self.namespace, name)
        except NotFoundError:
            raise PluginError(
                f"RollbackPolicy {name!r} not found in namespace {self.namespace!r}"
            ) from None

    async def _create(self, args: argparse.Namespace, *, dry_run: bool) -> str:
        body = manifest(args, self.namespace, dry_run=dry_run)
        await self._policy_body(args.policy)
        created = await self.kube.create("rollbacks", self.namespace, body)
        name: str = created["metadata"]["name"]
        return name

    async def plan(self, args: argparse.Namespace) -> int:
        name = await self._create(args, dry_run=True)
        body = await self._wait(name, live=False)
        print(f"Dry-run rollback {name}: {body.get('status', {}).get('phase')}")
        print(plan(body))
        print(steps(body))
        return 0 if body.get("status", {}).get("phase") in OK else 1

    async def start(self, args: argparse.Namespace) -> int:
        name = await self._create(args, dry_run=False)
        print(f"rollback.{API_VERSION.split('/')[0]}/{name} created")
        if not args.wait:
            return 0
        body = await self._wait(name, live=True)
        return 0 if body.get("status", {}).get("phase") in OK else 1

    async def approve(self, args: argparse.Namespace) -> int:
        who = args.who or getpass.getuser()
        await self.objects.annotate("rollbacks", self.namespace, args.name,
                                    {APPROVED_BY_ANNOTATION: who})  # fmt: skip
        print(f"rollback/{args.name} approved by {who}")
        return 0

    async def abort(self, args: argparse.Namespace) -> int:
        await self.objects.annotate("rollbacks", self.namespace, args.name,
                                    {ABORT_ANNOTATION: "true"})  # fmt: skip
        print(f"rollback/{args.name}: abort requested (steps not started will be skipped)")
        return 0

    async def resume_traffic(self, args: argparse.Namespace) -> int:
        await self.objects.annotate("rollbacks", self.namespace, args.name,
                                    {RESUME_TRAFFIC_ANNOTATION: "true"})  # fmt: skip
        print(
            f"rollback/{args.name}: resume of stopped traffic requested (each layer on the "
            "version it runs now); watch the TrafficStopped condition with "
            f"`kubectl rollback status {args.name}`"
        )
        return 0

    async def status(self, args: argparse.Namespace) -> int:
        print(status(await self.objects.get("rollbacks", self.namespace, args.name)))
        return 0

    async def report(self, args: argparse.Namespace) -> int:
        body = await self.objects.get("rollbacks", self.namespace, args.name)
        ref = (body.get("status", {}).get("reportRef") or {}).get("configMap")
        if not ref:
            raise PluginError(f"rollback/{args.name} has no report yet")
        print((await self.objects.config_map(self.namespace, ref)).get("report.md", ""))
        return 0

    async def _wait(self, name: str, *, live: bool) -> dict[str, Any]:
        shown: dict[tuple[str, str], str] = {}
        deadline, phase = time.monotonic() + WAIT_LIMIT, ""
        while True:
            body = await self.objects.get("rollbacks", self.namespace, name)
            st = body.get("status", {})
            if live and st.get("phase", "") != phase:
                phase = st.get("phase", "")
                print(f"phase {phase}: {st.get('message', '')}", flush=True)
            if live:
                for step in st.get("steps", []):
                    key = (step["name"], step.get("target") or "")
                    if shown.get(key) != step.get("state"):
                        shown[key] = step.get("state", "")
                        target = f" [{key[1]}]" if key[1] else ""
                        print(f"  {shown[key]:<9} {key[0]}{target}: {step.get('message', '')}",
                              flush=True)  # fmt: skip
            if st.get("phase") in FINAL:
                return body
            if time.monotonic() > deadline:
                raise PluginError(f"rollback/{name} still {st.get('phase')} after {WAIT_LIMIT}s")
            await asyncio.sleep(0.25)


class UserSecrets:
    """The policy's Secrets read with the user's kubeconfig (a `SecretReader`).

    `candidates` asks Vercel, Railway and S3 itself, so it needs the tokens the operator would
    use; a refusal says so and points at `plan`, which leaves the reading to the operator.
    """

    def __init__(self, kube: SecretReader) -> None:
        self.kube = kube

    async def read(self, namespace: str, name: str, key: str) -> str:
        try:
            return await self.kube.read(namespace, name, key)
        except NotFoundError:
            raise PluginError(
                f"the policy names Secret {namespace}/{name}, which is not found"
            ) from None
        except PermanentError as error:
            if "access denied" not in str(error):
                raise
            raise PluginError(
                f"no permission to read Secret {namespace}/{name}: `candidates` asks the "
                "providers directly with the tokens the policy names, read with your own "
                f"credentials. Check `kubectl auth can-i get secret/{name} -n {namespace}` and "
                "ask for `get` on it, or run `kubectl rollback plan`, where the operator reads "
                "the Secrets."
            ) from None


def lookup_only(policy: RollbackPolicy) -> RollbackPolicy:
    """The policy with only what `candidates` asks: no storage, checks or notifications, so
    only the deployment and database Secrets are read."""
    spec = policy.spec.model_copy(
        update={
            "targets": policy.spec.targets.model_copy(update={"storage": None}),
            "notifications": Notifications(),
            "verification": Verification(),
        }
    )
    return policy.model_copy(update={"spec": spec})


async def candidates_of(providers: Providers, limit: int) -> dict[str, list[Candidate] | str]:
    """Each defined target's candidates, asked at once; a provider's error as its text."""
    targets = {"frontend": providers.frontend, "backend": providers.backend,
               "database": providers.database}  # fmt: skip
    present = {name: target for name, target in targets.items() if target is not None}
    answers = await asyncio.gather(
        *(target.candidates(limit) for target in present.values()), return_exceptions=True
    )
    found: dict[str, list[Candidate] | str] = {}
    for name, answer in zip(present, answers, strict=True):
        if isinstance(answer, ProviderError):
            found[name] = _explain(answer)
        elif isinstance(answer, BaseException):
            raise answer
        else:
            found[name] = answer
    return found


async def _run(args: argparse.Namespace) -> int:
    namespace = args.namespace or await current_namespace(args.kubeconfig)
    kube = await KubeApi.connect(args.kubeconfig)
    try:
        command = getattr(Plugin(kube, namespace), args.command.replace("-", "_"))
        code: int = await command(args)
        return code
    finally:
        await kube.close()


def _explain(error: ProviderError) -> str:
    text = str(error)
    if "rollbacks not found" in text or "rollbackpolicies not found" in text:
        return f"the CRDs are not installed: {INSTALL_HINT}"
    if "access denied" in text:
        return f"no permission: {text} (check your RBAC role)"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kubectl-rollback`."""
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
    except (NotFoundError, PermanentError, ProviderError) as error:
        print(f"error: {_explain(error)}", file=sys.stderr)
    return 1
