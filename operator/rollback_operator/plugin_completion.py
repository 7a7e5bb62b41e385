"""Shell completion for the kubectl plugin: commands, flags, and the names in the cluster.

Two ways in, one completer. kubectl (1.26 and later) completes `kubectl rollback ...` itself by
running `kubectl_complete-rollback ARGS... WORD`, a second console script, and reading one
candidate a line and then `:DIRECTIVE` (cobra's protocol); bash, zsh and fish all work that
way. For the `kubectl-rollback` command typed directly, `kubectl rollback completion bash|zsh`
prints a script that asks `kubectl-rollback __complete ARGS... WORD` the same question.
"""

from __future__ import annotations

import argparse

from rollback_operator.plugin_args import OUTPUTS, parser
from rollback_operator.plugin_kube import Kube, KubeError, path_of
from rollback_operator.plugin_kubeconfig import ConfigError, contexts, load

NO_FILES, FILES = ":4", ":0"  # cobra's ShellCompDirectiveNoFileComp and Default
ROLLBACK_NAMED = {"approve", "abort", "status", "report", "resume-traffic"}
POLICY_NAMED = {"candidates", "plan", "start", "show", "suspend", "resume", "restore-point"}
FIXED = {"--mode": ["quick", "full"], "-o": list(OUTPUTS), "--output": list(OUTPUTS)}
TAKES_VALUE_NO_LIST = {"--targets", "--to", "--reason", "--version", "--name", "--timeout",
                       "--limit", "--allow-endpoint", "--as"}  # fmt: skip

BASH = """\
# kubectl-rollback completion for bash: source <(kubectl rollback completion bash)
_kubectl_rollback() {
    local IFS=$'\\n'
    COMPREPLY=($(kubectl-rollback __complete "${COMP_WORDS[@]:1:$COMP_CWORD}" 2>/dev/null \\
        | grep -v '^:'))
}
complete -o default -F _kubectl_rollback kubectl-rollback
"""
ZSH = """\
#compdef kubectl-rollback
# kubectl-rollback completion for zsh: source <(kubectl rollback completion zsh)
_kubectl_rollback() {
    local -a found
    found=("${(@f)$(kubectl-rollback __complete "${(@)words[2,$CURRENT]}" 2>/dev/null \\
        | grep -v '^:')}")
    compadd -a found
}
compdef _kubectl_rollback kubectl-rollback
"""
SCRIPTS = {"bash": BASH, "zsh": ZSH}


def complete(words: list[str]) -> list[str]:
    """Candidates for the last of `words` (the word being typed), then cobra's directive."""
    *before, word = words or [""]
    previous = before[-1] if before else ""
    if previous == "--kubeconfig":
        return [FILES]
    if previous in FIXED:
        return [*_starting(FIXED[previous], word), NO_FILES]
    if previous in TAKES_VALUE_NO_LIST:
        return [NO_FILES]
    if previous in ("-n", "--namespace"):
        return [*_starting(_names(before, "/api/v1/namespaces"), word), NO_FILES]
    if previous == "--context":
        return [*_starting(_contexts(before), word), NO_FILES]
    command = _command_path(before)
    current = _subparser(command)
    if word.startswith("-"):
        return [*_starting(_flags(current), word), NO_FILES]
    return [*_starting(_positionals(before, command, current), word), NO_FILES]


def _starting(options: list[str], prefix: str) -> list[str]:
    return [option for option in options if option.startswith(prefix)]


def _command_path(before: list[str]) -> list[str]:
    """The commands typed so far: [] , ["status"], ["policy", "show"]."""
    words = [w for i, w in enumerate(before) if not w.startswith("-") and not _is_value(before, i)]
    if words[:1] == ["policy"]:
        return words[:2]
    return words[:1]


def _is_value(words: list[str], index: int) -> bool:
    flag = words[index - 1] if index else ""
    return flag in ("-n", "--namespace", "--context", "--kubeconfig", *FIXED, *TAKES_VALUE_NO_LIST)


def _subparser(path: list[str]) -> argparse.ArgumentParser:
    current = parser()
    for name in path:
        choices = _choices(current)
        if name not in choices:
            break
        current = choices[name]
    return current


def _choices(cmd: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in cmd._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: dict[str, argparse.ArgumentParser] = action.choices
            return found
    return {}


def _flags(cmd: argparse.ArgumentParser) -> list[str]:
    return [flag for action in cmd._actions for flag in action.option_strings]


def _positionals(before: list[str], path: list[str], cmd: argparse.ArgumentParser) -> list[str]:
    choices = _choices(cmd)
    if choices:
        return sorted(choices)
    typed = [w for i, w in enumerate(before) if not w.startswith("-") and not _is_value(before, i)]
    if len(typed) > len(path):  # the name is given already
        return []
    last = path[-1] if path else ""
    if last == "completion":
        return sorted(SCRIPTS)
    if last in ROLLBACK_NAMED:
        return _names(before, "rollbacks")
    if last in POLICY_NAMED:
        return _names(before, "rollbackpolicies")
    return []


def _flag_value(words: list[str], *flags: str) -> str | None:
    for index, word in enumerate(words[:-1]):
        if word in flags:
            return words[index + 1]
    return None


def _names(before: list[str], what: str) -> list[str]:
    """Object names from the cluster; none when it cannot be asked (completion stays quiet)."""
    try:
        conn = load(_flag_value(before, "--kubeconfig"), _flag_value(before, "--context"))
        namespace = _flag_value(before, "-n", "--namespace") or conn.namespace
        path = what if what.startswith("/") else path_of(what, namespace)
        items = Kube(conn, timeout=5.0).get(path).get("items", [])
    except (ConfigError, KubeError, OSError):
        return []
    return sorted(str(item["metadata"]["name"]) for item in items)


def _contexts(before: list[str]) -> list[str]:
    try:
        return contexts(_flag_value(before, "--kubeconfig"))
    except (ConfigError, OSError):
        return []
