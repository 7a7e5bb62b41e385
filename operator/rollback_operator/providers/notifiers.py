"""Building the notifiers of one policy (Slack, Statuspage, PagerDuty) from its Secrets.

Why this module exists: the composition root calls one function for the whole
`spec.notifications` block and names no notifier itself; each notifier gets its credential
read from the policy's own namespace, once, when the policy's providers are built.
"""

from __future__ import annotations

from rollback_operator.api.common import SecretKeyRef
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers import http, pagerduty, slack, statuspage
from rollback_operator.providers.base import Notifier, SecretReader


async def build(
    policy: RollbackPolicy, secrets: SecretReader, options: http.Options | None = None
) -> list[Notifier]:
    """One notifier per channel the policy configures, in the order people should hear."""
    config, namespace = policy.spec.notifications, policy.metadata.namespace

    async def read(ref: SecretKeyRef) -> str:
        return await secrets.read(namespace, ref.name, ref.key)

    built: list[Notifier] = []
    if config.slack is not None:
        url = await read(config.slack.webhook_secret_ref)
        built.append(slack.SlackNotifier(url, options))
    if config.statuspage is not None:
        key = await read(config.statuspage.api_key_secret_ref)
        built.append(statuspage.StatuspageNotifier(config.statuspage, key, options))
    if config.pagerduty is not None:
        routing_key = await read(config.pagerduty.routing_key_secret_ref)
        built.append(pagerduty.PagerDutyNotifier(config.pagerduty, routing_key, options))
    return built
