"""`kubectl rollback candidates POLICY` run by kubectl against the real API server.

The policy's frontend and backend are the fake Vercel and Railway servers, its backups are in a
real S3 API server (moto), and the tokens are Secrets in the cluster that the plugin reads with
the user's kubeconfig. No operator runs: the command asks the providers itself.
"""

from __future__ import annotations

import json

import pytest
from mypy_boto3_s3 import S3Client

from sandbox import manifests
from sandbox.fakes.saas import Saas, serving
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server
from tests.db import world
from tests.e2e.bed import Bed
from tests.e2e.test_plugin_e2e import kubectl_rollback

pytestmark = pytest.mark.e2e
FAKES = ("--allow-endpoint", "http://127.0.0.1")  # the fakes listen on loopback
BACKUPS = ("backup_20240101.sql", "backup_20240103.sql", "safety/uid-20240104T000000Z.dump")
SQL = b"-- PostgreSQL database dump\nSELECT 1;\n-- PostgreSQL database dump complete\n"


def _prepare(bed: Bed, saas: Saas, s3_url: str, bucket: str) -> None:
    policy = saas.policy()
    policy["spec"]["targets"]["database"]["postgres"]["backups"]["bucket"] = bucket
    policy["spec"]["objectStore"]["endpointUrl"] = s3_url
    for secret in saas.secrets():
        bed.apply(secret)
    bed.apply(manifests.secret("db", {"url": "postgresql://app:pw@db.invalid:5432/app"}))
    keys = {"access-key-id": ACCESS_KEY_ID, "secret-access-key": SECRET_ACCESS_KEY}
    bed.apply(manifests.secret("aws", keys))
    bed.apply(policy)


def _line(stdout: str, item: str) -> str:
    found = [line for line in stdout.splitlines() if f" {item} " in f" {line} "]
    assert len(found) == 1, f"{item} in:\n{stdout}"
    return found[0].strip()


def test_candidates_marks_live_and_default_for_every_target(
    bed: Bed, s3_server: S3Server, s3: S3Client
) -> None:
    bucket = world.make_bucket(s3, versioned=False)
    for name in BACKUPS:
        world.put(s3, bucket, world.PREFIX + name, SQL)
    with serving(history=3) as saas:
        _prepare(bed, saas, s3_server.url, bucket)

        run = kubectl_rollback(bed.cluster.kubeconfig, "candidates", "mindmate", *FAKES)

    assert run.returncode == 0, run.stderr + run.stdout
    out = run.stdout
    assert _line(out, saas.live).startswith("* ")
    assert _line(out, saas.old).endswith("<- default")
    assert _line(out, saas.railway_live).startswith("* ")
    assert _line(out, saas.railway_old).endswith("<- default")
    assert _line(out, "backup_20240103.sql").endswith("<- default")
    assert "<- default" not in _line(out, BACKUPS[2]) + _line(out, "backup_20240101.sql")
    assert out.count("<- default") == 3 + 1  # three targets, and the legend
    assert out.index(BACKUPS[2]) < out.index("backup_20240103.sql") < out.index("20240101")
    assert "storage: s3://mindmate-files/" in out


def test_candidates_json_lists_each_target_with_live_and_default_flags(
    bed: Bed, s3_server: S3Server, s3: S3Client
) -> None:
    bucket = world.make_bucket(s3, versioned=False)
    for name in BACKUPS:
        world.put(s3, bucket, world.PREFIX + name, SQL)
    with serving(history=3) as saas:
        _prepare(bed, saas, s3_server.url, bucket)

        run = kubectl_rollback(bed.cluster.kubeconfig, "candidates", "mindmate", "-o", "json",
                               *FAKES)  # fmt: skip

    assert run.returncode == 0, run.stderr + run.stdout
    shown = json.loads(run.stdout)
    flags = {
        target: {row["id"]: (row["live"], row["default"]) for row in found["candidates"]}
        for target, found in shown["targets"].items()
    }
    assert shown["policy"] == {"namespace": bed.namespace, "name": "mindmate"}
    assert flags["frontend"][saas.live] == (True, False)
    assert flags["frontend"][saas.old] == (False, True)
    assert flags["backend"][saas.railway_old] == (False, True)
    assert flags["database"]["backup_20240103.sql"] == (False, True)


def test_candidates_explains_a_missing_secret(bed: Bed) -> None:
    with serving() as saas:
        policy = saas.policy()
        policy["spec"]["targets"] |= {"database": None, "storage": None}
        policy["spec"]["objectStore"] = None
        bed.apply(policy)

        run = kubectl_rollback(
            bed.cluster.kubeconfig, "candidates", "mindmate", "--limit", "1", *FAKES
        )

    assert run.returncode == 1
    missing = f"the policy names Secret {bed.namespace}/vercel, which is not found"
    assert missing in run.stderr
