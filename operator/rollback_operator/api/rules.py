"""The metric rules that guard an app: where their queries run, their thresholds, and what the
last evaluation found (each rule's state and its current breach episode).

Field descriptions double as CRD documentation (`kubectl explain rollbackpolicy.spec.rules`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import ConfigDict, Field, StrictBool, model_validator

from rollback_operator.api.common import (
    DnsName,
    HttpUrl,
    Model,
    NonEmpty,
    NonNegativeDuration,
    Number,
    SecretKeyRef,
)


class Prometheus(Model):
    """A Prometheus-compatible query API."""

    url: HttpUrl = Field(
        description="Base URL, such as http://prometheus.monitoring:9090. Any URL without "
        "authSecretRef; with it, https (or loopback) under an operator --allow-endpoint prefix."
    )
    auth_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding an Authorization header value; sent only to a url "
        "under an operator --allow-endpoint prefix.",
    )


class Metrics(Model):
    """Where rule queries run."""

    prometheus: Prometheus


class Threshold(Model):
    """A bound a metric must not cross: exactly one of above or below."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["above"]}, {"required": ["below"]}]}
    )

    above: Number | None = Field(default=None, description="Breached when the value is above.")
    below: Number | None = Field(default=None, description="Breached when the value is below.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("a threshold needs exactly one of 'above' or 'below'")
        return self

    def breached_by(self, value: float) -> bool:
        """Whether `value` is past this threshold."""
        return value > self.above if self.above is not None else value < self.below  # type: ignore[operator]


class NoData(StrEnum):
    """What an empty query result means."""

    IGNORE = "ignore"
    BREACH = "breach"
    HOLD = "hold"


class Rule(Model):
    """One metric that guards the app, with warning and critical thresholds."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["warning"]}, {"required": ["critical"]}]}
    )

    name: DnsName = Field(description="Unique name of the rule within the policy.")
    query: NonEmpty = Field(description="PromQL expression returning one value.")
    warning: Threshold | None = Field(default=None, description="Warn past this threshold.")
    critical: Threshold | None = Field(default=None, description="Critical past this threshold.")
    for_: NonNegativeDuration = Field(
        default="0s", alias="for", description="How long a threshold must hold, such as 5m."
    )
    auto_rollback: StrictBool = Field(
        default=False, description="Roll back automatically when critical holds for `for`."
    )
    no_data: NoData = Field(default=NoData.IGNORE, description="ignore, breach or hold.")

    @model_validator(mode="after")
    def _thresholds_agree(self) -> Self:
        if self.warning is None and self.critical is None:
            raise ValueError(f"rule {self.name}: needs a warning or a critical threshold")
        if self.auto_rollback and self.critical is None:
            raise ValueError(f"rule {self.name}: autoRollback needs a critical threshold")
        if self.warning and self.critical:
            w, c = self.warning, self.critical
            if (w.above is None) != (c.above is None):
                raise ValueError(f"rule {self.name}: warning and critical point different ways")
            if w.above is not None and c.above is not None and w.above > c.above:
                raise ValueError(f"rule {self.name}: warning.above is past critical.above")
            if w.below is not None and c.below is not None and w.below < c.below:
                raise ValueError(f"rule {self.name}: warning.below is past critical.below")
        return self


class RuleState(StrEnum):
    """Where a rule stands."""

    OK = "Ok"
    PENDING = "Pending"
    WARNING = "Warning"
    CRITICAL = "Critical"
    NO_DATA = "NoData"
    ERROR = "Error"


class Episode(Model):
    """One breach of a rule, from its first point past a threshold until it clears: what the
    operator already did about it, so a restart neither repeats nor forgets it."""

    since: datetime = Field(description="When the metric first went past a threshold.")
    announced: RuleState | None = Field(
        default=None, description="The highest state already announced (Event, notification)."
    )
    rollback: str | None = Field(default=None, description="The Rollback this breach created.")
    suppressed: str | None = Field(
        default=None, description="Why its automatic rollback was last suppressed (counted once)."
    )


class RuleStatus(Model):
    """The last evaluation of one rule."""

    name: str
    state: RuleState
    value: float | None = None
    since: datetime | None = None
    last_evaluated: datetime | None = None
    message: str | None = None
    errors: int = Field(default=0, description="Evaluations in a row that failed.")
    episode: Episode | None = Field(default=None, description="The current breach, if any.")
