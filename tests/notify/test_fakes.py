"""The notification fakes themselves, spoken to with bare httpx: do they behave as documented?

Claims (docs/providers.md S1-S5, ST1-ST7, PD1-PD7): Slack refuses bodies it could not show,
answers in plain text and rate-limits with a token bucket; Statuspage validates incidents,
stamps the lifecycle timestamps and takes the key from a header or the query; PagerDuty folds
events by dedup key, drops a resolve with nothing open, opens a new alert after resolution, and
limits each key to its window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from sandbox.fakes.pagerduty_server import FakePagerDuty
from sandbox.fakes.slack_server import FakeSlack
from sandbox.fakes.statuspage_server import FakeStatuspage

KEY = "sp-key-for-fake-tests"


@dataclass
class FrozenClock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


# ----- Slack -----


def test_slack_answers_in_plain_text_with_its_error_strings() -> None:
    fake = FakeSlack()
    path = fake.add_webhook("#ops")
    with fake.serve() as server, httpx.Client(base_url=server.url) as client:
        ok = client.post(path, json={"text": "hello"})
        empty = client.post(path, json={"blocks": []})
        broken = client.post(
            path, content=b"{not json", headers={"Content-Type": "application/json"}
        )
        unknown = client.post("/services/T1/B1/nope", json={"text": "hello"})
        fake.set_state(path, "archived")
        archived = client.post(path, json={"text": "hello"})

    answers = [(r.status_code, r.text) for r in (ok, empty, broken, unknown, archived)]
    assert answers == [(200, "ok"), (400, "no_text"), (400, "invalid_payload"),
                       (403, "invalid_token"), (410, "channel_is_archived")]  # fmt: skip
    assert ok.headers["Content-Type"].startswith("text/plain")
    assert [m["text"] for m in fake.messages("#ops")] == ["hello"]
    assert all("***REDACTED***" in r.path for r in fake.log.records if r.route != "POST webhook:?")


def test_slacks_bucket_allows_a_burst_then_asks_to_wait() -> None:
    clock = FrozenClock()
    fake = FakeSlack(clock=clock, burst=2, rate=1.0)
    path = fake.add_webhook("#ops")
    with fake.serve() as server, httpx.Client(base_url=server.url) as client:
        burst = [client.post(path, json={"text": str(i)}).status_code for i in range(3)]
        limited = client.post(path, json={"text": "again"})
        clock.now += 1.0
        later = client.post(path, json={"text": "later"})

    assert burst == [200, 200, 429]
    assert (limited.status_code, limited.text, limited.headers["Retry-After"]) == (
        429, "rate_limited", "1",
    )  # fmt: skip
    assert later.status_code == 200


# ----- Statuspage -----


def test_statuspage_validates_and_stamps_the_incident_lifecycle() -> None:
    fake = FakeStatuspage()
    [web] = fake.add_page("p1", ["web"], key=KEY)
    auth = {"Authorization": f"OAuth {KEY}"}
    with fake.serve() as server, httpx.Client(base_url=f"{server.url}/v1", headers=auth) as c:

        def incident(method: str, path: str, **fields: Any) -> httpx.Response:
            return c.request(method, f"/pages/p1/incidents{path}", json={"incident": fields})

        nameless = incident("POST", "", status="investigating")
        bad = incident("POST", ".json", name="x", components={web: "on_fire"})
        made = incident("POST", "", name="x", body="looking", components={web: "major_outage"})
        number = made.json()["id"]
        watched = incident("PATCH", f"/{number}", status="monitoring").json()
        done = incident("PATCH", f"/{number}", status="resolved", body="fixed").json()
        unresolved = c.get("/pages/p1/incidents/unresolved").json()
        by_query = httpx.get(f"{server.url}/v1/pages/p1/incidents", params={"api_key": KEY})
        no_key = httpx.get(f"{server.url}/v1/pages/p1/incidents")

    assert (nameless.status_code, nameless.json()) == (422, {"message": "Name can't be blank"})
    assert bad.status_code == 422
    assert made.status_code == 201
    assert (made.json()["impact"], made.json()["components"][0]["status"]) == (
        "critical", "major_outage",
    )  # fmt: skip
    assert watched["monitoring_at"] is not None
    assert watched["resolved_at"] is None
    assert done["resolved_at"] is not None
    assert [u["status"] for u in done["incident_updates"]] == [
        "resolved", "monitoring", "investigating"
    ]  # fmt: skip
    assert unresolved == []
    assert (by_query.status_code, no_key.status_code) == (200, 401)
    assert all(KEY not in str(r) for r in fake.log.records)


# ----- PagerDuty -----


def test_pagerduty_folds_by_dedup_key_and_drops_what_has_nothing_open() -> None:
    fake = FakePagerDuty()
    key = fake.add_integration("web")
    trigger = {"routing_key": key, "event_action": "trigger", "dedup_key": "k",
               "payload": {"summary": "down", "source": "web", "severity": "critical"}}  # fmt: skip
    with fake.serve() as server, httpx.Client(base_url=server.url) as client:
        stray = client.post(
            "/v2/enqueue", json={**trigger, "event_action": "resolve", "dedup_key": "x"}
        )
        first = client.post("/v2/enqueue", json=trigger)
        client.post("/v2/enqueue", json=trigger)
        client.post("/v2/enqueue", json={**trigger, "event_action": "resolve"})
        client.post("/v2/enqueue", json=trigger)
        invalid = client.post("/v2/enqueue", json={**trigger, "payload": {"summary": "down"}})

    assert (stray.status_code, first.status_code) == (202, 202)
    assert first.json() == {"status": "success", "message": "Event processed", "dedup_key": "k"}
    assert [(a.dedup_key, a.state, len(a.events)) for a in fake.alerts()] == [
        ("k", "resolved", 3), ("k", "triggered", 1)
    ]  # fmt: skip
    assert len(fake.dropped) == 1
    assert invalid.status_code == 400
    assert invalid.json()["errors"] == [
        "'payload.source' is missing or blank", "'payload.severity' is missing or blank"
    ]  # fmt: skip


def test_pagerduty_limits_each_key_over_a_sliding_minute() -> None:
    clock = FrozenClock()
    fake = FakePagerDuty(clock=clock, rate_limit=2)
    key = fake.add_integration("web")
    event = {"routing_key": key, "event_action": "resolve", "dedup_key": "k"}
    with fake.serve() as server, httpx.Client(base_url=server.url) as client:
        first = [client.post("/v2/enqueue", json=event).status_code for _ in range(3)]
        clock.now += 60.0
        later = client.post("/v2/enqueue", json=event).status_code

    assert first == [202, 202, 429]
    assert later == 202
