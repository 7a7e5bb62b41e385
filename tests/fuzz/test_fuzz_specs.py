"""Generated specs against both layers: valid ones pass both and round-trip, invalid ones are
refused by the expected layer with an error that names the broken field, and nothing crashes.

Deterministic (`derandomize=True`, no example database) and bounded, so CI runs the same
examples every time. The figures are printed (`pytest -s`) and kept as test properties.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import Rollback
from tests.fuzz import faults, specs
from tests.schema import schema_errors

VALID_EXAMPLES = 200
EXAMPLES_PER_FAULT = 8
MIN_DISTINCT_INVALID = 200
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def test_valid_specs_pass_schema_and_models_alike_and_round_trip(
    record_property: Callable[[str, object], None],
) -> None:
    kinds: Counter[str] = Counter()
    distinct: set[str] = set()
    started = time.perf_counter()

    @settings(FUZZ, max_examples=VALID_EXAMPLES)
    @given(specs.manifests())
    def check(manifest: specs.Json) -> None:
        assert faults.judge(manifest) == faults.Verdict([], None)
        model_class = Rollback if manifest["kind"] == "Rollback" else RollbackPolicy
        model = model_class.model_validate(manifest)
        wire = {"apiVersion": manifest["apiVersion"], "kind": manifest["kind"], **model.wire()}
        assert schema_errors(wire) == []
        again = model_class.model_validate(wire)
        assert again == model
        assert again.wire() == model.wire()
        kinds[manifest["kind"]] += 1
        distinct.add(faults.canonical(manifest))

    check()
    seconds = time.perf_counter() - started
    print(f"\nfuzz valid: {len(distinct)} distinct ({dict(kinds)}) in {seconds:.1f}s")
    record_property("valid_distinct", len(distinct))
    assert kinds["Rollback"] > 50
    assert kinds["RollbackPolicy"] > 50


def test_invalid_specs_are_refused_by_the_expected_layer_naming_the_field(
    record_property: Callable[[str, object], None],
) -> None:
    by_fault: Counter[str] = Counter()
    by_layers: Counter[str] = Counter()
    distinct: set[str] = set()
    started = time.perf_counter()

    def check(case: faults.Case) -> None:
        verdict = faults.judge(case.manifest)
        assert verdict.layers == case.layers, (case.fault, case.field, verdict)
        if verdict.model is not None:
            assert faults.names(verdict.model, case.field), (case.fault, case.field, verdict)
        if verdict.schema:
            text = "\n".join(verdict.schema)
            assert faults.names(text, case.field), (case.fault, case.field, verdict)
        key = faults.canonical(case.manifest)
        if key not in distinct:
            distinct.add(key)
            by_fault[f"{case.manifest['kind']}/{case.fault}"] += 1
            by_layers["+".join(sorted(verdict.layers))] += 1

    for kind, catalogue in faults.FAULTS.items():
        for fault in catalogue:
            run = settings(FUZZ, max_examples=EXAMPLES_PER_FAULT)(
                given(faults.invalid_cases(kind, fault))(check)
            )
            run()
    seconds = time.perf_counter() - started
    print(
        f"\nfuzz invalid: {len(distinct)} distinct in {seconds:.1f}s; rejected by {dict(by_layers)}"
    )
    print("by fault:", dict(sorted(by_fault.items())))
    record_property("invalid_distinct", len(distinct))
    record_property("invalid_by_layers", dict(by_layers))
    assert len(distinct) >= MIN_DISTINCT_INVALID
    every = {f"{kind}/{f.name}" for kind, found in faults.FAULTS.items() for f in found}
    assert every - set(by_fault) == set(), "faults never generated"
