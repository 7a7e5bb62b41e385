"""The installable form of the Argo CD customizations: argocd-cm keys holding the Lua scripts.

Argo CD reads health checks and resource actions from its ConfigMap `argocd-cm`, one key per
kind (`resource.customizations.health.<group>_<Kind>`, `...actions.<group>_<Kind>`). The Lua
lives in integrations/argocd/ in Argo CD's own layout (so each script has its tests beside
it); this module renders the two files people install from it, and a test fails when they
no longer match the scripts: `python -m tests.gitops.argocd_cm --write` refreshes them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2] / "integrations" / "argocd"
GROUP = "rollback.mindmate.app"
KINDS = ("Rollback", "RollbackPolicy", "RestorePoint")
PATCH = ROOT / "argocd-cm-patch.yaml"
HELM_VALUES = ROOT / "argo-cd-values.yaml"
HEADER = (
    "# Generated from integrations/argocd/{group}/ by `python -m tests.gitops.argocd_cm --write`;\n"
    "# edit the Lua files there, not this file. {how}\n"
)


class _Literal(str):
    """A string dumped as a YAML literal block, as people read Lua."""


def _literal(dumper: yaml.SafeDumper, text: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")


yaml.SafeDumper.add_representer(_Literal, _literal)


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=100)


def _actions(kind_dir: Path) -> str | None:
    actions = kind_dir / "actions"
    if not actions.is_dir():
        return None
    definitions = [
        {"name": d.name, "action.lua": _Literal((d / "action.lua").read_text())}
        for d in sorted(p for p in actions.iterdir() if (p / "action.lua").is_file())
    ]
    discovery = _Literal((actions / "discovery.lua").read_text())
    return _dump({"discovery.lua": discovery, "definitions": definitions})


def keys() -> dict[str, _Literal]:
    """Every argocd-cm key this project ships, in a stable order."""
    found: dict[str, _Literal] = {}
    for kind in KINDS:
        kind_dir = ROOT / GROUP / kind
        found[f"resource.customizations.health.{GROUP}_{kind}"] = _Literal(
            (kind_dir / "health.lua").read_text()
        )
        actions = _actions(kind_dir)
        if actions is not None:
            found[f"resource.customizations.actions.{GROUP}_{kind}"] = _Literal(actions)
    return found


def patch() -> str:
    """A merge patch for argocd-cm (kubectl patch --patch-file, or a kustomize patch)."""
    how = "Apply: kubectl -n argocd patch configmap argocd-cm --patch-file argocd-cm-patch.yaml"
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "argocd-cm"}, "data": keys()}  # fmt: skip
    return HEADER.format(group=GROUP, how=how) + _dump(body)


def helm_values() -> str:
    """The same keys as values of the argo-cd Helm chart (`configs.cm`)."""
    how = "Use: helm upgrade argocd argo/argo-cd -f argo-cd-values.yaml (with your own values)"
    return HEADER.format(group=GROUP, how=how) + _dump({"configs": {"cm": keys()}})


RENDERED = {PATCH: patch, HELM_VALUES: helm_values}


def main(argv: list[str]) -> int:
    """`--write`: refresh both files."""
    if argv != ["--write"]:
        print("usage: python -m tests.gitops.argocd_cm --write", file=sys.stderr)
        return 2
    for path, render in RENDERED.items():
        path.write_text(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
