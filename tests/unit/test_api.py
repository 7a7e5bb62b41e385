"""The API contract: CRDs generated from the models, and bad input refused by both."""

from __future__ import annotations

import importlib
import operator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from rollback_operator.api.common import format_duration, parse_duration
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import Rollback
from rollback_operator.api.validation import describe
from rollback_operator.cli import crd_files
from sandbox import manifests
from tests.invalid_manifests import ALL_CASES, Case
from tests.schema import schema_errors

ROOT = Path(__file__).resolve().parents[2]


def _model_error(manifest: dict[str, object]) -> str:
    model = Rollback if manifest["kind"] == "Rollback" else RollbackPolicy
    with pytest.raises(ValidationError) as caught:
        model.model_validate(manifest)
    return describe(caught.value)


def test_operator_folder_does_not_shadow_the_stdlib_operator_module() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()
    assert "site-packages" not in (operator.__file__ or "")
    assert Path(operator.__file__ or "").parent != ROOT / "operator"
    assert importlib.import_module("rollback_operator").__file__


@pytest.mark.parametrize("folder", ["crds", "charts/rollback-operator/files/crds"])
def test_committed_crds_match_the_models(folder: str) -> None:
    generated = crd_files()
    committed = {p.name: p.read_text() for p in (ROOT / folder).glob("*.yaml")}
    assert committed == generated, "run `make crds`"


def test_crds_carry_names_short_names_category_and_status_subresource() -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in map(yaml.safe_load, crd_files().values())}
    assert crds["Rollback"]["spec"]["names"]["shortNames"] == ["rb"]
    assert crds["RollbackPolicy"]["spec"]["names"]["shortNames"] == ["rbp"]
    for crd in crds.values():
        version = crd["spec"]["versions"][0]
        assert crd["spec"]["names"]["categories"] == ["rollback"]
        assert version["subresources"] == {"status": {}}
        assert "$ref" not in yaml.safe_dump(version)
    columns = [
        c["name"] for c in crds["Rollback"]["spec"]["versions"][0]["additionalPrinterColumns"]
    ]
    assert columns == ["Phase", "Mode", "Targets", "Reason", "Age"]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ALL_CASES])
def test_invalid_manifest_is_refused_by_the_models_naming_the_field(case: Case) -> None:
    message = _model_error(case.manifest)
    assert case.field in message, message


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id) for c in ALL_CASES if c.schema and not c.cel]
)
def test_invalid_manifest_is_refused_by_the_crd_schema(case: Case) -> None:
    assert schema_errors(case.manifest)


def test_at_least_thirty_invalid_manifests_are_tested() -> None:
    assert len(ALL_CASES) >= 30
    assert sum(c.schema for c in ALL_CASES) >= 30


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param(manifests.policy(), id="policy"),
        pytest.param(manifests.rollback(), id="quick-rollback"),
        pytest.param(
            manifests.rollback(
                mode="full",
                to={"storage": {"asOf": "2024-01-01T00:00:00Z"}, "database": {"backup": "b.dump"}},
                version="v1.0.0",
            ),
            id="full-rollback-with-pins",
        ),
    ],
)
def test_valid_manifest_passes_schema_and_models_and_round_trips(
    manifest: dict[str, object],
) -> None:
    assert schema_errors(manifest) == []
    model = (Rollback if manifest["kind"] == "Rollback" else RollbackPolicy).model_validate(
        manifest
    )
    wire = {"apiVersion": manifest["apiVersion"], "kind": manifest["kind"], **model.wire()}
    assert schema_errors(wire) == []
    again = type(model).model_validate(wire)
    assert again == model


def test_example_manifests_are_valid() -> None:
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in ("Rollback", "RollbackPolicy"):
                assert schema_errors(doc) == [], path.name
                _ = (Rollback if doc["kind"] == "Rollback" else RollbackPolicy).model_validate(doc)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("24h", 86400), ("1h30m", 5400), ("250ms", 0.25)],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_durations_format_back() -> None:
    assert format_duration(timedelta(hours=3, minutes=12)) == "3h12m"
    assert format_duration(timedelta(0)) == "0s"


def test_quick_rollback_defaults_to_frontend_and_backend_and_full_to_all_four() -> None:
    quick = Rollback.model_validate(manifests.rollback()).spec
    full = Rollback.model_validate(manifests.rollback(mode="full")).spec
    assert [t.value for t in quick.chosen_targets()] == ["frontend", "backend"]
    assert [t.value for t in full.chosen_targets()] == [
        "frontend",
        "backend",
        "database",
        "storage",
    ]
