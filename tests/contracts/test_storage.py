"""The `Storage` contract, claimed of every row of `STORAGES`.

Claims: `restore` brings every object back as it was at the time, once per key; `plan` names
the time and changes nothing.
"""

from __future__ import annotations

from tests.contracts.worlds import StorageWorld

KEY = "uid-1/restore-storage/storage"


async def test_restore_brings_back_the_objects_as_they_were(storages: StorageWorld) -> None:
    was_as_of = storages.is_as_of()

    await storages.target().restore(storages.as_of, KEY)

    assert not was_as_of
    assert storages.is_as_of()


async def test_restore_twice_with_the_same_key_has_one_effect(storages: StorageWorld) -> None:
    await storages.target().restore(storages.as_of, KEY)
    written = storages.writes()

    await storages.target().restore(storages.as_of, KEY)

    assert written > 0
    assert storages.writes() == written
    assert storages.is_as_of()


async def test_planning_changes_nothing(storages: StorageWorld) -> None:
    plan = await storages.target().plan(storages.as_of)

    assert plan.as_of == storages.as_of
    assert storages.writes() == 0
    assert not storages.is_as_of()
