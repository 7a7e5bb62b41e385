"""The real operator sends no credentials to an endpoint it was not allowed.

Claims: a policy whose Vercel `apiUrl` is neither Vercel's API nor under an `--allow-endpoint`
prefix (the bed allows only `http://127.0.0.1`) is Stalled with reason InvalidSpec, its message
naming `spec.targets.frontend.vercel.apiUrl` and the endpoint; a Rollback of that policy is
Stalled/InvalidSpec too and stays Pending; and the server at that address (the Vercel fake,
reached as `localhost`, a loopback name the bed did not allow) receives no request at all.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox import manifests
from sandbox.fakes.saas import VERCEL_TOKEN, serving
from tests.e2e.bed import Bed

pytestmark = pytest.mark.e2e
FIELD = "spec.targets.frontend.vercel.apiUrl"


def _stalled(bed: Bed, kind: str, name: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        conditions = bed.get(kind, name).get("status", {}).get("conditions", [])
        found = [c for c in conditions if c["type"] == "Stalled" and c["status"] == "True"]
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, f"{kind} {name} not Stalled:\n{bed.logs()[-3000:]}"
        time.sleep(0.1)


@pytest.mark.parametrize("where", ["the Vercel fake as localhost", "https://evil.example"])
def test_a_policy_naming_an_endpoint_not_allowed_is_stalled_and_nothing_is_sent(
    bed: Bed, where: str
) -> None:
    with serving() as saas:
        endpoint = (
            where
            if where.startswith("https")
            else saas.vercel_url.replace("127.0.0.1", "localhost")
        )
        policy = saas.policy()
        policy["spec"]["targets"]["frontend"]["vercel"]["apiUrl"] = endpoint
        bed.start(real=("frontend", "backend"))
        for secret in saas.secrets():
            bed.apply(secret)
        bed.apply(policy)
        bed.apply(manifests.rollback("quick"))

        refused = _stalled(bed, "rollbackpolicy", "mindmate")
        stalled = _stalled(bed, "rollback", "quick")

        assert refused["reason"] == stalled["reason"] == "InvalidSpec"
        for message in (refused["message"], stalled["message"]):
            assert FIELD in message
            assert endpoint.rstrip("/") in message
        assert bed.get("rollback", "quick")["status"].get("phase", "Pending") == "Pending"
        assert saas.vercel.log.records == []
        assert VERCEL_TOKEN not in bed.logs()
