"""The chart's RBAC is sufficient and least: the real API server refuses none of the operator's
calls, and every grant is used.

The calls come from a real run (`tests/chart/recording.py`): the chart installed by helm into
a server of its own, the operator started outside the cluster with the rendered env and a
token of the chart's ServiceAccount, then a policy breach with its automatic quick rollback, a
manual full rollback and a shutdown, while the server enforced RBAC and audited every call.
Both watch scopes are recorded, since they bind different roles and kopf calls different
things in each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.services.prometheus import PrometheusServer
from tests.apiserver import audit
from tests.apiserver.server import KubeApiServer
from tests.chart import rbac, recording

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SCOPES: dict[str, dict[str, Any]] = {
    "every-namespace": {},
    "namespace-list": {"watchNamespaces": ["apps"], "logFormat": "json"},
}


@pytest.fixture(scope="module", params=sorted(SCOPES))
def run(
    request: pytest.FixtureRequest,
    apiserver: KubeApiServer,
    prometheus: PrometheusServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[recording.Recording]:
    workdir = tmp_path_factory.mktemp(f"rbac-{request.param}")
    with KubeApiServer(users=(), bin_dir=apiserver.bin_dir) as server:
        yield recording.record(server, workdir, SCOPES[request.param], prometheus)


def _pairs(calls: list[audit.Call]) -> set[tuple[str, str, str]]:
    return {(c.verb, c.group, c.resource) for c in calls}


def test_the_full_and_the_policy_triggered_rollback_succeed_under_the_charts_rbac(
    run: recording.Recording,
) -> None:
    phases = {name: body.get("status", {}).get("phase") for name, body in run.rollbacks.items()}
    assert phases.pop("manual") == "Succeeded", run.log[-4000:]
    assert run.rollbacks["manual"]["spec"]["mode"] == "full"
    assert list(phases.values()) == ["Succeeded"], phases  # the automatic one
    (automatic,) = [run.rollbacks[name] for name in phases]
    assert automatic["metadata"]["labels"]["rollback.mindmate.app/trigger"] == "policy"


def test_the_server_refused_no_call_of_the_operator(run: recording.Recording) -> None:
    refused = sorted({(c.code, c.verb, c.group, c.resource, c.namespace or "", c.name or "")
                      for c in run.calls if c.code == 403})  # fmt: skip
    assert refused == [], "the chart's RBAC lacks these permissions"
    assert len(run.calls) > 50


def test_the_run_exercised_every_kind_of_call_the_operator_makes(
    run: recording.Recording,
) -> None:
    pairs = _pairs(run.calls)
    must = {
        ("watch", "rollback.mindmate.app", "rollbacks"),
        ("patch", "rollback.mindmate.app", "rollbacks/status"),
        ("patch", "rollback.mindmate.app", "rollbackpolicies/status"),
        ("create", "rollback.mindmate.app", "rollbacks"),  # the automatic rollback
        ("delete", "rollback.mindmate.app", "rollbacks"),  # deleted by the policy's historyLimit
        ("create", "rollback.mindmate.app", "restorepoints"),  # the policy's schedule
        ("delete", "rollback.mindmate.app", "restorepoints"),  # keep
        ("patch", "rollback.mindmate.app", "restorepoints/status"),
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


def test_every_grant_of_the_chart_is_used_by_the_operator(run: recording.Recording) -> None:
    account = run.rendered.one("ServiceAccount")["metadata"]["name"]
    unused = []
    for grant in set(rbac.grants(run.rendered.docs, account, recording.RELEASE_NAMESPACE)):
        used = any(
            (c.verb, c.group, c.resource) == (grant.verb, grant.group, grant.resource)
            and (grant.namespace is None or c.namespace == grant.namespace)
            and (not grant.names or c.name in grant.names)
            for c in run.calls
        )
        if not used:
            unused.append(grant)
    assert unused == [], "the chart grants more than the operator uses"


def _can_i(run: recording.Recording, call: audit.Call, namespace: str) -> bool:
    plural, *subresource = call.resource.split("/")
    resource = f"{plural}.{call.group}" if call.group else plural
    resource += f"/{call.name}" if call.name else ""
    args = ["auth", "can-i", call.verb, resource, "-n", namespace, "--as", run.user]
    args += [f"--subresource={subresource[0]}"] if subresource else []
    answer = run.server.kubectl(*args, check=False).stdout.strip()
    assert answer in ("yes", "no"), answer
    return answer == "yes"


def test_a_namespace_list_is_served_by_roles_in_those_namespaces_only(
    run: recording.Recording,
) -> None:
    if not run.rendered.values.get("watchNamespaces"):
        pytest.skip("cluster-wide scope")
    in_namespace = {c.namespace: c for c in run.calls if c.namespace is not None}
    assert set(in_namespace) == {"apps"}
    distinct = {(c.verb, c.group, c.resource): c for c in run.calls if c.namespace}.values()
    for call in distinct:
        assert _can_i(run, call, "apps"), call
        assert not _can_i(run, call, "elsewhere"), call


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
