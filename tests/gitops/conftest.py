"""The kstatus tool for the GitOps tests: Flux's kstatus library, built from tools/kstatus/."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

TOOL = Path(__file__).parents[2] / "tools" / "kstatus"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rollback-operator"


@pytest.fixture(scope="session")
def kstatus() -> Path:
    """The kstatus binary, built once per version of tools/kstatus/ and kept in the cache."""
    inputs = b"".join((TOOL / name).read_bytes() for name in ("go.mod", "go.sum", "main.go"))
    binary = CACHE / f"kstatus-{hashlib.sha256(inputs).hexdigest()[:12]}" / "kstatus"
    if not binary.exists():
        env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"}
        env["PATH"] = f"{env.get('PATH', '')}:/usr/local/go/bin"
        partial = binary.with_suffix(f".{os.getpid()}")
        partial.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-trimpath", "-o", str(partial), "."],
                       cwd=TOOL, env=env, check=True, timeout=600)  # fmt: skip
        partial.rename(binary)
    return binary


def compute(binary: Path, bodies: list[dict[str, Any]]) -> list[dict[str, str]]:
    """kstatus of each body: its status (Current, InProgress, Failed, ...) and message."""
    answer = subprocess.run([str(binary)], input=json.dumps(bodies), capture_output=True,
                            text=True, check=True, timeout=60)  # fmt: skip
    results: list[dict[str, str]] = json.loads(answer.stdout)
    return results
