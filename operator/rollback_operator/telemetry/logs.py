"""Log lines that name the rollback, step or policy they are about, as text or as JSON.

Why contextvars: a line logged deep in a provider during a step should still say which rollback
and which step it belongs to, without threading names through every call. The Rollback daemon
binds its rollback, the step runner binds the step a task runs (each parallel step runs in its
own asyncio task, whose context is a copy, so they never see each other's step), the policy
host binds its policy. kopf's per-object lines carry `k8s_ref`, which is read too; explicit
`extra={"step": ...}` wins over the context.

JSON: one object per line with time, level, logger, message, and rollback / step / target /
policy when known. Secrets are scrubbed where they are known (the HTTP layer); as a last guard,
passwords in URLs (`postgres://user:secret@host`) are masked here.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

_rollback: contextvars.ContextVar[str | None] = contextvars.ContextVar("rollback", default=None)
_step: contextvars.ContextVar[str | None] = contextvars.ContextVar("step", default=None)
_target: contextvars.ContextVar[str | None] = contextvars.ContextVar("target", default=None)
_policy: contextvars.ContextVar[str | None] = contextvars.ContextVar("policy", default=None)
FIELDS = ("rollback", "step", "target", "policy")
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@")
_KINDS = {"Rollback": "rollback", "RollbackPolicy": "policy"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
BODY_LOGGERS = ("kubernetes_asyncio.client.rest",)
"""Loggers that write whole HTTP response bodies at DEBUG: the Kubernetes client's would put
every Secret the operator reads (its `data`, base64) in a `--verbose` log, so they stay at
INFO whatever the verbosity."""


def bind_rollback(namespace: str, name: str) -> None:
    """Every line from this task (and tasks it starts) is about this Rollback."""
    _rollback.set(f"{namespace}/{name}")


def bind_step(name: str, target: str | None) -> None:
    """Every line from this task is about this step (of the bound rollback)."""
    _step.set(name)
    _target.set(target or None)


def bind_policy(namespace: str, name: str) -> None:
    """Every line from this task is about this RollbackPolicy."""
    _policy.set(f"{namespace}/{name}")


def redact(text: str) -> str:
    """`text` with passwords in URLs masked."""
    return _URL_PASSWORD.sub(r"\g<head>***@", text)


class ContextFilter(logging.Filter):
    """Copies the bound rollback, step and policy onto each record (unless given as extra)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict) and ref.get("kind") in _KINDS:
            field = _KINDS[ref["kind"]]
            if getattr(record, field, None) is None:
                setattr(record, field, f"{ref.get('namespace') or ''}/{ref.get('name') or ''}")
        for field, var in zip(FIELDS, (_rollback, _step, _target, _policy), strict=True):
            if getattr(record, field, None) is None:
                setattr(record, field, var.get())
        return True


WATCH_HANDLER_PREFIX = "watch-"
"""The id prefix of the event handlers that feed `telemetry.states` (`handlers.watch`)."""


class QuietWatchFilter(logging.Filter):
    """Drops kopf's "Handler 'watch-...' succeeded." lines: those handlers run on every change
    of every object, so the line would follow each status write; their failures still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("kopf") or record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not (message.startswith(f"Handler '{WATCH_HANDLER_PREFIX}")
                    and message.endswith("succeeded."))  # fmt: skip


def context(record: logging.LogRecord) -> dict[str, str]:
    """The rollback, step, target and policy of a filtered record, where known."""
    found = {f: getattr(record, f, None) for f in FIELDS}
    return {k: str(v) for k, v in found.items() if v is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **context(record),
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with `[namespace/name step/target]` before the message when known."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        found = context(record)
        where = found.get("rollback") or found.get("policy")
        step = "/".join(v for v in (found.get("step"), found.get("target")) if v)
        prefix = " ".join(p for p in (where, step) if p)
        line = super().formatMessage(record)
        if prefix:
            head, _, message = line.partition(": ")
            line = f"{head}: [{prefix}] {message}"
        return redact(line)


def configure(log_format: Literal["text", "json"], *, verbose: bool = False) -> logging.Handler:
    """Send every log line to stderr in `log_format`; returns the handler installed."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if not verbose:
        handler.addFilter(QuietWatchFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)  # Python warnings become lines in the same format
    # httpx logs every request's full URL at INFO; a Slack webhook URL is a secret and a query
    # may carry a token, so its lines never reach the log, verbose or not (the provider layer
    # logs each call itself at DEBUG, its URL scrubbed).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in BODY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    return handler
