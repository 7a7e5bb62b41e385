"""The kubectl plugin's command line: its commands and flags, exit codes and durations.

Kept apart from the commands so that `kubectl rollback --help`, a usage error and shell
completion import nothing but argparse. The exit codes are a contract for CI scripts
(`status NAME --watch`): they are listed in `--help` and in README.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

SUCCEEDED, ERROR, USAGE, FAILED, PARTIALLY_FAILED, ABORTED, TIMED_OUT = 0, 1, 2, 3, 4, 5, 6
EXIT_CODES = {
    SUCCEEDED: "Succeeded (a dry run: Planned); any other command: done",
    ERROR: "error: not found, refused, unreachable, invalid input",
    USAGE: "usage error",
    FAILED: "the rollback Failed",
    PARTIALLY_FAILED: "the rollback PartiallyFailed",
    ABORTED: "the rollback was Aborted",
    TIMED_OUT: "--timeout passed before the rollback finished",
}
OUTPUTS = ("json", "yaml")
DESCRIPTION = """\
Plan, start, approve, abort and watch rollbacks, and show or suspend policies, with the current
kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config; in a pod without one, its ServiceAccount).
"""
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def duration(text: str) -> float:
    """Seconds of a kubectl-style duration: `90`, `30s`, `5m`, `1h30m`."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90s, 5m, 1h30m)")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def positive(text: str) -> int:
    """An integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parser() -> argparse.ArgumentParser:
    """The whole command line."""
    top = argparse.ArgumentParser(
        prog="kubectl rollback", description=DESCRIPTION, epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    _connection_flags(top, argparse.SUPPRESS)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _rollback_commands(sub)
    _policy_commands(sub)
    completion = _command(sub, "completion", "print a shell completion script")
    completion.add_argument("shell", choices=["bash", "zsh"])
    return top


def _epilog() -> str:
    codes = "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())
    return f"exit codes:\n{codes}"


def _connection_flags(parser: argparse.ArgumentParser, default: object) -> None:
    """Accepted before and after the command (`kubectl rollback list -A`)."""
    parser.add_argument("-n", "--namespace", default=default)
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", default=default,
        help="every namespace (list, policy list)",
    )  # fmt: skip
    parser.add_argument("--kubeconfig", default=default, help="before KUBECONFIG and in-cluster")
    parser.add_argument("--context", default=default, help="a context of the kubeconfig")
    parser.add_argument(
        "--as", dest="impersonate", default=default, metavar="USER",
        help="act as USER (Kubernetes impersonation, as kubectl's --as; needs the impersonate "
        "verb): requested-by and approved-by then name USER",
    )  # fmt: skip


def _command(sub: Any, name: str, text: str, *, output: bool = False) -> argparse.ArgumentParser:
    cmd: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
    _connection_flags(cmd, argparse.SUPPRESS)
    if output:
        cmd.add_argument("-o", "--output", choices=OUTPUTS, default=None,
                         help="the objects as JSON or YAML instead of text")  # fmt: skip
    return cmd


def _rollback_commands(sub: Any) -> None:
    _command(sub, "list", "rollbacks in the namespace (-A: in all)", output=True)
    candidates = _command(
        sub, "candidates", "what each target can go back to: deployments and backups",
        output=True,
    )  # fmt: skip
    candidates.add_argument("policy")
    candidates.add_argument("--limit", type=positive, default=10, help="per target (10)")
    candidates.add_argument(
        "--allow-endpoint", action="append", dest="allowed_endpoints", default=[],
        metavar="PREFIX", help="as `rollback-operator run`: a URL prefix that may receive the "
        "policy's tokens besides the providers' official APIs (repeatable)",
    )  # fmt: skip
    plan = _rollback_spec(_command(sub, "plan", "dry-run rollback: print the plan", output=True))
    plan.add_argument("--keep", action="store_true",
                      help="keep the dry-run Rollback (default: deleted once shown)")  # fmt: skip
    start = _rollback_spec(_command(sub, "start", "start a rollback"))
    start.add_argument("--require-approval", action="store_true")
    start.add_argument("--wait", action="store_true", help="show the steps live until the end")
    start.add_argument("--timeout", type=duration, default=3600.0, help="with --wait (1h)")
    point = _command(sub, "restore-point", "take a RestorePoint of a policy now")
    point.add_argument("policy")
    point.add_argument("--name", default=None, help="default: POLICY-YYYYMMDD-HHMMSS (UTC)")
    point.add_argument("--targets", default=None, help="database,storage (default: the policy's)")
    point.add_argument("--reason", default=None)
    point.add_argument("--wait", action="store_true", help="until it ends: exit 0 or 3")
    point.add_argument("--timeout", type=duration, default=3600.0, help="with --wait (1h)")
    approve = _command(sub, "approve", "approve a rollback")
    approve.add_argument("name")
    status = _command(sub, "status", "a rollback's plan, steps and conditions", output=True)
    status.add_argument("name")
    status.add_argument(
        "-w", "--watch", action="store_true",
        help="follow it until it ends; the exit code says how (see below)",
    )  # fmt: skip
    status.add_argument(
        "--timeout", type=duration, default=3600.0,
        help="with --watch: give up after this long (1h), exit 6",
    )  # fmt: skip
    for name, text in (
        ("abort", "abort a rollback (steps not started are skipped)"),
        ("report", "print a rollback's report (once it is deleted: the one the operator kept)"),
        ("resume-traffic", "serve traffic again that a failed or aborted full rollback left "
         "stopped"),
    ):  # fmt: skip
        _command(sub, name, text).add_argument("name")


def _rollback_spec(cmd: argparse.ArgumentParser) -> argparse.ArgumentParser:
    cmd.add_argument("policy")
    cmd.add_argument("--mode", choices=["quick", "full"], default="quick")
    cmd.add_argument("--targets", default=None, help="comma-separated, e.g. frontend,backend")
    cmd.add_argument(
        "--to", action="append", default=[], metavar="TARGET=VALUE",
        help="pin: frontend=dpl_x, backend=id, database=file, storage=RFC3339",
    )  # fmt: skip
    cmd.add_argument("--reason", default=None)
    cmd.add_argument("--version", default=None)
    cmd.add_argument("--name", default=None, help="default: generated from the policy")
    return cmd


def _policy_commands(sub: Any) -> None:
    policy = _command(sub, "policy", "RollbackPolicies: rule states, suspend, resume")
    verbs = policy.add_subparsers(dest="verb", required=True, metavar="VERB")
    _command(verbs, "list", "policies in the namespace (-A: in all)", output=True)
    shown = _command(verbs, "show", "a policy's rule states and guards", output=True)
    shown.add_argument("name")
    for verb, text in (
        ("suspend", "stop automatic rollbacks (spec.suspend: true); evaluation goes on"),
        ("resume", "allow automatic rollbacks again (spec.suspend: false)"),
    ):
        _command(verbs, verb, text).add_argument("name")
