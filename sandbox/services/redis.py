"""A throwaway Redis server on a free loopback port, with a password, no persistence."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field

from sandbox.services import ServiceError, free_port, stop_process

PASSWORD = "cache-secret-7d1e"


@dataclass
class RedisServer:
    """`start` it, use `url`, `stop` it."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server is not installed (make system-deps)")
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--requirepass", PASSWORD]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            )
            if probe.stdout.strip() in ("PONG", "NOAUTH Authentication required."):
                return self
            time.sleep(0.05)
        raise ServiceError("redis-server did not start in 10 s")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
