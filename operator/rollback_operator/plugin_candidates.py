"""`kubectl rollback candidates POLICY`: what each target can go back to, asked of the providers.

The one plugin command that talks to Vercel, Railway and S3 itself (read-only), through the same
adapters the operator builds, with the policy's Secrets read as the user. It needs the
operator's provider libraries, so it is imported only when this command runs: the other
commands start without them, and a plugin installed without them says what to install.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
from datetime import datetime
from typing import Any

import pydantic

from rollback_operator import plugin_points, plugin_view
from rollback_operator.api.policy import Notifications, RollbackPolicy, Verification
from rollback_operator.plugin_kube import Kube, KubeError, path_of
from rollback_operator.plugin_rollbacks import PluginError
from rollback_operator.providers import registry
from rollback_operator.providers.base import Candidate, Providers, SecretReader
from rollback_operator.providers.endpoints import Endpoints
from rollback_operator.providers.errors import NotFoundError, PermanentError, ProviderError


def candidates(kube: Kube, args: argparse.Namespace) -> int:
    """Print each target's candidates; exit 1 when a provider could not answer."""
    policy = _policy(kube, args.namespace, args.policy)
    endpoints = Endpoints(tuple(args.allowed_endpoints))
    try:
        found = asyncio.run(_ask(policy, endpoints, UserSecrets(KubeSecrets(kube)), args.limit))
    except ProviderError as error:
        raise PluginError(explain(error)) from None
    found[RESTORE_POINTS] = _restore_points(kube, args.namespace, args.policy, args.limit)
    if args.output:
        print(plugin_view.document(candidates_document(policy, found), args.output))
    else:
        print(plugin_view.candidates(policy, found))
    return 1 if any(isinstance(rows, str) for rows in found.values()) else 0


async def _ask(
    policy: RollbackPolicy, endpoints: Endpoints, secrets: SecretReader, limit: int
) -> dict[str, list[Candidate] | str]:
    providers = await registry.RealProviderFactory(endpoints).build(lookup_only(policy), secrets)
    return await candidates_of(providers, limit)


RESTORE_POINTS = "restorePoints"
"""The section of the RestorePoints a Rollback's `to.restorePoint` can name."""


def _restore_points(kube: Kube, namespace: str, policy: str, limit: int) -> list[Candidate]:
    rows = []
    for point in plugin_points.of_policy(kube, namespace, policy)[:limit]:
        status, meta = point.get("status", {}), point["metadata"]
        when = status.get("finishedAt") or meta.get("creationTimestamp")
        created = datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None
        phase = status.get("phase", "Pending")
        rows.append(
            Candidate(meta["name"], created, phase, False, False, plugin_points.note(point))
        )
    return rows


def _policy(kube: Kube, namespace: str, name: str) -> RollbackPolicy:
    try:
        body = kube.get(path_of("rollbackpolicies", namespace, name))
    except KubeError as error:
        if not error.not_found:
            raise
        raise PluginError(f"RollbackPolicy {name!r} not found in namespace {namespace!r}") from None
    try:
        return RollbackPolicy.model_validate(body)
    except pydantic.ValidationError as error:
        raise PluginError(f"RollbackPolicy {name!r} is not valid: {error}") from None


def candidates_document(
    policy: RollbackPolicy, found: dict[str, list[Candidate] | str]
) -> dict[str, Any]:
    """`candidates -o json|yaml`: per target its candidates, or the provider's error."""
    targets: dict[str, Any] = {}
    for target, rows in found.items():
        if isinstance(rows, str):
            targets[target] = {"error": rows}
            continue
        targets[target] = {"candidates": [
            {"id": row.id, "createdAt": row.created_at.isoformat() if row.created_at else None,
             "state": row.state, "note": row.note, "live": row.live, "default": row.default}
            for row in rows
        ]}  # fmt: skip
    meta = policy.metadata
    return {"policy": {"namespace": meta.namespace, "name": meta.name}, "targets": targets}


class KubeSecrets:
    """A `SecretReader` over the plugin's connection, failing as the operator's reader does."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    async def read(self, namespace: str, name: str, key: str) -> str:
        """One decoded key of a Secret, without surrounding whitespace."""
        what = f"Secret {namespace}/{name}"
        try:
            secret = self.kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except KubeError as error:
            if error.status == 404:
                raise NotFoundError(f"{what} not found", provider="kubernetes") from None
            if error.status in (401, 403):
                raise PermanentError(f"{what}: access denied ({error.status})",
                                     provider="kubernetes") from None  # fmt: skip
            raise
        data = secret.get("data") or {}
        if key not in data:
            raise PermanentError(f"{what} has no key {key!r}", provider="kubernetes")
        return base64.b64decode(data[key]).decode().strip()


class UserSecrets:
    """The policy's Secrets read with the user's kubeconfig (a `SecretReader`).

    `candidates` asks Vercel, Railway and S3 itself, so it needs the tokens the operator would
    use; a refusal says so and points at `plan`, which leaves the reading to the operator.
    """

    def __init__(self, kube: SecretReader) -> None:
        self.kube = kube

    async def read(self, namespace: str, name: str, key: str) -> str:
        """The value, or a PluginError saying what is missing and what to do."""
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
            found[name] = explain(answer)
        elif isinstance(answer, BaseException):
            raise answer
        else:
            found[name] = answer
    return found


def explain(error: ProviderError) -> str:
    """A provider's error in one line, with what to check on a refusal."""
    text = str(error)
    if "access denied" in text:
        return f"no permission: {text} (check your RBAC role)"
    return text
