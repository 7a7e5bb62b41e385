"""A status written as JSON merge patches (RFC 7386): only what changed since the last write.

A key that disappeared becomes `null` in the patch, so a cleared field is really cleared.
`StatusPatches` is the one writer both live objects (a Rollback, a RollbackPolicy) use.
"""

from __future__ import annotations

from typing import Any

from rollback_operator.kube import KubeApi


def merge_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that turns `old` into `new` (empty when they are equal)."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_diff(before, value)
            if nested:
                patch[key] = nested
        elif value != before or key not in old:
            patch[key] = value
    return patch


class StatusPatches:
    """The status of one object as last written, and the patches that move it on."""

    def __init__(
        self, kube: KubeApi, plural: str, namespace: str, name: str, saved: dict[str, Any]
    ) -> None:
        self._kube, self._plural, self._namespace, self._name = kube, plural, namespace, name
        self.saved = saved
        """The status as the API server has it from us (or as read, before our first write)."""

    async def write(self, wire: dict[str, Any]) -> bool:
        """Patch the difference between `saved` and `wire`; False when there was none."""
        patch = merge_diff(self.saved, wire)
        if not patch:
            return False
        await self._kube.patch_status(self._plural, self._namespace, self._name, patch)
        self.saved = wire
        return True
