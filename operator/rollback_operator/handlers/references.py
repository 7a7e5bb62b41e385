"""A Rollback's or a RestorePoint's `spec.policyRef`, resolved: the policy and its adapters.

Both kinds run against a policy found in the operator's policy index and the adapters built
from it; what goes wrong on the way (no such policy, an invalid one, a check of the kind's own,
adapters that cannot be built) is one message naming the field, the same for both kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.handlers.deps import Deps
from rollback_operator.providers.base import Providers
from rollback_operator.providers.errors import ProviderError

PolicyCheck = Callable[[RollbackPolicy], str | None]
"""Why the object cannot run under this policy, or None."""


async def resolve(
    policies: Any, namespace: str, ref: str, deps: Deps, check: PolicyCheck
) -> tuple[RollbackPolicy, Providers] | str:
    """The policy `ref` names in `policies` (the policy index) and its adapters; or why not."""
    found = list(policies.get((namespace, ref), [])) if policies is not None else []
    if not found:
        return f"spec.policyRef.name: RollbackPolicy {ref!r} not found in namespace {namespace!r}"
    policy: RollbackPolicy | str = found[0]
    if isinstance(policy, str):
        return f"spec.policyRef.name: RollbackPolicy {ref!r} is invalid: {policy}"
    problem = check(policy)
    if problem:
        return problem
    try:
        return policy, await deps.providers.build(policy, deps.kube)
    except ProviderError as error:
        return f"spec.policyRef.name: RollbackPolicy {ref!r} cannot be used: {error}"
