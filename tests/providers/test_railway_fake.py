"""Contract tests pinning `FakeRailway` to docs/providers.md R1-R21, with raw httpx calls.

Why: the Railway adapter will be tested against this fake, so the fake itself must behave like
the documented GraphQL API (both token headers, `errors` inside HTTP 200, Relay pagination,
`deploymentRollback` returning a bare Boolean and spawning a deployment that moves through
statuses, replica changes, rate-limit headers and faults). These tests use no adapter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sandbox.fakes.http_server import Dropped, ErrorReply, RateLimited, ServerError, Slow
from sandbox.fakes.railway_server import FakeRailway

TOKEN = "rw-account-secret-42"
PROJECT_TOKEN = "rw-project-secret-77"

LIST = """
query List($input: DeploymentListInput!, $first: Int, $after: String) {
  deployments(input: $input, first: $first, after: $after) {
    edges { cursor node { id status canRollback meta createdAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
STATUS = "query Status($id: String!) { deployment(id: $id) { id status deploymentStopped } }"
STOPPED = """
query Stopped($id: String!) {
  deployment(id: $id) { status deploymentStopped instances { status } }
}"""
STOP = "mutation Stop($id: String!) { deploymentStop(id: $id) }"
DEPLOY = """
mutation Deploy($s: String!, $e: String!) {
  serviceInstanceDeployV2(serviceId: $s, environmentId: $e)
}"""
ROLLBACK = "mutation Rollback($id: String!) { deploymentRollback(id: $id) }"
INSTANCE = """
query Instance($s: String!, $e: String!) {
  serviceInstance(serviceId: $s, environmentId: $e) {
    numReplicas activeDeployments { id instances { status } }
  }
}"""
SCALE = """
mutation Scale($s: String!, $e: String, $n: Int) {
  serviceInstanceUpdate(serviceId: $s, environmentId: $e, input: {numReplicas: $n})
}"""


@dataclass
class World:
    """A served fake: project with production and staging, one service, two deployments."""

    fake: FakeRailway
    url: str
    client: httpx.Client
    project: str
    env: str
    staging: str
    service: str
    old: str
    live: str

    def gql(self, query: str, headers: dict[str, str] | None = None, **variables: Any) -> Any:
        response = self.client.post(
            "/graphql/v2", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, query: str, **variables: Any) -> Any:
        body = self.gql(query, **variables)
        assert "errors" not in body, body
        return body["data"]

    def status(self, deployment_id: str) -> str:
        return str(self.data(STATUS, id=deployment_id)["deployment"]["status"])

    def newest(self) -> dict[str, Any]:
        where = {"serviceId": self.service, "environmentId": self.env}
        edges = self.data(LIST, input=where, first=1)["deployments"]["edges"]
        node: dict[str, Any] = edges[0]["node"]
        return node


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    fake = FakeRailway(token=TOKEN, **getattr(request, "param", {}))
    project = fake.add_project("shop")
    env = fake.add_environment(project, "production")
    staging = fake.add_environment(project, "staging")
    service = fake.add_service(project, replicas=2)
    old = fake.add_deployment(service, env, meta={"commitHash": "aaa"})
    live = fake.add_deployment(service, env, meta={"commitHash": "bbb"})
    fake.add_project_token(PROJECT_TOKEN, project_id=project, environment_id=env)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with fake.serve() as server, httpx.Client(base_url=server.url, headers=headers) as client:
        yield World(fake, server.url, client, project, env, staging, service, old, live)


def with_options(**options: Any) -> pytest.MarkDecorator:
    """Build the `world` fixture's fake with these constructor flags."""
    label = ",".join(f"{key}={value}" for key, value in options.items())
    return pytest.mark.parametrize("world", [options], indirect=True, ids=[label])


# ----- auth -----


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": ""}, id="missing"),
        pytest.param({"Authorization": "Bearer nope"}, id="unknown-bearer"),
        pytest.param({"Authorization": PROJECT_TOKEN}, id="no-bearer-scheme"),
    ],
)
def test_bad_bearer_token_is_not_authorized_inside_http_200(
    world: World, headers: dict[str, str]
) -> None:
    body = world.gql(STATUS, headers=headers, id=world.live)

    assert body == {"data": None, "errors": [{"message": "Not Authorized"}]}


def test_unknown_project_token_reports_project_token_not_found(world: World) -> None:
    body = world.gql(STATUS, headers={"Project-Access-Token": "nope"}, id=world.live)

    assert body["data"] is None
    assert "Project Token not found" in body["errors"][0]["message"]


def test_project_token_is_bound_to_one_environment(world: World) -> None:
    staged = world.fake.add_deployment(world.service, world.staging)
    as_project = {"Project-Access-Token": PROJECT_TOKEN, "Authorization": ""}

    binding = world.gql("{ projectToken { projectId environmentId } }", headers=as_project)
    own = world.gql(STATUS, headers=as_project, id=world.live)
    other = world.gql(STATUS, headers=as_project, id=staged)
    listed = world.gql(LIST, headers=as_project, input={"projectId": world.project})

    assert binding["data"]["projectToken"] == {
        "projectId": world.project,
        "environmentId": world.env,
    }
    assert own["data"]["deployment"]["id"] == world.live
    assert other["errors"][0]["message"] == "Not Authorized"
    nodes = [e["node"]["id"] for e in listed["data"]["deployments"]["edges"]]
    assert nodes == [world.live, world.old]


def test_account_token_limited_to_projects_is_not_authorized_elsewhere(world: World) -> None:
    world.fake.add_account_token("rw-workspace-secret", projects=["some-other-project"])

    body = world.gql(
        LIST,
        headers={"Authorization": "Bearer rw-workspace-secret"},
        input={"projectId": world.project},
    )

    assert body["errors"][0]["message"] == "Not Authorized"


@with_options(project_token_can_mutate=False)
def test_project_token_mutations_can_be_refused_by_flag(world: World) -> None:
    as_project = {"Project-Access-Token": PROJECT_TOKEN, "Authorization": ""}

    body = world.gql(ROLLBACK, headers=as_project, id=world.old)

    assert body["errors"][0]["message"] == "Not Authorized"
    assert world.fake.active_deployment(world.service, world.env) == world.live


# ----- queries, pagination, validation -----


def test_deployments_page_newest_first_through_edges_and_page_info(world: World) -> None:
    extra = [world.fake.add_deployment(world.service, world.env) for _ in range(3)]
    expected = [*reversed(extra), world.live, world.old]
    seen: list[str] = []
    after = None
    while True:
        page = world.data(LIST, input={"serviceId": world.service}, first=2, after=after)
        connection = page["deployments"]
        seen += [e["node"]["id"] for e in connection["edges"]]
        info = connection["pageInfo"]
        assert info["endCursor"] == connection["edges"][-1]["cursor"]
        assert info["hasPreviousPage"] is (after is not None)
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]

    assert seen == expected
    statuses = [world.status(d) for d in seen]
    assert statuses == ["SUCCESS", "REMOVED", "REMOVED", "REMOVED", "REMOVED"]


def test_last_and_before_page_backwards_from_the_oldest(world: World) -> None:
    query = """query($input: DeploymentListInput!, $last: Int, $before: String) {
      deployments(input: $input, last: $last, before: $before) {
        edges { node { id } } pageInfo { hasNextPage hasPreviousPage startCursor } } }"""
    newer = world.fake.add_deployment(world.service, world.env)
    where = {"serviceId": world.service}

    tail = world.data(query, input=where, last=2)["deployments"]
    head = world.data(query, input=where, last=2, before=tail["pageInfo"]["startCursor"])

    assert [e["node"]["id"] for e in tail["edges"]] == [world.live, world.old]
    assert tail["pageInfo"] == {**tail["pageInfo"], "hasNextPage": False, "hasPreviousPage": True}
    assert [e["node"]["id"] for e in head["deployments"]["edges"]] == [newer]


def test_deployments_filter_by_status_in_and_not_in(world: World) -> None:
    failed = world.fake.add_deployment(world.service, world.env, status="FAILED")
    inline = f"""{{ deployments(input: {{serviceId: "{world.service}",
                 status: {{in: [SUCCESS, FAILED]}}}}) {{ edges {{ node {{ id }} }} }} }}"""
    excluded = {"serviceId": world.service, "status": {"notIn": ["REMOVED", "FAILED"]}}

    by_literal = world.data(inline)["deployments"]["edges"]
    by_variable = world.data(LIST, input=excluded)["deployments"]["edges"]

    assert [e["node"]["id"] for e in by_literal] == [failed, world.live]
    assert [e["node"]["id"] for e in by_variable] == [world.live]


def test_answers_hold_only_the_selected_fields_under_their_aliases(world: World) -> None:
    data = world.data("query($id: String!) { d: deployment(id: $id) { status } }", id=world.live)

    assert data == {"d": {"status": "SUCCESS"}}


def test_unknown_deployment_is_an_error_entry_with_null_data(world: World) -> None:
    body = world.gql(STATUS, id="no-such-deployment")

    assert body["data"] is None
    assert body["errors"][0]["path"] == ["deployment"]


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        pytest.param(STATUS, {}, 'Variable "$id" of required type', id="missing-variable"),
        pytest.param(STATUS, {"id": 5}, "String cannot represent", id="wrong-variable-type"),
        pytest.param(
            "query($id: ID!) { deployment(id: $id) { id } }",
            {"id": "x"},
            'type "ID!" used in position expecting type "String!"',
            id="variable-type-mismatch",
        ),
        pytest.param(SCALE, {"s": "x", "n": "3"}, "Int cannot represent", id="nested-variable"),
        pytest.param("{ deployment { id } }", {}, 'argument "id"', id="missing-argument"),
        pytest.param(
            '{ deployment(id: "x") { nope } }', {}, 'Cannot query field "nope"', id="unknown-field"
        ),
        pytest.param('{ deployment(id: "x") }', {}, "must have a selection", id="no-selection"),
        pytest.param("{ deployment(id: ", {}, "Syntax Error", id="syntax"),
    ],
)
def test_invalid_operations_are_graphql_validation_errors(
    world: World, query: str, variables: dict[str, Any], message: str
) -> None:
    body = world.gql(query, **variables)

    assert "data" not in body
    assert message in body["errors"][0]["message"]


