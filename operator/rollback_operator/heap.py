"""How Python's cyclic garbage collector treats the operator's heap: set once, at the start.

The operator is one long-lived process whose event loop serves every rollback. The collector
stops that loop while it runs, and with the interpreter's defaults it ran often and long in a
burst of rollbacks: the hundreds of thousands of objects made at the start (kopf, the
Kubernetes client's models, pydantic's validators, the modules themselves) are scanned again by
every full collection, and the short-lived objects of each watch event and provider call are
promoted through the generations every 700 allocations, to be scanned again there. In the
burst of 100 quick rollbacks (`bench.load`) that was 0.7 s of the operator's 4.3 s of CPU, and
each full collection held the loop for 0.15-0.2 s while rollbacks waited to start
(docs/benchmarks.md).

`settle` collects what the start left behind, then freezes the rest (`gc.freeze`: those
objects live as long as the process and are never scanned again), and lets the youngest
generation grow to `YOUNG_THRESHOLD` allocations before it is collected, so that an object
that lives across one await is freed by its reference count, not promoted.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Allocations between two collections of the youngest generation (the interpreter's default:
700). A collection then takes about 15 ms on the operator's heap; the older generations keep
their defaults."""


def settle() -> None:
    """Collect the start's garbage, freeze what remains, and raise the young threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
