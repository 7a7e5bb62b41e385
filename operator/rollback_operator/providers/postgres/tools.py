"""Running pg_dump, pg_restore and psql: command lines, streaming, and reading their failures.

A restore feeds the tool's stdin chunk by chunk from S3, so memory stays flat whatever the dump's
size. The script psql runs opens its transaction itself and commits only in its last line, which
the operator sends after everything else arrived whole (`transaction`): when the operator dies
half-way, psql reads an end of input with the transaction still open and the server rolls it
back. (`psql --single-transaction` would not do: it wraps whatever arrives in BEGIN ... COMMIT,
so it commits a script cut short.) If the stream fails while the operator lives, the tool is
killed. Any error the tool reports fails the step; a clean exit code alone is not trusted when
the output says ERROR.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rollback_operator.providers.errors import PermanentError, ProviderError, RetryableError
from rollback_operator.providers.postgres import dumps

PROVIDER = "postgres"
_STDERR_LIMIT = 64 * 1024
_PIPE_SIZE = 1 << 20  # Linux's default limit for an unprivileged process
_ERROR_LINE = re.compile(r"(?:^|\s)(?:error|ERROR|FATAL|PANIC):|errors ignored on restore")
_RETRYABLE_OUTPUT = (
    "could not connect",
    "connection to server",
    "server closed the connection",
    "terminating connection",
    "could not receive data from server",
    "SSL SYSCALL error",
    "due to lock timeout",
    "due to statement timeout",  # how pg_dump --lock-wait-timeout gives up on a held lock
    "could not obtain lock",
)


def tool(name: str, bin_dir: str | None) -> str:
    """The path of a PostgreSQL client tool; PermanentError when it is not installed."""
    found = shutil.which(name, path=bin_dir) if bin_dir else shutil.which(name)
    if found is None:
        where = bin_dir or "PATH"
        raise PermanentError(f"{name} is not installed (looked in {where})", provider=PROVIDER)
    return found


def script_command(
    pg_restore: str, *, exclude_schema: str, use_list: str | None = None
) -> list[str]:
    """pg_restore turning a custom archive on stdin into the SQL script that restores it
    (only the entries in the file `use_list`, when given; in archive order).

    The script is run by psql (`psql_command`) inside the operator's own transaction
    (`transaction`), so the restore and its marker are one. `--single-transaction` keeps
    pg_restore from committing large objects on their own; its BEGIN inside that transaction
    is a warning, and its COMMIT, the script's last line, is taken out on the way
    (`dumps.open_ended`), so the carried triggers (`carried`) follow in the same transaction.
    Without `use_list` it cleans what it restores (`--clean --if-exists`); with one, the
    restore's prelude has dropped what the entries replace (`scope`).
    """
    selection = ["--use-list", use_list] if use_list else ["--clean", "--if-exists"]
    return [
        pg_restore, "--file", "-", *selection, "--no-owner",
        "--single-transaction", "--exit-on-error", f"--exclude-schema={exclude_schema}",
    ]  # fmt: skip


def psql_command(psql: str, dbname: str, variables: Mapping[str, str]) -> list[str]:
    """psql of a SQL script on stdin, stopping at the first error; `variables` are set with
    `-v` for the script to use as `:'name'` (psql quotes them). The script brings its own
    transaction (`transaction`): never `--single-transaction`, which commits a cut script."""
    settings = [arg for name, value in variables.items() for arg in ("-v", f"{name}={value}")]
    return [
        psql, "--dbname", dbname, "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1",
        *settings, "--file", "-",
    ]  # fmt: skip


async def transaction(script: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`script` as one transaction: BEGIN first, COMMIT only after its last chunk arrived.

    Whatever cuts the stream short (an error here, or the operator killed) leaves psql at the
    end of its input inside an open transaction, which the server rolls back when it exits.
    """
    try:
        yield b"BEGIN;\n"
        async for chunk in script:
            yield chunk
        yield b"\nCOMMIT;\n"
    finally:
        await dumps.close_stream(script)


def list_command(pg_restore: str) -> list[str]:
    """pg_restore --list of an archive on stdin: reads the header and table of contents only."""
    return [pg_restore, "--list"]


def dump_command(
    pg_dump: str,
    dbname: str,
    *,
    exclude_schema: str,
    lock_wait: float = 60.0,
    left_out: Sequence[str] = (),
) -> list[str]:
    """pg_dump in custom format to stdout, of the database but `exclude_schema` and the
    schemas `left_out` (each matched by its exact name); it gives up (retryably) when another
    session keeps a table locked for longer than `lock_wait` seconds."""
    excluded = [f"--exclude-schema={_exact(name)}" for name in left_out]
    return [
        pg_dump, "--dbname", dbname, "--format=custom", "--no-password",
        f"--exclude-schema={exclude_schema}", *excluded,
        f"--lock-wait-timeout={max(1, int(lock_wait * 1000))}",  # milliseconds
    ]  # fmt: skip