@with_options(validation_error_status=400)
def test_validation_error_status_400_is_selectable(world: World) -> None:
    response = world.client.post("/graphql/v2", json={"query": "{ deployment { id } }"})

    assert response.status_code == 400
    assert "errors" in response.json()


# ----- rollback and other deployment mutations -----


def test_rollback_creates_a_new_deployment_that_advances_to_success(world: World) -> None:
    assert world.data(ROLLBACK, id=world.old) == {"deploymentRollback": True}

    new = world.newest()
    statuses = [world.status(new["id"]) for _ in range(3)]

    assert new["id"] not in (world.old, world.live)
    assert new["meta"] == {"commitHash": "aaa"}
    assert statuses == ["INITIALIZING", "DEPLOYING", "SUCCESS"]
    assert world.status(world.live) == "REMOVING"
    assert world.status(world.live) == "REMOVED"
    assert world.fake.active_deployment(world.service, world.env) == new["id"]
    assert world.newest()["canRollback"] is True


@with_options(deploy_outcome="FAILED", deploy_polls=1)
def test_rollback_can_be_configured_to_fail_leaving_the_live_deployment(world: World) -> None:
    world.data(ROLLBACK, id=world.old)
    new = world.newest()["id"]

    statuses = [world.status(new) for _ in range(2)]

    assert statuses == ["INITIALIZING", "FAILED"]
    assert world.status(world.live) == "SUCCESS"


