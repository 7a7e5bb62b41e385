"""The operator's settings: one class, read from the environment and the command line.

This is the only module that reads the environment (prefix `ROLLBACK_OPERATOR_`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the operator can be told at start-up."""

    model_config = SettingsConfigDict(env_prefix="ROLLBACK_OPERATOR_", extra="ignore")

    namespaces: list[str] = Field(default_factory=list, description="Namespaces to watch.")
    all_namespaces: bool = Field(default=False, description="Watch every namespace.")
    kubeconfig: str | None = Field(default=None, description="Kubeconfig path; else in-cluster.")
    standalone: bool | None = Field(
        default=None,
        description="True: never peer. False: peering required, no start without it. "
        "Unset: peer when kopf's peering CRD and object exist, else run alone with a warning.",
    )
    peering_name: str = Field(
        default="rollback-operator",
        description="kopf peering object; naming one (flag or env) makes peering required.",
    )
    priority: int | None = Field(
        default=None,
        description="Peering priority of this replica; unset: the earlier started ranks higher.",
    )
    peering_lifetime: int = Field(
        default=60, ge=1, description="Seconds a silent peer counts as alive (failover time)."
    )
    liveness_endpoint: str | None = Field(
        default="http://0.0.0.0:8080/healthz", description="kopf's health endpoint."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="text lines, or one JSON object per line."
    )
    metrics_port: int = Field(
        default=8090, ge=0, le=65535, description="Port of /metrics (Prometheus); 0: none."
    )
    allowed_endpoints: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="URL prefixes that may receive a policy's credentials besides the "
        "providers' official APIs (env: comma-separated). Plain http only to loopback.",
    )
    verbose: bool = False
    step_max_attempts: int = Field(default=5, ge=1, description="Attempts per step.")
    step_base_delay: float = Field(default=2.0, ge=0, description="First retry delay, seconds.")
    step_max_delay: float = Field(default=60.0, ge=0, description="Longest retry delay.")
    step_deadline: float = Field(
        default=1800.0,
        gt=0,
        description="Seconds one attempt of a step may take (verify: plus its window); then it "
        "is cancelled and counts as a transient failure, so a stalled S3 or database cannot "
        "hold a step (traffic stopped) for longer than attempts x (deadline + retry delay).",
    )
    notice_patience: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a rollback waits for its start notice (Slack, Statuspage, "
        "PagerDuty) before it acts anyway: a notifier that has not answered by then is reported "
        "failed, so a slow or unreachable channel never holds the rollback itself.",
    )
    poll_interval: float = Field(
        default=0.5, gt=0, description="How often a waiting rollback looks again."
    )

    @field_validator("allowed_endpoints", mode="before")
    @classmethod
    def _split_endpoints(cls, value: Any) -> Any:
        """The environment gives one comma-separated string; the flags give a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_endpoints")
    @classmethod
    def _endpoint_prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if problem := _prefix_problem(prefix):
                raise ValueError(problem)
        return value

    def peering_required(self) -> bool:
        """Whether peering was asked for explicitly (standalone false, or a peering object
        named, by flag or environment): then running without it is an error, not a fallback."""
        return self.standalone is False or "peering_name" in self.model_fields_set


def _prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot be an allowed endpoint: not http(s), no host, or user info."""
    parts = urlsplit(prefix)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return f"allowed endpoint {prefix!r} is not an http(s) URL with a host"
    if "@" in parts.netloc:
        return f"allowed endpoint {prefix!r} carries user info"
    return None
