"""A GraphQL schema read from SDL, which checks parsed operations and shapes their answers.

Why this module exists: a fake GraphQL API is only faithful if it refuses what the real server
refuses (unknown fields and arguments, missing required arguments, variables of the wrong type,
sub-selections on scalars such as `deploymentRollback { id }`) and answers with exactly the
selected fields, under their aliases. `Schema` does that for any SDL holding `type`, `input`
and `enum` definitions; the fake's resolvers only compute full objects.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.fakes.graphql import EnumLiteral, Field, GraphQLError, Operation, Var

FieldDef = tuple[str, dict[str, str]]  # (type reference, argument name -> type reference)


def root_type(op: Operation) -> str:
    """The schema type an operation's root fields belong to."""
    return "Mutation" if op.kind == "mutation" else "Query"


class Schema:
    """Object and input types as {type: {field: (type, args)}}, and enums as {enum: values}."""

    def __init__(self, sdl: str) -> None:
        self.types: dict[str, dict[str, FieldDef]] = {}
        self.enums: dict[str, tuple[str, ...]] = {}
        for kind, name, body in re.findall(r"(type|input|enum)\s+(\w+)\s*\{([^}]*)\}", sdl):
            if kind == "enum":
                self.enums[name] = tuple(body.split())
                continue
            fields = re.findall(r"(\w+)\s*(?:\(([^)]*)\))?\s*:\s*([\w\[\]!]+)", body)
            self.types[name] = {
                f: (ref, dict(re.findall(r"(\w+)\s*:\s*([\w\[\]!]+)", args)))
                for f, args, ref in fields
            }
        self.inputs = frozenset(re.findall(r"input\s+(\w+)", sdl))

    def field_type(self, parent: str, name: str) -> str:
        """The type reference of `parent.name`."""
        return self.types[parent][name][0]

    # ----- validation -----

    def validate(self, op: Operation) -> None:
        """GraphQLError, worded as GraphQL servers word it, when `op` does not fit the schema."""
        for f in op.fields:
            self._check_field(root_type(op), f, op)

    def _check_field(self, parent: str, f: Field, op: Operation) -> None:
        if f.name == "__typename" and parent not in ("Query", "Mutation"):
            return
        if f.name not in self.types[parent]:
            raise GraphQLError(f'Cannot query field "{f.name}" on type "{parent}".')
        type_ref, arg_types = self.types[parent][f.name]
        for arg, value in f.args.items():
            expected = arg_types.get(arg)
            if expected is None:
                raise GraphQLError(f'Unknown argument "{arg}" on field "{parent}.{f.name}".')
            used = op.var_types.get(value.name) if isinstance(value, Var) else None
            if isinstance(value, Var) and used not in (expected, expected.rstrip("!") + "!"):
                raise GraphQLError(
                    f'Variable "${value.name}" of type "{used}" used in position expecting '
                    f'type "{expected}".'
                )
        for arg, expected in arg_types.items():
            if expected.endswith("!") and arg not in f.args:
                raise GraphQLError(
                    f'Field "{f.name}" argument "{arg}" of type "{expected}" is required, '
                    "but it was not provided."
                )
        self._check_selection(f, type_ref, op)

    def _check_selection(self, f: Field, type_ref: str, op: Operation) -> None:
        base = type_ref.strip("[]!")
        if base not in self.types and f.selections is not None:
            raise GraphQLError(
                f'Field "{f.name}" must not have a selection since type "{type_ref}" has no '
                "subfields."
            )
        if base in self.types and f.selections is None:
            raise GraphQLError(
                f'Field "{f.name}" of type "{type_ref}" must have a selection of subfields.'
            )
        for sub in f.selections or ():
            self._check_field(base, sub, op)

    # ----- coercion -----

    def coerce_variables(self, op: Operation, provided: dict[str, Any]) -> dict[str, Any]:
        """The operation's variables: provided, else defaulted, checked against their types."""
        values: dict[str, Any] = {}
        for name, type_ref in op.var_types.items():
            if name in provided:
                values[name] = self._coerce(provided[name], type_ref, {}, literal=False)
            elif name in op.var_defaults:
                values[name] = self._coerce(op.var_defaults[name], type_ref, {}, literal=True)
            elif type_ref.endswith("!"):
                raise GraphQLError(
                    f'Variable "${name}" of required type "{type_ref}" was not provided.'
                )
        return values

    def coerce_args(self, root: str, f: Field, variables: dict[str, Any]) -> dict[str, Any]:
        """A root field's arguments as plain values, variables resolved."""
        types = self.types[root][f.name][1]
        return {k: self._coerce(v, types[k], variables, literal=True) for k, v in f.args.items()}

    def _coerce(self, value: Any, type_ref: str, variables: dict[str, Any], literal: bool) -> Any:
        """Check `value` against a GraphQL type reference, resolving `$variables` on the way."""
        if isinstance(value, Var):  # already coerced to its declared type; check this position
            return self._coerce(variables.get(value.name), type_ref, {}, literal=False)
        base = type_ref.removesuffix("!")
        if value is None:
            if base != type_ref:
                raise GraphQLError(f'Expected value of type "{type_ref}", found null.')
            return None
        if base.startswith("["):
            items = value if isinstance(value, list) else [value]
            return [self._coerce(v, base[1:-1], variables, literal) for v in items]
        if base in self.inputs:
            return self._coerce_input(value, base, variables, literal)
        if base in self.enums:
            name = value.name if isinstance(value, EnumLiteral) else None if literal else value
            if name not in self.enums[base]:
                raise GraphQLError(f'Value "{value}" does not exist in "{base}" enum.')
            return name
        return _coerce_scalar(value, base)

    def _coerce_input(
        self, value: Any, base: str, variables: dict[str, Any], literal: bool
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise GraphQLError(f'Expected type "{base}" to be an object.')
        for key in value.keys() - self.types[base].keys():
            raise GraphQLError(f'Field "{key}" is not defined by type "{base}".')
        fields = self.types[base]
        return {k: self._coerce(v, fields[k][0], variables, literal) for k, v in value.items()}

    # ----- answers -----

    def project(self, value: Any, type_ref: str, f: Field) -> Any:
        """Keep only the selected fields (under their aliases) of a resolver's full answer."""
        base = type_ref.rstrip("!")
        if value is None or f.selections is None:
            return value
        if base.startswith("["):
            return [self.project(v, base[1:-1], f) for v in value]
        return {
            s.key: base
            if s.name == "__typename"
            else self.project(value[s.name], self.types[base][s.name][0], s)
            for s in f.selections
        }


def _coerce_scalar(value: Any, base: str) -> Any:
    valid = {
        "String": isinstance(value, str),
        "ID": isinstance(value, str | int) and not isinstance(value, bool),
        "Int": isinstance(value, int) and not isinstance(value, bool),
        "Boolean": isinstance(value, bool),
    }.get(base, not isinstance(value, EnumLiteral))
    if not valid:
        raise GraphQLError(f"{base} cannot represent value: {json.dumps(str(value))}")
    return str(value) if base == "ID" else value
