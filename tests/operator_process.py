"""Run the real operator in its own process with fake providers whose world lives in a file.

Tests start it with `python -m tests.operator_process`, kill it with SIGKILL at will, and start
it again: the fakes' state, counters and pending crash points survive in the world file.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from rollback_operator import app
from rollback_operator.settings import Settings
from tests.fakes.memory import FakeProviderFactory, FakeWorld


def main() -> None:
    """Parse the flags and run the operator until SIGTERM or SIGKILL."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--world", required=True, type=Path)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    world = FakeWorld.load(args.world)
    world.allow_crash = True
    settings = Settings(
        kubeconfig=args.kubeconfig,
        namespaces=[args.namespace],
        standalone=True,
        liveness_endpoint=None,
        poll_interval=args.poll,
        step_base_delay=0.05,
        step_max_delay=0.2,
    )
    asyncio.run(app.run(settings, FakeProviderFactory(world)))


if __name__ == "__main__":
    main()
