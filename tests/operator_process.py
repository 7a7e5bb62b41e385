"""Run the real operator in its own process with fake providers whose world lives in a file.

Tests start it with `python -m tests.operator_process`, kill it with SIGKILL at will, and start
it again: the fakes' state, counters and pending crash points survive in the world file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from rollback_operator import app, heap
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers import registry
from rollback_operator.providers.base import Notifier, Providers, SecretReader
from rollback_operator.providers.endpoints import Endpoints
from rollback_operator.settings import Settings
from rollback_operator.telemetry import logs
from sandbox.fakes.memory import FakeProviderFactory, FakeWorld
from tests.e2e.shared_world import SharedFakeWorld


class HybridFactory:
    """Real adapters for the targets named in `real`, in-memory fakes for everything else;
    `notifiers` in `real` means the notifiers the policy configures, not the fake one."""

    def __init__(self, world: FakeWorld, real: set[str], endpoints: Endpoints) -> None:
        self.world, self.real = world, real - {"notifiers"}
        self.real_notifiers = "notifiers" in real
        self.endpoints = endpoints  # where the real adapters may send credentials

    async def notifiers(self, policy: RollbackPolicy, secrets: SecretReader) -> list[Notifier]:
        if self.real_notifiers:
            return await registry.RealProviderFactory(self.endpoints).notifiers(policy, secrets)
        return await FakeProviderFactory(self.world).notifiers(policy, secrets)

    async def build(self, policy: RollbackPolicy, secrets: SecretReader) -> Providers:
        providers = await FakeProviderFactory(self.world).build(policy, secrets)
        if not self.real:
            if self.real_notifiers:
                providers.notifiers = await self.notifiers(policy, secrets)
            return providers
        kept = {t: getattr(policy.spec.targets, t) for t in self.real}
        only_real = policy.spec.targets.model_copy(
            update={t: kept.get(t) for t in ("frontend", "backend", "database", "storage")}
        )
        spec = policy.spec.model_copy(update={"targets": only_real})
        real = await registry.RealProviderFactory(self.endpoints).build(
            policy.model_copy(update={"spec": spec}), secrets
        )
        for target in self.real:
            setattr(providers, target, getattr(real, target))
        if self.real_notifiers:  # built with the real targets: their Secrets read once
            providers.notifiers = real.notifiers
        if self.real & {"database", "storage"}:
            providers.archive = real.archive  # reports go to the real backups bucket too
        return providers


def main() -> None:
    """Parse the flags and run the operator until SIGTERM or SIGKILL."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--world", required=True, type=Path)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    parser.add_argument("--metrics-port", type=int, default=0, help="/metrics port; 0: none")
    parser.add_argument(
        "--real", default="", help="comma-separated targets (or 'notifiers') with real adapters"
    )
    parser.add_argument("--peering", default=None, help="peer through this kopf peering object")
    parser.add_argument("--priority", type=int, default=None, help="peering priority")
    parser.add_argument(
        "--allow-endpoint", action="append", default=[], help="as `rollback-operator run`"
    )
    parser.add_argument("--peering-lifetime", type=int, default=60, help="keep-alive, seconds")
    args = parser.parse_args()
    logs.configure(args.log_format, verbose=args.verbose)
    if args.peering:  # peers share the world file: reload it before every call
        identity = os.environ.get("POD_ID") or f"pid-{os.getpid()}"
        world: FakeWorld = SharedFakeWorld.shared(args.world, identity)
    else:
        world = FakeWorld.load(args.world)
    world.allow_crash = True
    settings = Settings(
        kubeconfig=args.kubeconfig,
        namespaces=[args.namespace],
        standalone=args.peering is None,
        peering_name=args.peering or "unused",
        priority=args.priority,
        peering_lifetime=args.peering_lifetime,
        liveness_endpoint=None,
        metrics_port=args.metrics_port,
        poll_interval=args.poll,
        step_base_delay=0.05,
        step_max_delay=0.2,
        allowed_endpoints=args.allow_endpoint,
    )
    real = {t for t in args.real.split(",") if t}
    endpoints = Endpoints(tuple(settings.allowed_endpoints))
    heap.settle()  # as the console script does
    asyncio.run(app.run(settings, HybridFactory(world, real, endpoints)))


if __name__ == "__main__":
    main()
