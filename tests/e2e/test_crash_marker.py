"""Crash safety at the end of a database restore: the restore committed, the operator did not
record it.

The operator is frozen (SIGSTOP) once the tool that commits the restore has its whole input,
the tool is let finish, and the frozen operator is killed: the restore is in the database, the
step is still `Running` in the record. A restarted operator must find the restore's marker and
not restore again; a row the app wrote in between must survive. (The marker used to be written
by a second connection after the restore committed: this crash restored the backup twice.)
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from sandbox.services.s3 import S3Server
from tests.e2e.test_crash_restore import (
    Scene,
    _fingerprint,
    _prepare,
    _step,
    scene,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["scene"]  # the fixture, shared with the other restore crash tests


def test_sigkill_after_the_restore_committed_never_restores_it_again(
    scene: Scene, s3_server: S3Server
) -> None:
    backup_print, _ = _prepare(scene, rows=2_000, files=30)  # the whole script fits a pipe
    scene.start_rollback(s3_server.url)
    operator = _operator_pid(scene)
    tool = _committing_tool(scene, operator)
    os.kill(tool, signal.SIGSTOP)
    _wait_until_input_closed(operator, tool)
    os.kill(operator, signal.SIGSTOP)  # from here on the operator records nothing
    os.kill(tool, signal.SIGCONT)
    _wait_gone_or_zombie(tool)
    os.kill(operator, signal.SIGKILL)
    assert scene.bed.wait_exit() == -9
    assert _fingerprint(scene.pg, scene.db.name) == backup_print  # the restore committed
    assert _step(scene.bed.get("rollback", "crashy"), "restore-database")["state"] == "Running"
    scene.db.sql("INSERT INTO items VALUES (-2, 0, 0, 'written-after')")

    body = scene.finish()

    restore = _step(body, "restore-database")
    assert "already completed" in restore["message"], restore
    assert scene.db.sql("SELECT note FROM items WHERE id = -2").strip() == "written-after"


def _operator_pid(scene: Scene) -> int:
    assert scene.bed.process is not None
    return scene.bed.process.pid


def _committing_tool(scene: Scene, operator: int, timeout: float = 60) -> int:
    """The operator's child that connects to the database to restore (psql, or pg_restore
    restoring straight into the database): the one given `--dbname`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in _children(operator):
            argv = _argv(child)
            if argv and Path(argv[0]).name in ("psql", "pg_restore") and "--dbname" in argv:
                return child
        time.sleep(0.005)
    raise AssertionError(f"no restore tool started\n{scene.bed.logs()[-3000:]}")


def _wait_until_input_closed(operator: int, tool: int, timeout: float = 60) -> None:
    """Until the operator holds no end of the pipe on the tool's stdin: it wrote all of it."""
    stdin = os.readlink(f"/proc/{tool}/fd/0")
    deadline = time.monotonic() + timeout
    while stdin in _open_files(operator):
        assert time.monotonic() < deadline, "the operator never finished feeding the restore"
        time.sleep(0.01)


def _wait_gone_or_zombie(pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _state(pid) not in ("Z", None):
        assert time.monotonic() < deadline, "the restore tool never finished"
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue  # a thread that ended between the listing and the read
        found += [int(c) for c in children]
    return found


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return []
    return [part.decode() for part in raw.split(b"\0") if part]


def _open_files(pid: int) -> set[str]:
    links = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            links.add(os.readlink(fd))
        except FileNotFoundError:
            continue
    return links


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None
