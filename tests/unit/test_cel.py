"""Every cross-field check of the models has its twin in the CRDs, so the API server has it.

A model validator that the generated schema does not carry lets `kubectl apply` admit what
the operator then refuses. `tests/apiserver/test_crd_rules.py` proves the rules on a real API
server; this guard fails as soon as a validator is added without one.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import pytest
from pydantic import BaseModel

from rollback_operator import api
from rollback_operator.api import policy
from rollback_operator.api.crd import schema_of

COVERED_BY_THE_SCHEMA = {
    policy.Verification: "check names are list-map keys: the server refuses repeats",
    policy.Statuspage: "componentIds is a set: the server refuses repeats",
}


def _validated_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for info in pkgutil.iter_modules(api.__path__):  # every module: a new one is seen too
        module = importlib.import_module(f"{api.__name__}.{info.name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            if not issubclass(value, BaseModel) or value.__module__ != module.__name__:
                continue
            checked = bool(value.__pydantic_decorators__.model_validators)
            if checked and value not in COVERED_BY_THE_SCHEMA:
                found.append(value)
    return found


VALIDATED = _validated_models()


def test_the_guard_sees_the_models_with_cross_field_checks() -> None:
    names = {m.__name__ for m in VALIDATED}
    assert {"Rule", "AutomaticRollback", "RollbackPolicySpec", "RollbackSpec"} <= names
    assert {"Threshold", "FrontendTarget"} <= names


@pytest.mark.parametrize("model", VALIDATED, ids=[m.__name__ for m in VALIDATED])
def test_each_model_with_a_cross_field_check_carries_cel_rules(model: Any) -> None:
    rules = schema_of(model).get("x-kubernetes-validations")
    assert rules, f"{model.__name__} has a model validator but no CEL rule (api/cel.py)"
    assert all(rule["message"] for rule in rules)


def test_the_checks_left_to_the_schema_are_list_types_the_server_keeps_unique() -> None:
    checks = policy.Verification.model_fields
    assert set(checks) >= {"health_checks", "sql_checks"}
    verification = schema_of(policy.Verification)["properties"]
    assert verification["healthChecks"]["x-kubernetes-list-map-keys"] == ["name"]
    assert verification["sqlChecks"]["x-kubernetes-list-map-keys"] == ["name"]
    statuspage = schema_of(policy.Statuspage)["properties"]
    assert statuspage["componentIds"]["x-kubernetes-list-type"] == "set"
