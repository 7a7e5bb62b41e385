"""Log lines carry the rollback, step and policy they are about, as text or one JSON object."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from rollback_operator.telemetry import logs


def _record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("rollback_operator.x", logging.INFO, __file__, 1, message, args,
                               None)  # fmt: skip
    record.__dict__.update(extra)
    return record


def _json(record: logging.LogRecord) -> dict[str, Any]:
    logs.ContextFilter().filter(record)
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_a_json_line_has_time_level_logger_message_and_nothing_unknown() -> None:
    async def outside_any_rollback() -> dict[str, Any]:
        return _json(_record("ready in %d ms", 12))

    line = asyncio.run(outside_any_rollback())
    assert set(line) == {"time", "level", "logger", "message"}
    assert (line["level"], line["logger"], line["message"]) == (
        "INFO", "rollback_operator.x", "ready in 12 ms"
    )  # fmt: skip
    assert line["time"].endswith("+00:00")


def test_the_bound_rollback_and_step_reach_lines_of_that_task_only() -> None:
    async def step(name: str, target: str) -> dict[str, Any]:
        logs.bind_step(name, target)
        await asyncio.sleep(0)
        return _json(_record("working"))

    async def daemon() -> tuple[dict[str, Any], ...]:
        logs.bind_rollback("prod", "rb-1")
        both = await asyncio.gather(step("instant-rollback", "frontend"),
                                    step("instant-rollback", "backend"))  # fmt: skip
        return (*both, _json(_record("after the steps")))

    front, back, after = asyncio.run(daemon())
    assert (front["rollback"], front["step"], front["target"]) == (
        "prod/rb-1", "instant-rollback", "frontend"
    )  # fmt: skip
    assert back["target"] == "backend"
    assert after["rollback"] == "prod/rb-1"
    assert "step" not in after


def test_kopf_object_lines_name_their_rollback_or_policy() -> None:
    ref = {"kind": "RollbackPolicy", "namespace": "prod", "name": "mindmate", "uid": "u"}
    assert (
        _json(_record("Handler 'evaluate' is invoked.", k8s_ref=ref))["policy"] == "prod/mindmate"
    )
    ref = {**ref, "kind": "Rollback", "name": "rb-9"}
    line = _json(_record("Daemon 'run' succeeded.", k8s_ref=ref, step="verify"))
    assert (line["rollback"], line["step"]) == ("prod/rb-9", "verify")


def test_passwords_in_urls_are_masked_in_messages_and_tracebacks() -> None:
    dsn = "postgresql://app:pa55-w0rd-xyz@db:5432/app"
    try:
        raise RuntimeError(f"cannot connect to {dsn}")
    except RuntimeError:
        record = _record("restore from %s failed", dsn)
        record.exc_info = sys.exc_info()
    line = _json(record)
    text = json.dumps(line)
    assert "pa55-w0rd-xyz" not in text
    assert "postgresql://app:***@db:5432/app" in line["message"]
    assert "RuntimeError" in line["exception"]
    assert logs.redact("https://api.vercel.com/v9/x?y=1") == "https://api.vercel.com/v9/x?y=1"


def test_text_lines_put_the_context_before_the_message() -> None:
    record = _record("Step verify Succeeded", rollback="prod/rb-1", step="verify")
    logs.ContextFilter().filter(record)
    text = logs.TextFormatter().format(record)
    assert text.endswith("INFO rollback_operator.x: [prod/rb-1 verify] Step verify Succeeded")


def test_configure_installs_one_json_handler_on_the_root_logger() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        handler = logs.configure("json")
        assert root.handlers == [handler]
        assert isinstance(handler.formatter, logs.JsonFormatter)
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def test_verbose_logs_debug_but_never_the_kubernetes_clients_response_bodies() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        logs.configure("text", verbose=True)
        assert root.level == logging.DEBUG
        rest = logging.getLogger("kubernetes_asyncio.client.rest")
        assert not rest.isEnabledFor(logging.DEBUG)  # it logs "response body: <Secret>"
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def test_the_watch_handlers_success_lines_are_dropped_and_everything_else_kept() -> None:
    def kopf_line(message: str, level: int = logging.INFO) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)

    quiet = logs.QuietWatchFilter()
    assert not quiet.filter(kopf_line("Handler 'watch-rollbacks' succeeded."))
    assert quiet.filter(kopf_line("Handler 'run' succeeded."))
    failed = "Handler 'watch-rollbacks' failed with an exception and will try again in 60 seconds"
    assert quiet.filter(kopf_line(failed, logging.ERROR))
    assert quiet.filter(_record("Handler 'watch-rollbacks' succeeded."))  # not kopf's


def test_verbose_keeps_the_watch_handlers_lines() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        quiet = logs.configure("text")
        verbose = logs.configure("text", verbose=True)
        assert any(isinstance(f, logs.QuietWatchFilter) for f in quiet.filters)
        assert not any(isinstance(f, logs.QuietWatchFilter) for f in verbose.filters)
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
