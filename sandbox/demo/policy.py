"""The demo's copy of the runbook's policy (`examples/mindmate-policy.yaml`), made local.

Why this module exists: the example is the real thing a user applies, so the demo applies it
too, changed only where a laptop differs from production: the API URLs and ids of the local
fakes, Secrets the demo creates, the local Prometheus, and time compressed so a five-minute
breach takes ten seconds. Everything the example says about thresholds, queries and limits is
kept. The database and file storage targets, the verification checklist and the notifications
become the local ones (a versioned files bucket, the demo's health endpoint, Slack only).
`changes()` lists every difference, and the demo prints it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import yaml

from rollback_operator.api.common import parse_duration
from rollback_operator.api.policy import RollbackPolicy
from sandbox.fakes.saas import Saas
from sandbox.kube.cluster import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "mindmate-policy.yaml"
NAMESPACE = "default"
BACKUPS, FILES, DB_PREFIX = "mindmate-backups", "mindmate-files", "database/"
FOR = "10s"
RATE_WINDOW = "5s"
RATE = re.compile(r"(\brate\([^\[\]()]*)\[\d+[smh]\]")
"""A `rate(...[1m])` range: the demo shortens it with `for`, so a fixed release stops showing
in the rule within seconds, as it does within a minute next to a five-minute `for`."""
INTERVAL = "2s"
VERIFY_WINDOW = "15s"
ALL_TARGETS = ["frontend", "backend", "database", "storage"]
Manifest = dict[str, Any]


@dataclass(frozen=True)
class Local:
    """Where the demo's services listen."""

    saas: Saas
    prometheus: str
    s3: str
    health: str


def example() -> Manifest:
    """The example policy as written."""
    loaded: Manifest = yaml.safe_load(EXAMPLE.read_text())
    return loaded


def demo_copy(local: Local, *, full: bool) -> Manifest:
    """The example, pointed at the local services, with `for` and the interval compressed."""
    body = copy.deepcopy(example())
    body["metadata"]["namespace"] = NAMESPACE
    spec = body["spec"]
    _point_targets(spec, local.saas)
    spec["targets"]["database"] = {"postgres": {
        "urlSecretRef": {"name": "db", "key": "url"},
        "backups": {"bucket": BACKUPS, "prefix": DB_PREFIX},
    }}  # fmt: skip
    spec["targets"]["storage"] = {"s3": {"bucket": FILES}}
    spec["objectStore"] = {"region": "us-east-1", "endpointUrl": local.s3,
                           "credentialsSecretRef": {"name": "aws"}}  # fmt: skip
    spec["metrics"]["prometheus"]["url"] = local.prometheus
    spec["evaluationInterval"] = INTERVAL
    for rule in spec["rules"]:
        if parse_duration(rule.get("for", "0s")) > parse_duration(FOR):
            rule["for"] = FOR
        rule["query"] = RATE.sub(rf"\1[{RATE_WINDOW}]", rule["query"])
    if full:
        spec["automaticRollback"].update(mode="full", targets=ALL_TARGETS)
    spec["verification"] = {
        "healthChecks": [{"name": "api", "url": local.health, "expectStatus": 200}],
        "sqlChecks": [{"name": "users-present", "query": "SELECT COUNT(*) FROM users",
                       "expect": {"min": 1}}],
        "storage": True,
        "window": VERIFY_WINDOW,
    }  # fmt: skip
    spec["notifications"] = {"slack": {"webhookSecretRef": {"name": "slack", "key": "url"}}}
    RollbackPolicy.model_validate({**body, "metadata": {**body["metadata"], "uid": "check"}})
    return body


def _point_targets(spec: Manifest, saas: Saas) -> None:
    vercel = spec["targets"]["frontend"]["vercel"]
    vercel.update(projectId=saas.project, apiUrl=saas.vercel_url)
    railway = spec["targets"]["backend"]["railway"]
    railway.update(projectId=saas.railway_project, environmentId=saas.env,
                   serviceId=saas.service, apiUrl=f"{saas.railway_url}/graphql/v2")  # fmt: skip


def changes(full: bool) -> list[str]:
    """What the demo copy changes in the example, in words."""
    spec = example()["spec"]
    fors = sorted({r["for"] for r in spec["rules"] if "for" in r}, key=parse_duration)
    found = [
        f"every rule's `for` ({', '.join(fors)}) -> {FOR}; "
        f"evaluationInterval {spec.get('evaluationInterval', '30s')} -> {INTERVAL}; "
        f"rate() windows ({', '.join(_rate_windows(spec))}) -> {RATE_WINDOW}",
        "Vercel, Railway and Prometheus URLs and ids -> the local servers",
        f"database (PostgreSQL, dumps in s3://{BACKUPS}/{DB_PREFIX}) and "
        f"storage (s3://{FILES}, versioned) targets -> the local servers",
        "verification -> GET /health, SELECT COUNT(*) FROM users, the files bucket; "
        "notifications -> Slack only",
    ]
    if full:
        found.append("automaticRollback: quick [frontend, backend] -> full [all four targets]")
    return found


def _rate_windows(spec: Manifest) -> list[str]:
    found = {m.group(0).rsplit("[", 1)[1].rstrip("]") for r in spec["rules"]
             for m in RATE.finditer(r["query"])}  # fmt: skip
    return sorted(found, key=parse_duration)
