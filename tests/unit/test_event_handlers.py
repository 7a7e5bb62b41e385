"""The handlers kopf calls on every watch event run in the event loop, not in a thread.

kopf hands a plain (sync) function to a worker thread and waits for it: a thread hand-off,
and a GIL switch, per watch event per handler. The index and watch handlers are short and
never block, so they are coroutine functions (docs/benchmarks.md: a burst of 100 rollbacks).
"""

from __future__ import annotations

import inspect

from rollback_operator.app import build_registry
from rollback_operator.settings import Settings


def test_every_index_and_watch_handler_is_a_coroutine_function() -> None:
    registry = build_registry(Settings(all_namespaces=True, standalone=True))
    handlers = [*registry._indexing.get_all_handlers(), *registry._watching.get_all_handlers()]
    assert len(handlers) >= 6  # three indexes, one watch per kind
    plain = [str(h.id) for h in handlers if not inspect.iscoroutinefunction(h.fn)]
    assert plain == []
