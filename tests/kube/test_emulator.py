"""Claims about the Kubernetes API emulator, proven over real HTTP, through kubectl and kopf.

Every other suite trusts the emulator to behave like a kube-apiserver, so each rule it
promises is pinned here: HTTP tests against an in-process emulator (fast, and they can read
its state), kubectl tests against an emulator process, and one kopf operator round-trip.
"""

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import kmock
import kopf
import pytest
import pytest_asyncio
import yaml

from sandbox.kube.cluster import REPO_ROOT, EmulatedCluster
from sandbox.kube.emulator import RealisticEmulator, running_emulator

CRD_FILE = Path(__file__).parent / "testdata" / "widget-crd.yaml"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.test/v1/namespaces/default/widgets"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
DEADLINE = 10.0


def widget(name: str, **metadata: Any) -> dict[str, Any]:
    body = {"apiVersion": "example.test/v1", "kind": "Widget", "spec": {"size": 1}}
    return {**body, "metadata": {"name": name, **metadata}}


def configmap(name: str, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **metadata}}


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


@pytest_asyncio.fixture
async def api(kube_emulator: RealisticEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for an in-process emulator that already serves the Widget CRD."""
    async with httpx.AsyncClient(base_url=str(kube_emulator.url), timeout=DEADLINE) as client:
        response = await client.post(CRDS, json=yaml.safe_load(CRD_FILE.read_text()))
        assert response.status_code == 201, response.text
        yield client


async def create(api: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(url, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def names(api: httpx.AsyncClient, url: str, **params: str) -> set[str]:
    response = await api.get(url, params=params)
    assert response.status_code == 200, response.text
    return {item["metadata"]["name"] for item in response.json()["items"]}


async def watch(api: httpx.AsyncClient, count: int, **params: str) -> list[dict[str, Any]]:
    """Read ``count`` events from a widget watch (or fewer if the server ends the stream)."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(DEADLINE):
        async with api.stream("GET", WIDGETS, params={"watch": "true", **params}) as response:
            assert response.headers["Content-Type"] == "application/json"
            async for line in response.aiter_lines():
                events.append(json.loads(line))
                if len(events) == count:
                    break
    return events


async def until_watched(api: httpx.AsyncClient) -> None:
    """Poll the emulator until a watch is open (the watch runs in another task)."""
    async with asyncio.timeout(DEADLINE):
        while not (await api.get("/_emulator/watches")).json()["watches"]:  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def poll(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# --- creation -------------------------------------------------------------------------------


async def test_create_fills_uid_timestamp_namespace_resource_version_and_generation(
    api: httpx.AsyncClient,
) -> None:
    created = await create(api, WIDGETS, widget("w1"))  # no namespace in the body
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert uuid.UUID(meta["uid"])
    assert RFC3339.match(meta["creationTimestamp"])
    assert meta["resourceVersion"].isdigit()
    assert meta["generation"] == 1
    assert (await api.get(f"{WIDGETS}/w1")).json() == created


async def test_generate_name_gets_a_random_five_character_suffix(api: httpx.AsyncClient) -> None:
    first = await create(api, WIDGETS, widget("", generateName="w-"))
    second = await create(api, WIDGETS, widget("", generateName="w-"))
    for created in (first, second):
        assert re.fullmatch(r"w-[bcdfghjklmnpqrstvwxz2456789]{5}", created["metadata"]["name"])
    assert first["metadata"]["name"] != second["metadata"]["name"]


async def test_many_events_posted_with_generate_name_are_all_stored(
    api: httpx.AsyncClient,
) -> None:
    event = {"metadata": {"generateName": "kopf-event-"}, "reason": "Tested", "message": "m"}
    for _ in range(20):
        await create(api, "/api/v1/namespaces/default/events", event)
    listed = (await api.get("/api/v1/namespaces/default/events")).json()
    assert listed["kind"] == "EventList"
    assert len(listed["items"]) == 20


async def test_duplicate_create_answers_409_already_exists(api: httpx.AsyncClient) -> None:
    await create(api, WIDGETS, widget("w1"))
    response = await api.post(WIDGETS, json=widget("w1"))
    assert response.status_code == 409
    assert response.json()["kind"] == "Status"
    assert response.json()["reason"] == "AlreadyExists"


async def test_create_in_a_missing_namespace_answers_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/apis/example.test/v1/namespaces/nowhere/widgets", json=widget("w"))
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"


async def test_unknown_resource_answers_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/apis/example.test/v1/namespaces/default/gadgets")
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"


async def test_default_namespace_exists_from_the_start(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/namespaces/default")
    assert response.status_code == 200
    assert response.json()["status"] == {"phase": "Active"}
    assert await names(api, "/api/v1/namespaces") == {"default"}


# --- resourceVersion and generation ---------------------------------------------------------


async def test_every_write_gets_a_new_higher_resource_version(
    api: httpx.AsyncClient, kube_emulator: RealisticEmulator
) -> None:
    kept = widget("w1", finalizers=["example.test/keep"])
    versions = [rv(await create(api, WIDGETS, kept))]
    versions.append(rv(await create(api, CONFIGMAPS, configmap("c1"))))
    add_x = [{"op": "add", "path": "/spec/x", "value": 1}]
    for response in [
        await api.patch(f"{WIDGETS}/w1", json={"spec": {"size": 2}}, headers=MERGE),
        await api.patch(f"{WIDGETS}/w1", json=add_x, headers=JSON_PATCH),
        await api.patch(f"{CONFIGMAPS}/c1", json={"data": {"a": "b"}}, headers=STRATEGIC),
        await api.put(f"{WIDGETS}/w1", json=kept),
        await api.patch(f"{WIDGETS}/w1/status", json={"status": {"ok": True}}, headers=MERGE),
        await api.delete(f"{WIDGETS}/w1"),  # marks it: the finalizer keeps it
        await api.delete(f"{CONFIGMAPS}/c1"),
    ]:
        assert response.status_code == 200, response.text
        versions.append(rv(response.json()))
    assert versions == sorted(set(versions))
    assert kube_emulator.resource_version == versions[-1]
    listed = (await api.get(WIDGETS)).json()
    assert listed["metadata"]["resourceVersion"] == str(versions[-1])


async def test_a_write_that_changes_nothing_keeps_the_resource_version(
    api: httpx.AsyncClient,
) -> None:
    created = await create(api, WIDGETS, widget("w1"))
    response = await api.patch(f"{WIDGETS}/w1", json={"spec": {"size": 1}}, headers=MERGE)
    assert rv(response.json()) == rv(created)


async def test_generation_changes_only_when_the_spec_changes(api: httpx.AsyncClient) -> None:
    async def generation_after(url: str, body: dict[str, Any]) -> int:
        response = await api.patch(url, json=body, headers=MERGE)
        assert response.status_code == 200, response.text
        return int(response.json()["metadata"]["generation"])

    await create(api, WIDGETS, widget("w1"))
    assert await generation_after(f"{WIDGETS}/w1", {"metadata": {"labels": {"a": "b"}}}) == 1
    assert await generation_after(f"{WIDGETS}/w1/status", {"status": {"phase": "X"}}) == 1
    assert await generation_after(f"{WIDGETS}/w1", {"spec": {"size": 2}}) == 2
    assert await generation_after(f"{WIDGETS}/w1", {"spec": {"size": 3}}) == 3


# --- the status subresource -----------------------------------------------------------------


async def test_status_subresource_writes_change_only_the_status(api: httpx.AsyncClient) -> None:
    await create(api, WIDGETS, widget("w1"))
    body = {"spec": {"size": 9}, "metadata": {"labels": {"x": "y"}}, "status": {"phase": "Up"}}
    response = await api.patch(f"{WIDGETS}/w1/status", json=body, headers=MERGE)
    assert response.status_code == 200
    stored = (await api.get(f"{WIDGETS}/w1")).json()
    assert stored["status"] == {"phase": "Up"}
    assert stored["spec"] == {"size": 1}
    assert "labels" not in stored["metadata"]


async def test_main_resource_writes_ignore_the_status(api: httpx.AsyncClient) -> None:
    created = await create(api, WIDGETS, {**widget("w1"), "status": {"phase": "Fake"}})
    assert "status" not in created
    body = {"spec": {"size": 2}, "status": {"phase": "Fake"}}
    patched = (await api.patch(f"{WIDGETS}/w1", json=body, headers=MERGE)).json()
    assert patched["spec"] == {"size": 2}
    assert "status" not in patched


async def test_status_of_a_resource_without_the_subresource_answers_404(
    api: httpx.AsyncClient,
) -> None:
    await create(api, CONFIGMAPS, configmap("c1"))
    response = await api.patch(f"{CONFIGMAPS}/c1/status", json={"status": {}}, headers=MERGE)
    assert response.status_code == 404


# --- patch and replace failures -------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "remove", "path": "/spec/absent"},
        {"op": "replace", "path": "/no/such/parent", "value": 1},
    ],
    ids=["failed-test", "conflict", "bad-pointer"],
)
async def test_a_json_patch_that_cannot_apply_answers_422_and_changes_nothing(
    api: httpx.AsyncClient, operation: dict[str, Any]
) -> None:
    created = await create(api, WIDGETS, widget("w1"))
    response = await api.patch(f"{WIDGETS}/w1", json=[operation], headers=JSON_PATCH)
    assert response.status_code == 422
    assert response.json()["reason"] == "Invalid"
    assert (await api.get(f"{WIDGETS}/w1")).json() == created


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_a_stale_resource_version_answers_409_conflict(
    api: httpx.AsyncClient, method: str
) -> None:
    created = await create(api, WIDGETS, widget("w1"))
    await api.patch(f"{WIDGETS}/w1", json={"spec": {"size": 2}}, headers=MERGE)
    stale = {**created, "spec": {"size": 3}}  # carries the creation's resourceVersion
    headers = MERGE if method == "PATCH" else {}
    response = await api.request(method, f"{WIDGETS}/w1", json=stale, headers=headers)
    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"
    assert (await api.get(f"{WIDGETS}/w1")).json()["spec"] == {"size": 2}


async def test_strategic_merge_patch_of_a_custom_resource_answers_415(
    api: httpx.AsyncClient,
) -> None:
    await create(api, WIDGETS, widget("w1"))
    response = await api.patch(f"{WIDGETS}/w1", json={"spec": {"size": 2}}, headers=STRATEGIC)
    assert response.status_code == 415


async def test_put_replaces_the_object_but_keeps_server_fields(api: httpx.AsyncClient) -> None:
    created = await create(api, WIDGETS, {**widget("w1", labels={"a": "b"}), "spec": {"x": 1}})
    replaced = await api.put(f"{WIDGETS}/w1", json={**widget("w1"), "spec": {"y": 2}})
    assert replaced.status_code == 200
    stored = (await api.get(f"{WIDGETS}/w1")).json()
    assert stored["spec"] == {"y": 2}
    assert "labels" not in stored["metadata"]
    for field in ("uid", "creationTimestamp", "namespace"):
        assert stored["metadata"][field] == created["metadata"][field]
    assert stored["metadata"]["generation"] == 2


# --- lists and selectors --------------------------------------------------------------------


async def test_list_reports_kind_api_version_and_resource_version(
    api: httpx.AsyncClient, kube_emulator: RealisticEmulator
) -> None:
    await create(api, WIDGETS, widget("w1"))
    listed = (await api.get(WIDGETS)).json()
    assert listed["kind"] == "WidgetList"
    assert listed["apiVersion"] == "example.test/v1"
    assert listed["metadata"]["resourceVersion"] == str(kube_emulator.resource_version)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["w1"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", {"a"}),
        ("app==web,tier=front", {"a"}),
        ("app!=web", {"b", "c"}),
        ("app", {"a", "b"}),
        ("!app", {"c"}),
        ("app in (web,db)", {"a", "b"}),
        ("app notin (web)", {"b", "c"}),
    ],
)
async def test_list_honours_label_selectors(
    api: httpx.AsyncClient, selector: str, expected: set[str]
) -> None:
    await create(api, WIDGETS, widget("a", labels={"app": "web", "tier": "front"}))
    await create(api, WIDGETS, widget("b", labels={"app": "db"}))
    await create(api, WIDGETS, widget("c"))
    assert await names(api, WIDGETS, labelSelector=selector) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("metadata.name=b", {"b"}),
        ("metadata.name!=b", {"a"}),
        ("metadata.namespace=default", {"a", "b"}),
        ("metadata.namespace=other", set()),
    ],
)
async def test_list_honours_field_selectors(
    api: httpx.AsyncClient, selector: str, expected: set[str]
) -> None:
    await create(api, WIDGETS, widget("a"))
    await create(api, WIDGETS, widget("b"))
    all_widgets = "/apis/example.test/v1/widgets"  # cluster-wide, so the namespace can filter
    assert await names(api, all_widgets, fieldSelector=selector) == expected


