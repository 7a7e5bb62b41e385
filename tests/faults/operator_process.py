"""The operator process of the rollback-level fault tests: real adapters, real notifiers.

Why this module exists: `tests/operator_process.py` always tells people through the in-memory
fake notifier; the fault matrix needs the real Slack, Statuspage and PagerDuty adapters (talking
to their stateful fakes, which inject the faults) to show that a failing notifier never fails a
rollback. Targets named by `--real` get the real adapters as there; the verifier stays fake.
Wire options are the production defaults: nothing here shortens a retry or a timeout.

    python -m tests.faults.operator_process --kubeconfig K --world W --real frontend,backend
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from rollback_operator import app
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers import notifiers
from rollback_operator.providers.base import Notifier, Providers, SecretReader
from rollback_operator.settings import Settings
from tests.fakes.memory import FakeWorld
from tests.operator_process import HybridFactory


class RealNotifiersFactory(HybridFactory):
    """`HybridFactory`, with the notifiers the policy configures instead of the fake one."""

    async def notifiers(self, policy: RollbackPolicy, secrets: SecretReader) -> list[Notifier]:
        return await notifiers.build(policy, secrets)

    async def build(self, policy: RollbackPolicy, secrets: SecretReader) -> Providers:
        providers = await super().build(policy, secrets)
        providers.notifiers = await notifiers.build(policy, secrets)
        return providers


def main() -> None:
    """Parse the flags (as tests/operator_process.py) and run until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--world", required=True, type=Path)
    parser.add_argument("--real", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings(
        kubeconfig=args.kubeconfig,
        namespaces=["default"],
        standalone=True,
        liveness_endpoint=None,
        poll_interval=0.05,
        step_base_delay=0.05,
        step_max_delay=0.2,
    )
    real = {t for t in args.real.split(",") if t}
    asyncio.run(app.run(settings, RealNotifiersFactory(FakeWorld.load(args.world), real)))


if __name__ == "__main__":
    main()
