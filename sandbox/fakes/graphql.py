"""A small GraphQL parser: the executable subset a REST-less fake API needs to read requests.

Why this module exists: the Railway fake must answer real GraphQL documents the way Railway's
server would, including its syntax errors, so requests are parsed rather than matched as text.
It reads operations (query, mutation, anonymous), `operationName`, variable definitions with
defaults, aliases, arguments (literals, lists, objects, enums, variables) and nested
selections. Fragments, directives and subscriptions are refused with a GraphQL error.
`graphql_schema` checks what this returns against a schema and shapes the answers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class GraphQLError(Exception):
    """An error answered in GraphQL's `errors` envelope."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Var:
    """A `$variable` where a value goes."""

    name: str


@dataclass(frozen=True)
class EnumLiteral:
    """A bare name where a value goes: an enum value."""

    name: str


@dataclass(frozen=True)
class Field:
    """One selected field: its arguments, and its sub-selections (None for a scalar)."""

    name: str
    alias: str | None
    args: dict[str, Any]
    selections: tuple[Field, ...] | None

    @property
    def key(self) -> str:
        """Where its value goes in the answer: the alias, else the name."""
        return self.alias or self.name


@dataclass(frozen=True)
class Operation:
    """One query or mutation: its variables' types and defaults, and its root fields."""

    kind: str
    name: str | None
    var_types: dict[str, str]
    var_defaults: dict[str, Any]
    fields: tuple[Field, ...]


_TOKEN = re.compile(
    r"""(?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
      | (?P<punct>\.\.\.|[!$():=@\[\]{}|&])""",
    re.VERBOSE,
)


def parse_operation(query: str, operation_name: str | None = None) -> Operation:
    """Parse `query` and pick the operation named `operation_name` (or the only one)."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if match is None:
            raise GraphQLError(f"Syntax Error: Unexpected character {query[pos]!r}.")
        pos = match.end()
        if match.lastgroup != "skip":
            tokens.append((match.lastgroup or "", match.group()))
    ops = _Parser(tokens).document()
    chosen = [op for op in ops if operation_name in (None, op.name)]
    if len(chosen) != 1:
        raise GraphQLError("Must provide a valid operationName.")
    return chosen[0]


class _Parser:
    """Recursive descent over the executable subset of GraphQL the operator needs."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "<EOF>")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        tok_kind, tok = self.peek()
        if tok_kind == "eof" or (value or tok) != tok or (kind or tok_kind) != tok_kind:
            raise GraphQLError(f"Syntax Error: Expected {value or kind}, found {tok}.")
        self.i += 1
        return tok

    def accept(self, value: str) -> bool:
        if self.peek() == ("punct", value):
            self.i += 1
            return True
        return False

    def document(self) -> list[Operation]:
        ops = [self.operation()]
        while self.peek()[0] != "eof":
            ops.append(self.operation())
        return ops

    def operation(self) -> Operation:
        if self.peek() == ("punct", "{"):
            return Operation("query", None, {}, {}, self.selection_set())
        kind = self.take(kind="name")
        if kind not in ("query", "mutation"):
            raise GraphQLError(f'"{kind}" definitions are not supported by this fake.')
        name = self.take(kind="name") if self.peek()[0] == "name" else None
        types: dict[str, str] = {}
        defaults: dict[str, Any] = {}
        if self.accept("("):
            while not self.accept(")"):
                self.take("$")
                var = self.take(kind="name")
                self.take(":")
                types[var] = self.type_ref()
                if self.accept("="):
                    defaults[var] = self.value()
        return Operation(kind, name, types, defaults, self.selection_set())

    def type_ref(self) -> str:
        ref = f"[{self.type_ref()}{self.take(']')}" if self.accept("[") else self.take(kind="name")
        return ref + "!" if self.accept("!") else ref

    def selection_set(self) -> tuple[Field, ...]:
        self.take("{")
        fields = [self.field()]
        while not self.accept("}"):
            fields.append(self.field())
        return tuple(fields)

    def field(self) -> Field:
        if self.peek()[1] in ("...", "@"):
            raise GraphQLError("Fragments and directives are not supported by this fake.")
        alias, name = None, self.take(kind="name")
        if self.accept(":"):
            alias, name = name, self.take(kind="name")
        args: dict[str, Any] = {}
        if self.accept("("):
            while not self.accept(")"):
                arg = self.take(kind="name")
                self.take(":")
                args[arg] = self.value()
        selections = self.selection_set() if self.peek() == ("punct", "{") else None
        return Field(name, alias, args, selections)

    def value(self) -> Any:
        kind, tok = self.peek()
        if self.accept("$"):
            return Var(self.take(kind="name"))
        if self.accept("["):
            items = []
            while not self.accept("]"):
                items.append(self.value())
            return items
        if self.accept("{"):
            obj: dict[str, Any] = {}
            while not self.accept("}"):
                key = self.take(kind="name")
                self.take(":")
                obj[key] = self.value()
            return obj
        self.take(kind=kind if kind in ("string", "number", "name") else "value")
        if kind == "string":
            return json.loads(tok)
        if kind == "number":
            return float(tok) if re.search(r"[.eE]", tok) else int(tok)
        return {"true": True, "false": False, "null": None}.get(tok, EnumLiteral(tok))
