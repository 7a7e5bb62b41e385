"""A stand-in for a provider whose adapter is not in this build: every call fails clearly.

So a policy naming such a target gets a plain PlanFailed reason instead of a crash or, worse,
a step that claims success without doing anything.
"""

from __future__ import annotations

from typing import Any, NoReturn

from rollback_operator.providers.errors import PermanentError


class Unavailable:
    """Raises PermanentError on every call, naming what is missing."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.name = what

    def _refuse(self, *_: Any, **__: Any) -> NoReturn:
        raise PermanentError(f"{self.what} is not available in this build of the operator")

    async def plan(self, *args: Any) -> NoReturn:
        self._refuse()

    async def stop_traffic(self, *args: Any) -> NoReturn:
        self._refuse()

    async def rollback(self, *args: Any) -> NoReturn:
        self._refuse()

    async def resume_traffic(self, *args: Any) -> NoReturn:
        self._refuse()

    async def safety_backup(self, *args: Any) -> NoReturn:
        self._refuse()

    async def restore(self, *args: Any) -> NoReturn:
        self._refuse()

    async def notify(self, *args: Any) -> NoReturn:
        self._refuse()

    async def verify(self) -> NoReturn:
        self._refuse()
