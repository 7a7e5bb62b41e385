"""Proofs that the test API server is the real thing and is set up as the suites need it.

Each test pins one promise of `tests.apiserver.server`: the pinned Kubernetes version
answers, the project's CRDs pass a real server's checks, RBAC refuses and then allows,
ServiceAccount tokens are issued and accepted, a ValidatingAdmissionPolicy refuses, the
static users are who they say, and a stopped server leaves no process and no directory.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import yaml

from tests.apiserver.server import REPO_ROOT, KubeApiServer

CRDS = sorted((REPO_ROOT / "crds").glob("*.yaml"))
APISERVER_GO_MOD = REPO_ROOT / "tools" / "kube" / "apiserver" / "go.mod"
NOT_FROZEN = "!has(object.metadata.labels) || !('frozen' in object.metadata.labels)"
SETTLE_TIMEOUT = 15.0
"""Seconds a new Role or policy may take to reach the server's informers."""


def eventually(
    attempt: Callable[[], CompletedProcess[str]],
    done: Callable[[CompletedProcess[str]], bool],
) -> CompletedProcess[str]:
    """Repeat a kubectl run until `done` says so or SETTLE_TIMEOUT passes; the last run."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not done(result := attempt()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


def succeeded(result: CompletedProcess[str]) -> bool:
    return result.returncode == 0


def pinned_kubernetes() -> str:
    match = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", APISERVER_GO_MOD.read_text(), re.M)
    assert match, f"no k8s.io/kubernetes requirement in {APISERVER_GO_MOD}"
    return match.group(1)


def role(namespace: str, name: str, resource: str, verbs: list[str]) -> dict[str, object]:
    rule = {"apiGroups": [""], "resources": [resource], "verbs": verbs}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": [rule],
    }


def role_binding(namespace: str, name: str, subject: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [subject],
    }


def refuse_frozen_configmaps(name: str, namespace: str) -> list[dict[str, object]]:
    """A policy refusing ConfigMaps labelled `frozen`, bound to one namespace only."""
    policy: dict[str, object] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["configmaps"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": NOT_FROZEN,
                    "message": "ConfigMaps labelled frozen are refused",
                }
            ],
        },
    }
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    binding: dict[str, object] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": selector},
        },
    }
    return [policy, binding]


def test_kubectl_version_names_the_pinned_kubernetes(apiserver: KubeApiServer) -> None:
    version = json.loads(apiserver.kubectl("version", "-o", "json").stdout)

    assert version["serverVersion"]["gitVersion"] == pinned_kubernetes()


def test_the_projects_crds_are_admitted_and_established(apiserver: KubeApiServer) -> None:
    names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in CRDS]
    assert names, "no CRDs in crds/"

    apiserver.kubectl("apply", "--server-side", *(arg for p in CRDS for arg in ("-f", str(p))))
    crds = [f"crd/{name}" for name in names]
    apiserver.kubectl("wait", "--for=condition=Established", "--timeout=30s", *crds)

    for name in names:
        plural = name.split(".", 1)[0]
        assert apiserver.kubectl("get", plural, "-A", "-o", "name").returncode == 0


def test_rbac_refuses_a_service_account_until_a_role_binding_allows_it(
    apiserver: KubeApiServer, apiserver_namespace: str
) -> None:
    ns = apiserver_namespace
    kubeconfig = apiserver.service_account_kubeconfig(ns, "reader")

    def list_pods() -> CompletedProcess[str]:
        return apiserver.kubectl("get", "pods", "-n", ns, kubeconfig=kubeconfig, check=False)

    refused = list_pods()
    assert refused.returncode != 0
    assert "Forbidden" in refused.stderr
    assert f"system:serviceaccount:{ns}:reader" in refused.stderr

    subject = {"kind": "ServiceAccount", "name": "reader", "namespace": ns}
    apiserver.apply(role(ns, "pod-reader", "pods", ["get", "list"]))
    apiserver.apply(role_binding(ns, "pod-reader", subject))

    allowed = eventually(list_pods, succeeded)
    assert allowed.returncode == 0, allowed.stderr
    other = apiserver.kubectl("get", "pods", "-n", "default", kubeconfig=kubeconfig, check=False)
    assert "Forbidden" in other.stderr


def test_a_validating_admission_policy_refuses_a_static_users_object(
    apiserver: KubeApiServer, apiserver_namespace: str
) -> None:
    ns = apiserver_namespace
    alice = apiserver.user_kubeconfig("alice")
    apiserver.apply(role(ns, "configmaps", "configmaps", ["create", "get"]))
    apiserver.apply(role_binding(ns, "configmaps", {"kind": "User", "name": "alice"}))
    policy = f"refuse-frozen-{secrets.token_hex(3)}"
    apiserver.apply(*refuse_frozen_configmaps(policy, ns))

    def create(name: str, *flags: str, labels: dict[str, str]) -> CompletedProcess[str]:
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels},
        }
        argv = ["create", "-n", ns, "-f", "-", *flags]
        stdin = yaml.safe_dump(manifest)
        return apiserver.kubectl(*argv, kubeconfig=alice, stdin=stdin, check=False)

    def refused_by_policy(result: CompletedProcess[str]) -> bool:
        return f"ValidatingAdmissionPolicy '{policy}'" in result.stderr

    frozen = {"frozen": "yes"}
    eventually(lambda: create("probe", "--dry-run=server", labels=frozen), refused_by_policy)
    refused = create("frozen", labels=frozen)

    assert refused.returncode != 0
    assert refused_by_policy(refused), refused.stderr
    assert "ConfigMaps labelled frozen are refused" in refused.stderr
    assert create("thawed", labels={"thawed": "yes"}).returncode == 0


def test_self_subject_review_names_the_static_user(apiserver: KubeApiServer) -> None:
    review = apiserver.kubectl(
        "auth", "whoami", "-o", "json", kubeconfig=apiserver.user_kubeconfig("alice")
    )
    user = json.loads(review.stdout)["status"]["userInfo"]

    assert user["username"] == "alice"
    assert user["groups"] == ["system:authenticated"]


def test_the_admin_is_a_member_of_system_masters(apiserver: KubeApiServer) -> None:
    user = json.loads(apiserver.kubectl("auth", "whoami", "-o", "json").stdout)["status"]

    assert "system:masters" in user["userInfo"]["groups"]


def test_a_stopped_server_leaves_no_process_and_no_directory(apiserver: KubeApiServer) -> None:
    server = KubeApiServer(users=(), bin_dir=apiserver.bin_dir).start()
    pids = server.pids
    workdir = server.workdir
    assert server.kubectl("get", "--raw", "/readyz").stdout == "ok"

    server.stop()

    assert not workdir.exists()
    assert len(pids) == 2
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "a process is left"
