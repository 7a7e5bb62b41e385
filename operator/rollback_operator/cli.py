"""The `rollback-operator` command: `run` the operator, or print the `crds`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rollback_operator import app, heap, preflight
from rollback_operator.api.crd import all_crds
from rollback_operator.api.validation import describe
from rollback_operator.settings import Settings
from rollback_operator.telemetry import logs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollback-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator against the current cluster")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", dest="namespaces", default=None)
    scope.add_argument("-A", "--all-namespaces", action="store_true", default=None)
    run.add_argument("--kubeconfig", default=None, help="kubeconfig path (default: in-cluster)")
    peering = run.add_mutually_exclusive_group()
    peering.add_argument(
        "--standalone", action="store_true", default=None,
        help="no peering: the only operator (default: peer only if kopf's peering CRD and "
        "object exist, else run standalone with a warning)",
    )  # fmt: skip
    peering.add_argument(
        "--peering", dest="peering_name", default=None, metavar="NAME",
        help="peer through this kopf peering object; refuse to start without it",
    )  # fmt: skip
    run.add_argument("--liveness", dest="liveness_endpoint", default=None)
    run.add_argument("--log-format", choices=["text", "json"], default=None)
    run.add_argument("--metrics-port", type=int, default=None, help="/metrics port; 0: none")
    run.add_argument(
        "--allow-endpoint", action="append", dest="allowed_endpoints", default=None,
        metavar="PREFIX",
        help="a URL prefix that may receive a policy's credentials besides the providers' "
        "official APIs (repeatable; plain http only to loopback)",
    )  # fmt: skip
    run.add_argument("-v", "--verbose", action="store_true", default=None)
    crds = sub.add_parser("crds", help="print the CustomResourceDefinitions as YAML")
    crds.add_argument("--output-dir", default=None, help="write one file per CRD here instead")
    return parser


def render_crds() -> str:
    """Every CRD as one YAML stream."""
    return yaml.safe_dump_all(all_crds(), sort_keys=False)


def crd_files() -> dict[str, str]:
    """Every CRD, one YAML document each, by file name (`<plural>.<group>.yaml`)."""
    return {f"{c['metadata']['name']}.yaml": yaml.safe_dump(c, sort_keys=False) for c in all_crds()}


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    given: dict[str, Any] = {
        k: v for k, v in vars(args).items() if v is not None and k in Settings.model_fields
    }
    settings = Settings(**given)
    if not settings.namespaces and not settings.all_namespaces:
        settings = settings.model_copy(update={"all_namespaces": True})
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    if args.command == "crds":
        if args.output_dir is None:
            sys.stdout.write(render_crds())
            return 0
        for name, text in crd_files().items():
            (Path(args.output_dir) / name).write_text(text)
        return 0
    try:
        settings = settings_from(args)
    except ValidationError as error:
        sys.stderr.write(f"rollback-operator: error: {describe(error)}\n")
        return 2
    logs.configure(settings.log_format, verbose=settings.verbose)
    heap.settle()
    try:
        asyncio.run(app.run(settings))
    except preflight.StartupError as error:
        sys.stderr.write(f"rollback-operator: error: {error}\n")
        return 1
    return 0
