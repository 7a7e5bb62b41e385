"""Slack specifics: what the message says, the webhook states, and the one unavoidable window.

Claims: a failed, policy-made full rollback reads as what, why, how it ended, where the
report is and whom to call; contacts appear only on failure; names and reasons are escaped;
a rollback that left traffic stopped says which layers and the command that resumes them;
Slack's plain-text errors become the right error class with Slack's own word in it; and a
crash between Slack's 200 and the journal record repeats one message (documented).
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pytest

from rollback_operator.providers import errors
from rollback_operator.providers.base import Notice
from rollback_operator.providers.notifiers import slack
from sandbox.fakes.host import MemoryJournal
from sandbox.fakes.slack_server import FakeSlack
from tests.notify.conftest import UID, Harness, SlackHarness, key, notice, send, serve_slack

HINT = "kubectl rollback resume-traffic high-error-rates-0101 -n prod"
FAILED_POLICY_FULL = Notice(
    kind="finished",
    namespace="prod",
    name="mindmate-auto-x7k2p",
    uid=UID,
    mode="full",
    targets=("frontend", "backend", "database", "storage"),
    reason="rule api-error-rate: 0.071 above critical 0.05 for 5m",
    phase="Failed",
    summary="deploy-previous (frontend) failed: Vercel refused both instant rollback and promote",
    trigger="policy",
    version="v1.0.0",
    moves=(
        ("frontend", "dpl_new -> dpl_abc"),
        ("backend", "d-new -> 9f1c2e"),
        ("database", "restore backup_20240101.sql.gz"),
        ("storage", "as of 2024-01-01T00:00:00+00:00"),
    ),
    report="mindmate-auto-x7k2p-report",
    contacts=(
        "primary: Infrastructure <infrastructure@mindmate.app>",
        "provider: Vercel Support <support@vercel.com>",
    ),
    failed=True,
)


@pytest.fixture
def world() -> Iterator[SlackHarness]:
    yield from serve_slack()


def rendered(payload: dict[str, Any]) -> str:
    """The message roughly as Slack shows it: one paragraph per block, entities decoded."""
    lines = []
    for block in payload["blocks"]:
        if block["type"] == "header":
            lines.append(block["text"]["text"])
        elif "fields" in block:
            lines.append("   ".join(f["text"].replace("\n", ": ") for f in block["fields"]))
        elif block["type"] == "section":
            lines.append(block["text"]["text"])
        else:
            lines.append(" ".join(e["text"] for e in block["elements"]))
    return html.unescape("\n\n".join(lines))


def fake(harness: Harness) -> FakeSlack:
    assert isinstance(harness.fake, FakeSlack)
    return harness.fake


# ----- the message -----


async def test_a_failed_automatic_full_rollback_reads_what_why_outcome_report_and_contacts(
    world: SlackHarness,
) -> None:
    await world.notifier().notify(FAILED_POLICY_FULL, key("finished"), MemoryJournal())
    [payload] = fake(world).messages("#ops")
    text = rendered(payload)
    print(f"\n--- fallback ---\n{payload['text']}\n--- message ---\n{text}")

    assert payload["text"].startswith("Rollback failed: prod/mindmate-auto-x7k2p — automatic: ")
    assert text.startswith(":x: Rollback failed: prod/mindmate-auto-x7k2p\n")
    assert (
        "*Mode*: full   *Trigger*: automatic (policy)   *Phase*: Failed   *Version*: `v1.0.0`"
        in text
    )
    for line in ("• frontend: `dpl_new` → `dpl_abc`", "• backend: `d-new` → `9f1c2e`",
                 "• database: restore backup_20240101.sql.gz",
                 "• storage: as of 2024-01-01T00:00:00+00:00"):  # fmt: skip
        assert line in text
    assert "*Why*\nautomatic: rule api-error-rate: 0.071 above critical 0.05 for 5m" in text
    assert "*Outcome*\ndeploy-previous (frontend) failed: Vercel refused both" in text
    assert "• primary: Infrastructure <infrastructure@mindmate.app>" in text
    assert "• provider: Vercel Support <support@vercel.com>" in text
    assert "Report: ConfigMap `prod/mindmate-auto-x7k2p-report`" in text
    assert f"Rollback uid `{UID}`" in text


def test_a_rollback_that_left_traffic_stopped_says_which_layers_and_how_to_resume() -> None:
    told = notice("finished", "failed", traffic_stopped=("frontend", "backend"), resume_hint=HINT)

    payload = slack.message(told)

    assert "traffic still stopped: frontend, backend" in payload["text"]
    assert (
        "*Traffic still stopped*\nfrontend, backend: production serves no traffic there until "
        f"someone resumes it.\nResume: `{HINT}`"
    ) in rendered(payload)
    assert "Traffic still stopped" not in rendered(slack.message(notice("finished", "failed")))


def test_contacts_are_shown_only_when_the_rollback_failed() -> None:
    succeeded = notice("finished", "succeeded")
    started = notice("started", "failed")

    assert "Contacts" not in str(slack.message(succeeded))
    assert "Contacts" not in str(slack.message(started))
    assert "Contacts" in str(slack.message(notice("finished", "failed")))


def test_slacks_control_characters_are_escaped() -> None:
    sent = slack.message(notice("started", "succeeded", reason="p99 > 2s & <rising>"))

    assert "p99 &gt; 2s &amp; &lt;rising&gt;" in str(sent["blocks"])
    assert "p99 &gt; 2s &amp; &lt;rising&gt;" in sent["text"]


def test_each_outcome_has_its_own_title() -> None:
    titles = [
        slack.title(notice("started", "policy")),
        slack.title(notice("finished", "succeeded")),
        slack.title(notice("finished", "failed")),
        slack.title(notice("finished", "failed", phase="PartiallyFailed")),
        slack.title(notice("finished", "failed", phase="Aborted")),
    ]

    assert [t.split(":")[0] for t in titles] == [
        "Rollback started",
        "Rollback succeeded",
        "Rollback failed",
        "Rollback partially failed",
        "Rollback aborted",
    ]


# ----- webhook states -----


@pytest.mark.parametrize(
    ("state", "error", "words"),
    [
        ("revoked", errors.UnauthorizedError, "no_service: the webhook was removed or disabled"),
        ("archived", errors.PermanentError, "channel_is_archived"),
        ("prohibited", errors.UnauthorizedError, "action_prohibited"),
        ("channel_deleted", errors.NotFoundError, "channel_not_found"),
    ],
)
async def test_a_webhook_that_cannot_post_fails_with_slacks_word_for_it(
    world: SlackHarness, state: Any, error: type[errors.ProviderError], words: str
) -> None:
    fake(world).set_state(world.path, state)

    with pytest.raises(error) as raised:
        await send(world.notifier(), "started", "policy")

    assert words in str(raised.value)
    assert world.writes() == 1


# ----- the window webhooks leave open -----


async def test_a_crash_between_the_post_and_the_record_repeats_one_message(
    world: SlackHarness,
) -> None:
    journal = MemoryJournal()
    posted = await send(world.notifier(), "started", "policy", journal)
    assert journal.ids == {}  # the post's slot is in the result: kept with the step's next write
    assert posted.external_ids == {"posted_started": key("started")}

    await send(world.notifier(), "started", "policy", journal)  # the operator died before it

    assert world.effects() == ["posted: started (automatic)"] * 2

    assert world.effects() == ["posted: started (automatic)"] * 2


async def test_a_secret_that_is_not_a_url_fails_without_showing_it() -> None:
    with pytest.raises(errors.PermanentError) as raised:
        await send(
            slack.SlackNotifier("hooks.slack.com/services/T1/B1/s3cr3t-value"), "started", "policy"
        )

    assert "s3cr3t-value" not in str(raised.value)


async def test_a_secret_with_a_trailing_newline_still_posts(world: SlackHarness) -> None:
    await send(world.build(world.secret + "\n"), "started", "policy")

    assert world.effects() == ["posted: started (automatic)"]


def test_a_rule_breach_renders_as_an_alert_not_a_rollback() -> None:
    notice = Notice(
        kind="breach", namespace="prod", name="mindmate", uid="u-1", mode="quick",
        targets=("frontend", "backend"), reason="api-error-rate: 0.08 above 0.05 for 5m",
        phase="Critical", summary="0.08 above 0.05 for 5m", trigger="policy",
    )  # fmt: skip
    assert slack.title(notice) == "Rule Critical: prod/mindmate"
    rendered = str(slack.message(notice))
    assert ":rotating_light:" in rendered
    assert "api-error-rate: 0.08 above 0.05 for 5m" in rendered
    assert "Policy uid" in rendered
