"""Who wants to hear about the fakes, log files, clusters and Secrets the sandbox makes.

Why this module exists: the sandbox never imports the tests, yet the test suite's leak scan must
see every SaaS fake (what it shows people), every log file, every emulated cluster (its objects,
read just before it stops) and every Secret value the sandbox builds. The sandbox announces
each of them here; whoever cares appends a callback to the matching list (the leak scan plugin
does, when pytest loads it). With no callback registered an announcement does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol


class ShowsPeople(Protocol):
    """A fake SaaS API: its credentials, and what it would show people."""

    def secrets(self) -> Iterable[str]: ...

    def shown(self) -> list[Any]: ...


FAKE_STARTED: list[Callable[[ShowsPeople], None]] = []
"""Called with each new SaaS fake."""
FILE_WRITTEN: list[Callable[[Path, str], None]] = []
"""Called with a log file the sandbox writes and a label saying whose it is."""
CLUSTER_STOPPING: list[Callable[[str, str], None]] = []
"""Called with a running emulated cluster's URL and a label, just before it stops."""
SECRET_BUILT: list[Callable[[str, str, dict[str, str]], None]] = []
"""Called with the namespace, name and plain data of each Secret manifest built."""


def fake_started(fake: ShowsPeople) -> None:
    """Announce a new SaaS fake."""
    for callback in FAKE_STARTED:
        callback(fake)


def file_written(path: Path, label: str) -> None:
    """Announce a log file the sandbox writes."""
    for callback in FILE_WRITTEN:
        callback(path, label)


def cluster_stopping(url: str, label: str) -> None:
    """Announce that the emulated cluster at `url` is about to stop."""
    for callback in CLUSTER_STOPPING:
        callback(url, label)


def secret_built(namespace: str, name: str, data: dict[str, str]) -> None:
    """Announce a Secret manifest's plain values."""
    for callback in SECRET_BUILT:
        callback(namespace, name, data)