def _exact(name: str) -> str:
    """A pg_dump pattern matching only `name`: quoted, so `*`, `?` and `.` are literal."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Outcome:
    """How a tool ended: its exit code and what it said on stderr (bounded)."""

    tool: str
    returncode: int
    stderr: str

    def error_lines(self) -> list[str]:
        """The lines that report an error (pg tools write `error:`, the server `ERROR:`)."""
        return [line for line in self.stderr.splitlines() if _ERROR_LINE.search(line)]

    @property
    def failed(self) -> bool:
        """Non-zero exit, or any error reported at all: never a silent success."""
        return self.returncode != 0 or bool(self.error_lines())

    def as_error(self, doing: str, hint: str = "") -> ProviderError:
        """The error for a failed run, naming the first reported errors."""
        lines = self.error_lines() or self.stderr.strip().splitlines()[-3:]
        detail = "; ".join(line.strip() for line in lines[:3])[:600] or "no output"
        text = f"{doing} failed ({self.tool} exit {self.returncode}): {detail}{hint}"
        if any(marker in self.stderr for marker in _RETRYABLE_OUTPUT):
            return RetryableError(text, provider=PROVIDER)
        return PermanentError(text, provider=PROVIDER)


async def feed(
    command: Sequence[str], env: dict[str, str], chunks: AsyncIterator[bytes]
) -> Outcome:
    """Run `command` with `chunks` on stdin; kill it if the stream fails before its end.

    When the tool stops reading early (it exited), the rest of the stream is not read.
    """
    with tempfile.TemporaryFile() as errors:
        process = await _start(command, env, errors, stdout=asyncio.subprocess.DEVNULL)
        await _pump_or_kill(process, chunks)
        returncode = await process.wait()
        return Outcome(Path(command[0]).name, returncode, _read_bounded(errors))


async def converted(
    command: Sequence[str], env: dict[str, str], chunks: AsyncIterator[bytes], doing: str
) -> AsyncIterator[bytes]:
    """The stdout of `command` fed `chunks` on stdin, chunk by chunk (pg_restore's script).

    The stream ends only when the tool exited cleanly: a tool that failed raises instead, so
    the consumer (psql) is killed before it sees the end of its input and commits nothing.
    """
    with tempfile.TemporaryFile() as errors:
        process = await _start(command, env, errors, stdout=asyncio.subprocess.PIPE)
        pumping = asyncio.create_task(_pump_or_kill(process, chunks))
        try:
            assert process.stdout is not None
            while chunk := await process.stdout.read(_PIPE_SIZE):
                yield chunk
            await pumping
            returncode = await process.wait()
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError, BrokenPipeError):
                await pumping
            await _kill(process)
        outcome = Outcome(Path(command[0]).name, returncode, _read_bounded(errors))
        if outcome.failed:
            raise outcome.as_error(doing)


async def _start(
    command: Sequence[str], env: dict[str, str], errors: IO[bytes], *, stdout: int
) -> asyncio.subprocess.Process:
    """The tool, its stdin a pipe we feed, its stderr the file `errors`."""
    return await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=stdout, stderr=errors, env=env,
        limit=_PIPE_SIZE,
    )  # fmt: skip


async def _pump_or_kill(process: asyncio.subprocess.Process, chunks: AsyncIterator[bytes]) -> None:
    """`_pump`, killing the tool when the stream fails, so its output ends too."""
    try:
        await _pump(process, chunks)
    except BaseException:
        await _kill(process)
        raise


async def _pump(process: asyncio.subprocess.Process, chunks: AsyncIterator[bytes]) -> None:
    stdin = process.stdin
    assert stdin is not None
    _widen_pipe(stdin)
    try:
        async for chunk in chunks:
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        return  # the tool exited before the end; its exit code and stderr tell why
    finally:
        await dumps.close_stream(chunks)  # stops the download when the tool stopped reading
    stdin.close()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        await stdin.wait_closed()


def _widen_pipe(stdin: asyncio.StreamWriter) -> None:
    """Let the pipe hold a whole chunk (Linux): one write per chunk instead of sixteen, and no
    large buffer shuffled in memory by the event loop while the tool catches up."""
    pipe = stdin.get_extra_info("pipe")
    if pipe is not None and hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _read_bounded(handle: IO[bytes]) -> str:
    handle.seek(0)
    head = handle.read(_STDERR_LIMIT)
    return head.decode("utf-8", "replace")


class DumpStream:
    """The stdout of a running pg_dump as a file object for boto3's upload_fileobj.

    At the end of output it waits for pg_dump and raises if it failed, which makes boto3 abort
    the upload: a failed dump never leaves a complete-looking object behind.
    """

    def __init__(self, command: Sequence[str], env: dict[str, str]) -> None:
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._errors, env=env
        )
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes of the dump; raises DumpFailed at the end if pg_dump failed."""
        assert self._process.stdout is not None
        data = self._process.stdout.read(size)
        self.size += len(data)
        if not data:
            self.outcome().raise_if_failed()
        return data

    def outcome(self) -> DumpOutcome:
        """Wait for pg_dump to exit and report how it ended."""
        returncode = self._process.wait()
        return DumpOutcome("pg_dump", returncode, _read_bounded(self._errors))

    def close(self) -> None:
        """Stop pg_dump if it still runs and release its pipes."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._errors.close()


class DumpFailed(PermanentError):
    """pg_dump failed; the upload was aborted."""


class DumpOutcome(Outcome):
    """How pg_dump ended."""

    def raise_if_failed(self) -> None:
        """Raise DumpFailed (or a retryable error) when pg_dump did not succeed."""
        if self.returncode != 0:
            error = self.as_error("dumping the current database")
            if isinstance(error, RetryableError):
                raise error
            raise DumpFailed(error.message, provider=PROVIDER)
