"""Validate manifests against the generated CRD schemas the way an API server would.

jsonschema does the structural part after a small translation of the OpenAPI dialect
(`nullable`, `x-kubernetes-list-type`); unknown fields are refused, as with kubectl's strict
field validation. CEL rules (`x-kubernetes-validations`) are not evaluated here: cross-field
rules are the operator models' job, and the invalid-manifest table says which is which.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema

from rollback_operator.api.crd import rollback_crd, rollback_policy_crd

Schema = dict[str, Any]


def _translate(node: Any) -> Any:
    if isinstance(node, list):
        return [_translate(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _translate(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        out.pop("nullable")
    types = out.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    if is_object and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    return out


def _list_map_errors(schema: Schema, value: Any, path: str) -> list[str]:
    errors: list[str] = []
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += _list_map_errors(sub, value[key], f"{path}.{key}")
    elif isinstance(value, list):
        keys = schema.get("x-kubernetes-list-map-keys")
        if keys:
            seen = [tuple(item.get(k) for k in keys) for item in value if isinstance(item, dict)]
            dupes = {s for s in seen if seen.count(s) > 1}
            errors += [f"{path}: Duplicate value: {d}" for d in sorted(dupes, key=str)]
        for index, item in enumerate(value):
            errors += _list_map_errors(schema.get("items", {}), item, f"{path}[{index}]")
    return errors


@cache
def _schemas() -> dict[str, Schema]:
    return {
        crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for crd in (rollback_crd(), rollback_policy_crd())
    }


def schema_errors(manifest: Schema) -> list[str]:
    """Why the API server would refuse `manifest` (empty when it would accept it)."""
    schema = _schemas()[manifest["kind"]]
    validator = jsonschema.Draft7Validator(
        _translate(schema), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]
    return errors + _list_map_errors(schema, manifest, "")
