"""No secret in the operator's log at any level: a `--verbose` operator runs a full rollback
whose real adapters and notifier read their tokens from Secrets, and its whole log (DEBUG lines
of every library included) holds none of them, in plain or in base64 form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import manifests
from sandbox.fakes.saas import serving
from sandbox.fakes.slack_server import FakeSlack
from tests import leakscan
from tests.apiserver.server import KubeApiServer
from tests.e2e.bed import Bed, open_bed

pytestmark = pytest.mark.e2e
REAL = ("frontend", "backend", "notifiers")


class VerboseBed(Bed):
    """A bed whose operator logs at DEBUG, as `rollback-operator run --verbose` does."""

    def flags(self) -> list[str]:
        return ["--verbose"]


@pytest.fixture
def verbose_bed(apiserver_with_crds: KubeApiServer, tmp_path: Path) -> Iterator[VerboseBed]:
    yield from open_bed(VerboseBed, apiserver_with_crds, tmp_path)


def test_a_verbose_operator_logs_no_secret_through_a_full_rollback(verbose_bed: Bed) -> None:
    bed, slack = verbose_bed, FakeSlack()
    path = slack.add_webhook("#ops")
    with serving() as saas, slack.serve() as chat:
        bed.start(real=REAL)
        for secret in [*saas.secrets(), manifests.secret("slack", {"url": chat.url + path})]:
            bed.apply(secret)
        notify = {"slack": {"webhookSecretRef": {"name": "slack", "key": "url"}}}
        bed.apply(manifests.deep_merge(saas.policy(), {"spec": {"notifications": notify}}))
        bed.apply(manifests.rollback("full", mode="full"))
        body = bed.wait_for("full", {"Succeeded", "Failed", "PartiallyFailed"})
        assert body["status"]["phase"] == "Succeeded", body["status"]
        assert slack.messages("#ops"), "the Slack notifier read its Secret and posted"
    log = bed.logs()
    assert " DEBUG " in log
    scanner = leakscan.Scanner()
    found = scanner.check("the verbose operator's log", log)
    assert found == [], scanner.summary()
