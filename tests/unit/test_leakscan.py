"""The leak scan can fail: planted secrets are found in each kind of place it reads, by line,
without the report ever repeating the secret, and a pytest run with a leak exits non-zero.

Planted values live in a local `Registry` (or in `paused()` fakes), so the session's own scan,
which runs around these tests, never sees them as leaks.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from sandbox import manifests
from sandbox.fakes.slack_server import FakeSlack
from sandbox.kube.cluster import REPO_ROOT, EmulatedCluster
from tests import known_secrets, leakscan
from tests.apiserver.namespace import KubeNamespace
from tests.apiserver.server import KubeApiServer


def _planted() -> tuple[str, leakscan.Scanner]:
    value = f"planted-{uuid.uuid4().hex}"
    registry = known_secrets.Registry()
    registry.register(value, "planted token")
    return value, leakscan.Scanner(registry)


def _places(scanner: leakscan.Scanner) -> list[str]:
    return [f.where for f in scanner.findings]


@pytest.mark.parametrize(
    "known",
    known_secrets.STATIC,
    ids=[f"{k.source}-{n}" for n, k in enumerate(known_secrets.STATIC)],
)
def test_every_registered_literal_is_still_used_by_its_test_file(
    known: known_secrets.Known,
) -> None:
    assert known.value in (REPO_ROOT / known.source).read_text(), "update tests/known_secrets.py"


def test_a_url_secret_is_searched_whole_encoded_and_by_its_password() -> None:
    needles = known_secrets.needles("postgresql://app:s3cr%2Ft-pass@db:5432/app")
    assert {"s3cr%2Ft-pass", "s3cr/t-pass"} <= needles
    assert "postgresql://app:s3cr%2Ft-pass@db:5432/app" in needles
    assert known_secrets.needles("pw") == set()


def test_a_secret_in_base64_is_found_alone_and_inside_a_longer_encoding(
    tmp_path: Path,
) -> None:
    value, scanner = _planted()
    alone = base64.b64encode(value.encode()).decode()
    basic = base64.b64encode(f"user:{value}".encode()).decode()
    body = {"kind": "Secret", "data": {"token": alone}}
    log = tmp_path / "operator-1.log"
    clean = base64.b64encode(b"nothing secret here").decode()
    lines = [
        f"DEBUG kubernetes_asyncio.client.rest: response body: {json.dumps(body)}",
        f"DEBUG aiohttp: Authorization: Basic {basic}",
        f"INFO clean: {clean}",
    ]
    log.write_text("\n".join(lines) + "\n")
    scanner.watch_file(log, "operator-1.log")
    scanner.end_test()
    assert _places(scanner) == ["operator-1.log:1", "operator-1.log:2"]
    assert value not in "\n".join(scanner.summary())


def test_a_secret_in_a_log_record_is_found_without_repeating_it() -> None:
    value, scanner = _planted()
    tap = leakscan._LogTap(scanner)
    logger = logging.getLogger("tests.leakscan.selftest")
    logger.addHandler(tap)
    try:
        logger.warning("calling https://x.test/?token=%s", value)
        logger.warning("nothing to see")
    finally:
        logger.removeHandler(tap)
    scanner.end_test()
    assert _places(scanner) == ["log record tests.leakscan.selftest WARNING"]
    assert scanner.stats["log records"] == 2
    assert value not in "\n".join(scanner.summary())
    assert "planted token" in "\n".join(scanner.summary())


def test_a_secret_in_a_file_is_found_by_line_across_chunks_and_only_in_new_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value, scanner = _planted()
    log = tmp_path / "operator-1.log"
    lines = [f"line {n} " + "x" * 20 for n in range(1, 40)]
    lines[29] = f"line 30 {value}"
    text = "\n".join(lines) + "\n"
    log.write_text(text)
    monkeypatch.setattr(leakscan, "CHUNK", text.index(value) + 5)  # the value straddles two
    scanner.watch_file(log, "operator-1.log")
    scanner.end_test()
    assert _places(scanner) == ["operator-1.log:30"]
    with log.open("a") as handle:
        handle.write("clean line\n" + value + "\n")
    scanner.end_test()
    assert _places(scanner) == ["operator-1.log:30", "operator-1.log:41"]


def test_a_secret_in_a_stored_object_is_found_but_not_in_a_secret(tmp_path: Path) -> None:
    value, scanner = _planted()
    report = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "rb-1-report", "namespace": "default"},
              "data": {"report.md": f"restored with {value}"}}  # fmt: skip
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "db", "namespace": "default"},
              "stringData": {"url": value}}  # fmt: skip
    with leakscan.paused(), EmulatedCluster(tmp_path / "cluster") as cluster:
        for manifest in (report, secret):
            cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
        scanner.capture_cluster(cluster.url, "cluster")
    scanner.end_test()
    assert _places(scanner) == ["cluster: ConfigMap default/rb-1-report"]


def test_a_secret_in_an_object_of_a_test_namespace_is_found_but_not_in_a_secret(
    apiserver: KubeApiServer, tmp_path: Path
) -> None:
    value, scanner = _planted()
    with leakscan.paused():
        kube = KubeNamespace(apiserver, tmp_path / "kube")
        report = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rb-1-report"},
                  "data": {"report.md": f"restored with {value}"}}  # fmt: skip
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                  "stringData": {"url": value}}  # fmt: skip
        for manifest in (report, secret):
            kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
        scanner.capture_objects(kube.objects, "bed")
    scanner.end_test()
    assert _places(scanner) == [f"bed: ConfigMap {kube.namespace}/rb-1-report"]


def test_a_fakes_credential_in_what_it_shows_people_is_found_but_not_in_headers() -> None:
    scanner = leakscan.Scanner(known_secrets.Registry())
    with leakscan.paused():
        fake = FakeSlack()
    path = fake.add_webhook("#ops")
    token = path.rsplit("/", 1)[1]
    scanner.track_fake(fake)
    with fake.serve() as server:
        headers = {"Authorization": f"Bearer {token}"}
        httpx.post(server.url + path, json={"text": "rolled back"}, headers=headers)
        scanner.end_test()
        assert scanner.findings == []
        scanner.track_fake(fake)
        httpx.post(server.url + path, json={"text": f"oops {server.url}{path}"})
        scanner.end_test()
    assert _places(scanner) == ["FakeSlack: shown to people"]
    assert scanner.findings[0].what == "FakeSlack credential"
    assert scanner.stats["fake items shown to people"] == 3


INNER = """
import logging
from tests import leakscan

