"""The operator's process freezes its start heap and collects its young objects less often.

Each claim runs in a process of its own: freezing the heap of the test runner would change
every test after it.
"""

from __future__ import annotations

import json
import subprocess
import sys

from rollback_operator import heap


def _probe(code: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_settle_freezes_the_objects_of_the_start_and_raises_the_young_threshold() -> None:
    code = (
        "import gc, json\n"
        "import rollback_operator.app\n"
        "from rollback_operator import heap\n"
        "before = len(gc.get_objects())\n"
        "heap.settle()\n"
        "print(json.dumps({'before': before, 'frozen': gc.get_freeze_count(),\n"
        "    'left': len(gc.get_objects()), 'young': gc.get_threshold()[0]}))\n"
    )
    seen = _probe(code)
    assert seen["young"] == heap.YOUNG_THRESHOLD
    assert seen["frozen"] > 0.9 * seen["before"], seen  # the modules, kopf, the clients' models
    assert seen["left"] < 100, seen  # a full collection scans almost nothing of the start


def test_the_console_script_settles_the_heap_before_the_operator_runs() -> None:
    code = (
        "import asyncio, gc, json\n"
        "from rollback_operator import app, cli\n"
        "seen = {}\n"
        "async def run(settings):\n"
        "    seen.update(frozen=gc.get_freeze_count(), young=gc.get_threshold()[0])\n"
        "app.run = run\n"
        "code = cli.main(['run', '--all-namespaces', '--metrics-port', '0'])\n"
        "print(json.dumps({'exit': code, **seen}))\n"
    )
    seen = _probe(code)
    assert seen["exit"] == 0
    assert seen["young"] == heap.YOUNG_THRESHOLD
    assert seen["frozen"] > 10_000, seen
