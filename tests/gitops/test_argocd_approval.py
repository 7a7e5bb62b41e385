"""Argo CD's `approve` action passes the chart's approval policy when Argo CD runs it.

Argo CD patches a resource with its own credentials, so the admission policy sees Argo CD's
ServiceAccount as the approver. The action writes that name; here the real API server, with
the chart's ValidatingAdmissionPolicy, takes the action's annotation from that account, and
refuses the same annotation from anyone else.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from sandbox import manifests
from tests.apiserver.fixtures import install_crds
from tests.apiserver.server import KubeApiServer
from tests.apiserver.test_apiserver import eventually
from tests.chart import helm
from tests.gitops import lua, samples

ARGO_CD = "system:serviceaccount:argocd:argocd-server"
APPROVED_BY = "rollback.mindmate.app/approved-by"
ROLLBACKS = "rollbacks.rollback.mindmate.app"


def _approval_policy(namespace: str) -> list[dict[str, Any]]:
    """The chart's approval policy and its binding, as helm renders them, on `namespace`."""
    printed = helm.helm("template", "approval", str(helm.CHART), "--namespace", "operators",
                        "--set", f"watchNamespaces={{{namespace}}}",
                        "--show-only", "templates/approval-policy.yaml")  # fmt: skip
    return [doc for doc in yaml.safe_load_all(printed) if doc]


def _editors(namespace: str) -> list[dict[str, Any]]:
    """alice (who asks) and Argo CD's account may create, read and annotate Rollbacks."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "rollback-editor", "namespace": namespace},
            "rules": [{"apiGroups": ["rollback.mindmate.app"], "resources": ["rollbacks"],
                       "verbs": ["get", "list", "create", "patch"]}]}  # fmt: skip
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": who}
                for who in ("alice", ARGO_CD)]  # fmt: skip
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "rollback-editor", "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "rollback-editor"},
               "subjects": subjects}  # fmt: skip
    return [role, binding]


@pytest.fixture
def server(apiserver: KubeApiServer) -> Iterator[tuple[KubeApiServer, str]]:
    """A server of its own with a user named like Argo CD's ServiceAccount, the CRDs and the
    chart's approval policy on one namespace."""
    with KubeApiServer(users=("alice", ARGO_CD), bin_dir=apiserver.bin_dir) as own:
        install_crds(own)
        namespace = f"test-{secrets.token_hex(4)}"
        own.kubectl("create", "namespace", namespace)
        own.apply(*_editors(namespace))
        own.apply(*_approval_policy(namespace))
        _wait_until_enforced(own, namespace)
        yield own, namespace


def _wait_until_enforced(server: KubeApiServer, namespace: str) -> None:
    """A new policy takes a moment to reach admission: probe with a server-side dry run."""
    probe = manifests.rollback("probe", namespace)
    probe["metadata"]["annotations"] = {APPROVED_BY: "admin"}
    argv = ("create", "--dry-run=server", "-n", namespace, "-f", "-")
    refused = eventually(
        lambda: server.kubectl(*argv, check=False, stdin=yaml.safe_dump(probe)),
        lambda done: "cannot be approved at its creation" in done.stderr,
    )
    assert "cannot be approved at its creation" in refused.stderr, refused


def _as(server: KubeApiServer, who: str, namespace: str, *args: str,
        stdin: str | None = None) -> Any:  # fmt: skip
    config = server.user_kubeconfig(who)
    return server.kubectl(*args, "-n", namespace, kubeconfig=config, check=False, stdin=stdin)


def test_the_approve_action_is_accepted_from_argo_cd_and_refused_from_anyone_else(
    server: tuple[KubeApiServer, str],
) -> None:
    api, namespace = server
    body = manifests.rollback("rb", namespace, requireApproval=True)
    body["metadata"]["annotations"] = {"rollback.mindmate.app/requested-by": "alice"}
    created = _as(api, "alice", namespace, "create", "-f", "-", stdin=yaml.safe_dump(body))
    assert created.returncode == 0, created.stderr
    live = json.loads(api.kubectl("get", ROLLBACKS, "rb", "-n", namespace, "-o", "json").stdout)
    script = (samples.GROUP_DIR / "Rollback" / "actions" / "approve" / "action.lua").read_text()
    approver = lua.run(script, live)["metadata"]["annotations"][APPROVED_BY]
    pair = f"{APPROVED_BY}={approver}"
    refused = _as(api, "alice", namespace, "annotate", f"{ROLLBACKS}/rb", pair)
    assert f"must name the user who approves (alice), not {ARGO_CD}" in refused.stderr
    accepted = _as(api, ARGO_CD, namespace, "annotate", f"{ROLLBACKS}/rb", pair)
    assert accepted.returncode == 0, accepted.stderr
