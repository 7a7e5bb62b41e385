"""Real services for the demo, tests and shell scripts: PostgreSQL 15, PgBouncer, S3 (moto),
Prometheus, Redis.

Each module starts one service as a separate process on a free loopback port and stops it
again; the same code serves pytest fixtures and `python -m sandbox.services.<name> start|stop`.
A missing binary is an error, never a skip: CI installs every service the tests need.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable


class ServiceError(RuntimeError):
    """A service could not be started or stopped; the message says what to install or read."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(ready: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll `ready` every 20 ms until it is true; ServiceError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} was not ready within {timeout:.0f}s")
        time.sleep(0.02)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM, then SIGKILL if it lingers past `timeout` seconds; its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
