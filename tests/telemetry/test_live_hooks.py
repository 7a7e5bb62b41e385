"""LiveRollback.save counts what each save makes durable, and names the step a task runs.

Driven by the real step engine (quick mode: two steps in parallel tasks) against the in-memory
fakes, with a Kubernetes gateway that keeps the patched status, like the API server would.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any, cast

import kopf
import pytest

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import Phase, Rollback
from rollback_operator.handlers.deps import Deps
from rollback_operator.handlers.live import LiveRollback
from rollback_operator.reconcile.engine import Engine
from rollback_operator.reconcile.runner import RetryPolicy
from rollback_operator.settings import Settings
from rollback_operator.telemetry import logs
from rollback_operator.telemetry import metrics as operator_metrics
from sandbox import manifests
from sandbox.fakes.host import SteppingClock
from sandbox.fakes.memory import FakeProviderFactory, FakeWorld


class StatusStore:
    """The gateway as one Rollback sees it: merge patches applied to one stored status."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status, self.patches = status, 0
        self.config_maps: dict[str, dict[str, str]] = {}

    async def patch_status(self, plural: str, ns: str, name: str, patch: dict[str, Any]) -> None:
        for _ in range(3):  # a round trip: other tasks (parallel steps) run meanwhile
            await asyncio.sleep(0)
        self.status = _apply(self.status, patch)
        self.patches += 1

    async def upsert_config_map(
        self, ns: str, name: str, data: dict[str, str], owner: dict[str, Any]
    ) -> None:
        self.config_maps[name] = data

    async def add_log_line(self, ns: str, name: str, key: str, line: str) -> None:
        self.config_maps.setdefault(name, {})[key] = line


def _apply(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _apply(out[key], value)
        else:
            out[key] = value
    return out


class QuietLive(LiveRollback):
    """LiveRollback whose Events are only logged (no kopf poster runs here)."""

    async def event(self, *, warning: bool, reason: str, message: str) -> None:
        logging.getLogger("tests.telemetry").info("%s: %s", reason, message)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged during the test, formatted as the operator's JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def _run(store: StatusStore, manifest: dict[str, Any], telemetry: Any) -> Phase | None:
    body = kopf.Body(cast(kopf.RawBody, {**manifest, "status": store.status}))
    deps = Deps(settings=Settings(metrics_port=0), kube=cast(Any, store),
                providers=cast(Any, None), telemetry=telemetry)  # fmt: skip
    live = QuietLive(body, cast(Any, None), deps, [])
    world = FakeWorld()
    policy = RollbackPolicy.model_validate(manifests.policy())
    providers = await FakeProviderFactory(world).build(policy, cast(Any, None))
    rollback = Rollback.model_validate({**manifest, "status": store.status})
    retry = RetryPolicy(max_attempts=1, base_delay=0, max_delay=0)
    engine = Engine(
        recorder=live, controls=live, clock=SteppingClock(), reports=live, retry=retry, tick=0.01
    )
    return await engine.run(rollback, policy.spec, providers)


async def test_a_rollback_and_each_step_count_once_and_a_restart_counts_nothing() -> None:
    telemetry = operator_metrics.Telemetry()
    manifest = manifests.stored(manifests.rollback("rb-1"))
    store = StatusStore({})
    assert await _run(store, manifest, telemetry) == Phase.SUCCEEDED
    get = telemetry.registry.get_sample_value
    result = {"mode": "quick", "trigger": "manual", "result": "Succeeded"}
    assert get("rollback_operator_rollbacks_total", result) == 1
    assert (
        get(
            "rollback_operator_rollback_duration_seconds_count",
            {"mode": "quick", "result": "Succeeded"},
        )
        == 1
    )
    steps = store.status["steps"]
    for step in steps:
        labels = {"step": step["name"], "target": step.get("target", "")}
        assert get("rollback_operator_step_duration_seconds_count", labels) == 1, labels
    patches = store.patches
    assert await _run(store, manifest, telemetry) == Phase.SUCCEEDED  # resumed: terminal
    assert store.patches == patches
    assert get("rollback_operator_rollbacks_total", result) == 1


async def test_lines_from_a_step_task_name_that_step_even_when_steps_run_in_parallel(
    json_log: io.StringIO,
) -> None:
    manifest = manifests.stored(manifests.rollback("rb-2"))

    async def daemon() -> None:
        logs.bind_rollback("default", "rb-2")
        await _run(StatusStore({}), manifest, operator_metrics.Telemetry())

    await asyncio.create_task(daemon())
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    succeeded = [x for x in lines if x["message"].startswith("StepSucceeded: ")]
    assert len(succeeded) >= 4, succeeded  # notify, frontend, backend, verify, report, ...
    for line in succeeded:
        step_and_target = line["message"].split(": ", 2)[1]
        named = line["step"] + (f" ({line['target']})" if "target" in line else "")
        assert line["rollback"] == "default/rb-2"
        assert step_and_target == named, line
    ended = [x for x in lines if x["message"].startswith("Step ")]
    assert {x["step"] for x in ended} == {x["step"] for x in succeeded}
    assert all("step" not in x for x in lines if x["message"].startswith("Succeeded"))
