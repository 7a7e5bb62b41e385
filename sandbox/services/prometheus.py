"""A private Prometheus for tests and benchmarks, and a way to write history into it.

Rule tests need "above 5% for 5 minutes" to run in seconds, so metric data goes in with
timestamps in the past through Prometheus' remote-write receiver. The config sets
`out_of_order_time_window: 3h`, so samples up to three hours old are accepted in any order and
many tests can share one server, each with its own label values. A WriteRequest is a tiny
protobuf; it is encoded by hand here (no protobuf dependency) and snappy-compressed with cramjam.

    eval "$(python -m sandbox.services.prometheus start)"   # exports PROMETHEUS_URL
    python -m sandbox.services.prometheus stop               # reads ROLLBACK_TEST_PROM_DIR
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import cramjam

from sandbox.services import ServiceError, free_port, stop_process, wait_until

CONFIG = """\
global: {scrape_interval: 15s, evaluation_interval: 15s}
storage:
  tsdb: {out_of_order_time_window: 3h}
scrape_configs: []
"""
WRITE_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
Labels = Mapping[str, str]
Points = Iterable[tuple[datetime, float]]


def prometheus_binary() -> Path:
    """The prometheus binary on PATH; ServiceError saying what to install when absent."""
    found = os.environ.get("ROLLBACK_TEST_PROMETHEUS") or shutil.which("prometheus")
    if not found:
        raise ServiceError(
            "prometheus is missing: apt-get install -y --no-install-recommends prometheus"
        )
    return Path(found)


@dataclass
class PrometheusServer:
    """One Prometheus process in its own temp dir; `start` it, use `url`, then `stop` it."""

    port: int = 0
    dir: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        """Start with the remote-write receiver on a free port; wait for /-/ready."""
        binary = prometheus_binary()
        self.port = self.port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="rollback-prom."))
        (self.dir / "prometheus.yml").write_text(CONFIG)
        with (self.dir / "log").open("wb") as log:
            self.process = subprocess.Popen(
                [str(binary), *self._flags(self.dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (self.dir / "pid").write_text(str(self.process.pid))
        try:
            wait_until(self._ready, timeout=20, what=f"prometheus on {self.url}")
        except ServiceError as error:
            self.stop()
            raise ServiceError(f"{error}: {self._log_tail()}") from None
        return self

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s) and remove the temp dir."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def write(self, series: Mapping[str, Points], labels: Labels | None = None) -> None:
        """Remote-write points; `series` maps `name{a="b"}`-free names to their points.

        Use `write_series` for series with their own labels.
        """
        self.write_series(
            [({"__name__": name, **(labels or {})}, pts) for name, pts in series.items()]
        )

    def write_series(self, series: Iterable[tuple[Labels, Points]]) -> None:
        """Remote-write several series, each a label set (with `__name__`) and its points."""
        body = cramjam.snappy.compress_raw(write_request(series))
        request = urllib.request.Request(
            f"{self.url}/api/v1/write", data=bytes(body), headers=WRITE_HEADERS, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                if answer.status != 204:
                    raise ServiceError(f"remote write answered {answer.status}")
        except urllib.error.HTTPError as error:
            raise ServiceError(f"remote write refused: {error.code} {error.read()!r}") from None

    def _flags(self, directory: Path) -> list[str]:
        return [
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-remote-write-receiver",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise ServiceError(f"prometheus exited: {self._log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def _log_tail(self) -> str:
        log = self.dir / "log" if self.dir else None
        return log.read_text()[-2000:] if log and log.exists() else ""


# -- the remote-write protobuf, by hand ----------------------------------------------------------
# WriteRequest{1: repeated TimeSeries}; TimeSeries{1: repeated Label, 2: repeated Sample};
# Label{1: name, 2: value}; Sample{1: double value, 2: int64 timestamp in ms}.


def write_request(series: Iterable[tuple[Labels, Points]]) -> bytes:
    """An encoded prometheus.WriteRequest."""
    return b"".join(_field(1, _time_series(labels, points)) for labels, points in series)


def _time_series(labels: Labels, points: Points) -> bytes:
    encoded = [
        _field(1, _field(1, k.encode()) + _field(2, v.encode())) for k, v in sorted(labels.items())
    ]
    for at, value in points:
        millis = int(at.timestamp() * 1000)
        sample = b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(millis)
        encoded.append(_field(2, sample))
    return b"".join(encoded)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1  # int64 as two's complement
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _terminate(pid: int) -> None:
    """SIGTERM, and wait up to 10 s for the process to go."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=10, what="prometheus exit")


def main(argv: list[str]) -> int:
    """`start` prints shell exports; `stop [DIR]` stops the server started in DIR."""
    if argv[:1] == ["start"]:
        server = PrometheusServer().start()
        print(f"export PROMETHEUS_URL='{server.url}'\nexport ROLLBACK_TEST_PROM_DIR='{server.dir}'")
        return 0
    if argv[:1] == ["stop"]:
        directory = Path(argv[1] if len(argv) > 1 else os.environ.get("ROLLBACK_TEST_PROM_DIR", ""))
        pidfile = directory / "pid"
        if not pidfile.exists():
            print("usage: stop DIR (or set ROLLBACK_TEST_PROM_DIR)", file=sys.stderr)
            return 2
        _terminate(int(pidfile.read_text()))
        shutil.rmtree(directory, ignore_errors=True)
        return 0
    print("usage: python -m sandbox.services.prometheus start|stop [DIR]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
