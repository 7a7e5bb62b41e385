"""The RestorePoint model and the policy's `restorePoints` schedule refuse what they cannot take."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rollback_operator.api.common import Target
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.restorepoint import RestorePointSchedule, RestorePointSpec
from rollback_operator.api.validation import describe
from sandbox import manifests


@pytest.mark.parametrize("cron", ["0 */6 * * *", "30 2 * * 1-5", "0 0 1 * *"])
def test_five_field_cron_schedules_are_accepted(cron: str) -> None:
    assert RestorePointSchedule(schedule=cron).schedule == cron


@pytest.mark.parametrize("cron", ["61 * * * *", "* * * *", "0 0 * * * *", "@daily", "0 25 * * *"])
def test_a_schedule_cron_cannot_read_is_refused_naming_the_field(cron: str) -> None:
    manifest = manifests.policy(restorePoints={"schedule": cron})
    with pytest.raises(ValidationError) as caught:
        RollbackPolicy.model_validate(manifest)
    assert describe(caught.value).startswith("spec.restorePoints.schedule: ")


def test_a_point_takes_the_layers_the_policy_has_unless_it_names_them() -> None:
    spec = RestorePointSpec.model_validate({"policyRef": {"name": "p"}})
    assert spec.chosen_targets([Target.FRONTEND, Target.DATABASE]) == [Target.DATABASE]
    named = RestorePointSpec.model_validate({"policyRef": {"name": "p"}, "targets": ["storage"]})
    assert named.chosen_targets([Target.DATABASE, Target.STORAGE]) == [Target.STORAGE]


def test_a_point_naming_a_layer_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="targets: repeated database"):
        RestorePointSpec.model_validate(
            {"policyRef": {"name": "p"}, "targets": ["database", "database"]}
        )
