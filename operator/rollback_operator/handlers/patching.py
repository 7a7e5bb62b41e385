"""JSON merge patches (RFC 7386) computed from two versions of a status, so we send only changes.

A key that disappeared becomes `null` in the patch, so a cleared field is really cleared.
"""

from __future__ import annotations

from typing import Any


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
