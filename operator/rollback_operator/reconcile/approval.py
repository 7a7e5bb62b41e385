"""Who may approve a rollback: anyone but the person who asked for it.

Approval is a second person's check before a rollback that needs one runs. The chart's
ValidatingAdmissionPolicy makes both annotations name the Kubernetes user who set them and
refuses a self-approval at the API server; the operator checks again here, so that a cluster
without the policy still never runs a rollback approved by its own requester.
"""

from __future__ import annotations


def refusal(approved_by: str | None, requested_by: str | None) -> str | None:
    """Why the approval does not count, or None when it does (or when there is none yet).

    A rollback with no `requested-by` has no known requester, so any approval counts."""
    who, asker = (approved_by or "").strip(), (requested_by or "").strip()
    if not who or who != asker:
        return None
    return (
        f"{who} requested this rollback and cannot approve it: another person must set the "
        "annotation rollback.mindmate.app/approved-by"
    )
