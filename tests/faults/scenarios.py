"""The rollback-level fault scenarios: one policy, its Secrets and one Rollback (or a rule) per
provider x fault, each against its own served fake or its own proxy, so they run side by side
in one operator process.

Why this module exists: the claim "no fault leaves a Rollback stuck or silently Succeeded" is
about the whole product, so each scenario names the provider, the fault, the phases it may end
in, and the words its record must show; `test_rollback_faults.py` applies them all, waits, and
checks and records each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from sandbox import manifests
from tests.db import world

Manifest = dict[str, Any]
NO_TARGETS = {"frontend": None, "backend": None, "database": None, "storage": None}
FAILED = frozenset({"Failed", "PartiallyFailed"})


@dataclass
class Scenario:
    """One provider under one persistent fault, through the operator."""

    name: str
    provider: str
    operation: str
    fault: str
    manifests: list[Manifest]
    """Secrets, then the policy, then (unless a rule scenario) the Rollback named `name`."""
    phases: frozenset[str]
    words: tuple[str, ...]
    """Each must appear in the failed step's (or the rule's) message."""
    secrets: list[str] = field(default_factory=list)
    rule: bool = False
    """A policy rule scenario: waits for the rule's state, no Rollback."""
    stop: Callable[[], None] = lambda: None
    check: Callable[[], bool] | None = None
    """After the end: the data the failed step was about is as it was."""


def frontend_policy(name: str, vercel_url: str, project: str, token_secret: str = "vercel",
                    **spec: Any) -> Manifest:  # fmt: skip
    vercel = {"projectId": project, "apiUrl": vercel_url,
              "tokenSecretRef": {"name": token_secret, "key": "token"}}  # fmt: skip
    return manifests.policy(name, targets={**NO_TARGETS, "frontend": {"vercel": vercel}}, **spec)


def backend_policy(name: str, url: str, ids: tuple[str, str, str]) -> Manifest:
    railway = {"projectId": ids[0], "environmentId": ids[1], "serviceId": ids[2],
               "apiUrl": f"{url}/graphql/v2"}  # fmt: skip
    return manifests.policy(name, targets={**NO_TARGETS, "backend": {"railway": railway}})


def rollback(name: str, policy: str, targets: list[str], *, mode: str = "quick",
             label: bool = False, **spec: Any) -> Manifest:  # fmt: skip
    body = manifests.rollback(name, mode=mode, targets=targets, **spec)
    body["spec"]["policyRef"] = {"name": policy}
    if label:  # told as a policy-made rollback, so PagerDuty is paged from the start
        body["metadata"]["labels"] = {"rollback.mindmate.app/trigger": "policy"}
    return body


class Terminator:
    """Keeps killing the operator's database session whenever it waits for a lock, while an
    idle transaction holds one on `items`: a connection dropped mid-restore, every time."""

    def __init__(self, db: world.Db) -> None:
        self.db = db
        self.killed = 0
        self._stop = threading.Event()
        self._holder = psycopg.connect(db.url)
        self._holder.execute("LOCK TABLE items IN ACCESS SHARE MODE")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with psycopg.connect(self.db.url, autocommit=True) as admin:
            while not self._stop.wait(0.05):
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                    " AND application_name LIKE 'rollback-operator%%' AND wait_event_type = 'Lock'",
                    (self.db.name,),
                ).fetchall()
                self.killed += len(rows)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._holder.rollback()
        self._holder.close()
