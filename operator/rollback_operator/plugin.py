"""`kubectl rollback ...`: the kubectl plugin (console scripts `kubectl-rollback` and
`kubectl_complete-rollback`).

This module only parses the command line and hands it to the module of the command, imported
then: `--help` and usage errors import argparse alone, the Rollback and policy commands a small
stdlib client (`plugin_kube`), and only `candidates` the operator's provider libraries. That is
what keeps `kubectl rollback list` under half a second (bench/plugin_start.py) and lets the
plugin run where only Python and PyYAML are installed (`plugins/krew/`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rollback_operator.plugin_args import ERROR, parser

COMMANDS = {  # command (or "policy VERB") -> (module, function(kube, args) -> exit code)
    "list": ("plugin_rollbacks", "list_rollbacks"),
    "plan": ("plugin_rollbacks", "plan_rollback"),
    "start": ("plugin_rollbacks", "start_rollback"),
    "approve": ("plugin_rollbacks", "approve"),
    "abort": ("plugin_rollbacks", "abort"),
    "status": ("plugin_rollbacks", "show_status"),
    "report": ("plugin_rollbacks", "report"),
    "resume-traffic": ("plugin_rollbacks", "resume_traffic"),
    "candidates": ("plugin_candidates", "candidates"),
    "restore-point": ("plugin_points", "take"),
    "policy list": ("plugin_policies", "list_policies"),
    "policy show": ("plugin_policies", "show_policy"),
    "policy suspend": ("plugin_policies", "suspend"),
    "policy resume": ("plugin_policies", "resume"),
}
CONNECTION = {"namespace": None, "all_namespaces": False, "kubeconfig": None, "context": None,
              "impersonate": None}  # fmt: skip
FULL_INSTALL = "pip install rollback-operator"
ALL_NAMESPACES = {"list", "policy list"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kubectl-rollback`."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["__complete"]:
        return _print_completions(words[1:])
    cli = parser()
    args = cli.parse_args(words)
    for name, default in CONNECTION.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    if args.all_namespaces and _key(args) not in ALL_NAMESPACES:
        cli.error(f"-A applies to {' and '.join(sorted(ALL_NAMESPACES))} only")
    if args.command == "completion":
        from rollback_operator.plugin_completion import SCRIPTS

        print(SCRIPTS[args.shell], end="")
        return 0
    return _run(args)


def complete() -> int:
    """Entry point of `kubectl_complete-rollback`: kubectl asks it to complete `kubectl
    rollback ARGS... WORD`."""
    return _print_completions(sys.argv[1:])


def _print_completions(words: list[str]) -> int:
    from rollback_operator.plugin_completion import complete as candidates

    print("\n".join(candidates(words)))
    return 0


def _run(args: argparse.Namespace) -> int:
    from rollback_operator.plugin_kube import Kube, KubeError
    from rollback_operator.plugin_kubeconfig import ConfigError, load
    from rollback_operator.plugin_rollbacks import PluginError

    module_name, function = COMMANDS[_key(args)]
    try:
        conn = load(args.kubeconfig, args.context)
        args.namespace = args.namespace or conn.namespace
        command = getattr(_command_module(module_name), function)
        kube = Kube(conn, impersonate=args.impersonate)
        try:
            code: int = command(kube, args)
        finally:
            kube.close()
    except (PluginError, KubeError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:
        return 130
    return code


def _key(args: argparse.Namespace) -> str:
    return f"policy {args.verb}" if args.command == "policy" else str(args.command)


def _command_module(name: str) -> object:
    from rollback_operator.plugin_rollbacks import PluginError

    try:
        return importlib.import_module(f"rollback_operator.{name}")
    except ModuleNotFoundError as error:  # the plugin alone (plugins/krew/): no server libraries
        raise PluginError(
            f"this command needs the operator's libraries ({error.name} is missing): {FULL_INSTALL}"
        ) from None