async def test_a_malformed_label_selector_answers_400(api: httpx.AsyncClient) -> None:
    response = await api.get(WIDGETS, params={"labelSelector": "app in web"})
    assert response.status_code == 400


# --- watches --------------------------------------------------------------------------------


async def test_watch_streams_json_lines_for_existing_and_later_changes(
    api: httpx.AsyncClient,
) -> None:
    await create(api, WIDGETS, widget("w1"))
    reader = asyncio.create_task(watch(api, count=4))
    await until_watched(api)
    await create(api, WIDGETS, widget("w2"))
    await api.patch(f"{WIDGETS}/w2", json={"spec": {"size": 5}}, headers=MERGE)
    await api.delete(f"{WIDGETS}/w2")
    events = await reader
    seen = [(event["type"], event["object"]["metadata"]["name"]) for event in events]
    assert seen == [("ADDED", "w1"), ("ADDED", "w2"), ("MODIFIED", "w2"), ("DELETED", "w2")]


async def test_watch_from_a_resource_version_sends_only_later_events(
    api: httpx.AsyncClient,
) -> None:
    await create(api, WIDGETS, widget("before"))
    listed_at = (await api.get(WIDGETS)).json()["metadata"]["resourceVersion"]
    await create(api, WIDGETS, widget("between"))  # after the list, before the watch
    events = await watch(api, count=1, resourceVersion=listed_at)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "between")]


