"""The `Database` contract, claimed of every row of `DATABASES`.

Claims: `plan` takes the newest backup (never a safety dump) or a pin that exists, dated, and
refuses when there is nothing to restore; `restore` brings back what the backup holds, once per
key; `safety_backup` dumps once per key; `candidates` list backups newest first with the newest
the default; planning and listing change nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from rollback_operator.providers import errors
from tests.contracts.worlds import DatabaseWorld

RESTORE = "uid-1/restore-database/database"
SAFETY = "uid-1/safety-backup/database"
JAN_1, JAN_2, JAN_3, JAN_5 = (date(2024, 1, day) for day in (1, 2, 3, 5))


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# ----- plan -----


async def test_plan_without_a_pin_takes_the_newest_backup_not_a_safety_dump(
    databases: DatabaseWorld,
) -> None:
    databases.write("a")
    names = [databases.back_up(day) for day in (JAN_1, JAN_3, JAN_2)]
    target = databases.target()
    await target.safety_backup(SAFETY)

    plan = await target.plan(None)

    assert plan.backup == names[1]
    assert plan.taken_at == midnight(JAN_3)


async def test_plan_takes_a_pinned_backup_even_when_older(databases: DatabaseWorld) -> None:
    databases.write("a")
    older = databases.back_up(JAN_1)
    databases.back_up(JAN_5)

    plan = await databases.target().plan(older)

    assert plan.backup == older
    assert plan.taken_at == midnight(JAN_1)


async def test_plan_pins_must_exist(databases: DatabaseWorld) -> None:
    databases.write("a")
    databases.back_up(JAN_1)

    with pytest.raises(errors.NotFoundError, match=r"backup nope\.dump not found"):
        await databases.target().plan("nope.dump")


async def test_plan_without_any_backup_is_not_found(databases: DatabaseWorld) -> None:
    with pytest.raises(errors.NotFoundError, match=databases.words.no_backups):
        await databases.target().plan(None)


async def test_planning_and_listing_change_nothing(databases: DatabaseWorld) -> None:
    databases.write("a")
    backup = databases.back_up(JAN_1)
    data, stored = databases.data(), databases.stored()
    target = databases.target()

    await target.plan(None)
    await target.plan(backup)
    await target.candidates(10)

    assert (databases.data(), databases.stored()) == (data, stored)


# ----- restore and the safety dump -----


async def test_restore_brings_back_what_the_backup_holds(databases: DatabaseWorld) -> None:
    databases.write("yesterday")
    backup = databases.back_up(JAN_1)
    databases.write("today")
    held_before = databases.holds(backup)

    await databases.target().restore(backup, RESTORE)

    assert not held_before
    assert databases.holds(backup)


async def test_restore_twice_with_the_same_key_has_one_effect(databases: DatabaseWorld) -> None:
    databases.write("yesterday")
    backup = databases.back_up(JAN_1)
    databases.write("today")
    await databases.target().restore(backup, RESTORE)
    databases.write("written-after")
    data = databases.data()

    again = await databases.target().restore(backup, RESTORE)

    assert databases.words.already_restored in again.message
    assert databases.data() == data
    await databases.target().restore(backup, "uid-2/restore-database/database")
    assert databases.holds(backup)


async def test_safety_backup_twice_with_the_same_key_has_one_effect(
    databases: DatabaseWorld,
) -> None:
    databases.write("current")
    first = await databases.target().safety_backup(SAFETY)

    again = await databases.target().safety_backup(SAFETY)

    assert first.external_ids["safetyBackup"] in databases.safety_dumps()
    assert again.external_ids == first.external_ids
    assert databases.words.already_dumped in again.message
    assert len(databases.safety_dumps()) == 1


# ----- candidates -----


async def test_candidates_list_backups_newest_first_the_newest_the_default(
    databases: DatabaseWorld,
) -> None:
    databases.write("a")
    jan_1, jan_3, jan_2 = (databases.back_up(day) for day in (JAN_1, JAN_3, JAN_2))
    target = databases.target()

    found = await target.candidates(10)

    assert [(c.id, c.default) for c in found] == [(jan_3, True), (jan_2, False), (jan_1, False)]
    assert [c.created_at for c in found] == [midnight(JAN_3), midnight(JAN_2), midnight(JAN_1)]
    assert not any(c.live for c in found)
    assert (await target.plan(None)).backup == jan_3


async def test_candidates_of_no_backups_are_none(databases: DatabaseWorld) -> None:
    assert await databases.target().candidates(10) == []
