"""Contract tests pinning `FakeVercel` to docs/providers.md V1-V12, with raw httpx calls.

Why: the Vercel adapter will be tested against this fake, so the fake itself must behave like
the documented API (auth and team scoping, `until` pagination, the `lastAliasRequest` job,
promote, pause, error shapes and faults). These tests are that guarantee; they use no adapter.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sandbox.fakes.http_server import Dropped, RateLimited, ServerError, Slow
from sandbox.fakes.vercel_server import FakeVercel

TOKEN = "vrc-secret-0123456789"
TEAM = "team_acme"


@dataclass
class World:
    """A served fake with one team project: an older production deployment and the live one."""

    fake: FakeVercel
    url: str
    client: httpx.Client
    project: str
    old: str
    live: str

    def get(self, path: str, **params: str | int) -> httpx.Response:
        return self.client.get(path, params={"teamId": TEAM, **params})

    def post(self, path: str, **params: str | int) -> httpx.Response:
        return self.client.post(path, params={"teamId": TEAM, **params}, json={})

    def poll(self) -> dict[str, Any]:
        response = self.get(f"/v9/projects/{self.project}")
        assert response.status_code == 200
        project: dict[str, Any] = response.json()
        return project


class FrozenClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    fake = FakeVercel(token=TOKEN, **getattr(request, "param", {}))
    fake.add_team(TEAM, slug="acme")
    project = fake.add_project("web", team_id=TEAM, aliases=["web.example.com", "www.example.com"])
    old = fake.add_deployment(project, meta={"githubCommitSha": "aaa", "githubCommitRef": "main"})
    live = fake.add_deployment(project, meta={"githubCommitSha": "bbb", "githubCommitRef": "main"})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with fake.serve() as server, httpx.Client(base_url=server.url, headers=headers) as client:
        yield World(fake, server.url, client, project, old, live)


def with_options(**options: Any) -> pytest.MarkDecorator:
    """Build the `world` fixture's fake with these constructor flags."""
    label = ",".join(f"{key}={value}" for key, value in options.items())
    return pytest.mark.parametrize("world", [options], indirect=True, ids=[label])


# ----- auth and scoping -----


def test_request_without_token_is_forbidden_in_documented_error_shape(world: World) -> None:
    response = world.client.get("/v6/deployments", headers={"Authorization": ""})

    assert response.status_code == 403
    assert response.json() == {"error": {"code": "forbidden", "message": "Not authorized"}}


@pytest.mark.parametrize(
    ("world", "status"),
    [
        pytest.param({}, 403, id="default-403"),
        pytest.param({"auth_failure_status": 401}, 401, id="flag-401"),
    ],
    indirect=["world"],
)
def test_wrong_token_is_rejected_with_configured_status(world: World, status: int) -> None:
    response = world.client.get("/v6/deployments", headers={"Authorization": "Bearer wrong"})

    assert response.status_code == status
    assert response.json()["error"]["code"] == "forbidden"


def test_team_scope_comes_from_team_id_or_slug(world: World) -> None:
    path = f"/v9/projects/{world.project}"

    assert world.get(path).json()["id"] == world.project
    assert world.client.get(path, params={"slug": "acme"}).json()["id"] == world.project
    personal = world.client.get(path)
    assert personal.status_code == 404
    assert personal.json()["error"]["code"] == "not_found"
    assert world.client.get("/v6/deployments").json()["deployments"] == []


