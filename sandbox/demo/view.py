"""The demo's live terminal view: what the operator records, printed as it happens.

Why this module exists: the point of the demo is to watch the runbook run. `Watcher` polls the
emulated API server (plain REST, a few times a second, as `kubectl get -w` would) and prints
each change once: a rule moving between states, a Rollback appearing, its phase, each step's
state with its message, the plan and the verification results. Everything printed comes from
the resources' status, so the view shows what a user of the real cluster would see.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from rollback_operator.api import GROUP
from rollback_operator.api.rollback import TERMINAL_PHASES

FINAL_PHASES = {p.value for p in TERMINAL_PHASES}

Manifest = dict[str, Any]
API = f"/apis/{GROUP}/v1alpha1/namespaces"
COLOURS = {"Ok": 32, "Succeeded": 32, "True": 32, "Pending": 33, "Running": 36,
           "Warning": 33, "Critical": 31, "Failed": 31, "PartiallyFailed": 31}  # fmt: skip


class DemoFailed(RuntimeError):
    """The demo cannot go on; the message says what did not happen."""


@dataclass
class Printer:
    """Lines with the time since the demo began; colours only on a terminal."""

    began: float = field(default_factory=time.monotonic)
    colour: bool = field(
        default_factory=lambda: sys.stdout.isatty() and "NO_COLOR" not in os.environ
    )

    def line(self, text: str = "", *, stamp: bool = True) -> None:
        prefix = f"[{time.monotonic() - self.began:6.1f}s] " if stamp else ""
        sys.stdout.write(prefix + text + "\n")
        sys.stdout.flush()

    def heading(self, text: str) -> None:
        self.line("", stamp=False)
        self.line(self.bold(f"== {text}"), stamp=False)

    def state(self, word: str) -> str:
        code = COLOURS.get(word)
        return f"\x1b[{code}m{word}\x1b[0m" if self.colour and code else word

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self.colour else text


@dataclass
class Seen:
    """What has been printed already."""

    rules: dict[str, str] = field(default_factory=dict)
    rollbacks: set[str] = field(default_factory=set)
    phases: dict[str, str] = field(default_factory=dict)
    steps: dict[tuple[str, str, str], str] = field(default_factory=dict)
    planned: set[str] = field(default_factory=set)
    checks: set[tuple[str, str, bool]] = field(default_factory=set)


@dataclass
class World:
    """One look at the API: the policy and every Rollback."""

    policy: Manifest
    rollbacks: list[Manifest]

    def rule(self, name: str) -> Manifest:
        rules: list[Manifest] = self.policy.get("status", {}).get("rules", [])
        return next((r for r in rules if r["name"] == name), {})

    def rollback(self) -> Manifest | None:
        """The newest Rollback, if any."""
        ordered = sorted(self.rollbacks, key=lambda r: r["metadata"]["creationTimestamp"])
        return ordered[-1] if ordered else None


class Watcher:
    """Polls the API server and prints every change once."""

    def __init__(self, url: str, namespace: str, policy: str, out: Printer) -> None:
        self.client = httpx.Client(base_url=url, timeout=10)
        self.namespace, self.policy, self.out = namespace, policy, out
        self.seen = Seen()
        self.thresholds: dict[str, str] = {}

    def close(self) -> None:
        self.client.close()

    def get(self, path: str) -> Manifest:
        response = self.client.get(path)
        response.raise_for_status()
        found: Manifest = response.json()
        return found

    def look(self) -> World:
        base = f"{API}/{self.namespace}"
        policy = self.get(f"{base}/rollbackpolicies/{self.policy}")
        return World(policy, self.get(f"{base}/rollbacks")["items"])

    def configmap(self, name: str) -> Manifest:
        return self.get(f"/api/v1/namespaces/{self.namespace}/configmaps/{name}")

    def wait(
        self,
        done: Callable[[World], bool],
        what: str,
        timeout: float,
        alive: Callable[[], None] = lambda: None,
    ) -> World:
        """Print changes until `done` holds; DemoFailed naming `what` after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            alive()
            world = self.look()
            self.show(world)
            if done(world):
                return world
            if time.monotonic() > deadline:
                raise DemoFailed(f"{what} did not happen within {timeout:.0f}s")
            time.sleep(0.2)

    # -- printing ------------------------------------------------------------------------

    def show(self, world: World) -> None:
        self._rules(world.policy)
        for body in sorted(world.rollbacks, key=lambda r: r["metadata"]["creationTimestamp"]):
            self._rollback(body)

    def rule_table(self, world: World) -> None:
        """Every rule with its state, value and thresholds."""
        rules = {r["name"]: r for r in world.policy["spec"]["rules"]}
        for status in world.policy.get("status", {}).get("rules", []):
            spec = rules[status["name"]]
            self.out.line(f"  {status['name']:<30} {self.out.state(status['state']):<8} "
                          f"{_value(status):>9}   {_limits(spec)}", stamp=False)  # fmt: skip

    def _rules(self, policy: Manifest) -> None:
        specs = {r["name"]: r for r in policy["spec"]["rules"]}
        for rule in policy.get("status", {}).get("rules", []):
            before = self.seen.rules.get(rule["name"])
            if before == rule["state"]:
                continue
            self.seen.rules[rule["name"]] = rule["state"]
            if before is None:
                continue  # the first evaluation is shown as a table
            move = f"{self.out.state(before)} -> {self.out.state(rule['state'])}"
            self.out.line(f"rule {rule['name']}: {move}  value {_value(rule)} "
                          f"({_limits(specs[rule['name']])})")  # fmt: skip

    def _rollback(self, body: Manifest) -> None:
        name, status = body["metadata"]["name"], body.get("status", {})
        if name not in self.seen.rollbacks:
            self.seen.rollbacks.add(name)
            spec, labels = body["spec"], body["metadata"].get("labels", {})
            trigger = labels.get(f"{GROUP}/trigger", "manual")
            self.out.heading(f"Rollback {name}")
            self.out.line(
                self.out.bold(f"Rollback {name} created") + f" (trigger: {trigger}, "
                f"mode {spec.get('mode')}, targets {', '.join(spec.get('targets', []))})"
            )
            self.out.line(f"  reason: {spec.get('reason', '-')}")  # fmt: skip
        phase = status.get("phase", "")
        final = phase in FINAL_PHASES
        if not final:
            self._phase(name, status)
        if status.get("plan") and name not in self.seen.planned:
            self.seen.planned.add(name)
            for target, move in status["plan"].items():
                self.out.line(f"  plan {target:<9} {_plan(move)}")
        for step in status.get("steps", []):
            self._step(name, step)
        for check in status.get("verification", []):
            seen = (name, check["name"], bool(check.get("passed")))
            if seen not in self.seen.checks:
                self.seen.checks.add(seen)
                word = "Succeeded" if check.get("passed") else "Failed"
                self.out.line(f"  check {check['name']:<34} {self.out.state(word):<9} "
                              f"{check.get('message', '')}")  # fmt: skip
        if final:  # the outcome after the steps and checks that led to it, however fast they were
            self._phase(name, status)

    def _phase(self, name: str, status: Manifest) -> None:
        phase = status.get("phase", "")
        if phase and self.seen.phases.get(name) != phase:
            self.seen.phases[name] = phase
            self.out.line(f"phase {self.out.state(phase)}: {status.get('message', '')}")

    def _step(self, rollback: str, step: Manifest) -> None:
        key = (rollback, step["name"], step.get("target", ""))
        if self.seen.steps.get(key) == step["state"] or step["state"] == "Pending":
            return
        self.seen.steps[key] = step["state"]
        target = f" [{step['target']}]" if step.get("target") else ""
        label = f"{step['name']}{target}"
        self.out.line(f"  step {label:<33} {self.out.state(step['state']):<9} "
                      f"{step.get('message', '')}")  # fmt: skip


