"""A throwaway PostgreSQL 15 server, started the one way that works as root.

`pg_ctl` refuses to run as root, so `initdb` and `pg_ctl` run as the `postgres` user through
`runuser`, in a private temp dir, on a free loopback port, with fsync off. TCP connections need
a password (scram-sha-256), so tests can prove that wrong credentials fail and that the password
never leaks; the Unix socket trusts the local superuser for administration. `Db` is one
database on such a server: seed it, read it back, dump it.

    eval "$(python -m sandbox.services.postgres start)"   # exports PG* and DATABASE_URL
    python -m sandbox.services.postgres stop               # reads ROLLBACK_TEST_PG_DIR
"""

from __future__ import annotations

import gzip
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.services import ServiceError, free_port

PG_BIN = Path(os.environ.get("ROLLBACK_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{dir}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
"""


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in its own directory; `start` it, use `url`, then `stop` it."""

    bin_dir: Path = PG_BIN
    port: int = 0
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(12), repr=False)
    dir: Path | None = None

    @property
    def url(self) -> str:
        """A DATABASE_URL for the `postgres` database over TCP, with the password."""
        return self.url_for("postgres")

    def url_for(self, dbname: str, *, password: str | None = None) -> str:
        """A DATABASE_URL for `dbname`, optionally with another password."""
        secret = self.password if password is None else password
        return f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> PostgresServer:
        """initdb and start; ServiceError names what is missing when it cannot."""
        self._check_binaries()
        self.port = self.port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="rollback-pg."))
        _own(self.dir)
        self.dir.chmod(0o700)
        self._initdb(self.dir)
        self._pg_ctl("start", "-l", str(self.dir / "server.log"), "-w", "-t", "60")
        return self

    def stop(self) -> None:
        """Stop the server fast and remove its directory."""
        if self.dir is None:
            return
        if (self.dir / "data" / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "fast", "-w")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def psql(self, dbname: str, sql: str) -> str:
        """Run `sql` through psql over the Unix socket as the superuser; its output."""
        assert self.dir is not None, "the server is not started"
        command = [str(self.bin_dir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        command += ["-h", str(self.dir), "-p", str(self.port), "-U", SUPERUSER, "-d", dbname]
        done = subprocess.run(command, input=sql, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def _check_binaries(self) -> None:
        missing = [t for t in ("initdb", "pg_ctl", "postgres") if not (self.bin_dir / t).exists()]
        if missing:
            raise ServiceError(
                f"PostgreSQL 15 binaries missing in {self.bin_dir}: {', '.join(missing)}; "
                "install postgresql-15 and postgresql-client-15"
            )
        if _is_root() and shutil.which("runuser") is None:
            raise ServiceError("runuser is missing (util-linux): needed to start postgres as root")

    def _initdb(self, directory: Path) -> None:
        pwfile = directory / "pwfile"
        pwfile.write_text(self.password + "\n")
        _own(pwfile)
        pwfile.chmod(0o600)
        self._run(
            "initdb", "-D", str(directory / "data"), "-U", SUPERUSER, "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync", "--auth-local=trust",
            "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
        )  # fmt: skip
        pwfile.unlink()
        with (directory / "data" / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS.format(port=self.port, dir=directory))

    def _pg_ctl(self, *args: str) -> None:
        assert self.dir is not None
        self._run("pg_ctl", "-D", str(self.dir / "data"), *args)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if _is_root():
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.dir / "server.log" if self.dir else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise ServiceError(f"{tool} failed: {done.stderr.strip()}\n{tail}".strip())


@dataclass
class Db:
    """One test database on the session's server."""

    server: PostgresServer
    name: str

    @property
    def url(self) -> str:
        """Its DATABASE_URL, with the password."""
        return self.server.url_for(self.name)

    def sql(self, sql: str) -> str:
        """Run SQL as the superuser; its unaligned output."""
        return self.server.psql(self.name, sql)

    def seed(self, notes: Sequence[str]) -> None:
        """Replace the `items` table with one row per note."""
        values = ", ".join(f"('{note}')" for note in notes)
        self.sql(
            "DROP TABLE IF EXISTS items CASCADE;"
            " CREATE TABLE items (id serial PRIMARY KEY, note text NOT NULL);"
            + (f" INSERT INTO items (note) VALUES {values};" if notes else "")
        )

    def notes(self) -> list[str]:
        """The notes in `items`, in id order ([] when the table is gone)."""
        out = self.sql("SELECT coalesce(string_agg(note, ',' ORDER BY id), '') FROM items")
        return [n for n in out.strip().split(",") if n]

    def markers(self) -> list[str]:
        """The restore keys recorded by the adapter."""
        if not self.sql("SELECT to_regclass('rollback_operator.restores')").strip():
            return []
        return self.sql("SELECT key FROM rollback_operator.restores ORDER BY key").split()

    def dump(self, fmt: str, *, clean: bool = True) -> bytes:
        """A dump of the database now: custom, plain, or either gzipped (plain with --clean
        unless `clean` is false)."""
        cleaning = ["--clean", "--if-exists"] if clean else []
        options = ["-Fc"] if fmt.startswith("custom") else ["-Fp", *cleaning]
        assert self.server.dir is not None
        command = [str(PG_BIN / "pg_dump"), *options, "-h", str(self.server.dir)]
        command += ["-p", str(self.server.port), "-U", SUPERUSER, "-d", self.name]
        data = subprocess.run(command, capture_output=True, check=True).stdout
        return gzip.compress(data) if fmt.endswith("-gzip") else data


def _is_root() -> bool:
    return os.geteuid() == 0


def _own(path: Path) -> None:
    """Hand `path` to the postgres user when we are root (the server runs as that user)."""
    if _is_root():
        shutil.chown(path, SUPERUSER, SUPERUSER)


def _exports(server: PostgresServer) -> str:
    values = {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(server.port),
        "PGUSER": SUPERUSER,
        "PGPASSWORD": server.password,
        "DATABASE_URL": server.url,
        "ROLLBACK_TEST_PG_DIR": str(server.dir),
        "ROLLBACK_TEST_PG_PORT": str(server.port),
    }
    return "\n".join(f"export {name}='{value}'" for name, value in values.items())


def main(argv: list[str]) -> int:
    """`start` prints shell exports; `stop [DIR]` stops the server started in DIR."""
    if argv[:1] == ["start"]:
        print(_exports(PostgresServer().start()))
        return 0
    if argv[:1] == ["stop"]:
        directory = argv[1] if len(argv) > 1 else os.environ.get("ROLLBACK_TEST_PG_DIR", "")
        if not directory:
            print("usage: stop DIR (or set ROLLBACK_TEST_PG_DIR)", file=sys.stderr)
            return 2
        PostgresServer(dir=Path(directory)).stop()
        return 0
    print("usage: python -m sandbox.services.postgres start|stop [DIR]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
