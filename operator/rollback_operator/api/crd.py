"""Generate the CustomResourceDefinitions from the pydantic models.

The models are the single source of truth: `make crds` writes `crds/` and the chart's copy from
here, and a test fails when the committed YAML drifts. Pydantic's JSON Schema is turned into a
structural openAPIV3Schema: references inlined, `Optional` as `nullable`, no titles.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from rollback_operator.api import GROUP, VERSION
from rollback_operator.api.cel import BY_MODEL
from rollback_operator.api.policy import RollbackPolicySpec, RollbackPolicyStatus
from rollback_operator.api.restorepoint import RestorePointSpec, RestorePointStatus
from rollback_operator.api.rollback import RollbackSpec, RollbackStatus

Schema = dict[str, Any]
_DROP = {"title", "examples", "additionalProperties"}
_LIST_MAP_KEYS = {"rules", "healthChecks", "sqlChecks", "conditions", "contacts"}


def schema_of(model: type[BaseModel]) -> Schema:
    """The structural openAPIV3Schema of a model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    result: Schema = _with_rules(_structural(raw, defs, key=""), model.__name__)
    return result


def _with_rules(schema: Schema, model: str) -> Schema:
    """The schema with the CEL twins of the model's cross-field checks (`api.cel`)."""
    if model in BY_MODEL:
        schema["x-kubernetes-validations"] = copy.deepcopy(BY_MODEL[model])
    return schema


def _structural(node: Any, defs: Schema, key: str) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs, key) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return _with_rules(_structural(merged, defs, key), name)
    options = node.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        inner = {k: v for k, v in node.items() if k != "anyOf"}
        base = rest[0] if len(rest) == 1 else {"anyOf": rest}
        optional: Schema = _structural({**base, **inner}, defs, key)
        optional["nullable"] = True
        if inner.get("default", ...) is None:
            optional.pop("default", None)
        return optional
    out: Schema = {}
    for name, value in node.items():
        if name in _DROP:
            continue
        if name == "const":
            out["enum"] = [value]
        elif name == "properties":
            out[name] = {k: _structural(v, defs, k) for k, v in value.items()}
        else:
            out[name] = _structural(value, defs, key)
    if out.get("type") == "object" and "additionalProperties" in node:
        extra = node["additionalProperties"]
        if isinstance(extra, dict):
            out["additionalProperties"] = _structural(extra, defs, key)
    if out.get("type") == "array":
        _list_type(out, key)
    return out


def _list_type(schema: Schema, key: str) -> None:
    items = schema.get("items", {})
    if key in _LIST_MAP_KEYS and "name" in items.get("properties", {}):
        schema["x-kubernetes-list-type"] = "map"
        schema["x-kubernetes-list-map-keys"] = ["name"]
    elif key == "conditions":
        schema["x-kubernetes-list-type"] = "map"
        schema["x-kubernetes-list-map-keys"] = ["type"]
    elif items.get("type") == "string" and key in {"targets", "componentIds"}:
        schema["x-kubernetes-list-type"] = "set"


def _root(spec: Schema, status: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            # An object the operator has not seen yet reads as observedGeneration 0, so kstatus
            # (Flux, kubectl wait) calls it InProgress, not Current, until the first status write.
            "status": {**status, "default": {"observedGeneration": 0}},
        },
    }


def _crd(kind: str, plural: str, short: str, root: Schema, columns: list[Schema]) -> Schema:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["rollback"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def _column(name: str, path: str, type_: str = "string", priority: int = 0) -> Schema:
    column: Schema = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


def _run_columns(second: Schema) -> list[Schema]:
    """The columns of a kind that runs once (Rollback, RestorePoint): its phase, `second`, the
    targets it acts on, why it was asked for and its age."""
    return [
        _column("Phase", ".status.phase"),
        second,
        _column("Targets", ".status.targets"),
        _column("Reason", ".spec.reason"),
        _column("Age", ".metadata.creationTimestamp", "date"),
    ]


def rollback_crd() -> Schema:
    """The Rollback CRD."""
    spec = schema_of(RollbackSpec)
    columns = _run_columns(_column("Mode", ".spec.mode"))
    return _crd("Rollback", "rollbacks", "rb", _root(spec, schema_of(RollbackStatus)), columns)


def rollback_policy_crd() -> Schema:
    """The RollbackPolicy CRD."""
    root = _root(schema_of(RollbackPolicySpec), schema_of(RollbackPolicyStatus))
    columns = [
        _column("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        _column("Breaching", ".status.breachingRules", "integer"),
        _column("Last Rollback", ".status.lastAutomaticRollback.name"),
        _column("Age", ".metadata.creationTimestamp", "date"),
    ]
    return _crd("RollbackPolicy", "rollbackpolicies", "rbp", root, columns)


def restore_point_crd() -> Schema:
    """The RestorePoint CRD."""
    root = _root(schema_of(RestorePointSpec), schema_of(RestorePointStatus))
    columns = _run_columns(_column("Policy", ".spec.policyRef.name"))
    return _crd("RestorePoint", "restorepoints", "rp", root, columns)


def all_crds() -> list[Schema]:
    """Every CRD, policy first (Rollbacks and RestorePoints refer to a policy)."""
    return [rollback_policy_crd(), rollback_crd(), restore_point_crd()]
