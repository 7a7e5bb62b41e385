"""Approval is an authorization control: the chart's ValidatingAdmissionPolicy on the real API
server, with two people, alice and bob (static users of the test server, each allowed to
create, read and annotate Rollbacks in one namespace and nothing more).

The policy and its binding are what the real `helm template` renders from the chart, bound to
the test's namespace (`watchNamespaces`), so the rest of the shared server is untouched. Each
claim is a request the API server accepts or refuses, with the refusal's own words; then the
same through `kubectl rollback start` and `approve`, which sign with the caller's Kubernetes
identity (a SelfSubjectReview), never the OS user (these tests run as root).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from sandbox import manifests
from tests.apiserver.server import KubeApiServer
from tests.apiserver.test_apiserver import eventually
from tests.chart import helm
from tests.e2e.test_plugin_e2e import kubectl_rollback

REQUESTED_BY = "rollback.mindmate.app/requested-by"
APPROVED_BY = "rollback.mindmate.app/approved-by"
TEMPLATE = "templates/approval-policy.yaml"
PEOPLE = ("alice", "bob")
ROLLBACKS = "rollbacks.rollback.mindmate.app"


def rendered_policy(release: str, values: list[str]) -> list[dict[str, Any]]:
    """The chart's approval policy objects, as `helm template --set VALUES` renders them."""
    argv = ["template", release, str(helm.CHART), "--namespace", "operators"]
    argv += [arg for value in values for arg in ("--set", value)]
    try:
        printed = helm.helm(*argv, "--show-only", TEMPLATE)
    except helm.HelmError as error:
        if "could not find template" in str(error):  # the value turned the template off
            return []
        raise
    return [doc for doc in yaml.safe_load_all(printed) if doc]