def test_rollback_with_a_selection_set_is_rejected_without_side_effects(world: World) -> None:
    body = world.gql(
        "mutation($id: String!) { deploymentRollback(id: $id) { id status } }", id=world.old
    )

    assert "must not have a selection" in body["errors"][0]["message"]
    assert world.newest()["id"] == world.live


def test_rollback_to_a_deployment_without_can_rollback_is_an_error(world: World) -> None:
    failed = world.fake.add_deployment(world.service, world.env, status="FAILED")

    body = world.gql(ROLLBACK, id=failed)

    assert body["data"] is None
    assert body["errors"][0]["path"] == ["deploymentRollback"]
    assert world.newest()["id"] == failed


def test_redeploy_returns_the_new_deployment(world: World) -> None:
    data = world.data(
        "mutation($id: String!) { deploymentRedeploy(id: $id) { id status } }", id=world.live
    )

    assert data["deploymentRedeploy"] == {"id": world.newest()["id"], "status": "INITIALIZING"}


@with_options(stop_requests=2)
def test_a_stop_lands_after_a_few_requests_and_then_the_deployment_serves_nothing(
    world: World,
) -> None:
    stop = world.data(STOP, id=world.live)
    views = [world.data(STOPPED, id=world.live)["deployment"] for _ in range(3)]

    assert stop == {"deploymentStop": True}
    assert [(v["deploymentStopped"], v["instances"][0]["status"]) for v in views] == [
        (False, "RUNNING"), (False, "RUNNING"), (True, "STOPPED")
    ]  # fmt: skip
    assert {v["status"] for v in views} == {"SUCCESS"}
    assert world.fake.serving(world.service, world.env) == []


