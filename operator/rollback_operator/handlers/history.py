"""A RollbackPolicy's `historyLimit`: finished automatic Rollbacks beyond it are deleted.

Run by the policy's daemon after each evaluation round. The choice is pure
(`reconcile.history`); this module deletes, each by its uid, and says so once per round in an
Event on the policy. A deleted Rollback's report outlives it (`handlers.deletion`).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from rollback_operator.handlers.deps import Deps
from rollback_operator.providers.errors import ProviderError
from rollback_operator.reconcile import history

logger = logging.getLogger(__name__)


async def prune(body: kopf.Body, deps: Deps, rollbacks: Any) -> None:
    """Delete the policy's finished automatic Rollbacks beyond its historyLimit."""
    limit = body.get("spec", {}).get("historyLimit")
    if not isinstance(limit, int) or rollbacks is None:
        return
    namespace, name = body.metadata.namespace or "", body.metadata.name or ""
    gone = history.beyond_limit(rollbacks.get((namespace, name), []), limit)
    deleted = []
    for entry in gone:
        try:
            await deps.kube.delete("rollbacks", namespace, entry.name, entry.uid)
        except ProviderError as error:  # tried again next round
            logger.warning("historyLimit: could not delete Rollback %s: %s", entry.name, error)
            continue
        deleted.append(entry.name)
    if deleted:
        message = (
            f"historyLimit {limit}: deleted finished automatic Rollbacks "
            f"{', '.join(deleted)} (their reports are kept)"
        )
        logger.info("RollbackPolicy %s/%s: %s", namespace, name, message)
        kopf.event(body, type="Normal", reason="HistoryPruned", message=message)