async def test_watch_ends_after_timeout_seconds(api: httpx.AsyncClient) -> None:
    started = time.monotonic()
    events = await watch(api, count=99, timeoutSeconds="0.3")  # the real server takes ints
    assert events == []
    assert 0.3 <= time.monotonic() - started < 2


async def test_watch_from_an_expired_resource_version_answers_410() -> None:
    async with (
        running_emulator(history_size=2) as emulator,
        httpx.AsyncClient(base_url=str(emulator.url)) as client,
    ):
        for name in ("n1", "n2", "n3"):
            await create(client, "/api/v1/namespaces", {"metadata": {"name": name}})
        params = {"watch": "true", "resourceVersion": "1"}
        response = await client.get("/api/v1/namespaces", params=params)
    event = json.loads(response.text.splitlines()[0])
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"


async def test_watch_sees_objects_leaving_and_entering_its_selector(
    api: httpx.AsyncClient,
) -> None:
    await create(api, WIDGETS, widget("w1", labels={"app": "web"}))
    reader = asyncio.create_task(watch(api, count=3, labelSelector="app=web"))
    await until_watched(api)
    for app in ("db", "web"):
        body = {"metadata": {"labels": {"app": app}}}
        await api.patch(f"{WIDGETS}/w1", json=body, headers=MERGE)
    assert [event["type"] for event in await reader] == ["ADDED", "DELETED", "ADDED"]


