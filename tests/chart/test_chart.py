"""The Helm chart, linted, rendered and installed by the real helm on the real API server.

Renders are `helm install --dry-run` (see `tests/chart/helm.py`): Helm validated the values
against values.schema.json and every object against the server's OpenAPI. The lifecycle tests
install, upgrade and uninstall the chart on a server of their own.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from kopf._cogs.structs import references

from rollback_operator.settings import Settings
from tests.apiserver.server import REPO_ROOT, KubeApiServer
from tests.chart import helm
from tests.chart.conftest import VALUE_SETS

CHART = helm.CHART
CUSTOM_KINDS = {"ClusterKopfPeering", "KopfPeering", "ServiceMonitor"}
# CRDs are checked by the dry run on the real server instead: their CEL rules' fieldPath is
# newer than the oldest Kubernetes the offline schemas cover (older servers drop the field).
OFFLINE_SKIPPED = {*CUSTOM_KINDS, "CustomResourceDefinition"}
KUBERNETES_VERSIONS = ("1.25.0", "1.37.0")  # Chart.yaml's kubeVersion floor, and the newest
# Kinds newer than the floor: checked from the release that serves them (the chart refuses to
# render the approval policy for an older cluster: approvalPolicy.enabled=false there).
SINCE = {"ValidatingAdmissionPolicy": "1.30.0", "ValidatingAdmissionPolicyBinding": "1.30.0"}
SETS = sorted(VALUE_SETS)


def _chart_meta() -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return meta


# --- lint ------------------------------------------------------------------------------------


def test_helm_lint_strict_finds_nothing_worse_than_advice() -> None:
    report = helm.lint()
    assert "1 chart(s) linted, 0 chart(s) failed" in report
    assert "[WARNING]" not in report
    assert "[ERROR]" not in report


def test_helm_lint_fails_a_chart_with_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "rollback-operator"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "service.yaml").write_text("{{ if .Values.metrics.enabled }}\n")
    with pytest.raises(helm.HelmError, match="unexpected EOF"):
        helm.lint(broken)


# --- every value set: Helm accepts it, the objects are valid Kubernetes ------------------------


@pytest.mark.parametrize("name", SETS)
def test_each_value_set_renders_objects_valid_for_kubernetes(
    renders: dict[str, helm.Rendered], name: str
) -> None:
    rendered = renders[name]
    assert rendered.docs
    for doc in rendered.docs:
        if doc["kind"] in OFFLINE_SKIPPED:
            continue
        for version in (*KUBERNETES_VERSIONS, SINCE.get(doc["kind"], KUBERNETES_VERSIONS[0])):
            if _release(version) >= _release(SINCE.get(doc["kind"], "0.0.0")):
                kubernetes_validate.validate(doc, version, strict=True)


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_kubernetes_validate_rejects_an_unknown_field(renders: dict[str, helm.Rendered]) -> None:
    deployment = json.loads(json.dumps(renders["defaults"].one("Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["bogusField"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("name", SETS)
def test_peering_objects_fit_the_peering_crds(renders: dict[str, helm.Rendered], name: str) -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in _peering_crds()}
    for kind in ("ClusterKopfPeering", "KopfPeering"):
        schema = crds[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for doc in renders[name].of_kind(kind):
            assert doc["apiVersion"] == f"{crds[kind]['spec']['group']}/v1"
            jsonschema.validate(doc, schema)


@pytest.mark.parametrize("name", SETS)
def test_no_role_grants_a_wildcard(renders: dict[str, helm.Rendered], name: str) -> None:
    for role in renders[name].of_kind("ClusterRole") + renders[name].of_kind("Role"):
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), (role["metadata"]["name"], rule)
            assert not rule.get("nonResourceURLs"), rule


@pytest.mark.parametrize("name", SETS)
def test_the_container_env_is_read_by_the_operators_settings(
    renders: dict[str, helm.Rendered], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = renders[name].env()
    ours = {k: v for k, v in env.items() if k.startswith("ROLLBACK_OPERATOR_")}
    fields = {f"ROLLBACK_OPERATOR_{f.upper()}" for f in Settings.model_fields}
    assert set(ours) <= fields, f"Settings ignores {set(ours) - fields}"
    for key in list(os.environ):
        if key.startswith("ROLLBACK_OPERATOR_"):
            monkeypatch.delenv(key)
    for key, value in ours.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    values = VALUE_SETS[name]
    watched = values.get("watchNamespaces", [])
    assert settings.namespaces == watched
    assert settings.all_namespaces is (not watched)
    assert settings.log_format == values.get("logFormat", "text")
    assert settings.allowed_endpoints == values.get("allowedEndpoints", [])
    assert settings.standalone is (not values.get("peering", {}).get("enabled", True))
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    metrics_on = values.get("metrics", {}).get("enabled", True)
    assert ours["ROLLBACK_OPERATOR_METRICS_PORT"] == ("8090" if metrics_on else "0")
    assert settings.metrics_port == (8090 if metrics_on else 0)


# --- the default render, object by object ----------------------------------------------------


def test_defaults_render_the_operator_for_every_namespace(
    renders: dict[str, helm.Rendered],
) -> None:
    rendered = renders["defaults"]
    expected = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment"]
    expected += ["ClusterKopfPeering"]
    expected += ["CustomResourceDefinition"] * len(list((REPO_ROOT / "crds").glob("*.yaml")))
    expected += ["ClusterRole"] * 3  # view, edit and approve, for people
    expected += ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]  # approval
    assert sorted(rendered.kinds()) == sorted(expected)
    assert rendered.one("ClusterKopfPeering")["metadata"]["name"] == "rollback-operator"
    binding = rendered.one("ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rollback-operator", "namespace": "operators"}
    ]
    assert rendered.env()["ROLLBACK_OPERATOR_ALL_NAMESPACES"] == "true"
    assert "namespaces" not in json.dumps(rendered.operator_role()["rules"])


def test_the_deployment_runs_the_image_non_root_read_only_with_probes_on_kopf_health(
    renders: dict[str, helm.Rendered],
) -> None:
    rendered = renders["defaults"]
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    container = rendered.container()
    assert container["image"] == f"ghcr.io/mindmate/rollback-operator:{_chart_meta()['appVersion']}"
    assert container["args"] == ["run"]
    assert "command" not in container  # the image's ENTRYPOINT: rollback-operator
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 8090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # pg tools and spools write temp files
    assert container["resources"]["limits"]["memory"]
    assert rendered.env()["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_the_metrics_service_selects_the_operator_pods_on_the_metrics_port(
    renders: dict[str, helm.Rendered],
) -> None:
    rendered = renders["defaults"]
    service = rendered.one("Service")
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert not rendered.of_kind("ServiceMonitor")


# --- other value sets --------------------------------------------------------------------------


def test_a_namespace_list_gets_a_role_binding_and_peering_object_per_namespace(
    renders: dict[str, helm.Rendered],
) -> None:
    rendered = renders["namespaced"]
    assert rendered.env()["ROLLBACK_OPERATOR_NAMESPACES"] == '["apps","web"]'
    assert "ROLLBACK_OPERATOR_ALL_NAMESPACES" not in rendered.env()
    for kind in ("Role", "RoleBinding", "KopfPeering"):
        assert sorted(d["metadata"]["namespace"] for d in rendered.of_kind(kind)) == [
            "apps", "web"
        ]  # fmt: skip
    assert not rendered.of_kind("ClusterKopfPeering")
    cluster_rules = rendered.operator_role()["rules"]
    assert {r["resources"][0] for r in cluster_rules} == {"customresourcedefinitions", "namespaces"}
    for role in rendered.of_kind("Role"):
        resources = {res for rule in role["rules"] for res in rule["resources"]}
        assert "kopfpeerings" in resources
        assert "clusterkopfpeerings" not in resources


def test_two_replicas_keep_peering_on(renders: dict[str, helm.Rendered]) -> None:
    rendered = renders["two-replicas"]
    assert rendered.one("Deployment")["spec"]["replicas"] == 2
    assert rendered.env()["ROLLBACK_OPERATOR_STANDALONE"] == "false"
    assert rendered.of_kind("ClusterKopfPeering")


def test_the_service_monitor_scrapes_the_metrics_service(
    renders: dict[str, helm.Rendered],
) -> None:
    rendered = renders["service-monitor"]
    monitor = rendered.one("ServiceMonitor")
    service = rendered.one("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["operators"]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]


def test_json_logs_and_verbose_reach_the_container(renders: dict[str, helm.Rendered]) -> None:
    env = renders["json-logs"].env()
    assert env["ROLLBACK_OPERATOR_LOG_FORMAT"] == "json"
    assert env["ROLLBACK_OPERATOR_VERBOSE"] == "true"


def test_standalone_without_metrics_drops_peering_and_the_metrics_port(
    renders: dict[str, helm.Rendered],
) -> None:
    rendered = renders["standalone-no-metrics"]
    assert "Service" not in rendered.kinds()
    assert not rendered.of_kind("ClusterKopfPeering")
    assert "kopfpeerings" not in json.dumps(rendered.operator_role()["rules"])
    assert [p["name"] for p in rendered.container()["ports"]] == ["health"]
    assert rendered.env()["ROLLBACK_OPERATOR_STANDALONE"] == "true"


def test_a_digest_pins_the_image_and_an_existing_account_is_bound(
    renders: dict[str, helm.Rendered],
) -> None:
    rendered = renders["pinned-and-existing-account"]
    assert rendered.container()["image"] == "registry.example/rollback-operator@sha256:" + "a" * 64
    assert "ServiceAccount" not in rendered.kinds()
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "rollback"
    assert rendered.one("ClusterRoleBinding")["subjects"][0]["name"] == "rollback"
    assert rendered.env()["HTTPS_PROXY"] == "http://proxy:3128"
    assert pod["tolerations"] == VALUE_SETS["pinned-and-existing-account"]["tolerations"]


def test_notes_say_what_is_watched_and_how_to_reach_the_metrics(
    renders: dict[str, helm.Rendered],
) -> None:
    assert "Watching: apps, web" in renders["namespaced"].notes
    assert "Watching: every namespace" in renders["defaults"].notes
    assert "port-forward service/rollback-operator-metrics 8090" in renders["defaults"].notes
    assert "ServiceMonitor" in renders["service-monitor"].notes


# --- values.schema.json ----------------------------------------------------------------------

BAD_VALUES: dict[str, dict[str, Any]] = {
    "replicas-as-string": {"replicas": "two"},
    "negative-replicas": {"replicas": -1},
    "unknown-top-level-key": {"replica": 2},
    "log-format-not-text-or-json": {"logFormat": "xml"},
    "namespace-not-a-dns-label": {"watchNamespaces": ["Apps_1"]},
    "namespaces-as-string": {"watchNamespaces": "apps"},
    "allowed-endpoint-without-scheme": {"allowedEndpoints": ["prometheus.corp"]},
    "allowed-endpoint-with-user-info": {"allowedEndpoints": ["https://u@evil.example"]},
    "metrics-port-out-of-range": {"metrics": {"port": 70000}},
    "latest-tag": {"image": {"tag": "latest"}},
    "bad-pull-policy": {"image": {"pullPolicy": "Sometimes"}},
    "peering-as-string": {"peering": {"enabled": "yes"}},
    "two-replicas-without-peering": {"replicas": 2, "peering": {"enabled": False}},
    "unknown-service-monitor-key": {"metrics": {"serviceMonitor": {"enable": True}}},
    "bad-interval": {"metrics": {"serviceMonitor": {"enabled": True, "interval": "often"}}},
    "bad-memory-quantity": {"resources": {"limits": {"memory": "lots"}}},
    "crds-install-as-string": {"crds": {"install": "yes", "keep": True}},
    "unknown-crds-key": {"crds": {"install": True, "keep": True, "upgrade": True}},
    "namespace-override-not-a-dns-label": {"namespaceOverride": "Ops_Tools"},
    "standalone-through-extra-args": {"extraArgs": ["--standalone"]},
    "namespaces-through-extra-args": {"extraArgs": ["-n", "apps"]},
    "extra-volume-named-tmp": {"extraVolumes": [{"name": "tmp", "emptyDir": {}}]},
    "extra-mount-over-tmp": {"extraVolumeMounts": [{"name": "x", "mountPath": "/tmp"}]},
    "budget-as-words": {"podDisruptionBudget": {"enabled": True, "minAvailable": "one"}},
    "spread-without-topology-key": {
        "topologySpreadConstraints": [{"maxSkew": 1, "whenUnsatisfiable": "ScheduleAnyway"}]
    },
    "probe-period-zero": {"livenessProbe": {"periodSeconds": 0}},
    "relabelings-as-map": {"metrics": {"serviceMonitor": {"enabled": True, "relabelings": {}}}},
    "network-policy-bad-cidr": {
        "networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["api.internal"]}}
    },
    "network-policy-unknown-key": {"networkPolicy": {"enabled": False, "egress": []}},
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_helm_refuses_values_the_schema_rejects(
    render_server: KubeApiServer, tmp_path: Path, case: str
) -> None:
    with pytest.raises(helm.HelmError, match="values don't meet the specifications of the schema"):
        helm.render(render_server, BAD_VALUES[case], tmp_path)


def test_values_yaml_itself_satisfies_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


# --- CRDs --------------------------------------------------------------------------------------


def _peering_crds() -> list[dict[str, Any]]:
    return helm.peering_crds()


def test_the_charts_crds_are_the_generated_ones_byte_for_byte() -> None:
    generated = sorted(p.name for p in (REPO_ROOT / "crds").glob("*.yaml"))
    in_chart = sorted(p.name for p in (CHART / "files" / "crds").iterdir())
    assert generated
    assert in_chart == generated
    for name in generated:
        chart_copy = (CHART / "files" / "crds" / name).read_bytes()
        assert chart_copy == (REPO_ROOT / "crds" / name).read_bytes()
    assert [p.name for p in (CHART / "crds").iterdir()] == ["kopf-peering.yml"]  # hand-kept


def test_the_peering_crds_are_the_ones_this_kopf_looks_for() -> None:
    crds = {c["spec"]["names"]["plural"]: c for c in _peering_crds()}
    for selector, scope in ((references.CLUSTER_PEERINGS_K, "Cluster"),
                            (references.NAMESPACED_PEERINGS_K, "Namespaced")):  # fmt: skip
        crd = crds[selector.any_name]
        assert (crd["spec"]["group"], crd["spec"]["scope"]) == (selector.group, scope)
        assert [v["name"] for v in crd["spec"]["versions"]] == [selector.version]
        assert crd["metadata"]["name"] == f"{selector.any_name}.{selector.group}"


def test_the_crds_are_templates_kept_on_uninstall_and_optional(
    renders: dict[str, helm.Rendered],
) -> None:
    crds = renders["defaults"].of_kind("CustomResourceDefinition")
    generated = {yaml.safe_load(p.read_text())["metadata"]["name"]: yaml.safe_load(p.read_text())
                 for p in sorted((REPO_ROOT / "crds").glob("*.yaml"))}  # fmt: skip
    assert {c["metadata"]["name"] for c in crds} == set(generated)
    for crd in crds:
        assert crd["spec"] == generated[crd["metadata"]["name"]]["spec"]
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert not renders["crds-elsewhere"].of_kind("CustomResourceDefinition")