def test_team_the_token_is_not_a_member_of_is_forbidden(world: World) -> None:
    world.fake.add_team("team_other", slug="other", tokens=[])

    response = world.client.get("/v6/deployments", params={"teamId": "team_other"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


# ----- listing and lookup -----


def test_list_pages_newest_first_until_pagination_next_is_null(world: World) -> None:
    extra = [world.fake.add_deployment(world.project, target=None) for _ in range(3)]
    expected = [*reversed(extra), world.live, world.old]
    seen: list[str] = []
    pages = 0
    params: dict[str, str | int] = {"limit": 2}
    while True:
        body = world.get("/v6/deployments", **params).json()
        pages += 1
        seen += [d["uid"] for d in body["deployments"]]
        assert body["pagination"]["count"] == len(body["deployments"])
        if body["pagination"]["next"] is None:
            break
        params["until"] = body["pagination"]["next"]

    assert seen == expected
    assert pages == 3


def test_v7_path_serves_the_same_list_as_v6(world: World) -> None:
    assert world.get("/v7/deployments").json() == world.get("/v6/deployments").json()


def test_list_filters_by_project_target_state_and_commit(world: World) -> None:
    fake = world.fake
    preview = fake.add_deployment(world.project, target=None)
    broken = fake.add_deployment(world.project, state="ERROR")
    other = fake.add_project("api", team_id=TEAM)
    fake.add_deployment(other)

    def uids(**params: str | int) -> list[str]:
        return [d["uid"] for d in world.get("/v6/deployments", **params).json()["deployments"]]

    assert uids(projectId="web", target="production") == [broken, world.live, world.old]
    assert uids(projectId=world.project, state="READY", target="production") == [
        world.live,
        world.old,
    ]
    assert uids(projectId="web", target="preview") == [preview]
    assert uids(state="ERROR") == [broken]
    assert uids(sha="aaa") == [world.old]
    assert uids(projectId=world.project, rollbackCandidate="true") == [world.live, world.old]
    assert len(uids()) == 5


def test_comma_separated_state_is_a_bad_request_by_default(world: World) -> None:
    response = world.get("/v6/deployments", state="READY,ERROR")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@with_options(comma_separated_states=True)
def test_comma_separated_state_matches_any_when_enabled(world: World) -> None:
    broken = world.fake.add_deployment(world.project, state="ERROR")

    body = world.get("/v6/deployments", state="READY,ERROR").json()

    assert [d["uid"] for d in body["deployments"]] == [broken, world.live, world.old]


def test_list_items_use_uid_and_single_deployment_uses_id(world: World) -> None:
    item = world.get("/v6/deployments", limit=1).json()["deployments"][0]
    by_id = world.get(f"/v13/deployments/{world.live}").json()
    by_url = world.get(f"/v13/deployments/{item['url']}").json()

    assert item["uid"] == world.live
    assert "id" not in item
    assert by_id["id"] == by_url["id"] == world.live
    assert by_id["readySubstate"] == "PROMOTED"
    assert sorted(by_id["alias"]) == ["web.example.com", "www.example.com"]
    assert world.get("/v13/deployments/dpl_missing").status_code == 404


# ----- instant rollback -----


@with_options(job_polls=3)
def test_instant_rollback_job_succeeds_after_configured_polls(world: World) -> None:
    response = world.post(f"/v1/projects/{world.project}/rollback/{world.old}")
    assert response.status_code == 201
    assert response.content == b""

    statuses = [world.poll()["lastAliasRequest"]["jobStatus"] for _ in range(4)]
    project = world.poll()

    assert statuses == ["in-progress", "in-progress", "in-progress", "succeeded"]
    job = project["lastAliasRequest"]
    assert job["type"] == "rollback"
    assert (job["fromDeploymentId"], job["toDeploymentId"]) == (world.live, world.old)
    assert isinstance(job["requestedAt"], int)
    assert project["targets"]["production"]["id"] == world.old
    assert project["targets"]["production"]["readySubstate"] == "PROMOTED"


@with_options(job_clock_ahead_ms=5_000)
def test_a_jobs_request_time_can_be_stamped_ahead_of_the_deployments_clock(world: World) -> None:
    world.post(f"/v1/projects/{world.project}/rollback/{world.old}")
    made_after_asking = world.fake.add_deployment(world.project, live=False)

    requested = world.poll()["lastAliasRequest"]["requestedAt"]

    assert requested > world.fake.deployment(made_after_asking).created_at


def test_production_stays_on_the_old_deployment_while_the_job_runs(world: World) -> None:
    world.post(f"/v9/projects/{world.project}/rollback/{world.old}")

    project = world.poll()

    assert project["lastAliasRequest"]["jobStatus"] == "in-progress"
    assert project["targets"]["production"]["id"] == world.live


@with_options(job_polls=0, job_outcome="failed")
def test_failed_rollback_job_keeps_production_and_lists_failed_aliases(world: World) -> None:
    world.post(f"/v1/projects/{world.project}/rollback/{world.old}")

    project = world.poll()
    failed = world.get(f"/v9/projects/{world.project}/rollback/aliases", failedOnly="true")

    assert project["lastAliasRequest"]["jobStatus"] == "failed"
    assert project["targets"]["production"]["id"] == world.live
    aliases = failed.json()["aliases"]
    assert [a["status"] for a in aliases] == ["failed"]
    assert set(aliases[0]["alias"]) == {"alias", "deploymentId"}


def test_rollback_job_with_seconds_budget_ends_when_the_clock_passes_it() -> None:
    clock = FrozenClock()
    fake = FakeVercel(token=TOKEN, clock=clock, job_seconds=30)
    project = fake.add_project("web")
    old = fake.add_deployment(project)
    fake.add_deployment(project)
    with fake.serve() as server, httpx.Client(base_url=server.url) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        client.post(f"/v1/projects/{project}/rollback/{old}", json={})
        before = client.get(f"/v9/projects/{project}").json()["lastAliasRequest"]["jobStatus"]
        clock.now += 30
        after = client.get(f"/v9/projects/{project}").json()

    assert before == "in-progress"
    assert after["lastAliasRequest"]["jobStatus"] == "succeeded"
    assert after["targets"]["production"]["id"] == old


@with_options(job_polls=10_000)
def test_held_job_stays_in_progress_until_the_step_hook_ends_it(world: World) -> None:
    world.post(f"/v1/projects/{world.project}/rollback/{world.old}")
    held = [world.poll()["lastAliasRequest"]["jobStatus"] for _ in range(5)]

    world.fake.complete_job(world.project, "skipped")

    assert set(held) == {"in-progress"}
    assert world.poll()["lastAliasRequest"]["jobStatus"] == "skipped"
    assert world.fake.production_deployment(world.project) == world.live


def test_second_rollback_while_a_job_runs_is_a_conflict(world: World) -> None:
    world.post(f"/v1/projects/{world.project}/rollback/{world.old}")

    response = world.post(f"/v1/projects/{world.project}/rollback/{world.old}")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_rollback_refuses_unknown_foreign_and_never_production_targets(world: World) -> None:
    preview = world.fake.add_deployment(world.project, target=None)
    other = world.fake.add_project("api", team_id=TEAM)
    foreign = world.fake.add_deployment(other)
    base = f"/v1/projects/{world.project}/rollback"

    assert world.post(f"{base}/dpl_missing").status_code == 404
    assert world.post(f"{base}/{foreign}").status_code == 400
    assert world.post(f"{base}/{preview}").status_code == 400
    assert world.fake.log.count_mutating() == 3
    assert world.poll()["lastAliasRequest"] is None


@with_options(hobby_plan=True)
def test_hobby_plan_may_only_roll_back_to_the_previous_production_deployment(
    world: World,
) -> None:
    newest = world.fake.add_deployment(world.project)

    refused = world.post(f"/v1/projects/{world.project}/rollback/{world.old}")
    accepted = world.post(f"/v1/projects/{world.project}/rollback/{world.live}")

    assert refused.status_code == 402
    assert accepted.status_code == 201
    assert world.poll()["lastAliasRequest"]["fromDeploymentId"] == newest


# ----- promote and pause -----


def test_promote_answers_201_and_drives_the_same_job_to_live(world: World) -> None:
    staged = world.fake.add_deployment(world.project, live=False)
    assert world.get(f"/v13/deployments/{staged}").json()["readySubstate"] == "STAGED"

    response = world.post(f"/v10/projects/{world.project}/promote/{staged}")
    for _ in range(3):
        job = world.poll()["lastAliasRequest"]

    assert response.status_code == 201
    assert (job["type"], job["jobStatus"], job["toDeploymentId"]) == (
        "promote",
        "succeeded",
        staged,
    )
    assert world.fake.production_deployment(world.project) == staged


@with_options(promote_status=202)
def test_promote_status_202_is_selectable(world: World) -> None:
    staged = world.fake.add_deployment(world.project, live=False)

    assert world.post(f"/v10/projects/{world.project}/promote/{staged}").status_code == 202


def test_pause_and_unpause_flip_the_paused_flag(world: World) -> None:
    paused = world.post(f"/v1/projects/{world.project}/pause")
    assert (paused.status_code, paused.content) == (200, b"")
    assert world.poll()["paused"] is True

    assert world.post(f"/v1/projects/{world.project}/unpause").status_code == 200
    assert world.poll()["paused"] is False


def test_pausing_an_unknown_project_is_a_bad_request_not_404(world: World) -> None:
    response = world.post("/v1/projects/prj_missing/pause")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


# ----- faults -----


def test_rate_limited_fault_has_retry_after_and_limit_details(world: World) -> None:
    world.fake.inject(RateLimited(retry_after=7), route="GET /v6/deployments")

    limited = world.get("/v6/deployments")
    other = world.get(f"/v9/projects/{world.project}")
    retried = world.get("/v6/deployments")

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    error = limited.json()["error"]
    assert error["code"] == "rate_limited"
    assert set(error["limit"]) == {"remaining", "reset", "resetMs", "total"}
    assert "X-RateLimit-Limit" not in limited.headers
    assert (other.status_code, retried.status_code) == (200, 200)


@with_options(rate_limit=2, rate_limit_headers=True)
def test_per_endpoint_rate_limit_answers_429_with_rate_limit_headers(world: World) -> None:
    answers = [world.get("/v6/deployments") for _ in range(3)]
    project = world.get(f"/v9/projects/{world.project}")

    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[0].headers["X-RateLimit-Remaining"] == "1"
    assert answers[2].headers["X-RateLimit-Remaining"] == "0"
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert project.status_code == 200


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_fault_uses_the_error_shape(world: World, status: int) -> None:
    world.fake.inject(ServerError(status=status))

    response = world.get("/v6/deployments")

    assert response.status_code == status
    assert response.json()["error"]["code"] == "internal_server_error"


@with_options(latency=0.05)
def test_latency_delays_every_answer(world: World) -> None:
    started = time.monotonic()
    world.get("/v6/deployments")

    assert time.monotonic() - started >= 0.05


async def test_slow_fault_outlasts_a_short_client_timeout(world: World) -> None:
    world.fake.inject(Slow(seconds=0.5))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=world.url, headers=headers) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/v6/deployments", params={"teamId": TEAM}, timeout=0.1)
        after = await client.get("/v6/deployments", params={"teamId": TEAM})

    # The hang-up reaches the server thread asynchronously.
    assert await asyncio.to_thread(world.fake.log.wait_for, 2, 1.0)

    assert after.status_code == 200
    assert {(r.fault, r.status) for r in world.fake.log.records} == {("Slow", None), (None, 200)}


def test_dropped_connection_raises_remote_protocol_error(world: World) -> None:
    world.fake.inject(Dropped(), route="POST */rollback/*")

    with pytest.raises(httpx.RemoteProtocolError):
        world.post(f"/v1/projects/{world.project}/rollback/{world.old}")

    assert world.fake.log.records[-1].status is None
    assert world.poll()["lastAliasRequest"] is None


def test_faults_fire_only_on_matching_routes_and_expire(world: World) -> None:
    world.fake.inject(ServerError(), route="GET /v9/projects/*", times=2)

    statuses = [world.get("/v6/deployments").status_code]
    statuses += [world.get(f"/v9/projects/{world.project}").status_code for _ in range(3)]

    assert statuses == [200, 500, 500, 200]
    assert len(world.fake.faults) == 0


def test_fake_is_reachable_from_a_separate_process(world: World) -> None:
    script = (
        "import sys, urllib.request\n"
        "request = urllib.request.Request(sys.argv[1], headers={'Authorization': sys.argv[2]})\n"
        "print(urllib.request.urlopen(request, timeout=5).status)\n"
    )
    url = f"{world.url}/v9/projects/{world.project}?teamId={TEAM}"

    result = subprocess.run(
        [sys.executable, "-c", script, url, f"Bearer {TOKEN}"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )

    assert result.stdout.strip() == "200"


# ----- request log -----


def test_request_log_counts_mutations_and_never_holds_the_token(world: World) -> None:
    world.post(f"/v1/projects/{world.project}/pause")
    world.post(f"/v1/projects/{world.project}/rollback/{world.old}")
    world.get(f"/v9/projects/{world.project}")
    world.client.get("/v6/deployments", headers={"Authorization": f"Bearer {TOKEN}x"})

    log = world.fake.log
    mutations = log.matching(mutating=True)
    assert log.count_mutating() == 2
    assert [(r.method, r.status) for r in mutations] == [("POST", 200), ("POST", 201)]
    assert mutations[1].query == {"teamId": TEAM}
    assert mutations[1].body == {}
    assert log.count_mutating("POST */rollback/*") == 1
    assert mutations[0].headers["Authorization"] == "Bearer ***REDACTED***"
    assert TOKEN not in repr(log.records)
