"""The three PATCH flavours of the Kubernetes API, applied to plain JSON objects.

kmock applies every dict body as its own recursive merge (which rejects a scalar replacing a
dict) and lets JSON-patch failures escape as HTTP 500. The real server answers 422 for a
failed JSON-patch ``test`` op, which is what makes kopf retry its finalizer patch cleanly
instead of backing off for half a minute. This module keeps those rules in one place.
"""

import copy
from typing import Any

import jsonpatch
import jsonpointer

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class PatchError(Exception):
    """A patch that cannot be applied; ``code`` and ``reason`` become the k8s Status."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


def apply_patch(obj: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """Return a patched deep copy of ``obj``; raise PatchError like the API server would."""
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise PatchError(400, "BadRequest", "a JSON patch must be a list of operations")
        try:
            result: dict[str, Any] = jsonpatch.apply_patch(obj, patch, in_place=False)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise PatchError(422, "Invalid", f"the JSON patch cannot be applied: {exc}") from exc
        return result
    if content_type in (MERGE, STRATEGIC):
        if not isinstance(patch, dict):
            raise PatchError(400, "BadRequest", "a merge patch must be a JSON object")
        # Strategic merge is treated as a merge patch: lists are replaced, not merged by key.
        directives_dropped = _drop_directives(patch) if content_type == STRATEGIC else patch
        merged = merge_patch(obj, directives_dropped)
        assert isinstance(merged, dict)  # a dict patched by a dict stays a dict
        return merged
    raise PatchError(
        415, "UnsupportedMediaType", f"the media type {content_type!r} is not supported"
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge recursively, ``null`` deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _drop_directives(patch: Any) -> Any:
    """Remove strategic-merge directives (``$patch``, ``$setElementOrder/…``, …)."""
    if isinstance(patch, dict):
        return {k: _drop_directives(v) for k, v in patch.items() if not k.startswith("$")}
    if isinstance(patch, list):
        return [_drop_directives(item) for item in patch]
    return patch