def rollback_editor(namespace: str) -> list[dict[str, Any]]:
    """A Role to create, read and annotate Rollbacks (and read policies) in `namespace`, bound
    to alice and bob: what a team's on-call engineers would have."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "rollback-editor", "namespace": namespace},
        "rules": [
            {"apiGroups": ["rollback.mindmate.app"], "resources": ["rollbacks"],
             "verbs": ["get", "list", "watch", "create", "patch", "update"]},
            {"apiGroups": ["rollback.mindmate.app"], "resources": ["rollbackpolicies"],
             "verbs": ["get", "list"]},
        ],
    }  # fmt: skip
    people = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": p} for p in PEOPLE]
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "rollback-editor", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "rollback-editor"},
        "subjects": people,
    }  # fmt: skip
    return [role, binding]


@dataclass
class Team:
    """alice and bob in one namespace under the chart's approval policy."""

    server: KubeApiServer
    namespace: str

    def as_(
        self, who: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """kubectl as `who` (a person, or "admin") in the namespace; never raises."""
        config = None if who == "admin" else self.server.user_kubeconfig(who)
        return self.server.kubectl(
            *args, "-n", self.namespace, kubeconfig=config, check=False, stdin=stdin
        )

    def create(
        self, who: str, name: str, annotations: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        body = manifests.rollback(name, self.namespace, requireApproval=True)
        body["metadata"]["annotations"] = annotations
        return self.as_(who, "create", "-f", "-", stdin=yaml.safe_dump(body))

    def annotate(self, who: str, name: str, *pairs: str) -> subprocess.CompletedProcess[str]:
        return self.as_(who, "annotate", "--overwrite", f"{ROLLBACKS}/{name}", *pairs)

    def annotations(self, name: str) -> dict[str, str]:
        done = self.as_("admin", "get", ROLLBACKS, name, "-o", "json")
        assert done.returncode == 0, done.stderr
        found: dict[str, str] = json.loads(done.stdout)["metadata"].get("annotations", {})
        return found


@pytest.fixture
def team(apiserver_with_crds: KubeApiServer) -> Iterator[Team]:
    server = apiserver_with_crds
    namespace = f"test-{secrets.token_hex(4)}"
    server.kubectl("create", "namespace", namespace)
    server.apply(*rollback_editor(namespace))
    release = f"approval-{secrets.token_hex(3)}"
    objects = rendered_policy(release, [f"watchNamespaces={{{namespace}}}"])
    server.apply(*objects)
    team = Team(server, namespace)
    _wait_until_enforced(team)
    try:
        yield team
    finally:
        for doc in reversed(objects):
            server.kubectl("delete", doc["kind"], doc["metadata"]["name"], check=False)


def _wait_until_enforced(team: Team) -> None:
    """A new policy takes a moment to reach admission: probe with a server-side dry run."""
    body = manifests.rollback("probe", team.namespace)
    body["metadata"]["annotations"] = {APPROVED_BY: "admin"}

    def attempt() -> subprocess.CompletedProcess[str]:
        argv = ("create", "--dry-run=server", "-f", "-")
        return team.as_("admin", *argv, stdin=yaml.safe_dump(body))

    probe = eventually(attempt, lambda done: "cannot be approved at its creation" in done.stderr)
    assert "cannot be approved at its creation" in probe.stderr, probe


# --- creation ----------------------------------------------------------------------------------


def test_an_approval_cannot_come_with_the_creation(team: Team) -> None:
    refused = team.create("alice", "rb", {REQUESTED_BY: "alice", APPROVED_BY: "bob"})
    assert refused.returncode != 0
    assert "a Rollback cannot be approved at its creation" in refused.stderr
    assert team.as_("admin", "get", ROLLBACKS, "rb").returncode != 0  # nothing was created


def test_requested_by_must_name_the_user_who_creates_the_rollback(team: Team) -> None:
    forged = team.create("alice", "rb", {REQUESTED_BY: "bob"})
    assert forged.returncode != 0
    assert "requested-by must name the user who creates the Rollback (alice), not bob" in (
        forged.stderr
    )
    created = team.create("alice", "rb", {REQUESTED_BY: "alice"})
    assert created.returncode == 0, created.stderr
    assert team.annotations("rb") == {REQUESTED_BY: "alice"}


# --- approval ----------------------------------------------------------------------------------


def test_nobody_approves_their_own_rollback(team: Team) -> None:
    assert team.create("alice", "rb", {REQUESTED_BY: "alice"}).returncode == 0
    refused = team.annotate("alice", "rb", f"{APPROVED_BY}=alice")
    assert refused.returncode != 0
    assert "alice requested this rollback and cannot approve it" in refused.stderr
    assert APPROVED_BY not in team.annotations("rb")


def test_an_approval_in_someone_elses_name_is_refused(team: Team) -> None:
    assert team.create("alice", "rb", {REQUESTED_BY: "alice"}).returncode == 0
    as_bob = team.annotate("alice", "rb", f"{APPROVED_BY}=bob")
    assert as_bob.returncode != 0
    assert "approved-by must name the user who approves (alice), not bob" in as_bob.stderr
    as_carol = team.annotate("bob", "rb", f"{APPROVED_BY}=carol")
    assert as_carol.returncode != 0
    assert "approved-by must name the user who approves (bob), not carol" in as_carol.stderr
    assert APPROVED_BY not in team.annotations("rb")


def test_requested_by_cannot_change_after_creation(team: Team) -> None:
    assert team.create("alice", "rb", {REQUESTED_BY: "alice"}).returncode == 0
    changed = team.annotate("alice", "rb", f"{REQUESTED_BY}=carol")
    removed = team.annotate("alice", "rb", f"{REQUESTED_BY}-")
    for refused in (changed, removed):
        assert refused.returncode != 0
        assert "requested-by cannot be added, changed or removed after creation" in (refused.stderr)
    assert team.create("bob", "unsigned", {}).returncode == 0
    added = team.annotate("bob", "unsigned", f"{REQUESTED_BY}=bob")
    assert added.returncode != 0
    assert team.annotations("rb") == {REQUESTED_BY: "alice"}


def test_a_second_persons_approval_is_accepted(team: Team) -> None:
    assert team.create("alice", "rb", {REQUESTED_BY: "alice"}).returncode == 0
    approved = team.annotate("bob", "rb", f"{APPROVED_BY}=bob")
    assert approved.returncode == 0, approved.stderr
    assert team.annotations("rb") == {REQUESTED_BY: "alice", APPROVED_BY: "bob"}
    # the approval stands: later changes that leave it alone pass, by anyone allowed to
    other = team.annotate("alice", "rb", "example.com/ticket=INC-42")
    assert other.returncode == 0, other.stderr


# --- the kubectl plugin ------------------------------------------------------------------------


def _plugin(team: Team, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubectl rollback ARGS -n NAMESPACE` with the kubeconfig of `who` (or the admin's)."""
    config = team.server.admin_kubeconfig if who == "admin" else team.server.user_kubeconfig(who)
    return kubectl_rollback(config, *args, "-n", team.namespace)


def _started_by_alice(team: Team, name: str) -> None:
    team.server.apply(manifests.policy("mindmate", team.namespace))
    started = _plugin(team, "alice", "start", "mindmate", "--require-approval", "--name", name)
    assert started.returncode == 0, started.stderr


def test_the_plugin_signs_the_request_and_the_approval_with_the_callers_identity(
    team: Team,
) -> None:
    _started_by_alice(team, "p1")
    assert team.annotations("p1") == {REQUESTED_BY: "alice"}
    own = _plugin(team, "alice", "approve", "p1")
    assert own.returncode == 1
    assert "rollback/p1 was requested by alice (you): another person must approve it" in (
        own.stderr
    )
    assert APPROVED_BY not in team.annotations("p1")
    approved = _plugin(team, "bob", "approve", "p1")
    assert approved.returncode == 0, approved.stderr
    assert "rollback/p1 approved by bob" in approved.stdout
    assert team.annotations("p1") == {REQUESTED_BY: "alice", APPROVED_BY: "bob"}


def test_approve_as_impersonates_a_user_and_needs_the_right_to(team: Team) -> None:
    _started_by_alice(team, "p2")
    forged = _plugin(team, "alice", "approve", "p2", "--as", "bob")
    assert forged.returncode == 1
    assert 'User "alice" cannot impersonate' in forged.stderr
    assert APPROVED_BY not in team.annotations("p2")
    on_behalf = _plugin(team, "admin", "approve", "p2", "--as", "bob")
    assert on_behalf.returncode == 0, on_behalf.stderr
    assert team.annotations("p2") == {REQUESTED_BY: "alice", APPROVED_BY: "bob"}


# --- the chart value ---------------------------------------------------------------------------


def test_the_policy_is_on_by_default_and_a_value_turns_it_off() -> None:
    kinds = [doc["kind"] for doc in rendered_policy("defaults", [])]
    assert kinds == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    assert rendered_policy("off", ["approvalPolicy.enabled=false"]) == []


def test_the_binding_covers_every_namespace_or_the_watched_ones() -> None:
    everywhere = rendered_policy("defaults", [])[1]["spec"]
    assert "matchResources" not in everywhere
    listed = rendered_policy("listed", ["watchNamespaces={apps,web}"])[1]["spec"]
    expression = listed["matchResources"]["namespaceSelector"]["matchExpressions"][0]
    assert expression["values"] == ["apps", "web"]


def test_a_cluster_too_old_for_the_policy_is_told_to_turn_it_off() -> None:
    with pytest.raises(helm.HelmError, match=r"set approvalPolicy\.enabled=false"):
        helm.helm("template", "old", str(helm.CHART), "--kube-version", "1.29.0")
