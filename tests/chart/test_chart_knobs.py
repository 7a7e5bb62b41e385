"""The chart's knobs beyond the defaults, each rendered by the real helm and checked object by
object: names and namespace, the update strategy, the disruption budget, spreading, extra env,
args and volumes, security contexts and probes, ServiceMonitor relabelings, the roles for
people, and the NetworkPolicy. The renders come from `conftest.VALUE_SETS` (so every object was
also validated by the API server and by `test_chart.py`'s offline schemas).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apiserver.server import KubeApiServer
from tests.chart import helm
from tests.chart.conftest import FENCED, KNOBS

Rendered = helm.Rendered


def _pod(rendered: Rendered) -> dict[str, Any]:
    pod: dict[str, Any] = rendered.one("Deployment")["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize("values", [KNOBS, FENCED], ids=["every-knob", "fenced"])
def test_helm_lint_strict_passes_with_every_new_value(
    values: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    report = helm.helm("lint", "--strict", str(helm.CHART), "--values", str(path))
    assert "0 chart(s) failed" in report
    assert "[WARNING]" not in report


# --- names and namespace -----------------------------------------------------------------------


def test_name_and_namespace_overrides_reach_every_object(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["renamed-elsewhere"]
    deployment = rendered.one("Deployment")
    assert deployment["metadata"]["name"] == "rollback-operator-rbo"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/name"] == "rbo"
    for doc in rendered.docs:
        if doc["kind"] in ("Deployment", "Service", "ServiceAccount"):
            assert doc["metadata"]["namespace"] == "ops-tools", doc["kind"]
    subjects = rendered.one("ClusterRoleBinding")["subjects"]
    assert subjects == [
        {"kind": "ServiceAccount", "name": "rollback-operator-rbo", "namespace": "ops-tools"}
    ]
    assert "installed as rollback-operator-rbo in ops-tools" in rendered.notes


def test_a_full_name_override_names_the_objects_and_keeps_the_chart_label(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["every-knob"]
    deployment = rendered.one("Deployment")
    assert deployment["metadata"]["name"] == "rollbacks"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/name"] == "rollback-operator"
    assert rendered.one("Service")["metadata"]["name"] == "rollbacks-metrics"
    assert rendered.operator_role()["metadata"]["name"] == "rollbacks"
    assert {r["metadata"]["name"] for r in rendered.of_kind("ClusterRole")} == {
        "rollbacks", "rollbacks-view", "rollbacks-edit", "rollbacks-approve"
    }  # fmt: skip


# --- how replicas are replaced -----------------------------------------------------------------


def test_a_standalone_operator_is_recreated_never_rolled(renders: dict[str, Rendered]) -> None:
    strategy = renders["standalone-no-metrics"].one("Deployment")["spec"]["strategy"]
    assert strategy == {"type": "Recreate"}


@pytest.mark.parametrize("name", ["defaults", "two-replicas"])
def test_peered_replicas_roll_one_new_pod_before_an_old_one_goes(
    renders: dict[str, Rendered], name: str
) -> None:
    strategy = renders[name].one("Deployment")["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}  # fmt: skip


def test_no_disruption_budget_unless_asked(renders: dict[str, Rendered]) -> None:
    assert not renders["defaults"].of_kind("PodDisruptionBudget")


def test_the_disruption_budget_selects_the_operator_pods(renders: dict[str, Rendered]) -> None:
    rendered = renders["every-knob"]
    budget = rendered.one("PodDisruptionBudget")
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in budget["spec"]  # minAvailable is used instead
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_spread_constraints_select_the_operator_pods_unless_they_say_otherwise(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["every-knob"]
    selector = rendered.one("Deployment")["spec"]["selector"]["matchLabels"]
    zone, host = _pod(rendered)["topologySpreadConstraints"]
    assert zone == {**KNOBS["topologySpreadConstraints"][0],
                    "labelSelector": {"matchLabels": selector}}  # fmt: skip
    assert host == KNOBS["topologySpreadConstraints"][1]


# --- the container -----------------------------------------------------------------------------


def test_extra_env_args_and_volumes_are_added_to_the_charts_own(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["every-knob"]
    container = rendered.container()
    assert container["args"] == ["run", "--verbose"]
    assert rendered.env()["HTTPS_PROXY"] == "http://proxy:3128"
    assert "ROLLBACK_OPERATOR_ALL_NAMESPACES" in rendered.env()
    assert container["envFrom"] == KNOBS["extraEnvFrom"]
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert mounts == ["/tmp", "/etc/ssl/corporate"]
    volumes = {v["name"]: v for v in _pod(rendered)["volumes"]}
    assert set(volumes) == {"tmp", "ca"}
    assert volumes["ca"]["configMap"] == {"name": "corporate-ca"}


def test_security_contexts_and_probes_merge_what_is_set_into_the_charts(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["every-knob"]
    pod, container = _pod(rendered), rendered.container()
    assert pod["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }  # fmt: skip
    assert container["securityContext"]["readOnlyRootFilesystem"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"] == {
        "httpGet": {"path": "/healthz", "port": "health"},
        "initialDelaySeconds": 10, "periodSeconds": 30, "timeoutSeconds": 5,
        "failureThreshold": 5,
    }  # fmt: skip
    assert "readinessProbe" not in container  # set to null: dropped
    assert container["startupProbe"] == KNOBS["startupProbe"]
    assert "startupProbe" not in renders["defaults"].container()


def test_the_service_monitor_carries_both_relabelings(renders: dict[str, Rendered]) -> None:
    endpoint = renders["every-knob"].one("ServiceMonitor")["spec"]["endpoints"][0]
    wanted = KNOBS["metrics"]["serviceMonitor"]
    assert endpoint["relabelings"] == wanted["relabelings"]
    assert endpoint["metricRelabelings"] == wanted["metricRelabelings"]
    plain = renders["service-monitor"].one("ServiceMonitor")["spec"]["endpoints"][0]
    assert "relabelings" not in plain
    assert "metricRelabelings" not in plain


# --- roles for people --------------------------------------------------------------------------

KINDS = ["rollbacks", "rollbackpolicies", "restorepoints"]


def _rules(rendered: Rendered, name: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = rendered.named("ClusterRole", name)["rules"]
    return rules


def test_view_and_edit_roles_aggregate_into_the_kubernetes_roles(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["defaults"]
    labels = {name: rendered.named("ClusterRole", f"rollback-operator-{name}")["metadata"]["labels"]
              for name in ("view", "edit", "approve")}  # fmt: skip
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    assert {k for k in labels["view"] if k.startswith(aggregate)} == {
        f"{aggregate}view", f"{aggregate}edit", f"{aggregate}admin"
    }  # fmt: skip
    assert {k for k in labels["edit"] if k.startswith(aggregate)} == {
        f"{aggregate}edit", f"{aggregate}admin"
    }  # fmt: skip
    assert not [k for k in labels["approve"] if k.startswith(aggregate)]  # bound on purpose
    view = _rules(rendered, "rollback-operator-view")
    assert view == [{"apiGroups": ["rollback.mindmate.app"],
                     "resources": [*KINDS, *(f"{k}/status" for k in KINDS)],
                     "verbs": ["get", "list", "watch"]}]  # fmt: skip
    edit = _rules(rendered, "rollback-operator-edit")
    assert edit[0]["resources"] == KINDS
    assert {"create", "patch", "delete"} <= set(edit[0]["verbs"])
    for rule in view + edit:
        assert not any(r.endswith("/status") for r in rule["resources"]) or (
            set(rule["verbs"]) == {"get", "list", "watch"}
        )  # nobody but the operator writes status


def test_the_approver_role_reads_and_patches_rollbacks_and_nothing_else(
    renders: dict[str, Rendered],
) -> None:
    writes = [rule for rule in _rules(renders["defaults"], "rollback-operator-approve")
              if set(rule["verbs"]) - {"get", "list", "watch"}]  # fmt: skip
    assert writes == [{"apiGroups": ["rollback.mindmate.app"], "resources": ["rollbacks"],
                       "verbs": ["patch"]}]  # fmt: skip


def test_user_roles_can_be_left_out(render_server: KubeApiServer, tmp_path: Path) -> None:
    rendered = helm.render(render_server, {"rbac": {"create": True, "userRoles": False}}, tmp_path)
    assert [r["metadata"]["name"] for r in rendered.of_kind("ClusterRole")] == ["rollback-operator"]


# --- the NetworkPolicy -------------------------------------------------------------------------


def test_no_network_policy_unless_asked(renders: dict[str, Rendered]) -> None:
    assert not renders["defaults"].of_kind("NetworkPolicy")


def _egress(policy: dict[str, Any]) -> list[dict[str, Any]]:
    egress: list[dict[str, Any]] = policy["spec"]["egress"]
    return egress


def test_the_network_policy_fences_the_operator_pods_both_ways(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["fenced"]
    policy = rendered.one("NetworkPolicy")
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    health, metrics = policy["spec"]["ingress"]
    assert health == {"ports": [{"port": 8080, "protocol": "TCP"}]}  # kubelet probes: anyone
    assert metrics == {"ports": [{"port": 8090, "protocol": "TCP"}],
                       "from": FENCED["networkPolicy"]["metricsFrom"]}  # fmt: skip


def test_egress_goes_to_dns_the_api_server_and_the_endpoints_ports_only(
    renders: dict[str, Rendered],
) -> None:
    dns, api, endpoints, extra = _egress(renders["fenced"].one("NetworkPolicy"))
    assert dns["to"] == [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }]  # fmt: skip
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert api["to"] == [{"ipBlock": {"cidr": "10.96.0.1/32"}},
                         {"ipBlock": {"cidr": "172.18.0.2/32"}}]  # fmt: skip
    assert api["ports"] == [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]
    assert endpoints["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    # 443 for the official APIs; 9000 from https://minio.storage.svc:9000/; 5432 as configured;
    # https://prometheus.corp needs 443; http://127.0.0.1:9090 is loopback and opens nothing.
    assert sorted(p["port"] for p in endpoints["ports"]) == [443, 5432, 9000]
    assert extra == FENCED["networkPolicy"]["extraEgress"][0]


def test_the_metrics_port_is_closed_when_metrics_are_off(
    render_server: KubeApiServer, tmp_path: Path
) -> None:
    values = {**FENCED, "metrics": {"enabled": False, "port": 8090}}
    policy = helm.render(render_server, values, tmp_path).one("NetworkPolicy")
    assert policy["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]


def test_a_network_policy_without_the_api_servers_address_is_refused(
    render_server: KubeApiServer, tmp_path: Path
) -> None:
    with pytest.raises(helm.HelmError, match="networkPolicy/apiServer/cidrs"):
        helm.render(render_server, {"networkPolicy": {"enabled": True}}, tmp_path)


def test_notes_say_how_the_pod_is_replaced_fenced_and_who_may_approve(
    renders: dict[str, Rendered],
) -> None:
    assert "standalone: replaced with Recreate" in renders["standalone-no-metrics"].notes
    fenced = renders["fenced"].notes
    assert "egress only to the cluster DNS, the API server (10.96.0.1/32, 172.18.0.2/32)" in fenced
    assert "NetworkPolicy" not in renders["defaults"].notes
    assert "rollback-operator-approve (bind it to approvers)" in renders["defaults"].notes
