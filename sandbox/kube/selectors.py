"""Label and field selectors, matched the way the Kubernetes API server matches them.

Stock kmock ignores ``?labelSelector=`` and ``?fieldSelector=``, so a list or watch returns
every object. ``kubectl get -l``, ``kubectl wait`` (which watches with
``fieldSelector=metadata.name=...``) and operators that filter by labels then see objects
they never asked for. This module parses both selector syntaxes once per request.

Supported label syntax: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)`` and
``a notin (x,y)``, comma-separated. Field selectors accept ``=``, ``==`` and ``!=`` on any
dotted path (``metadata.name``, ``metadata.namespace``, ``involvedObject.uid`` …); the real
server allows only a fixed set of paths per resource, here every path works.
"""

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

_LABEL = re.compile(
    r"^(?P<negated>!)?\s*(?P<key>[A-Za-z0-9._/-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?$"
)
_FIELD = re.compile(r"^(?P<key>[A-Za-z0-9._-]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*)$")
_TOP_LEVEL_COMMA = re.compile(r",(?![^(]*\))")  # commas outside "in (a,b)" value sets

Lookup = Callable[[str], str | None]


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One clause of a selector: a key, an operator and the values it compares against."""

    key: str
    op: str  # one of: "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, lookup: Lookup) -> bool:
        value = lookup(self.key)
        match self.op:
            case "exists":
                return value is not None
            case "!exists":
                return value is None
            case "=" | "in":
                return value in self.values
            case _:  # "!=" and "notin" also match when the key is absent
                return value not in self.values


def parse_labels(selector: str) -> tuple[Requirement, ...]:
    """Parse a label selector; raise ValueError on syntax errors."""
    requirements = []
    for clause in _split(selector):
        found = _LABEL.match(clause)
        if found is None or (found["negated"] and (found["op"] or found["setop"])):
            raise ValueError(f"unable to parse requirement: {clause!r}")
        key = found["key"]
        if found["setop"]:
            values = frozenset(v.strip() for v in found["values"].split(",") if v.strip())
            requirements.append(Requirement(key, found["setop"], values))
        elif found["op"]:
            op = "!=" if found["op"] == "!=" else "="
            requirements.append(Requirement(key, op, frozenset({found["value"]})))
        else:
            requirements.append(Requirement(key, "!exists" if found["negated"] else "exists"))
    return tuple(requirements)


def parse_fields(selector: str) -> tuple[Requirement, ...]:
    """Parse a field selector; raise ValueError on syntax errors."""
    requirements = []
    for clause in _split(selector):
        found = _FIELD.match(clause)
        if found is None:
            raise ValueError(f"invalid field selector: {clause!r}")
        op = "!=" if found["op"] == "!=" else "="
        requirements.append(Requirement(found["key"], op, frozenset({found["value"].strip()})))
    return tuple(requirements)


@dataclasses.dataclass(frozen=True)
class Selector:
    """The label and field requirements of one list or watch request (all must hold)."""

    labels: tuple[Requirement, ...] = ()
    fields: tuple[Requirement, ...] = ()

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> "Selector":
        return cls(
            labels=parse_labels(params.get("labelSelector", "")),
            fields=parse_fields(params.get("fieldSelector", "")),
        )

    def matches(self, obj: Mapping[str, Any]) -> bool:
        labels: Mapping[str, str] = obj.get("metadata", {}).get("labels") or {}
        return all(req.matches(labels.get) for req in self.labels) and all(
            req.matches(lambda path: _field(obj, path)) for req in self.fields
        )


def _split(selector: str) -> list[str]:
    return [clause.strip() for clause in _TOP_LEVEL_COMMA.split(selector) if clause.strip()]


def _field(obj: Mapping[str, Any], path: str) -> str | None:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return ""  # absent fields compare as empty strings, as in the real server
        value = value[part]
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)
