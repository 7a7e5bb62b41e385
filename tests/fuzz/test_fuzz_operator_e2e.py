"""Generated invalid specs against the running operator: each stalls with InvalidSpec naming the
broken field, no provider is called, and the operator stays up and still rolls back.

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


def _apply(bed: Bed, manifest: dict[str, Any]) -> None:
    bed.cluster.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))


def _objects(cases: list[faults.Case]) -> list[tuple[str, dict[str, Any]]]:
    """(field the Rollback's condition must name, manifest) for every object to apply."""
    out: list[tuple[str, dict[str, Any]]] = []
    for index, case in enumerate(cases):
        manifest = json.loads(json.dumps(case.manifest))
        if manifest["kind"] == "Rollback":
            manifest["metadata"]["name"] = f"fuzz-{index}"
            ref = manifest["spec"].get("policyRef")
            if case.field.startswith("spec.policyRef") is False and isinstance(ref, dict):
                ref["name"] = "mindmate"
            out.append((case.field, manifest))
        else:
            manifest["metadata"]["name"] = f"fuzz-pol-{index}"
            rollback = manifests.rollback(f"fuzz-{index}", policyRef={"name": f"fuzz-pol-{index}"})
            out += [("", manifest), (case.field, rollback)]
    return out


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
    _apply(bed, manifests.policy())
    objects = _objects(cases)
    for _, manifest in objects:
        _apply(bed, manifest)
    for field, manifest in objects:
        if manifest["kind"] != "Rollback":
            continue
        name = manifest["metadata"]["name"]
        stalled = _stalled(bed, name)
        assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSpec"), (name, stalled)
        assert faults.names(stalled["message"], field), (name, field, stalled["message"])
    assert bed.world().state["requests"] == {}
    assert bed.process is not None
    assert bed.process.poll() is None, "the operator died"
    _apply(bed, manifests.rollback("still-works"))
    assert bed.wait_for("still-works", {"Succeeded", "Failed"})["status"]["phase"] == "Succeeded"