# --- discovery and CRDs ---------------------------------------------------------------------


async def test_core_discovery_reports_group_version_v1(api: httpx.AsyncClient) -> None:
    core = (await api.get("/api/v1")).json()
    assert core["groupVersion"] == "v1"
    resources = {entry["name"] for entry in core["resources"]}
    assert {"namespaces", "events", "configmaps", "secrets"} <= resources


async def test_a_posted_crd_is_established_and_served_in_discovery(
    api: httpx.AsyncClient,
) -> None:
    crd = (await api.get(f"{CRDS}/widgets.example.test")).json()
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    served = {e["name"]: e for e in (await api.get("/apis/example.test/v1")).json()["resources"]}
    expected = {"kind": "Widget", "singularName": "widget", "namespaced": True}
    assert served["widgets"].items() >= expected.items()
    assert served["widgets"]["shortNames"] == ["wd"]
    assert served["widgets"]["categories"] == ["examples"]
    assert served["widgets/status"]["shortNames"] == []
    groups = [group["name"] for group in (await api.get("/apis")).json()["groups"]]
    assert "example.test" in groups


async def test_deleting_a_crd_stops_serving_its_resource(api: httpx.AsyncClient) -> None:
    await create(api, WIDGETS, widget("w1"))
    assert (await api.delete(f"{CRDS}/widgets.example.test")).status_code == 200
    assert (await api.get(WIDGETS)).status_code == 404
    assert (await api.get("/apis/example.test/v1")).status_code == 404


