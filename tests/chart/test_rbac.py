"""The chart's RBAC grants exactly what the operator uses: every call allowed, every grant used.

The calls come from a real run (`tests/chart/recording.py`): the chart installed into the
emulated API, the operator started with the rendered env and the ServiceAccount's identity,
then a policy breach, an automatic and a manual rollback, and a shutdown. Both watch scopes
are recorded, since they bind different roles and kopf calls different things in each.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.kube import audit
from sandbox.kube.audit import Entry
from sandbox.services.prometheus import PrometheusServer
from tests.chart import rbac, recording

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SCOPES: dict[str, dict[str, Any]] = {
    "every-namespace": {},
    "namespace-list": {"watchNamespaces": ["apps"], "logFormat": "json"},
}


@pytest.fixture(scope="module", params=sorted(SCOPES))
def run(
    request: pytest.FixtureRequest,
    prometheus: PrometheusServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> recording.Recording:
    workdir = tmp_path_factory.mktemp(f"rbac-{request.param}")
    return recording.record(workdir, SCOPES[request.param], prometheus)


def _authorizer(run: recording.Recording) -> rbac.Authorizer:
    account = run.rendered.one("ServiceAccount")["metadata"]["name"]
    return rbac.Authorizer(run.rendered.docs, account, recording.RELEASE_NAMESPACE)


def _pairs(calls: list[Entry]) -> set[tuple[str, str, str]]:
    return {(c.verb, c.group, c.resource) for c in calls}


def test_the_run_exercised_every_kind_of_call_the_operator_makes(
    run: recording.Recording,
) -> None:
    pairs = _pairs(run.calls())
    must = {
        ("watch", "rollback.mindmate.app", "rollbacks"),
        ("patch", "rollback.mindmate.app", "rollbacks/status"),
        ("patch", "rollback.mindmate.app", "rollbackpolicies/status"),
        ("create", "rollback.mindmate.app", "rollbacks"),  # the automatic rollback
        ("get", "", "secrets"),  # the Vercel and Railway tokens
        ("create", "", "configmaps"),  # a report
        ("patch", "", "configmaps"),  # the report that already existed
        ("create", "", "events"),
        ("watch", "apiextensions.k8s.io", "customresourcedefinitions"),
    }
    assert must <= pairs, must - pairs
    namespaced = bool(run.rendered.values.get("watchNamespaces"))
    peering = "kopfpeerings" if namespaced else "clusterkopfpeerings"
    assert ("patch", "kopf.dev", peering) in pairs  # peering was on, and kopf kept it alive
    assert "Pausing" not in run.log


def test_every_call_of_the_operator_is_allowed_by_the_chart(run: recording.Recording) -> None:
    authorizer = _authorizer(run)
    denied = sorted({(c.verb, c.group, c.resource, c.namespace or "", c.name or "")
                     for c in run.calls() if not authorizer.allows(c)})  # fmt: skip
    assert denied == []


def test_every_grant_of_the_chart_is_used_by_the_operator(run: recording.Recording) -> None:
    calls = run.calls()
    unused = []
    for grant in set(_authorizer(run).grants()):
        used = any(
            (c.verb, c.group, c.resource) == (grant.verb, grant.group, grant.resource)
            and (grant.namespace is None or c.namespace == grant.namespace)
            and (not grant.names or c.name in grant.names)
            for c in calls
        )
        if not used:
            unused.append(grant)
    assert unused == [], "the chart grants more than the operator uses"


def test_a_namespace_list_is_served_by_roles_in_those_namespaces_only(
    run: recording.Recording,
) -> None:
    if not run.rendered.values.get("watchNamespaces"):
        pytest.skip("cluster-wide scope")
    authorizer = _authorizer(run)
    for call in run.calls():
        if call.namespace is not None:
            assert call.namespace == "apps", call
            elsewhere = Entry(call.user, call.verb, call.group, call.resource, "other", call.name)
            assert not authorizer.allows(elsewhere), call


def test_the_log_format_of_the_chart_reaches_the_operator(run: recording.Recording) -> None:
    lines = [line for line in run.log.splitlines() if line.strip()]
    assert len(lines) > 10
    as_json = [line.startswith("{") for line in lines]
    if run.rendered.values.get("logFormat") == "json":
        records = [json.loads(line) for line in lines]
        named = [r for r in records if r.get("rollback") == "apps/manual"]
        assert named, "no log line names the manual rollback"
    else:
        assert not any(as_json)


# --- the evaluator itself ---------------------------------------------------------------------

DOCS = [
    {"kind": "ClusterRole", "metadata": {"name": "c"},
     "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]},
    {"kind": "ClusterRoleBinding", "metadata": {"name": "c"},
     "roleRef": {"kind": "ClusterRole", "name": "c"},
     "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "ops"}]},
    {"kind": "Role", "metadata": {"name": "r", "namespace": "apps"},
     "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"],
                "resourceNames": ["report"]}]},
    {"kind": "RoleBinding", "metadata": {"name": "r", "namespace": "apps"},
     "roleRef": {"kind": "Role", "name": "r"},
     "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "ops"}]},
]  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "allowed"),
    [
        (Entry("u", "list", "", "namespaces", None, None), True),
        (Entry("u", "watch", "", "namespaces", None, None), False),
        (Entry("u", "patch", "", "configmaps", "apps", "report"), True),
        (Entry("u", "patch", "", "configmaps", "apps", "other"), False),
        (Entry("u", "patch", "", "configmaps", "web", "report"), False),
        (Entry("u", "patch", "", "configmaps/status", "apps", "report"), False),
        (Entry("u", "list", "apps", "namespaces", None, None), False),
    ],
)
def test_the_authorizer_follows_the_api_servers_rules(entry: Entry, allowed: bool) -> None:
    assert rbac.Authorizer(DOCS, "op", "ops").allows(entry) is allowed


def test_the_authorizer_ignores_bindings_of_other_accounts() -> None:
    assert not rbac.Authorizer(DOCS, "someone-else", "ops").allows(
        Entry("u", "list", "", "namespaces", None, None)
    )


@pytest.mark.parametrize(
    ("method", "name", "params", "expected"),
    [
        ("GET", "a", {}, "get"),
        ("GET", None, {}, "list"),
        ("GET", None, {"watch": "true"}, "watch"),
        ("GET", None, {"watch": "1"}, "watch"),
        ("POST", None, {}, "create"),
        ("PUT", "a", {}, "update"),
        ("PATCH", "a", {}, "patch"),
        ("DELETE", "a", {}, "delete"),
        ("DELETE", None, {}, "deletecollection"),
    ],
)
def test_the_audit_log_names_verbs_as_the_api_server_does(
    method: str, name: str | None, params: dict[str, str], expected: str
) -> None:
    assert audit.verb(method, name, params) == expected