def test_remove_marks_the_deployment_removed(world: World) -> None:
    remove = world.data("mutation($id: String!) { deploymentRemove(id: $id) }", id=world.live)

    assert remove == {"deploymentRemove": True}
    assert world.status(world.live) == "REMOVED"


def test_a_deploy_of_the_service_builds_its_latest_source_not_what_was_rolled_back_to(
    world: World,
) -> None:
    world.data(ROLLBACK, id=world.old)
    rolled_back = world.newest()["id"]
    for _ in range(3):
        world.status(rolled_back)

    made = world.data(DEPLOY, s=world.service, e=world.env)["serviceInstanceDeployV2"]
    for _ in range(3):
        world.status(made)

    assert world.newest()["id"] == made
    assert world.fake.deployment(made).meta == {"commitHash": "bbb"}  # the bad release
    assert world.fake.serving(world.service, world.env) == [made]


def test_a_scripted_event_runs_right_after_the_matching_call(world: World) -> None:
    landed: list[str] = []
    world.fake.after("deploymentRollback", lambda: landed.append(world.fake.deploy_source(
        world.service, world.env
    )))  # fmt: skip

    world.data(ROLLBACK, id=world.old)
    world.data(ROLLBACK, id=world.old)

    assert len(landed) == 1
    assert world.fake.deployment(landed[0]).meta == {"commitHash": "bbb"}


# ----- replicas -----


@with_options(replicas_apply_immediately=True)
def test_service_instance_update_can_resize_the_running_deployment_by_flag(world: World) -> None:
    before = world.data(INSTANCE, s=world.service, e=world.env)["serviceInstance"]

    scaled = world.data(SCALE, s=world.service, e=world.env, n=3)
    after = world.data(INSTANCE, s=world.service, e=world.env)["serviceInstance"]

    assert before["numReplicas"] == 2
    assert scaled == {"serviceInstanceUpdate": True}
    assert after["numReplicas"] == 3
    assert after["activeDeployments"][0]["instances"] == [{"status": "RUNNING"}] * 3


def test_a_replica_change_is_staged_until_the_next_deployment(world: World) -> None:
    world.data(SCALE, s=world.service, e=world.env, n=0)
    staged = world.data(INSTANCE, s=world.service, e=world.env)["serviceInstance"]
    world.data(SCALE, s=world.service, e=world.env, n=4)
    made = world.data(DEPLOY, s=world.service, e=world.env)["serviceInstanceDeployV2"]
    for _ in range(3):
        world.status(made)

    assert staged["numReplicas"] == 0
    assert len(staged["activeDeployments"][0]["instances"]) == 2  # still serving
    assert world.fake.serving(world.service, world.env) == [made]
    assert world.fake.deployment(made).replicas == 4


@pytest.mark.parametrize(
    ("world", "accepted"),
    [
        pytest.param({}, True, id="default-accepts"),
        pytest.param({"allow_zero_replicas": False}, False, id="flag-refuses"),
    ],
    indirect=["world"],
)
def test_zero_replicas_acceptance_is_configurable(world: World, accepted: bool) -> None:
    body = world.gql(SCALE, s=world.service, e=world.env, n=0)

    assert ("errors" not in body) is accepted


