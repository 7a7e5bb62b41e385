"""Manifest builders for the demo, tests and benchmarks: a whole valid manifest, with only what
the caller cares about changed."""

from __future__ import annotations

import base64
import copy
import uuid
from typing import Any

from rollback_operator.api import API_VERSION
from sandbox import observers

Manifest = dict[str, Any]

POLICY_SPEC: Manifest = {
    "targets": {
        "frontend": {
            "vercel": {"projectId": "prj_123", "tokenSecretRef": {"name": "vercel", "key": "token"}}
        },
        "backend": {
            "railway": {
                "projectId": "p-1",
                "environmentId": "e-1",
                "serviceId": "s-1",
                "tokenSecretRef": {"name": "railway", "key": "token"},
            }
        },
        "database": {
            "postgres": {
                "urlSecretRef": {"name": "db", "key": "url"},
                "backups": {"bucket": "mindmate-backups", "prefix": "database/"},
            }
        },
        "storage": {"s3": {"bucket": "mindmate-files"}},
    },
    "objectStore": {"region": "us-east-1", "credentialsSecretRef": {"name": "aws"}},
}


def deep_merge(base: Manifest, changes: Manifest) -> Manifest:
    """`base` with `changes` merged in; a None value deletes the key."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def policy(name: str = "mindmate", namespace: str = "default", **spec: Any) -> Manifest:
    """A RollbackPolicy manifest with all four targets."""
    return {
        "apiVersion": API_VERSION,
        "kind": "RollbackPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": deep_merge(POLICY_SPEC, spec),
    }


def rollback(name: str = "rb-1", namespace: str = "default", **spec: Any) -> Manifest:
    """A Rollback manifest (quick, frontend and backend, policy `mindmate`)."""
    body = {"policyRef": {"name": "mindmate"}, "reason": "High error rates", **spec}
    return {
        "apiVersion": API_VERSION,
        "kind": "Rollback",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def stored(manifest: Manifest, generation: int = 1) -> Manifest:
    """`manifest` as the API server returns it: uid, generation and timestamps filled in."""
    out = copy.deepcopy(manifest)
    out["metadata"].update(
        uid=str(uuid.uuid4()),
        generation=generation,
        creationTimestamp="2024-01-01T00:00:00Z",
        resourceVersion="1",
    )
    return out


def secret(name: str, data: dict[str, str], namespace: str = "default") -> Manifest:
    """A Secret manifest with `data` base64-encoded, as the API stores it.

    Its values are announced (`observers.secret_built`): the test suite's leak scan makes sure
    they never show up outside a Secret.
    """
    observers.secret_built(namespace, name, data)
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace}, "data": encoded}  # fmt: skip
