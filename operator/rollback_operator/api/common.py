"""Building blocks shared by both resources: durations, secret references, targets, base model.

Durations stay strings in the model (so a manifest round-trips unchanged) and are parsed on use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)
from pydantic.alias_generators import to_camel

from rollback_operator.api import cel

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d))+$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Model(BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
    )

    def wire(self) -> dict[str, object]:
        """The model as it is stored in Kubernetes: camelCase keys, no unset optionals."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ProviderBlock(Model):
    """The settings of one provider for one layer (`targets.frontend.vercel`, ...)."""

    OFFICIAL_API: ClassVar[tuple[str, ...]] = ()
    """The provider's own API prefixes: its `apiUrl` may receive the block's credentials there
    without an operator `--allow-endpoint` prefix (`providers.endpoints`)."""

    def summary(self) -> str:
        """One line naming what this block reaches, for people (no credentials)."""
        raise NotImplementedError

    def backups_bucket(self) -> str | None:
        """The bucket this provider keeps backups in, where reports are archived too."""
        return None

    def candidates_note(self) -> str | None:
        """What `kubectl rollback candidates` says of a layer it cannot list, if anything."""
        return None


class OneOf(Model):
    """A layer reached through exactly one of several provider blocks.

    Each field is one provider's block; exactly one is set. Code outside the provider's own
    package asks `chosen()` for the name and block instead of reading a provider's fields.
    """

    @classmethod
    def __get_pydantic_json_schema__(cls, core: Any, handler: Any) -> Any:
        schema = handler(core)
        target = handler.resolve_ref_schema(schema)
        keys = [field.alias or name for name, field in _fields(cls)]
        if len(keys) == 1:
            target["required"] = keys  # the one provider there is: a plain required field
        else:
            target["oneOf"] = [{"required": [key]} for key in keys]
        target["x-kubernetes-validations"] = [cel.exactly_one(keys)]
        return schema

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        chosen = [name for name, _ in _fields(type(self)) if getattr(self, name) is not None]
        if len(chosen) != 1:
            names = ", ".join(repr(field.alias or name) for name, field in _fields(type(self)))
            raise ValueError(f"exactly one of {names} must be set")
        return self

    def chosen(self) -> tuple[str, ProviderBlock]:
        """The provider's name (the block's key, such as `vercel`) and its block."""
        for name, field in _fields(type(self)):
            block = getattr(self, name)
            if block is not None:
                return field.alias or name, block
        raise ValueError("no provider block is set")  # unreachable after validation


def _fields(cls: type[BaseModel]) -> list[tuple[str, Any]]:
    return list(cls.model_fields.items())


def parse_duration(text: str) -> timedelta:
    """Parse `30s`, `5m`, `1h30m`, `24h`, `7d`, `250ms` into a timedelta."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h or 24h")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Render a timedelta as `3h12m`, `45s` or `0s`, the inverse of `parse_duration`."""
    total = int(delta.total_seconds())
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _positive_duration(text: str) -> str:
    if parse_duration(text) <= timedelta(0):
        raise ValueError(f"duration {text!r} must be greater than zero")
    return text


Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        examples=["30s", "5m", "1h", "24h"],
        json_schema_extra={"x-kubernetes-validations": cel.POSITIVE_DURATION},
    ),
    AfterValidator(_positive_duration),
]

NonEmpty = Annotated[str, Field(min_length=1)]
NonNegativeDuration = Annotated[str, Field(pattern=DURATION_PATTERN)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://\S+$")]
Number = Annotated[float, Strict()]  # a JSON number: never "0.05" or true, as the schema says

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    """Only what the CRD's `format: date-time` accepts: not an epoch number, not a bare date."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.match(value):
        return value
    raise ValueError("must be an RFC 3339 time with a zone, such as 2024-01-01T00:00:00Z")


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


def repeated(values: Sequence[object]) -> list[str]:
    """The values that occur more than once, as text, sorted."""
    return sorted({str(v) for v in values if values.count(v) > 1})


DnsName = Annotated[
    str,
    Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
]


class Target(StrEnum):
    """A layer of the app that a rollback can act on."""

    FRONTEND = "frontend"
    BACKEND = "backend"
    DATABASE = "database"
    STORAGE = "storage"


ALL_TARGETS: tuple[Target, ...] = tuple(Target)
QUICK_TARGETS: tuple[Target, ...] = (Target.FRONTEND, Target.BACKEND)


def default_targets(mode: str) -> list[Target]:
    """The targets of a rollback that names none: quick -> frontend and backend; full -> all
    four, in the runbook's order."""
    return list(QUICK_TARGETS) if mode == "quick" else list(ALL_TARGETS)


class SecretKeyRef(Model):
    """A key of a Secret in the resource's namespace."""

    name: DnsName = Field(description="Name of the Secret, in the same namespace.")
    key: NonEmpty = Field(description="Key inside the Secret's data.")


class LocalObjectRef(Model):
    """A reference to an object by name in the same namespace."""

    name: DnsName = Field(description="Name of the object, in the same namespace.")


class ObjectMeta(Model):
    """The parts of metadata the operator reads; everything else is kept but ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int = 1
    resource_version: str | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ApiObject(Model):
    """Base of the three kinds as read from the API: the metadata the operator reads, beside
    the kind's own `spec` and `status`; what else the server sends is ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
