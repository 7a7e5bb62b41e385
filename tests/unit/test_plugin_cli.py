"""The kubectl plugin's command line without a cluster: durations, outcomes, completion of
commands and flags, and what `--help` costs at start-up."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from rollback_operator import plugin, plugin_args, plugin_completion, plugin_rollbacks


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0),
                          ("250ms", 0.25)],
)  # fmt: skip
def test_durations_read_as_kubectl_writes_them(text: str, seconds: float) -> None:
    assert plugin_args.duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h 30m", "-5s"])
def test_a_bad_duration_is_refused_with_examples(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"e\.g\. 90s, 5m, 1h30m"):
        plugin_args.duration(text)


@pytest.mark.parametrize(
    ("phase", "dry_run", "code"),
    [("Succeeded", False, 0), ("Failed", False, 3), ("PartiallyFailed", False, 4),
     ("Aborted", False, 5), ("Planned", True, 0), ("Planned", False, None),
     ("AwaitingApproval", False, None), ("Running", False, None)],
)  # fmt: skip
def test_a_phase_is_an_exit_code_once_the_rollback_has_ended(
    phase: str, dry_run: bool, code: int | None
) -> None:
    body = {"spec": {"dryRun": dry_run}, "status": {"phase": phase}}

    assert plugin_rollbacks.outcome(body) == code


def test_commands_and_flags_complete_without_asking_the_cluster() -> None:
    assert plugin_completion.complete(["re"]) == ["report", "restore-point", "resume-traffic", ":4"]
    assert plugin_completion.complete(["status", "x", "--t"]) == ["--timeout", ":4"]
    assert plugin_completion.complete(["list", "-o", ""]) == ["json", "yaml", ":4"]
    assert plugin_completion.complete(["completion", ""]) == ["bash", "zsh", ":4"]
    assert plugin_completion.complete(["--kubeconfig", ""]) == [":0"]  # the shell lists files


def test_all_namespaces_is_refused_where_it_means_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        plugin.main(["status", "rb-1", "-A"])

    assert exited.value.code == plugin_args.USAGE
    assert "-A applies to list and policy list only" in capsys.readouterr().err


def test_help_lists_every_exit_code() -> None:
    text = plugin_args.parser().format_help()

    for code, meaning in plugin_args.EXIT_CODES.items():
        assert f"  {code}  {meaning}" in text


def test_help_imports_neither_the_kubernetes_client_nor_pydantic() -> None:
    probe = (
        "import sys\nfrom rollback_operator import plugin\n"
        "try:\n    plugin.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('kubernetes_asyncio', 'pydantic', 'kopf', 'httpx', 'yaml', 'ssl')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)

    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr


class _OneRollback:
    """A cluster holding one Rollback body, and nothing else."""

    def __init__(self, body: dict[str, object]) -> None:
        self.body = body

    def get(self, path: str, **_: str) -> dict[str, object]:
        assert path.endswith("/rollbacks/rb-1"), path
        return self.body


def test_a_report_kept_only_in_the_backups_bucket_is_named_where_it_is() -> None:
    """Its ConfigMap could not be written (an earlier Rollback's of the name was still there):
    the archive has the report, and `report` says where, not that there is none."""
    key = "reports/prod/rb-1/20261207T164257Z-ab63c30c.md"
    kube = _OneRollback({"status": {"phase": "Succeeded", "reportRef": {"s3Key": key}}})
    args = argparse.Namespace(namespace="prod", name="rb-1")

    with pytest.raises(plugin_rollbacks.PluginError) as raised:
        plugin_rollbacks.report(kube, args)  # type: ignore[arg-type]  # the one call it makes

    assert key in str(raised.value)
    assert "no report yet" not in str(raised.value)
