"""The shell scripts around the chart: they parse, pass shellcheck, and fail clearly."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.apiserver.server import REPO_ROOT

SCRIPTS = [REPO_ROOT / "scripts" / "kube-env.sh", REPO_ROOT / "scripts" / "e2e-kind.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_script_parses(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_script_passes_shellcheck(script: Path) -> None:
    done = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_e2e_kind_names_the_missing_tool_before_doing_anything(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "docker"):  # docker but no kind, helm, ...
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    done = subprocess.run(
        ["bash", str(SCRIPTS[1])], env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert "e2e-kind needs kind" in done.stderr
