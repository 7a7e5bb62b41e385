"""`kubectl rollback candidates` without a cluster: the view, the narrowed policy, the Secret
reader that explains refusals, and per-target errors that do not hide the other targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollback_operator import plugin, plugin_candidates, plugin_view
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.plugin_rollbacks import PluginError
from rollback_operator.providers import registry
from rollback_operator.providers.base import Candidate, Providers
from rollback_operator.providers.errors import NotFoundError, PermanentError
from sandbox import manifests
from sandbox.fakes.memory import FakeDatabase, FakeDeploymentTarget, FakeWorld
from tests.providers.conftest import FAKES, DictSecrets

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def policy(**spec: Any) -> RollbackPolicy:
    return RollbackPolicy.model_validate(manifests.policy(**spec))


def lines_with(text: str, word: str) -> list[str]:
    return [line for line in text.splitlines() if word in line]


# ----- the view -----


def test_the_view_marks_the_live_row_with_a_star_and_the_default_with_an_arrow() -> None:
    rows = [
        Candidate("dpl_new", NOW - timedelta(hours=2), "READY", True, False, "web-new.app"),
        Candidate("dpl_old", NOW - timedelta(days=3), "READY", False, True),
    ]

    text = plugin_view.candidates(policy(), {"frontend": rows}, NOW)

    (live,) = lines_with(text, "dpl_new")
    (default,) = lines_with(text, "dpl_old")
    assert live.split()[:6] == [
        "*",
        "dpl_new",
        "2024-05-01T10:00:00Z",
        "2h",
        "READY",
        "web-new.app",
    ]
    assert default.split() == [
        "dpl_old",
        "2024-04-28T12:00:00Z",
        "3d",
        "READY",
        "-",
        "<-",
        "default",
    ]
    assert "<- default" not in live
    assert "frontend: Vercel project prj_123" in text
    assert text.endswith(plugin_view.LEGEND)


def test_the_view_shows_a_targets_error_and_an_empty_list_in_their_sections() -> None:
    found: dict[str, list[Candidate] | str] = {"backend": "railway: not authorized", "database": []}

    text = plugin_view.candidates(policy(), found, NOW)

    assert "backend: Railway service s-1, environment e-1\n  error: railway: not authorized" in text
    assert "database: PostgreSQL backups in s3://mindmate-backups/database/\n  (none)" in text


def test_storage_is_a_note_naming_the_bucket_and_where_its_past_comes_from() -> None:
    versions = plugin_view.candidates(policy(), {}, NOW)
    dated = policy(targets={"storage": {"s3": {"backups": {"bucket": "bk", "prefix": "files/"}}}})

    assert "storage: s3://mindmate-files/" in versions
    assert "get-bucket-versioning --bucket mindmate-files" in versions
    assert "dated folders under s3://bk/files/" in plugin_view.candidates(dated, {}, NOW)


def test_a_policy_without_storage_has_no_storage_note() -> None:
    assert "storage:" not in plugin_view.candidates(policy(targets={"storage": None}), {}, NOW)


# ----- the plugin's pieces -----


async def test_only_the_secrets_of_deployment_and_database_targets_are_read() -> None:
    notify = {"slack": {"webhookSecretRef": {"name": "slack", "key": "url"}}}
    full = policy(notifications=notify, verification={"storage": True})
    secrets = DictSecrets({
        ("default", "vercel", "token"): "v", ("default", "railway", "token"): "r",
        ("default", "db", "url"): "postgresql://u:p@db/app",
        ("default", "aws", "access-key-id"): "a", ("default", "aws", "secret-access-key"): "s",
    })  # fmt: skip

    only = plugin_candidates.lookup_only(full)
    built = await registry.RealProviderFactory(FAKES).build(only, secrets)

    assert {name for _, name, _ in secrets.reads} == {"vercel", "railway", "db", "aws"}
    assert built.storage is None
    assert built.notifiers == []
    assert built.verifier is None
    assert full.spec.notifications.slack is not None  # the original is left alone


class Refusing:
    """A SecretReader that fails the way `KubeApi.read` does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def read(self, namespace: str, name: str, key: str) -> str:
        raise self.error


async def test_a_refused_secret_read_explains_why_and_what_to_do() -> None:
    denied = PermanentError("Secret prod/vercel: access denied (403)", provider="kubernetes")

    with pytest.raises(PluginError) as raised:
        await plugin_candidates.UserSecrets(Refusing(denied)).read("prod", "vercel", "token")

    text = str(raised.value)
    assert "no permission to read Secret prod/vercel" in text
    assert "kubectl auth can-i get secret/vercel -n prod" in text
    assert "kubectl rollback plan" in text


async def test_a_missing_secret_says_the_policy_names_it() -> None:
    missing = NotFoundError("Secret prod/db not found", provider="kubernetes")

    with pytest.raises(PluginError, match="the policy names Secret prod/db"):
        await plugin_candidates.UserSecrets(Refusing(missing)).read("prod", "db", "url")


async def test_one_targets_error_is_its_text_and_the_others_are_still_listed() -> None:
    world = FakeWorld()
    world.inject("backend.candidates", {"kind": "permanent"})
    providers = Providers(
        frontend=FakeDeploymentTarget(world, "frontend"),
        backend=FakeDeploymentTarget(world, "backend"),
        database=FakeDatabase(world),
    )

    found = await plugin_candidates.candidates_of(providers, 10)

    assert found["backend"] == "fake: injected permanent fault"
    frontend = found["frontend"]
    assert not isinstance(frontend, str)
    assert [(c.id, c.live, c.default) for c in frontend] == [
        ("dpl_new", True, False), ("dpl_old", False, True)
    ]  # fmt: skip
    database = found["database"]
    assert not isinstance(database, str)
    assert [c.default for c in database] == [True, False]


def test_the_limit_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        plugin.main(["candidates", "mindmate", "--limit", "0"])

    assert "must be at least 1" in capsys.readouterr().err
