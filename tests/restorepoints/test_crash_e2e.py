"""A restore point survives the operator's SIGKILL at either side of its dump: the restarted
operator takes it again from its start, at the moment first recorded, with one dump."""

from __future__ import annotations

import pytest

from sandbox import manifests
from tests.e2e.bed import Bed
from tests.restorepoints.test_restorepoint_e2e import ENDED, POINTS, restore_point, wait_point

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize("point", ["before:database.dump_point", "after:database.dump_point"])
def test_a_point_cut_short_by_sigkill_is_taken_once_after_the_restart(bed: Bed, point: str) -> None:
    bed.world().crash_at(point)
    bed.start()
    bed.apply(manifests.policy())
    bed.apply(restore_point("crashy"))
    assert bed.wait_exit(timeout=30) == -9, bed.logs()[-3000:]
    started = bed.get(POINTS, "crashy")["status"]["startedAt"]
    bed.start()
    body = wait_point(bed, "crashy", ENDED)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert body["status"]["startedAt"] == started
    assert body["status"]["storage"]["asOf"] == started  # the moment first recorded
    assert bed.world().calls("database.dump_point") == 1