def test_environment_patch_commit_sets_per_region_replicas(world: World) -> None:
    patch = {
        "services": {
            world.service: {
                "deploy": {
                    "multiRegionConfig": {
                        "us-west2": {"numReplicas": 2},
                        "europe-west4": {"numReplicas": 3},
                    }
                }
            }
        }
    }

    data = world.data(
        "mutation($e: String!, $p: EnvironmentConfig) "
        "{ environmentPatchCommit(environmentId: $e, patch: $p) }",
        e=world.env,
        p=patch,
    )
    instance = world.data(INSTANCE, s=world.service, e=world.env)["serviceInstance"]

    assert isinstance(data["environmentPatchCommit"], str)
    assert world.fake.service_instance(world.service, world.env).replicas_by_region == {
        "us-west2": 2,
        "europe-west4": 3,
    }
    assert instance["numReplicas"] == 1  # legacy single-region value
    assert len(instance["activeDeployments"][0]["instances"]) == 5


# ----- rate limits and faults -----


def test_every_answer_carries_rate_limit_headers(world: World) -> None:
    response = world.client.post(
        "/graphql/v2", json={"query": STATUS, "variables": {"id": world.live}}
    )

    assert response.headers["X-RateLimit-Limit"] == "10000"
    assert int(response.headers["X-RateLimit-Remaining"]) < 10000
    assert int(response.headers["X-RateLimit-Reset"]) > time.time()


@with_options(rate_limit=2)
def test_exhausted_window_answers_429_with_retry_after(world: World) -> None:
    payload = {"query": STATUS, "variables": {"id": world.live}}
    answers = [world.client.post("/graphql/v2", json=payload) for _ in range(3)]

    assert [r.status_code for r in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert answers[2].headers["X-RateLimit-Remaining"] == "0"
    assert "errors" in answers[2].json()


@with_options(rate_limit_body="text", rate_limit_reset_format="iso")
def test_rate_limit_fault_alternatives_are_selectable(world: World) -> None:
    world.fake.inject(RateLimited(retry_after=3), route="deploymentRollback")

    response = world.client.post(
        "/graphql/v2", json={"query": ROLLBACK, "variables": {"id": world.old}}
    )

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.text == "Too Many Requests"
    assert response.headers["X-RateLimit-Reset"].endswith("Z")


def test_graphql_error_fault_arrives_inside_http_200(world: World) -> None:
    world.fake.inject(ErrorReply("Not Authorized"), route="deployment")

    body = world.gql(STATUS, id=world.live)

    assert body == {"data": None, "errors": [{"message": "Not Authorized"}]}
    assert world.status(world.live) == "SUCCESS"


def test_server_error_fault_answers_5xx_with_errors_body(world: World) -> None:
    world.fake.inject(ServerError(status=502))

    response = world.client.post(
        "/graphql/v2", json={"query": STATUS, "variables": {"id": world.live}}
    )

    assert response.status_code == 502
    assert response.json()["errors"][0]["message"]


def test_dropped_connection_raises_remote_protocol_error(world: World) -> None:
    world.fake.inject(Dropped(), route="deploymentRollback")

    with pytest.raises(httpx.RemoteProtocolError):
        world.client.post("/graphql/v2", json={"query": ROLLBACK, "variables": {"id": world.old}})

    assert world.newest()["id"] == world.live


@with_options(latency=0.02)
async def test_slow_fault_adds_to_latency_and_outlasts_a_short_timeout(world: World) -> None:
    world.fake.inject(Slow(seconds=0.5))
    payload = {"query": STATUS, "variables": {"id": world.live}}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=world.url, headers=headers) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/graphql/v2", json=payload, timeout=0.1)
        started = time.monotonic()
        after = await client.post("/graphql/v2", json=payload)

    assert after.status_code == 200
    assert time.monotonic() - started >= 0.02


# ----- request log -----


def test_request_log_marks_mutations_and_never_holds_either_token(world: World) -> None:
    world.data(ROLLBACK, id=world.old)
    world.status(world.live)
    world.gql(STATUS, headers={"Project-Access-Token": PROJECT_TOKEN}, id=world.live)

    log = world.fake.log
    assert log.count_mutating() == 1
    assert [r.route for r in log.matching(mutating=True)] == ["deploymentRollback"]
    assert log.matching("deploymentRollback")[0].body["variables"] == {"id": world.old}
    assert log.records[-1].headers["Project-Access-Token"] == "***REDACTED***"
    assert TOKEN not in repr(log.records)
    assert PROJECT_TOKEN not in repr(log.records)