def test_logs_a_token():
    logging.getLogger("rollback_operator.inner").info("token %s", "vercel-e2e-token-5b1d")

def test_writes_a_password(tmp_path):
    (tmp_path / "out.log").write_text("ok\\nurl redis://:cache-secret-7d1e@h/0\\n")
    leakscan.watch_file(tmp_path / "out.log", "out.log")

def test_clean():
    logging.getLogger("rollback_operator.inner").info("nothing secret")
"""


def _inner_pytest(tmp_path: Path, selection: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'operator'}"}
    argv = [sys.executable, "-m", "pytest", "-p", "tests.leakscan", "-p", "no:cacheprovider"]
    argv += ["-q", "--rootdir", str(tmp_path), "-k", selection, str(tmp_path / "test_inner.py")]
    return subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_pytest_run_whose_tests_leak_fails_naming_each_place_but_not_the_secret(
    tmp_path: Path,
) -> None:
    run = _inner_pytest(tmp_path, "logs_a_token or writes_a_password")
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr
    assert "2 passed" in run.stdout
    assert "leak scan: 2 finding(s)" in run.stdout
    assert "Vercel token (e2e) (sandbox/fakes/saas.py) in log record rollback_operator.inner" in (
        run.stdout
    )
    assert "Redis password (sandbox/services/redis.py) in out.log:2" in run.stdout
    assert "vercel-e2e-token-5b1d" not in run.stdout + run.stderr
    assert "cache-secret-7d1e" not in run.stdout + run.stderr


def test_a_pytest_run_without_leaks_passes(tmp_path: Path) -> None:
    run = _inner_pytest(tmp_path, "clean")
    assert run.returncode == pytest.ExitCode.OK, run.stdout + run.stderr
    assert "leak scan: 0 finding(s)" in run.stdout
    assert "1 log records" in run.stdout


def test_a_test_secrets_values_join_the_registry_except_an_access_key_id() -> None:
    token, key_id = f"built-{uuid.uuid4().hex}", f"AKIA{uuid.uuid4().hex[:16].upper()}"
    manifests.secret("aws-selftest", {"secret-access-key": token, "access-key-id": key_id})
    registered = known_secrets.REGISTRY.values()
    assert registered[token] == "Secret default/aws-selftest key secret-access-key"
    assert key_id not in registered
