"""The operator with the real Vercel and Railway adapters against their fake servers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox import manifests
from sandbox.fakes.saas import RAILWAY_TOKEN, VERCEL_TOKEN, Saas, serving
from tests.e2e.bed import Bed

pytestmark = pytest.mark.e2e
REAL = ("frontend", "backend")


def _prepare(bed: Bed, saas: Saas) -> None:
    for secret in saas.secrets():
        bed.apply(secret)
    bed.apply(saas.policy())


def _backend_step_of_a_partly_failed(bed: Bed, saas: Saas, name: str) -> dict[str, Any]:
    """Quick rollback `name` on the real adapters; its backend step, once it failed while the
    frontend's succeeded."""
    bed.start(real=REAL)
    _prepare(bed, saas)
    bed.apply(manifests.rollback(name))
    body = bed.wait_for(name, {"Succeeded", "Failed", "PartiallyFailed"})
    steps = {s.get("target"): s for s in body["status"]["steps"]}
    assert body["status"]["phase"] == "PartiallyFailed", body["status"]
    assert steps["backend"]["state"] == "Failed"
    return dict(steps["backend"])


def test_quick_rollback_moves_vercel_and_railway_back_and_reaches_ready(bed: Bed) -> None:
    with serving() as saas:
        bed.start(real=REAL)
        _prepare(bed, saas)
        bed.apply(manifests.rollback("quick"))
        body = bed.wait_for("quick", {"Succeeded", "Failed", "PartiallyFailed"})
        assert body["status"]["phase"] == "Succeeded", body["status"]
        assert saas.live_frontend() == saas.old
        active = saas.railway.active_deployment(saas.service, saas.env)
        assert active not in (saas.railway_live, None)
        steps = {s.get("target"): s for s in body["status"]["steps"]}
        assert steps["frontend"]["externalIds"]["deploymentId"] == saas.old
        assert steps["backend"]["externalIds"]["rolledBackTo"] == saas.railway_old
        text = str(body) + bed.logs() + str(bed.events_for("quick"))
        assert VERCEL_TOKEN not in text
        assert RAILWAY_TOKEN not in text


def test_full_rollback_stops_both_layers_until_deploy_previous_then_serves_the_old_builds(
    bed: Bed,
) -> None:
    with serving() as saas:
        at_deploy_previous: list[list[str]] = []
        saas.railway.after(
            "deploymentRollback", lambda: at_deploy_previous.append(saas.backend_serving())
        )
        bed.start(real=REAL)
        _prepare(bed, saas)
        bed.apply(manifests.rollback("full", mode="full"))
        body = bed.wait_for("full", {"Succeeded", "Failed", "PartiallyFailed"})
        assert body["status"]["phase"] == "Succeeded", body["status"]
        assert at_deploy_previous == [[]]  # the bad release served nothing while data moved
        assert not saas.vercel.project(saas.project).paused
        served = saas.backend_serving()
        assert len(served) == 1
        assert (
            saas.railway.deployment(served[0]).meta
            == saas.railway.deployment(saas.railway_old).meta
        )
        assert saas.vercel.log.count_mutating("POST /v1/projects/*/pause") == 1
        assert saas.vercel.log.count_mutating("POST /v1/projects/*/unpause") == 1
        assert saas.railway.log.count_mutating("deploymentStop") == 1
        assert saas.railway.log.count_mutating("serviceInstance*") == 0
        assert body["status"]["plan"]["backend"]["serving"] is True


def test_a_deploy_landing_mid_rollback_fails_the_backend_step_naming_it_never_as_its_own(
    bed: Bed,
) -> None:
    with serving() as saas:
        landed: list[str] = []
        deploy = saas.railway.deploy_source
        saas.railway.after(
            "deploymentRollback", lambda: landed.append(deploy(saas.service, saas.env))
        )
        backend = _backend_step_of_a_partly_failed(bed, saas, "raced")
        assert landed[0] in backend["message"]
        assert "concurrent deploy" in backend["message"]
        assert backend["externalIds"]["deploymentId"] != landed[0]


def test_dry_run_with_real_adapters_makes_no_mutating_call(bed: Bed) -> None:
    with serving() as saas:
        bed.start(real=REAL)
        _prepare(bed, saas)
        bed.apply(manifests.rollback("plan", mode="full", dryRun=True))
        body = bed.wait_for("plan", {"Planned", "Failed"})
        assert body["status"]["phase"] == "Planned", body["status"]
        assert saas.vercel.log.count_mutating() == 0
        assert saas.railway.log.count_mutating() == 0


def test_sigkill_during_rollback_jobs_then_restart_sends_one_rollback_per_target(
    bed: Bed,
) -> None:
    with serving(job_seconds=2.0, deploy_seconds=2.0) as saas:
        bed.start(real=REAL)
        _prepare(bed, saas)
        bed.apply(manifests.rollback("killed"))
        deadline = time.monotonic() + 20
        while (
            saas.vercel.log.count_mutating("POST /v1/projects/*/rollback/*") == 0
            or saas.railway.log.count_mutating("deploymentRollback") == 0
        ):
            assert time.monotonic() < deadline, bed.logs()[-3000:]
            time.sleep(0.02)
        assert bed.process is not None
        bed.process.kill()
        assert bed.wait_exit() == -9
        bed.start(real=REAL)
        body = bed.wait_for("killed", {"Succeeded", "Failed", "PartiallyFailed"}, timeout=60)
        assert body["status"]["phase"] == "Succeeded", body["status"]
        assert saas.vercel.log.count_mutating("POST /v1/projects/*/rollback/*") == 1
        assert saas.railway.log.count_mutating("deploymentRollback") == 1
        assert saas.live_frontend() == saas.old


def test_a_backend_build_under_way_before_the_rollback_fails_the_step_naming_it_unasked(
    bed: Bed,
) -> None:
    with serving() as saas:
        under_way = saas.railway.add_deployment(
            saas.service, saas.env, status="BUILDING", created_at=time.time() - 60
        )  # a CI deploy of the bad release, started a minute before
        backend = _backend_step_of_a_partly_failed(bed, saas, "building")
        assert f"{under_way} (BUILDING) started before the rollback" in backend["message"]
        assert saas.railway.log.count_mutating() == 0
        assert saas.live_frontend() == saas.old
