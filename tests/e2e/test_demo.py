"""`make demo` as a user runs it: `python -m sandbox.demo [--full]` in its own process.

The demo checks its own outcome (rollback Succeeded, the app healthy, the data restored, no
Secret shown) and exits 1 otherwise; these tests hold it to that, and to telling the story in
order: the rule Pending then Critical, the automatic Rollback and its steps, the verification,
the report and the Slack messages.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from sandbox.kube.cluster import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
LIMIT = 280.0  # seconds: the demo's own deadline is 150 s after its services started

BEGINNING = [
    "every rule evaluated against Prometheus:",
    "rule api-error-rate: Ok -> Pending",
    "rule api-error-rate: Pending -> Critical",
    "created (trigger: policy, mode {mode}",
    "phase Running",
]
ENDING = [
    "step verify",
    "check api",
    "check users-present",
    "check rule api-error-rate",
    "phase Succeeded",
    "== Incident report",
    "# Rollback report: default/mindmate-auto-",
    "- Outcome: **Succeeded**",
    "== Slack messages the fake received in #incidents",
    "Rule Critical: default/mindmate",
    "Rollback started: default/mindmate-auto-",
    "Rollback succeeded: default/mindmate-auto-",
    "GET /health: 200 ok",
    "demo succeeded: Rollback mindmate-auto-",
]
QUICK_STEPS = ["step instant-rollback [frontend]", "phase Verifying"]
FULL_STEPS = [
    "step stop-traffic [frontend]",
    "step safety-backup [database]",
    "step restore-database [database]",
    "step restore-storage [storage]",
    "step deploy-previous [frontend]",
]


def run_demo(*args: str) -> tuple[int, str]:
    """The demo's exit code and everything it printed (SIGTERM, so it cleans up, on a hang)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.demo", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"the demo ran longer than {LIMIT:.0f}s:\n{output[-6000:]}")
    return process.returncode, output


def assert_in_order(output: str, lines: list[str]) -> None:
    at = 0
    for wanted in lines:
        found = output.find(wanted, at)
        assert found >= 0, f"{wanted!r} missing after position {at}:\n{output[-8000:]}"
        at = found + len(wanted)


def step_states(output: str, step: str) -> list[str]:
    """The states printed for one step, in order (e.g. ['Running', 'Succeeded'])."""
    return [
        line.split(step, 1)[1].split()[0] for line in output.splitlines() if f"step {step} " in line
    ]


def test_quick_demo_tells_the_automatic_rollback_from_breach_to_report() -> None:
    code, output = run_demo()
    assert code == 0, output[-8000:]
    beginning = [s.format(mode="quick") for s in BEGINNING]
    assert_in_order(output, beginning + QUICK_STEPS + ENDING)
    for step in ("instant-rollback [frontend]", "instant-rollback [backend]", "verify", "report"):
        assert step_states(output, step)[-1] == "Succeeded", (step, output[-6000:])
    assert "demo FAILED" not in output


def test_full_demo_restores_the_database_and_files_to_the_backup() -> None:
    code, output = run_demo("--full")
    assert code == 0, output[-8000:]
    beginning = [s.format(mode="full") for s in BEGINNING]
    assert_in_order(output, beginning + FULL_STEPS + ENDING)
    for step in [s.removeprefix("step ") for s in FULL_STEPS] + ["verify", "report"]:
        assert step_states(output, step)[-1] == "Succeeded", (step, output[-6000:])
    assert "  bad release     users: alice, bob, carol, corrupt-1, corrupt-2\n" in output
    assert "  after rollback  users: alice, bob, carol\n" in output
    files = "files: avatars/alice.png (b'alice-v1'), avatars/bob.png (b'bob-v1')\n"
    assert f"  after rollback  {files}" in output
    assert "nothing deleted" in output


def test_demo_that_cannot_finish_in_time_exits_1_and_says_what_did_not_happen() -> None:
    code, output = run_demo("--timeout", "3")
    assert code == 1, output[-6000:]
    assert "demo FAILED: " in output
    assert "did not happen within" in output
    assert "last lines of the operator's log:" in output
