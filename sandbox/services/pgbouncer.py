"""A throwaway PgBouncer in front of a sandbox PostgreSQL: the connection pooler Supabase offers.

Clients log in to PgBouncer with SCRAM, as they would to the server; PgBouncer logs in to the
server with the same password from its own user list. `pool_mode` is `session` (a client keeps
one server connection for as long as it is connected) or `transaction` (the server connection
goes back to the pool after each transaction), the two modes of Supabase's pooler. PgBouncer
refuses to run as root, so as root it runs as the `postgres` user, like the server.

    eval "$(python -m sandbox.services.pgbouncer start PGPORT USER PASSWORD [MODE])"
    python -m sandbox.services.pgbouncer stop       # reads ROLLBACK_TEST_PGBOUNCER_PID
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.services import ServiceError, free_port, stop_process, wait_until
from sandbox.services.postgres import SUPERUSER

BINARY = Path(os.environ.get("ROLLBACK_TEST_PGBOUNCER", "/usr/sbin/pgbouncer"))
MODES = ("session", "transaction")
CONFIG = """[databases]
* = host=127.0.0.1 port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {dir}/userlist.txt
pool_mode = {mode}
max_client_conn = 100
default_pool_size = 10
server_reset_query = DISCARD ALL
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
"""


@dataclass
class PgBouncer:
    """PgBouncer for the server on `server_port`, letting in `users` (name -> password)."""

    server_port: int
    users: Mapping[str, str] = field(repr=False)
    mode: str = "session"
    port: int = 0
    dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def url_for(self, user: str, dbname: str) -> str:
        """A DATABASE_URL for `dbname` through the pooler, as `user` with its password."""
        return f"postgresql://{user}:{self.users[user]}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> PgBouncer:
        """Write the configuration and start; ServiceError says what is missing when it cannot."""
        if self.mode not in MODES:
            raise ServiceError(f"pool mode {self.mode!r} is none of {', '.join(MODES)}")
        if not BINARY.exists():
            raise ServiceError(f"{BINARY} is missing: install pgbouncer (make system-deps)")
        self.port = self.port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="rollback-pgbouncer."))
        self._write_config(self.dir)
        command = [str(BINARY), str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(self._listening, timeout=10, what="pgbouncer")
        except ServiceError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop it and remove its directory."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _write_config(self, directory: Path) -> None:
        users = "".join(f'"{name}" "{secret}"\n' for name, secret in self.users.items())
        files = {
            "userlist.txt": users,
            "pgbouncer.ini": CONFIG.format(
                server_port=self.server_port, port=self.port, dir=directory, mode=self.mode
            ),
        }
        for name, text in files.items():
            path = directory / name
            path.touch(mode=0o600)
            path.write_text(text)
            _own(path)
        _own(directory)
        directory.chmod(0o700)

    def _listening(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            errors = self.process.stderr.read().decode() if self.process.stderr else ""
            log = self.dir / "pgbouncer.log" if self.dir else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise ServiceError(f"pgbouncer exited: {errors.strip()} {tail}".strip())
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, SUPERUSER, SUPERUSER)


def main(argv: list[str]) -> int:
    """`start PGPORT USER PASSWORD [MODE]` prints shell exports; `stop [PID]` stops it."""
    if argv[:1] == ["start"] and len(argv) in (4, 5):
        mode = argv[4] if len(argv) == 5 else "session"
        bouncer = PgBouncer(int(argv[1]), {argv[2]: argv[3]}, mode).start()
        assert bouncer.process is not None
        print(f"export ROLLBACK_TEST_PGBOUNCER_PORT='{bouncer.port}'")
        print(f"export ROLLBACK_TEST_PGBOUNCER_PID='{bouncer.process.pid}'")
        return 0
    if argv[:1] == ["stop"]:
        pid = argv[1] if len(argv) > 1 else os.environ.get("ROLLBACK_TEST_PGBOUNCER_PID", "")
        if not pid:
            print("usage: stop PID (or set ROLLBACK_TEST_PGBOUNCER_PID)", file=sys.stderr)
            return 2
        os.kill(int(pid), signal.SIGTERM)
        return 0
    print("usage: python -m sandbox.services.pgbouncer start PGPORT USER PASSWORD [MODE] | stop",
          file=sys.stderr)  # fmt: skip
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
