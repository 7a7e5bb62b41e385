"""Small pure parts: the queue order, index entries, merge patches, error messages, the CLI."""

from __future__ import annotations

from typing import Any, cast

import kopf
import pytest
import yaml
from pydantic import ValidationError

from rollback_operator.api import TRIGGER_LABEL
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.rollback import Phase
from rollback_operator.api.validation import describe
from rollback_operator.cli import _parser, main, settings_from
from rollback_operator.handlers.index import index_policies, rollback_entry
from rollback_operator.handlers.patching import merge_diff
from rollback_operator.reconcile.automatic import EPISODES_ANNOTATION
from rollback_operator.reconcile.queue import RollbackEntry, position
from sandbox import manifests


def _entry(name: str, phase: Phase, targets: set[str], created: str = "t1") -> RollbackEntry:
    return RollbackEntry(
        uid=name, name=name, created=created, phase=phase, targets=frozenset(targets)
    )


def _indexed(manifest: dict[str, Any]) -> RollbackEntry:
    return rollback_entry(kopf.Body(cast(kopf.RawBody, manifests.stored(manifest))))


def test_rollback_runs_at_once_when_nothing_overlaps() -> None:
    me = _entry("me", Phase.QUEUED, {"frontend"}, "t2")
    others = [
        _entry("other", Phase.RUNNING, {"backend"}),
        _entry("old", Phase.SUCCEEDED, {"frontend"}),
    ]
    assert position(me, others, set()) == 0


def test_rollback_waits_behind_a_running_one_and_earlier_queued_ones() -> None:
    me = _entry("me", Phase.QUEUED, {"frontend", "backend"}, "t3")
    others = [
        _entry("running", Phase.RUNNING, {"frontend"}, "t1"),
        _entry("earlier", Phase.QUEUED, {"backend"}, "t2"),
        _entry("later", Phase.QUEUED, {"backend"}, "t4"),
        _entry("awaiting", Phase.AWAITING_APPROVAL, {"backend"}, "t0"),
    ]
    assert position(me, others, set()) == 2


def test_rollback_admitted_in_this_process_blocks_before_its_phase_is_visible() -> None:
    me = _entry("me", Phase.QUEUED, {"frontend"}, "t2")
    other = _entry("other", Phase.QUEUED, {"frontend"}, "t3")
    assert position(me, [other], {"other"}) == 1


def test_an_indexed_rollback_acts_on_its_mode_s_default_targets_until_it_names_its_own() -> None:
    assert _indexed(manifests.rollback()).targets == {"frontend", "backend"}
    full = _indexed(manifests.rollback(mode="full"))
    assert full.targets == {"frontend", "backend", "database", "storage"}
    named = _indexed(manifests.rollback(mode="full", targets=["database"]))
    assert named.targets == {"database"}
    planned = {**manifests.rollback(mode="full"), "status": {"targets": ["storage"]}}
    assert _indexed(planned).targets == {"storage"}


def test_an_indexed_rollback_whose_spec_is_invalid_acts_on_nothing() -> None:
    stray_pin = manifests.rollback(to={"database": {"backup": "b.dump"}})
    entry = _indexed(stray_pin)
    assert entry.active
    assert entry.targets == frozenset()


def test_an_indexed_automatic_rollback_lists_its_episodes_and_a_manual_one_none() -> None:
    episodes = {EPISODES_ANNOTATION: "errors@t1,latency@t2"}
    auto = manifests.rollback()
    auto["metadata"] |= {"labels": {TRIGGER_LABEL: "policy"}, "annotations": episodes}
    manual = manifests.rollback()
    manual["metadata"] |= {"annotations": episodes}
    assert _indexed(auto).episodes == {"errors@t1", "latency@t2"}
    assert _indexed(manual).episodes == frozenset()


def test_merge_diff_sends_only_changes_and_nulls_removed_keys() -> None:
    old = {"phase": "Queued", "queuePosition": 2, "plan": {"a": 1, "b": 2}}
    new = {"phase": "Running", "plan": {"a": 1, "b": 3}}
    assert merge_diff(old, new) == {"phase": "Running", "queuePosition": None, "plan": {"b": 3}}
    assert merge_diff(new, new) == {}


def test_validation_message_names_the_field_path() -> None:
    bad = manifests.policy(
        metrics={"prometheus": {"url": "http://p"}},
        rules=[{"name": "r", "query": "up", "critical": {"above": 1}, "for": "soon"}],
    )
    with pytest.raises(ValidationError) as caught:
        RollbackPolicy.model_validate(bad)
    message = describe(caught.value)
    assert message.startswith("spec.rules[0].for: ")


async def test_an_invalid_policy_is_indexed_with_a_message_naming_its_field_once() -> None:
    bad = manifests.policy(restartEverything=True)
    body = kopf.Body(cast(kopf.RawBody, manifests.stored(bad)))
    indexed = await index_policies(body=body, namespace="default", name="mindmate")
    message = indexed[("default", "mindmate")]
    assert message.startswith("spec.restartEverything: Extra inputs are not permitted"), message
    assert "spec.spec" not in message


def test_crds_command_prints_every_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    kinds = [d["spec"]["names"]["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)]
    assert kinds == ["RollbackPolicy", "Rollback", "RestorePoint"]


def test_run_flags_override_settings_and_default_to_all_namespaces() -> None:
    scoped = settings_from(_parser().parse_args(["run", "-n", "prod", "-n", "staging"]))
    assert scoped.namespaces == ["prod", "staging"]
    assert not scoped.all_namespaces
    assert settings_from(_parser().parse_args(["run"])).all_namespaces


def test_namespace_and_all_namespaces_are_exclusive() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "-n", "prod", "--all-namespaces"])
