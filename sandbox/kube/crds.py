"""What the API server derives from a CustomResourceDefinition: discovery entries and status.

kmock serves only resources that are declared up front. A real cluster starts serving a
resource the moment its CRD is accepted, and reports that with the ``Established``
condition that ``kubectl wait --for=condition=established`` and installers wait for.
"""

from typing import Any

import kmock

ALL_VERBS = frozenset(
    {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
)


def served_resources(crd: dict[str, Any]) -> dict[kmock.resource, kmock.ResourceInfo]:
    """The discovery entries of every served version; raise ValueError on a malformed CRD."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    if not (spec.get("group") and names.get("plural") and names.get("kind")):
        raise ValueError("spec.group, spec.names.plural and spec.names.kind are required")
    resources = {}
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        resource = kmock.resource(spec["group"], version["name"], names["plural"])
        resources[resource] = kmock.ResourceInfo(
            kind=names["kind"],
            singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            shortnames=names.get("shortNames") or [],
            categories=names.get("categories") or [],
            verbs=ALL_VERBS,
            subresources={"status"} & set(version.get("subresources") or {}),
        )
    return resources


def established_status(crd: dict[str, Any], since: str) -> dict[str, Any]:
    """The status the API server writes once it accepts the names and serves the CRD."""
    spec = crd["spec"]
    kind = spec["names"]["kind"]
    accepted = {"singular": kind.lower(), "listKind": f"{kind}List", **spec["names"]}
    versions = spec.get("versions") or []
    return {
        "acceptedNames": accepted,
        "storedVersions": [version["name"] for version in versions if version.get("storage")],
        "conditions": [
            _condition("NamesAccepted", "NoConflicts", "no conflicts found", since),
            _condition("Established", "InitialNamesAccepted", "the names are accepted", since),
        ],
    }


def _condition(type_: str, reason: str, message: str, since: str) -> dict[str, str]:
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }
