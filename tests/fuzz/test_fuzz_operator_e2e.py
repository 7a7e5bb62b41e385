"""Generated invalid specs against the real API server and the running operator: each is refused
by the server naming the broken field (every fault the CRD schema should catch is; its CEL
rules catch the cross-field ones) or stalls with InvalidSpec naming it; no provider is called,
and the operator stays up and still rolls back.

The sample is deterministic: for each fault the models refuse, the first generated cases of a
derandomized run, taken in turn until `SAMPLE` manifests. Manifests go in as JSON (kubectl
accepts it) so generated text of any kind survives the trip.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import Phase, given, settings

from sandbox import manifests
from tests.e2e.bed import Bed
from tests.fuzz import faults
from tests.fuzz.test_fuzz_specs import FUZZ

pytestmark = pytest.mark.e2e
SAMPLE = 30
PER_FAULT = 2


def _keeper(found: list[faults.Case]) -> Callable[[faults.Case], None]:
    def keep(case: faults.Case) -> None:
        found.append(case)

    return keep


def sample_cases() -> list[faults.Case]:
    """Cases the operator must refuse (the models refuse them), spread over every such fault."""
    per_fault: list[list[faults.Case]] = []
    for kind, catalogue in faults.FAULTS.items():
        for fault in catalogue:
            if "model" not in fault.layers:
                continue
            found: list[faults.Case] = []
            collect = settings(FUZZ, max_examples=PER_FAULT, phases=[Phase.generate])(
                given(faults.invalid_cases(kind, fault))(_keeper(found))
            )
            collect()
            per_fault.append(found)
    cases = [c for round_ in zip(*per_fault, strict=False) for c in round_]
    return cases[:SAMPLE]


def _admitted(bed: Bed, case: faults.Case, manifest: dict[str, Any]) -> bool:
    """Apply a broken manifest: True if the server admitted it. A refusal must come from the
    CRD's checks (schema or CEL) and name the field; a fault the schema layer catches must be
    refused."""
    done = bed.cluster.kubectl("apply", "-f", "-", stdin=json.dumps(manifest), check=False)
    if done.returncode == 0:
        assert "schema" not in case.layers, (case.fault, case.field, "admitted by the server")
        return True
    assert faults.names(done.stderr, case.field), (case.fault, case.field, done.stderr)
    return False


def _apply_cases(bed: Bed, cases: list[faults.Case]) -> list[tuple[str, str]]:
    """Apply every case in the bed's namespace (a broken policy with a Rollback that refers to
    it); (field the condition must name, Rollback name) for each one the server admitted."""
    stall: list[tuple[str, str]] = []
    for index, case in enumerate(cases):
        manifest = json.loads(json.dumps(case.manifest))
        manifest["metadata"]["namespace"] = bed.namespace
        if manifest["kind"] == "Rollback":
            manifest["metadata"]["name"] = f"fuzz-{index}"
            ref = manifest["spec"].get("policyRef")
            if case.field.startswith("spec.policyRef") is False and isinstance(ref, dict):
                ref["name"] = "mindmate"
            if _admitted(bed, case, manifest):
                stall.append((case.field, f"fuzz-{index}"))
        else:
            manifest["metadata"]["name"] = f"fuzz-pol-{index}"
            if _admitted(bed, case, manifest):
                bed.apply(manifests.rollback(f"fuzz-{index}",
                                             policyRef={"name": f"fuzz-pol-{index}"}))  # fmt: skip
                stall.append((case.field, f"fuzz-{index}"))
    return stall


def _stalled(bed: Bed, name: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = bed.get("rollback", name)
        conditions: list[dict[str, Any]] = body.get("status", {}).get("conditions", [])
        found = [c for c in conditions if c["type"] == "Stalled"]
        if found or time.monotonic() > deadline:
            assert found, f"{name}: {body.get('status')}\n{bed.logs()[-3000:]}"
            return found[0]
        time.sleep(0.05)


def test_sampled_invalid_specs_stall_naming_the_field_and_the_operator_stays_up(
    bed: Bed,
) -> None:
    cases = sample_cases()
    assert len(cases) == SAMPLE
    assert len({c.fault for c in cases}) >= 10
    bed.start()
    bed.apply(manifests.policy())
    stall = _apply_cases(bed, cases)  # today's CEL rules leave the operator none of them
    for field, name in stall:
        stalled = _stalled(bed, name)
        assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSpec"), (name, stalled)
        assert faults.names(stalled["message"], field), (name, field, stalled["message"])
    assert bed.world().state["requests"] == {}
    assert bed.process is not None
    assert bed.process.poll() is None, "the operator died"
    bed.apply(manifests.rollback("still-works"))
    assert bed.wait_for("still-works", {"Succeeded", "Failed"})["status"]["phase"] == "Succeeded"
