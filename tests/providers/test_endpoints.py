"""Credentials go only where they belong: the providers' official APIs and allowed prefixes.

Claims: a URL may receive a policy's credentials when it is under the provider's official API
or an `--allow-endpoint` prefix (same scheme and host, its port if it names one, the path on a
`/` boundary), uses https or plain http to a loopback address, and carries no user info;
look-alike hosts, query strings, user info and dot segments do not pass. The real factories
refuse such a policy before they read any of its Secrets, naming the field and the endpoint;
Slack's webhook URL, itself a Secret, is refused without being shown; Prometheus without
credentials may be anywhere, with an `authSecretRef` only under an allowed prefix.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollback_operator.api.common import ProviderBlock
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.api.targets import RailwayTarget, VercelTarget
from rollback_operator.providers import registry
from rollback_operator.providers.endpoints import OFFICIAL, OFFICIAL_ONLY, Endpoints
from rollback_operator.providers.errors import PermanentError
from rollback_operator.providers.metrics.prometheus import PrometheusFactory
from sandbox import manifests
from tests.providers.conftest import DictSecrets, only_target

VERCEL = VercelTarget.OFFICIAL_API
TOKEN = {"name": "vercel", "key": "token"}


@pytest.mark.parametrize(
    "url",
    [
        "https://api.vercel.com",
        "https://api.vercel.com/",
        "https://API.Vercel.com/v13/deployments?teamId=t",
        "https://api.vercel.com:443/v9/projects",
    ],
)
def test_the_official_api_may_receive_credentials(url: str) -> None:
    assert OFFICIAL_ONLY.refusal(url, VERCEL) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://api.vercel.com.evil.com", "not under"),
        ("https://evil.com/?https://api.vercel.com", "not under"),
        ("https://evil.com/#https://api.vercel.com", "not under"),
        ("https://api.vercel.com@evil.com", "user info"),
        ("https://token:x@api.vercel.com", "user info"),
        ("https://api.vercel.com\\@evil.com", "user info"),
        ("http://api.vercel.com", "plain http"),
        ("ftp://api.vercel.com", "not an http(s) URL"),
        ("https://api.vercel.com:99999", "not an http(s) URL"),
    ],
)
def test_look_alikes_of_the_official_api_are_refused(url: str, why: str) -> None:
    refusal = OFFICIAL_ONLY.refusal(url, VERCEL)

    assert refusal is not None
    assert why in refusal


def test_an_official_api_is_official_for_its_own_provider_only() -> None:
    assert OFFICIAL_ONLY.refusal("https://api.vercel.com", OFFICIAL["pagerduty"]) is not None


@pytest.mark.parametrize(
    "block",
    [b for b in ProviderBlock.__subclasses__() if "api_url" in b.model_fields],
    ids=lambda b: b.__name__,
)
def test_a_target_blocks_default_api_url_is_under_the_official_api_it_declares(
    block: type[ProviderBlock],
) -> None:
    default = str(block.model_fields["api_url"].default)

    assert block.OFFICIAL_API
    assert OFFICIAL_ONLY.refusal(default, block.OFFICIAL_API) is None


def test_railways_official_api_is_the_graphql_path_on_either_host() -> None:
    railway = RailwayTarget.OFFICIAL_API

    assert OFFICIAL_ONLY.refusal("https://backboard.railway.com/graphql/v2", railway) is None
    assert OFFICIAL_ONLY.refusal("https://backboard.railway.app/graphql/v2", railway) is None
    assert OFFICIAL_ONLY.refusal("https://backboard.railway.com/graphql/v2x", railway)
    assert OFFICIAL_ONLY.refusal("https://backboard.railway.com/other", railway)


def test_an_allowed_prefix_admits_its_own_path_and_below_on_a_boundary() -> None:
    allowed = Endpoints(("https://proxy.corp/vercel/",))

    assert allowed.refusal("https://proxy.corp/vercel") is None
    assert allowed.refusal("https://proxy.corp/vercel/v13/deployments") is None
    assert allowed.refusal("https://proxy.corp/vercel-evil/v13")
    assert allowed.refusal("https://proxy.corp/vercel/../admin")
    assert allowed.refusal("https://proxy.corp/vercel/%2e%2e/admin")
    assert allowed.refusal("https://proxy.corp.evil.com/vercel/")


def test_a_prefix_with_a_port_admits_that_port_only() -> None:
    allowed = Endpoints(("https://proxy.corp:8443",))

    assert allowed.refusal("https://proxy.corp:8443/v13") is None
    assert allowed.refusal("https://proxy.corp/v13")
    assert Endpoints(("https://proxy.corp",)).refusal("https://proxy.corp:8443/v13") is None


def test_plain_http_goes_only_to_loopback_even_when_allowed() -> None:
    allowed = Endpoints(("http://10.0.0.5", "http://127.0.0.1", "http://[::1]", "http://localhost"))

    assert "plain http" in (allowed.refusal("http://10.0.0.5/api") or "")
    assert allowed.refusal("http://127.0.0.1:8080/v13") is None
    assert allowed.refusal("http://[::1]:9000/graphql/v2") is None
    assert allowed.refusal("http://localhost:5000") is None


def test_a_loopback_address_not_allowed_is_refused() -> None:
    assert "not under" in (OFFICIAL_ONLY.refusal("http://127.0.0.1:8080") or "")
    assert Endpoints(("http://127.0.0.1",)).refusal("http://[::1]:8080")


def policy(**spec: Any) -> RollbackPolicy:
    return RollbackPolicy.model_validate(manifests.policy(namespace="prod", **spec))


async def test_the_factory_refuses_a_policy_before_it_reads_a_secret() -> None:
    vercel = {"projectId": "prj_1", "tokenSecretRef": TOKEN, "apiUrl": "https://evil.example"}
    secrets = DictSecrets({("prod", "vercel", "token"): "vercel-token"})

    with pytest.raises(PermanentError) as refused:
        await registry.RealProviderFactory().build(
            policy(**only_target("frontend", {"vercel": vercel})), secrets
        )

    assert refused.value.message.startswith("spec.targets.frontend.vercel.apiUrl: ")
    assert "https://evil.example" in refused.value.message
    assert secrets.reads == []


async def test_the_factory_refuses_an_object_store_endpoint_not_allowed() -> None:
    s3 = manifests.policy()["spec"]["targets"]["storage"]
    spec = {**only_target("storage", s3), "objectStore": {"endpointUrl": "https://s3.evil.example"}}

    with pytest.raises(PermanentError, match=r"spec\.objectStore\.endpointUrl: .*s3\.evil"):
        await registry.RealProviderFactory().build(policy(**spec), DictSecrets({}))


async def test_a_slack_webhook_off_slack_is_refused_without_showing_it() -> None:
    vercel = {"projectId": "prj_1", "tokenSecretRef": TOKEN}
    spec = only_target("frontend", {"vercel": vercel})
    notifications = {"slack": {"webhookSecretRef": {"name": "slack", "key": "url"}}}
    secrets = DictSecrets({("prod", "slack", "url"): "https://evil.example/T0/B0/secret-path"})

    with pytest.raises(PermanentError) as refused:
        await registry.RealProviderFactory().notifiers(
            policy(notifications=notifications, **spec), secrets
        )

    assert "spec.notifications.slack.webhookSecretRef" in refused.value.message
    assert "evil" not in refused.value.message
    assert "secret-path" not in refused.value.message


async def test_prometheus_with_credentials_needs_an_allowed_prefix() -> None:
    auth = {"name": "prom", "key": "header"}
    url = "http://prometheus.monitoring:9090"
    secrets = DictSecrets({("prod", "prom", "header"): "Bearer s3cret"})
    anonymous = policy(metrics={"prometheus": {"url": url}})
    with_auth = policy(metrics={"prometheus": {"url": url, "authSecretRef": auth}})
    factory = PrometheusFactory(endpoints=Endpoints(("https://prometheus.monitoring:9090",)))
    try:
        await factory.build(anonymous, secrets)

        with pytest.raises(PermanentError, match=r"spec\.metrics\.prometheus\.url: .*plain http"):
            await factory.build(with_auth, secrets)
        assert secrets.reads == []
    finally:
        await factory.close()


def test_the_policy_problem_names_the_first_refused_field() -> None:
    statuspage = {"pageId": "p1", "apiKeySecretRef": {"name": "sp", "key": "k"},
                  "apiUrl": "https://api.statuspage.io.evil.example/v1"}  # fmt: skip

    problem = OFFICIAL_ONLY.policy_problem(policy(notifications={"statuspage": statuspage}))

    assert problem is not None
    assert problem.startswith("spec.notifications.statuspage.apiUrl: ")
    assert "api.statuspage.io.evil.example" in problem
