"""How Vercel's answers read: a project's production deployment and alias job, a list item's
creation time, a pinned deployment's problem, a list item as a candidate, an alias's hostname.

Why this module exists: the Vercel adapter (`vercel`) asks; these pure functions say what the
answers mean (docs/providers.md V4-V6, V10), apart from how and when they are asked for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rollback_operator.providers.base import Candidate

Json = dict[str, Any]
TERMINAL = frozenset({"succeeded", "failed", "skipped"})
"""The `jobStatus` values of an alias job that has ended (V6)."""


def candidate(item: Json, live: str | None, default: str | None) -> Candidate:
    """A list item as a candidate; its note is the URL, as `vercel ls` shows it."""
    uid, created = str(item["uid"]), item.get("createdAt") or item.get("created")
    refused = " (not a rollback candidate)" if item.get("isRollbackCandidate") is False else ""
    return Candidate(
        id=uid,
        created_at=datetime.fromtimestamp(int(created) / 1000, UTC) if created else None,
        state=str(item.get("state") or item.get("readyState") or "?"),
        live=uid == live,
        default=uid == default,
        note=f"{item.get('url') or ''}{refused}".strip(),
    )


def pin_problem(dep: Json, project: Json) -> str | None:
    state, where = dep.get("readyState") or dep.get("status"), dep.get("projectId")
    if where != project["id"]:
        return f"belongs to project {where}, not {project['id']}"
    if state != "READY":
        return f"is {state}, not READY"
    return None if dep.get("target") == "production" else "is not a production deployment"


def created(item: Json) -> int:
    """A list item's creation time in ms (`createdAt`, or the older `created`)."""
    return int(item.get("createdAt") or item.get("created") or 0)


def production(project: Json) -> Json | None:
    live = (project.get("targets") or {}).get("production")
    return live if isinstance(live, dict) and live.get("id") else None


def production_id(project: Json) -> str | None:
    live = production(project)
    return str(live["id"]) if live else None


def job(project: Json, to: str, *, running: bool) -> Json | None:
    """The project's alias job if it moves production to `to` (and, if asked, still runs)."""
    job = project.get("lastAliasRequest")
    if not isinstance(job, dict) or job.get("toDeploymentId") != to:
        return None
    return None if running and job.get("jobStatus") in TERMINAL else job


def hostname(alias: Any) -> str:
    """An alias entry as the CLI (`{alias, deploymentId}`) or the SDK (a string) shapes it."""
    return str(alias.get("alias") if isinstance(alias, dict) else alias)
