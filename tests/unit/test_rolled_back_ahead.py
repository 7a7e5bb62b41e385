"""Which targets a rollback that went ahead already rolled back, as the index tells it.

Claims: a rollback that had not ended when this one was created and has ended counts, whichever
was created first; one that ended before this one was created (or in its second) is history;
only a target whose every changing step succeeded in a Succeeded or PartiallyFailed rollback
counts, with where it went; the index entry of a stored Rollback carries its end and those.
"""

from __future__ import annotations

from typing import Any, cast

import kopf

from rollback_operator.api.rollback import Phase
from rollback_operator.handlers.index import rollback_entry
from rollback_operator.reconcile.queue import RollbackEntry, RolledBack, moved, rolled_back_ahead
from sandbox import manifests

ME_CREATED = "2024-01-01T03:00:10Z"


def _entry(
    name: str, created: str, finished: str = "", rolled_back: tuple[tuple[str, str], ...] = ()
) -> RollbackEntry:
    phase = Phase.SUCCEEDED if finished else Phase.RUNNING
    return RollbackEntry(
        uid=name, name=name, created=created, phase=phase, targets=frozenset({"frontend"}),
        finished=finished, rolled_back=rolled_back,
    )  # fmt: skip


ME = _entry("me", ME_CREATED)
FRONTEND = (("frontend", "dpl_old"),)


def test_a_rollback_that_ended_after_this_one_was_created_went_ahead_of_it() -> None:
    earlier = _entry("earlier", "2024-01-01T03:00:00Z", "2024-01-01T03:00:30.5Z", FRONTEND)
    assert rolled_back_ahead(ME, [ME, earlier]) == {
        "frontend": RolledBack(by="earlier", to="dpl_old")
    }


def test_one_created_after_but_admitted_first_went_ahead_too() -> None:
    later = _entry("later", "2024-01-01T03:00:11Z", "2024-01-01T03:00:30Z", FRONTEND)
    assert rolled_back_ahead(ME, [later]) == {"frontend": RolledBack(by="later", to="dpl_old")}


def test_one_that_ended_before_this_one_was_created_is_history() -> None:
    history = _entry("history", "2024-01-01T02:00:00Z", "2024-01-01T03:00:09.9Z", FRONTEND)
    assert rolled_back_ahead(ME, [history]) == {}


def test_one_that_ended_in_the_second_this_one_was_created_in_is_history_too() -> None:
    just = _entry("just", "2024-01-01T03:00:00Z", "2024-01-01T03:00:10.3Z", FRONTEND)
    assert rolled_back_ahead(ME, [just]) == {}


def test_one_still_running_or_that_rolled_back_other_targets_did_not_roll_back_mine() -> None:
    running = _entry("running", "2024-01-01T03:00:00Z")
    backend = _entry("backend", "2024-01-01T03:00:00Z", "2024-01-01T03:00:30Z", (("backend", "b"),))
    assert rolled_back_ahead(ME, [running, backend]) == {}


def _status(*states: tuple[str, str | None, str]) -> dict[str, Any]:
    return {
        "plan": {
            "frontend": {"from": "dpl_new", "to": "dpl_old", "serving": True},
            "backend": {"from": "r2", "to": "r1", "serving": True},
        },
        "steps": [{"name": n, "target": t, "state": s} for n, t, s in states],
    }


def test_only_targets_whose_every_changing_step_succeeded_were_moved() -> None:
    status = _status(
        ("notify-started", None, "Failed"),
        ("stop-traffic", "frontend", "Succeeded"),
        ("deploy-previous", "frontend", "Succeeded"),
        ("stop-traffic", "backend", "Succeeded"),
        ("deploy-previous", "backend", "Failed"),
    )
    assert moved(Phase.PARTIALLY_FAILED, status) == (("frontend", "dpl_old"),)
    assert moved(Phase.ABORTED, status) == ()


def test_the_index_entry_of_an_ended_rollback_carries_its_end_and_what_it_moved() -> None:
    stored = manifests.stored(manifests.rollback("rb-1", targets=["frontend"]))
    stored["status"] = {
        **_status(("instant-rollback", "frontend", "Succeeded")),
        "phase": "Succeeded",
        "finishedAt": "2024-01-01T03:00:30Z",
    }
    entry = rollback_entry(kopf.Body(cast(kopf.RawBody, stored)))
    assert entry.finished == "2024-01-01T03:00:30Z"
    assert entry.rolled_back == (("frontend", "dpl_old"),)
