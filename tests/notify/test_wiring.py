"""The composition root builds the policy's notifiers with credentials from its own namespace.

Claims: `RealProviderFactory` turns `spec.notifications` into Slack, Statuspage and PagerDuty
notifiers in that order, reading each Secret from the policy's namespace, and they reach the
configured endpoints; a policy without notifications gets none.
"""

from __future__ import annotations

from typing import Any

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers import registry
from sandbox import manifests
from tests.notify.conftest import (
    PAGE,
    send,
    serve_pagerduty,
    serve_slack,
    serve_statuspage,
)
from tests.providers.conftest import FAKES, DictSecrets, only_target

VERCEL = {"projectId": "prj_1", "tokenSecretRef": {"name": "vercel", "key": "token"}}


def manifest(**notifications: Any) -> RollbackPolicy:
    spec = only_target("frontend", {"vercel": VERCEL})
    return RollbackPolicy.model_validate(
        manifests.policy(namespace="prod", notifications=notifications, **spec)
    )


async def test_the_real_factory_builds_every_configured_notifier() -> None:
    for chat in serve_slack():
        for page in serve_statuspage():
            for pager in serve_pagerduty():
                policy = manifest(
                    slack={"webhookSecretRef": {"name": "slack", "key": "url"}},
                    statuspage={"pageId": PAGE, "componentIds": page.components,
                                "apiUrl": f"{page.url}/v1",
                                "apiKeySecretRef": {"name": "statuspage", "key": "key"}},
                    pagerduty={"apiUrl": f"{pager.url}/v2/enqueue",
                               "routingKeySecretRef": {"name": "pagerduty", "key": "rk"}},
                )  # fmt: skip
                secrets = DictSecrets({
                    ("prod", "vercel", "token"): "vercel-token",
                    ("prod", "slack", "url"): chat.secret,
                    ("prod", "statuspage", "key"): page.secret,
                    ("prod", "pagerduty", "rk"): pager.secret,
                })  # fmt: skip

                providers = await registry.RealProviderFactory(FAKES).build(policy, secrets)
                for notifier in providers.notifiers:
                    await send(notifier, "started", "policy")

                assert [n.name for n in providers.notifiers] == ["slack", "statuspage", "pagerduty"]
                assert {namespace for namespace, _, _ in secrets.reads} == {"prod"}
                assert (len(chat.effects()), len(page.effects()), len(pager.effects())) == (1, 1, 2)


async def test_a_policy_without_notifications_gets_no_notifier() -> None:
    secrets = DictSecrets({("prod", "vercel", "token"): "vercel-token"})

    providers = await registry.RealProviderFactory(FAKES).build(manifest(), secrets)

    assert providers.notifiers == []