# --- deletion -------------------------------------------------------------------------------


async def test_finalizers_hold_a_deleted_object_until_they_are_removed(
    api: httpx.AsyncClient,
) -> None:
    await create(api, WIDGETS, widget("w1", finalizers=["example.test/keep"]))
    marked = (await api.delete(f"{WIDGETS}/w1")).json()
    assert RFC3339.match(marked["metadata"]["deletionTimestamp"])
    assert (await api.get(f"{WIDGETS}/w1")).status_code == 200
    reader = asyncio.create_task(watch(api, count=2))
    await until_watched(api)
    release = {"metadata": {"finalizers": None}}
    assert (await api.patch(f"{WIDGETS}/w1", json=release, headers=MERGE)).status_code == 200
    assert (await api.get(f"{WIDGETS}/w1")).status_code == 404
    assert [event["type"] for event in await reader] == ["ADDED", "DELETED"]


async def test_deleting_an_owner_deletes_what_it_owns(api: httpx.AsyncClient) -> None:
    owner = await create(api, WIDGETS, widget("owner"))
    reference = {"apiVersion": "example.test/v1", "kind": "Widget", "name": "owner"}
    owned = [{**reference, "uid": owner["metadata"]["uid"]}]
    await create(api, CONFIGMAPS, configmap("owned", ownerReferences=owned))
    await create(api, CONFIGMAPS, configmap("unrelated"))
    assert (await api.delete(f"{WIDGETS}/owner")).status_code == 200
    assert await names(api, CONFIGMAPS) == {"unrelated"}


