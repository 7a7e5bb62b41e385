"""With `--log-format json` every line the operator writes is one JSON object, each line inside
a rollback names it, lines inside a step name the step, and no secret is in any of them.

The frontend and backend go through the real Vercel and Railway adapters to their fake servers,
so the tokens really travel through the HTTP layer whose lines end up in this log.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox import manifests
from sandbox.fakes.saas import RAILWAY_TOKEN, VERCEL_TOKEN, serving
from tests import known_secrets
from tests.telemetry.conftest import MetricsBed

pytestmark = pytest.mark.e2e


def test_json_lines_name_rollback_and_step_and_carry_no_secret(mbed: MetricsBed) -> None:
    mbed.log_format = "json"
    with serving() as saas:
        mbed.start(real=("frontend", "backend"))
        for secret in saas.secrets():
            mbed.apply(secret)
        mbed.apply(saas.policy())
        mbed.apply(manifests.rollback("quick"))
        body = mbed.wait_for("quick", {"Succeeded", "Failed", "PartiallyFailed"})
        assert body["status"]["phase"] == "Succeeded", body["status"]
        mbed.stop()  # every line is written
    text = mbed.log_path().read_text()
    lines: list[dict[str, Any]] = [json.loads(raw) for raw in text.splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    ours = [x for x in lines if x.get("rollback") == f"{mbed.namespace}/quick"]
    kopf_lines = [x for x in ours if x["logger"].startswith("kopf")]
    assert kopf_lines, "kopf's per-object lines name the rollback too"
    steps = {(x["step"], x.get("target")) for x in ours if "step" in x}
    expected = {(s["name"], s.get("target")) for s in body["status"]["steps"]}
    assert steps == expected
    for line in ours:
        if line["message"].startswith("StepSucceeded: "):
            target = f" ({line['target']})" if "target" in line else ""
            assert line["message"].split(": ")[1] == line["step"] + target, line
    secrets = {VERCEL_TOKEN: "Vercel token", RAILWAY_TOKEN: "Railway token",
               **known_secrets.REGISTRY.values()}  # fmt: skip
    leaked = [what for value, what in secrets.items()
              if any(n in text for n in known_secrets.needles(value))]  # fmt: skip
    assert leaked == []  # names what leaked, never the value
