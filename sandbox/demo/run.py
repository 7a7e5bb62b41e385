"""The demo's story, in order: start, apply the runbook's policy, break the app, watch it heal.

Why this module exists: it is `make demo`. Each chapter waits for something the operator
records (a rule state, a Rollback, a phase) with a deadline, so the demo either shows the whole
story and exits 0, or stops at the first thing that did not happen, says which, shows the tail
of the operator's log, and exits 1. `--full` runs the runbook's full rollback instead of the
quick one and checks that the database and the files are back as they were at the backup.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import yaml

from sandbox import manifests
from sandbox.demo import data as demo_data
from sandbox.demo import policy as demo_policy
from sandbox.demo.stack import SLACK_CHANNEL, Stack, started
from sandbox.demo.traffic import Traffic
from sandbox.demo.view import DemoFailed, Printer, Watcher, World, slack_lines
from sandbox.fakes.saas import RAILWAY_TOKEN, VERCEL_TOKEN
from sandbox.services.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY

NAMESPACE, POLICY, RULE = demo_policy.NAMESPACE, "mindmate", "api-error-rate"
FINAL = {"Succeeded", "PartiallyFailed", "Failed", "Aborted"}
FAILURES = (DemoFailed, RuntimeError, TimeoutError, OSError, subprocess.CalledProcessError,
            httpx.HTTPError)  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__)
    parser.add_argument(
        "--full",
        action="store_true",
        help="full rollback: stop traffic, restore database and files, redeploy",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=150.0,
        help="seconds the whole demo may take once everything is started",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every chapter happened and every check passed."""
    args = parse(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so every part is stopped on the way out
    out = Printer()
    mode = "full" if args.full else "quick"
    out.line(out.bold(f"rollback-operator demo: an automatic {mode} rollback, no cluster needed"))
    workdir = Path(tempfile.mkdtemp(prefix="rollback-demo-"))
    try:
        with started(workdir, out.line, namespace=NAMESPACE) as stack:
            return Story(stack, out, full=args.full, timeout=args.timeout).tell()
    except FAILURES as error:
        out.line(f"demo FAILED: {error}")
        return 1
    finally:
        if args.keep:
            out.line(f"work directory kept: {workdir}", stamp=False)
        else:
            _remove(workdir)


class Story:
    """One run of the demo against a started stack."""

    def __init__(self, stack: Stack, out: Printer, *, full: bool, timeout: float) -> None:
        self.stack, self.out, self.full = stack, out, full
        self.deadline = time.monotonic() + timeout
        self.data = demo_data.Data.create(stack.postgres, stack.s3)
        self.traffic = Traffic(stack.prometheus, stack.app)
        self.watcher = Watcher(stack.cluster.url, NAMESPACE, POLICY, out)
        self.damaged: demo_data.Snapshot | None = None
        self.versions: set[tuple[str, str]] = set()

    def tell(self) -> int:
        try:
            self.prepare()
            self.incident()
            body = self.rollback()
            return self.epilogue(body)
        except FAILURES as error:
            self.out.line(f"demo FAILED: {error}")
            self.out.line("last lines of the operator's log:", stamp=False)
            self.out.line(self.stack.operator.tail(), stamp=False)
            return 1
        finally:
            self.traffic.stop()
            self.watcher.close()

    # -- chapters ------------------------------------------------------------------------

    def prepare(self) -> None:
        out, stack = self.out, self.stack
        backup = self.data.seed_and_back_up()
        key = f"s3://{demo_policy.BACKUPS}/{demo_policy.DB_PREFIX}{backup}"
        out.line(f"seeded database `{demo_data.DATABASE}` (users: "
                 f"{', '.join(demo_data.GOOD_USERS)}) and s3://{demo_policy.FILES}; "
                 f"pg_dump -> {key}")  # fmt: skip
        self.traffic.backfill(datetime.now(UTC))
        self.traffic.start()
        out.line("Prometheus: 2 minutes of healthy traffic written; live samples every second")
        stack.operator.wait_ready()
        out.line(f"operator running: rollback-operator run --namespace {NAMESPACE} (pid "
                 f"{stack.operator.process.pid if stack.operator.process else '?'})")  # fmt: skip
        out.heading("The runbook's policy")
        out.line("applying a demo copy of examples/mindmate-policy.yaml; its changes:")
        for change in demo_policy.changes(self.full):
            out.line(f"  - {change}", stamp=False)
        self.apply_policy()
        world = self.wait(_all_evaluated, "the policy's first evaluation", 30)
        out.line("every rule evaluated against Prometheus:")
        self.watcher.rule_table(world)

    def incident(self) -> None:
        self.out.heading("Incident: the new release starts failing")
        saas = self.stack.saas
        self.out.line(f"live now: frontend {saas.live} (Vercel), backend {saas.railway_live} "
                      f"(Railway); 50% of API requests now answer 500")  # fmt: skip
        self.stack.app.spiking.set()
        if self.full:
            self.data.damage()
            self.damaged = self.data.snapshot()
            self.versions = self.data.versions()
            self.out.line(f"the bad release also writes users {', '.join(demo_data.BAD_USERS)} "
                          f"and files {', '.join(demo_data.BAD_FILES)}")  # fmt: skip
        self.wait(lambda w: w.rule(RULE).get("state") == "Pending", f"{RULE} Pending", 60)
        self.wait(lambda w: w.rule(RULE).get("state") == "Critical", f"{RULE} Critical", 60)

    def rollback(self) -> dict[str, Any]:
        world = self.wait(lambda w: w.rollback() is not None, "the automatic Rollback", 30)
        name = str(_name(world))
        world = self.wait(lambda w: _phase(w) in FINAL, f"the end of Rollback {name}", self.left())
        body = world.rollback()
        assert body is not None
        return body

    def epilogue(self, body: dict[str, Any]) -> int:
        status: dict[str, Any] = body.get("status", {})
        name = body["metadata"]["name"]
        problems: list[str] = []
        if status.get("phase") != "Succeeded":
            problems.append(f"Rollback {name} ended {status.get('phase')}: {status.get('message')}")
        self.out.heading("Incident report")
        ref: dict[str, str] = status.get("reportRef") or {}
        report = ""
        if not ref.get("configMap"):
            problems.append("the rollback has no reportRef")
        else:
            report = self.watcher.configmap(ref["configMap"])["data"]["report.md"]
            self.out.line(f"ConfigMap {ref['configMap']}" + (f", copy at {ref['s3Key']}"
                          if ref.get("s3Key") else "") + ":", stamp=False)  # fmt: skip
            self.out.line(report, stamp=False)
        problems += self.slack()
        problems += self.live_state()
        if self.full:
            problems += self.data_check()
        if self.traffic.error is not None:
            problems.append(f"writing metrics failed: {self.traffic.error}")
        problems += self.leaks(report + str(body) + str(self.watcher.look().policy))
        self.out.heading("Result")
        for problem in problems:
            self.out.line(f"FAILED: {problem}")
        if not problems:
            self.out.line(f"demo succeeded: Rollback {name} Succeeded, report stored, "
                          f"Slack told, the app is healthy again")  # fmt: skip
        return 1 if problems else 0

    # -- checks at the end -----------------------------------------------------------------

    def slack(self) -> list[str]:
        self.out.heading(f"Slack messages the fake received in {SLACK_CHANNEL}")
        messages = self.stack.slack.messages()
        for message in messages:
            self.out.line(f"  +-- {message.get('_channel')} #{message.get('_ts')}", stamp=False)
            for line in slack_lines(message):
                self.out.line(f"  | {line}", stamp=False)
        texts = " ".join(str(m.get("text", "")) for m in messages)
        missing = [w for w in ("Rollback started", "Rollback succeeded") if w not in texts]
        return [f"Slack never got a '{w}' message" for w in missing]

    def live_state(self) -> list[str]:
        saas, app = self.stack.saas, self.stack.app
        frontend = saas.live_frontend()
        backend = saas.railway.active_deployment(saas.service, saas.env)
        status, text = app.health()
        self.out.heading("The app now")
        self.out.line(
            f"frontend live: {frontend} (was {saas.live}); backend active: {backend} "
            f"(was {saas.railway_live}, rolled back to {saas.railway_old})",
            stamp=False,
        )
        serving = ", ".join(saas.backend_serving()) or "none"
        self.out.line(f"GET /health: {status} {text}; backend serving: {serving}", stamp=False)
        problems = []
        if frontend != saas.old:
            problems.append(f"Vercel serves {frontend}, not the previous release {saas.old}")
        if app.bad_release_live():
            problems.append("the bad release is still live")
        if status != 200:
            problems.append(f"/health answers {status} {text}")
        return problems

    def data_check(self) -> list[str]:
        now, then = self.data.snapshot(), demo_data.at_backup()
        self.out.heading("The app's data: the full rollback undid the bad release's writes")
        stages = [("at the backup", then), ("bad release", self.damaged), ("after rollback", now)]
        for label, snap in stages:
            for line in snap.lines() if snap else []:
                self.out.line(f"  {label:<15} {line}", stamp=False)
        versions = self.data.versions()
        kept = self.versions <= versions
        self.out.line(f"  the files bucket keeps all {len(self.versions)} earlier versions "
                      f"({len(versions)} now, delete markers included): nothing deleted"
                      if kept else "  object versions were deleted!", stamp=False)  # fmt: skip
        problems = [] if kept else ["the storage restore deleted object versions"]
        if now.users != then.users:
            problems.append(f"users are {now.users}, expected {then.users}")
        if now.files != then.files:
            problems.append(f"files are {sorted(now.files)}, expected {sorted(then.files)}")
        return problems

    def leaks(self, shown: str) -> list[str]:
        """No Secret value in anything the demo showed or the operator logged."""
        secrets = [VERCEL_TOKEN, RAILWAY_TOKEN, SECRET_ACCESS_KEY, self.stack.postgres.password,
                   self.stack.slack_url.rsplit("/", 1)[-1]]  # fmt: skip
        seen = shown + self.stack.operator.tail(10**7) + str(self.stack.slack.messages())
        return [f"a Secret value appears in the output ({s[:4]}...)" for s in secrets if s in seen]

    # -- plumbing --------------------------------------------------------------------------

    def apply_policy(self) -> None:
        stack = self.stack
        local = demo_policy.Local(stack.saas, stack.prometheus.url, stack.s3_server.url,
                                  stack.health_url)  # fmt: skip
        secrets = [
            manifests.secret("vercel", {"token": VERCEL_TOKEN}),
            manifests.secret("railway", {"token": RAILWAY_TOKEN}),
            manifests.secret("db", {"url": self.data.db.url}),
            manifests.secret("aws", {"access-key-id": ACCESS_KEY_ID,
                                    "secret-access-key": SECRET_ACCESS_KEY}),
            manifests.secret("slack", {"url": stack.slack_url}),
        ]  # fmt: skip
        path = stack.workdir / "demo-policy.yaml"
        path.write_text(
            yaml.safe_dump_all([*secrets, demo_policy.demo_copy(local, full=self.full)])
        )
        stack.cluster.apply_file(path)
        self.out.line(f"kubectl apply -f {path.name}: Secrets vercel, railway, db, aws, slack "
                      f"and RollbackPolicy {POLICY}")  # fmt: skip

    def wait(self, done: Callable[[World], bool], what: str, timeout: float) -> World:
        return self.watcher.wait(done, what, min(timeout, self.left()), alive=self.alive)

    def alive(self) -> None:
        try:
            self.stack.operator.check()
        except RuntimeError as error:
            raise DemoFailed(str(error)) from None
        if self.traffic.error is not None:
            raise DemoFailed(f"writing metrics to Prometheus failed: {self.traffic.error}")

    def left(self) -> float:
        return max(1.0, self.deadline - time.monotonic())


def _all_evaluated(world: World) -> bool:
    rules = world.policy.get("status", {}).get("rules", [])
    return len(rules) == len(world.policy["spec"]["rules"])


def _name(world: World) -> str:
    body = world.rollback()
    return body["metadata"]["name"] if body else ""


def _phase(world: World) -> str:
    body = world.rollback()
    return str(body.get("status", {}).get("phase", "")) if body else ""


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