async def test_deleting_a_namespace_deletes_its_contents(api: httpx.AsyncClient) -> None:
    await create(api, "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    await create(api, "/api/v1/namespaces/doomed/configmaps", configmap("c1"))
    assert (await api.delete("/api/v1/namespaces/doomed")).status_code == 200
    assert await names(api, "/api/v1/configmaps") == set()


async def test_objects_stay_assertable_through_kmock(
    api: httpx.AsyncClient, kube_emulator: RealisticEmulator
) -> None:
    await create(api, WIDGETS, widget("w1"))
    await api.patch(f"{WIDGETS}/w1/status", json={"status": {"phase": "Up"}}, headers=MERGE)
    stored = kube_emulator.objects["example.test/v1/widgets", "default", "w1"]
    assert stored >= {"spec": {"size": 1}, "status": {"phase": "Up"}}
    assert len(stored.history) == 2
    assert any(request.action == kmock.action.CREATE for request in kube_emulator)


# --- the emulator as a process, and kubectl -------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_the_process_writes_its_port_and_exits_cleanly_on_a_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    portfile = tmp_path / "port"
    command = [sys.executable, "-m", "sandbox.kube", "--port", "0", "--portfile"]
    with subprocess.Popen(
        [*command, str(portfile)], cwd=REPO_ROOT, stdout=subprocess.PIPE
    ) as process:
        try:
            poll(portfile.exists, "the port file")
            url = f"http://127.0.0.1:{int(portfile.read_text())}"
            assert httpx.get(f"{url}/version").json()["major"] == "1"
        finally:
            process.send_signal(signum)
            assert process.wait(timeout=5) == 0
        assert process.stdout is not None
        assert url in process.stdout.read().decode()


def apply_widget(cluster: EmulatedCluster, name: str, size: int = 1) -> None:
    manifest = yaml.safe_dump(widget(name) | {"spec": {"size": size}})
    cluster.apply_file(CRD_FILE)
    cluster.kubectl("apply", "-f", "-", stdin=manifest)


def test_kubectl_gets_widgets_by_plural_short_name_and_category(
    session_cluster: EmulatedCluster,
) -> None:
    apply_widget(session_cluster, "k-get")
    for kind in ("widgets", "wd", "examples"):
        listed = session_cluster.kubectl("get", kind, "-o", "name").stdout.split()
        assert "widget.example.test/k-get" in listed


def test_kubectl_get_yaml_shows_server_filled_metadata(session_cluster: EmulatedCluster) -> None:
    apply_widget(session_cluster, "k-yaml")
    shown = yaml.safe_load(session_cluster.kubectl("get", "widget", "k-yaml", "-o", "yaml").stdout)
    assert shown["metadata"]["namespace"] == "default"
    assert shown["metadata"]["uid"]
    assert shown["metadata"]["generation"] == 1


def test_kubectl_reapply_is_unchanged_and_create_reports_already_exists(
    session_cluster: EmulatedCluster,
) -> None:
    apply_widget(session_cluster, "k-again")
    manifest = yaml.safe_dump(widget("k-again"))
    assert "unchanged" in session_cluster.kubectl("apply", "-f", "-", stdin=manifest).stdout
    result = session_cluster.kubectl("create", "-f", "-", stdin=manifest, check=False)
    assert result.returncode != 0
    assert "(AlreadyExists)" in result.stderr


def test_kubectl_patches_the_status_subresource(session_cluster: EmulatedCluster) -> None:
    apply_widget(session_cluster, "k-status")
    patch = json.dumps({"status": {"phase": "Up"}, "spec": {"size": 7}})
    session_cluster.kubectl(
        "patch", "widget", "k-status", "--subresource=status", "--type=merge", "-p", patch
    )
    shown = session_cluster.kubectl("get", "widget", "k-status", "-o", "json").stdout
    assert json.loads(shown)["status"] == {"phase": "Up"}
    assert json.loads(shown)["spec"] == {"size": 1}


def test_kubectl_wait_returns_once_a_later_status_patch_sets_ready(
    session_cluster: EmulatedCluster,
) -> None:
    apply_widget(session_cluster, "k-wait")
    ready = json.dumps({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    patch = ("patch", "widget", "k-wait", "--subresource=status", "--type=merge", "-p", ready)
    timer = threading.Timer(0.5, session_cluster.kubectl, args=patch)
    started = time.monotonic()
    timer.start()
    try:
        result = session_cluster.kubectl(
            "wait", "--for=condition=Ready", "widget/k-wait", "--timeout=10s"
        )
    finally:
        timer.join()
    assert "condition met" in result.stdout
    assert 0.5 <= time.monotonic() - started < 5


def test_kubectl_get_watch_prints_a_later_update(session_cluster: EmulatedCluster) -> None:
    apply_widget(session_cluster, "k-watch")
    argv = session_cluster.kubectl_argv(
        "get", "widget", "k-watch", "-w", "-o", "jsonpath={.spec.size}{'\\n'}"
    )
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "1"  # the initial state
            apply_widget(session_cluster, "k-watch", size=2)
            assert process.stdout.readline().strip() == "2"  # the update, through the watch
        finally:
            process.terminate()


def test_kubectl_replace_updates_the_spec_and_generation(session_cluster: EmulatedCluster) -> None:
    apply_widget(session_cluster, "k-replace")
    manifest = yaml.safe_dump(widget("k-replace") | {"spec": {"size": 5}})
    session_cluster.kubectl("replace", "-f", "-", stdin=manifest)
    shown = session_cluster.kubectl(
        "get", "widget", "k-replace", "-o", "jsonpath={.spec.size} {.metadata.generation}"
    )
    assert shown.stdout == "5 2"


def test_kubectl_delete_removes_the_widget(session_cluster: EmulatedCluster) -> None:
    apply_widget(session_cluster, "k-delete")
    assert "deleted" in session_cluster.kubectl("delete", "widget", "k-delete").stdout
    result = session_cluster.kubectl("get", "widget", "k-delete", check=False)
    assert "(NotFound)" in result.stderr


def test_kubectl_api_resources_lists_widgets(session_cluster: EmulatedCluster) -> None:
    session_cluster.apply_file(CRD_FILE)
    table = session_cluster.kubectl("api-resources", "--api-group=example.test").stdout
    assert re.search(r"^widgets\s+wd\s+example.test/v1\s+true\s+Widget$", table, re.MULTILINE)


# --- a kopf operator ------------------------------------------------------------------------


def test_kopf_handles_a_create_once_posts_its_event_and_finalizes_the_delete(
    cluster: EmulatedCluster,
) -> None:
    cluster.apply_file(CRD_FILE)
    registry = kopf.OperatorRegistry()
    calls: list[str] = []

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=cluster.url, token="dummy", default_namespace="default")

    @kopf.on.create("example.test", "v1", "widgets", registry=registry)
    def created(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        calls.append("create")
        patch.status["phase"] = "Created"
        kopf.info(body, reason="WidgetCreated", message="the widget was created")

    @kopf.on.delete("example.test", "v1", "widgets", registry=registry)
    def deleted(**_: Any) -> None:
        calls.append("delete")

    stop = threading.Event()
    operator = threading.Thread(
        target=kopf.run,
        kwargs={"registry": registry, "standalone": True, "namespaces": ["default"],
                "stop_flag": stop},
    )  # fmt: skip
    operator.start()
    try:
        cluster.wait_for_watch("example.test/v1/widgets", namespace="default")
        with httpx.Client(base_url=cluster.url) as client:
            assert client.post(WIDGETS, json=widget("op")).status_code == 201

            def fetched() -> dict[str, Any]:
                response = client.get(f"{WIDGETS}/op")
                return response.json() if response.status_code == 200 else {}

            def event_reasons() -> list[str]:
                params = {"fieldSelector": "involvedObject.name=op"}
                items = client.get("/api/v1/namespaces/default/events", params=params).json()
                return [event["reason"] for event in items["items"]]

            poll(lambda: fetched().get("status", {}).get("phase") == "Created", "the status")
            poll(lambda: "WidgetCreated" in event_reasons(), "the event")
            assert fetched()["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
            assert client.delete(f"{WIDGETS}/op").status_code == 200
            poll(lambda: client.get(f"{WIDGETS}/op").status_code == 404, "the deletion")
            assert event_reasons().count("WidgetCreated") == 1
    finally:
        stop.set()
        operator.join(timeout=DEADLINE)
    assert not operator.is_alive()
    assert calls == ["create", "delete"]  # each handler ran exactly once
