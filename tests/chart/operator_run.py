"""Run the operator configured only by its environment, as the chart's Deployment runs it.

`tests.operator_process` fixes its settings for the e2e suite (standalone, one namespace);
the chart tests instead start this with the env the rendered Deployment gives the container
(scope, peering, log format and ports), so the run shows what the chart really configures. The
Vercel and Railway targets use the real adapters (against the fake servers); database and
storage use the file-backed fakes of `sandbox.fakes.memory`.

    ROLLBACK_OPERATOR_...=... python -m tests.chart.operator_run --world WORLD.json
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from rollback_operator import app
from rollback_operator.providers.endpoints import Endpoints
from rollback_operator.settings import Settings
from rollback_operator.telemetry import logs
from sandbox.fakes.memory import FakeWorld
from tests.operator_process import HybridFactory


def main() -> None:
    """Parse the flags and run the operator until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", required=True, type=Path)
    args = parser.parse_args()
    settings = Settings()
    logs.configure(settings.log_format, verbose=settings.verbose)  # as `rollback-operator run`
    if not settings.namespaces and not settings.all_namespaces:
        raise SystemExit("the chart sets either ROLLBACK_OPERATOR_NAMESPACES or _ALL_NAMESPACES")
    endpoints = Endpoints(tuple(settings.allowed_endpoints))
    factory = HybridFactory(FakeWorld.load(args.world), {"frontend", "backend"}, endpoints)
    asyncio.run(app.run(settings, factory))


if __name__ == "__main__":
    main()