def _value(rule: Manifest) -> str:
    value = rule.get("value")
    return "-" if value is None else f"{value:.4g}"


def _limits(spec: Manifest) -> str:
    parts = []
    for level in ("warning", "critical"):
        bound = spec.get(level) or {}
        for side, sign in (("above", ">"), ("below", "<")):
            if side in bound:
                parts.append(f"{level} {sign} {bound[side]:g}")
    auto = ", rolls back" if spec.get("autoRollback") else ", alert only"
    return f"{', '.join(parts)} for {spec.get('for', '0s')}{auto}"


def _plan(move: Manifest) -> str:
    if "backup" in move:
        loss = f", data loss window {move['dataLossWindow']}" if move.get("dataLossWindow") else ""
        return f"restore backup {move['backup']}{loss}"
    if "asOf" in move:
        return (f"restore files as of {move['asOf']}: {move.get('objectsToRestore', 0)} to "
                f"restore, {move.get('objectsToHide', 0)} to hide")  # fmt: skip
    extra = " (served no traffic when planned)" if move.get("serving") is False else ""
    return f"{move.get('from')} -> {move.get('to')}{extra}"


def slack_lines(message: Manifest) -> list[str]:
    """A Slack message as plain lines: header, facts, sections, footer."""
    lines: list[str] = []
    for block in message.get("blocks", []):
        if block.get("type") == "header":
            lines.append(block["text"]["text"])
        elif block.get("type") == "section" and "fields" in block:
            lines.append(" | ".join(f["text"].replace("\n", ": ") for f in block["fields"]))
        elif block.get("type") == "section":
            lines.extend(block["text"]["text"].splitlines())
        elif block.get("type") == "context":
            lines.extend(e["text"] for e in block.get("elements", []))
    return [_unescape(line) for line in lines] or [_unescape(str(message.get("text", "")))]


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
