"""A pytest plugin that fails the run when a test secret shows up where people can read it.

Why this module exists: "secrets never appear in logs, Events, status or reports" is a claim
about the whole product, so it is checked over the whole test suite rather than by a few
`assert token not in text` lines. Every secret value comes from `tests.known_secrets`; the
plugin reads what the suite produces and searches it for those values:

- every log record emitted in the pytest process (a handler on the root logger; the operator's
  own loggers at INFO, as the CLI runs them);
- files registered with `watch_file`: the operator processes' logs (`tests/e2e/bed.py`), the
  emulator's log (`sandbox/kube/cluster.py`), the fakes' world file, the services' server logs;
- the objects of a test's namespace on the real API server when its bed closes
  (`capture_objects`), and of an emulated cluster just before it stops (`capture_cluster`):
  every custom resource (statuses), Events, report ConfigMaps, Leases (Secrets, where secrets
  belong, are not read);
- what the SaaS fakes would show people (`track_fake`: Slack messages, Statuspage incidents,
  PagerDuty alerts), never their request headers, where tokens belong. Each fake's own
  credentials join the registry when it is scanned.

The sandbox (the demo's emulator, fakes and services, which never import the tests) announces
its fakes, log files, clusters and Secrets through `sandbox.observers`; this plugin subscribes
when pytest configures it.

Findings name the place and what kind of secret leaked, never the secret itself. The scan is
incremental (files are read from where the last scan stopped; other text is buffered per test
up to `BUFFER_LIMIT` characters, then scanned and dropped), so memory stays bounded.

PYTEST_DONT_REWRITE (it has no asserts, and `tests/conftest.py` imports it before registering it)
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import observers
from tests import known_secrets

BUFFER_LIMIT = 8_000_000
"""Characters of buffered text (log records, cluster objects) scanned at once at most."""
CHUNK = 1 << 20
"""Characters of a watched file read at a time."""
OPERATOR_LOGGERS = ("rollback_operator", "kopf")


ShowsPeople = observers.ShowsPeople


@dataclass(frozen=True)
class Finding:
    """A secret found somewhere: where, what kind, during which test (never the value)."""

    where: str
    what: str
    test: str


def leaves(value: Any) -> Iterator[str]:
    """Every string inside nested dicts and lists (keys included), and other scalars as text."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from leaves(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from leaves(item)
    elif value is not None:
        yield str(value)


class Scanner:
    """Searches text for registered secrets and keeps the findings and the counts."""

    def __init__(self, registry: known_secrets.Registry = known_secrets.REGISTRY) -> None:
        self.registry = registry
        self.findings: list[Finding] = []
        self.stats: Counter[str] = Counter()
        self.test = "<session>"
        self._needles: list[tuple[str, str]] = []
        self._built = -1
        self._longest = 1
        self._lock = threading.RLock()
        self._pending: list[tuple[str, str]] = []
        self._pending_size = 0
        self._files: dict[Path, tuple[str, int, int]] = {}  # path -> (label, offset, line)
        self._fakes: list[ShowsPeople] = []
        self._seen: set[Finding] = set()

    # -- what to look for --------------------------------------------------------------------
    def needles(self) -> list[tuple[str, str]]:
        """(needle, description) pairs, rebuilt when the registry grew."""
        if self._built != self.registry.generation:
            built = self.registry.generation
            pairs = {
                (needle, what)
                for value, what in self.registry.values().items()
                for needle in known_secrets.needles(value)
            }
            self._needles = sorted(pairs)
            self._longest = max((len(n) for n, _ in pairs), default=1)
            self._built = built
        return self._needles

    # -- scanning ----------------------------------------------------------------------------
    def matches(self, text: str) -> list[tuple[str, str]]:
        """The (needle, description) pairs found in `text`."""
        with self._lock:
            self.stats["characters scanned"] += len(text)
            return [(n, what) for n, what in self.needles() if n in text]

    def check(self, where: str, text: str) -> list[Finding]:
        """Scan `text` now; record (once per place and kind) and return what it holds."""
        return [self._record(where, what) for _, what in self.matches(text)]

    def defer(self, where: str, text: str, counter: str = "texts") -> None:
        """Scan `text` at the end of the test (when every secret of the test is known)."""
        with self._lock:
            self.stats[counter] += 1
            self._pending.append((where, text))
            self._pending_size += len(text)
            if self._pending_size > BUFFER_LIMIT:
                self.flush()

    def flush(self) -> None:
        """Scan everything buffered so far and drop it."""
        with self._lock:
            pending, self._pending, self._pending_size = self._pending, [], 0
            for where, text in pending:
                self.check(where, text)

    def watch_file(self, path: Path, label: str | None = None) -> None:
        """Scan this file at the end of each test, from where the last scan stopped."""
        with self._lock:
            self._files.setdefault(Path(path), (label or str(path), 0, 1))
            self.stats["files watched"] = len(self._files)

    def track_fake(self, fake: ShowsPeople) -> None:
        """Scan what this fake shows people at the end of the test; its credentials are secrets."""
        with self._lock:
            self._fakes.append(fake)

    def capture_cluster(self, url: str, label: str) -> None:
        """Read every object of an emulated cluster (Secrets excepted) for the scan."""
        self.capture_objects(lambda: cluster_objects(url), label)

    def capture_objects(self, fetch: Callable[[], Iterable[dict[str, Any]]], label: str) -> None:
        """Read the objects `fetch` lists (Secrets are skipped) for the scan."""
        try:
            objects = list(fetch())
        except (httpx.HTTPError, ValueError):
            self.stats["cluster dumps failed"] += 1
            return
        self.stats["clusters dumped"] += 1
        for obj in objects:
            if obj.get("kind") == "Secret":
                continue
            meta = obj.get("metadata", {})
            where = f"{label}: {obj.get('kind')} {meta.get('namespace', '-')}/{meta.get('name')}"
            self.defer(where, "\n".join(leaves(obj)), "cluster objects")

    def end_test(self) -> None:
        """Scan everything the test produced: fakes, buffered text, the watched files' news."""
        with self._lock:
            fakes, self._fakes = self._fakes, []
        for fake in fakes:  # outside our lock: a fake's server thread may log under its own
            for value in list(fake.secrets()):
                self.registry.register(value, f"{type(fake).__name__} credential")
            items = fake.shown()
            self.stats["fake items shown to people"] += len(items)
            self.defer(f"{type(fake).__name__}: shown to people", "\n".join(leaves(items)))
        with self._lock:
            self.flush()
            for path in list(self._files):
                self._scan_file(path)

    def _record(self, where: str, what: str) -> Finding:
        finding = Finding(where, what, self.test)
        with self._lock:
            if finding not in self._seen:
                self._seen.add(finding)
                self.findings.append(finding)
        return finding

    def _scan_file(self, path: Path) -> None:
        label, offset, line = self._files[path]
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size < offset:  # rewritten (e.g. the world file): read it all again
            offset, line = 0, 1
        if size == offset:
            return
        tail = ""
        with path.open("rb") as handle:
            handle.seek(offset)
            while chunk := handle.read(CHUNK):
                offset += len(chunk)
                self.stats["file characters"] += len(chunk)
                text = tail + chunk.decode("utf-8", errors="replace")
                self._locate(label, text, line - tail.count("\n"))
                line += chunk.count(b"\n")
                keep = self._longest - 1
                tail = text[-keep:] if keep > 0 else ""
        self._files[path] = (label, offset, line)

    def _locate(self, label: str, text: str, first_line: int) -> None:
        for needle, what in self.matches(text):
            start = text.find(needle)
            while start >= 0:
                self._record(f"{label}:{first_line + text.count(chr(10), 0, start)}", what)
                start = text.find(needle, start + 1)

    def summary(self) -> list[str]:
        """Lines for the terminal: the counts, then each finding."""
        counts = ", ".join(f"{n} {what}" for what, n in sorted(self.stats.items()))
        lines = [f"leak scan: {len(self.registry.values())} secrets; {counts}"]
        lines += [f"leak scan: {len(self.findings)} finding(s)"]
        lines += [f"  LEAK {f.what} in {f.where} (during {f.test})" for f in self.findings]
        return lines


WRITABLE = (
    "/api/v1/configmaps",
    "/api/v1/events",
    "/apis/events.k8s.io/v1/events",
    "/apis/coordination.k8s.io/v1/leases",
)
"""Built-in resources an operator writes (reports, Events, leases); custom resources come from
the CRDs. Listing all ~75 bundled resources would cost about 0.4 s per cluster."""


def cluster_objects(url: str, timeout: float = 5.0) -> Iterator[dict[str, Any]]:
    """Every object of the custom resources and of `WRITABLE` in the cluster at `url`."""
    with httpx.Client(base_url=url, timeout=timeout) as client:
        crds = client.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").json()
        paths = list(WRITABLE)
        for crd in crds.get("items", []):
            spec = crd["spec"]
            for version in spec.get("versions", []):
                if version.get("served", True):
                    paths.append(
                        f"/apis/{spec['group']}/{version['name']}/{spec['names']['plural']}"
                    )
        for path in paths:
            answer = client.get(path)
            if answer.status_code == 200:
                yield from answer.json().get("items", [])


class _LogTap(logging.Handler):
    """Buffers every log record of the process for the scan."""

    def __init__(self, scanner: Scanner) -> None:
        super().__init__(logging.DEBUG)
        self.scanner = scanner
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a bad format string is the emitter's problem, not a leak
            text = str(record.msg)
        self.scanner.defer(f"log record {record.name} {record.levelname}", text, "log records")


# -- the process-wide scanner that the hooks below and the test helpers feed -----------------


class _Active:
    scanner: Scanner | None = None
    paused: bool = False


def _current() -> Scanner | None:
    return None if _Active.paused else _Active.scanner


def watch_file(path: Path, label: str | None = None) -> None:
    """Register a file for the leak scan (no-op outside a pytest run with this plugin)."""
    if scanner := _current():
        scanner.watch_file(path, label)


def track_fake(fake: ShowsPeople) -> None:
    """Register a SaaS fake for the leak scan (no-op outside a pytest run with this plugin)."""
    if scanner := _current():
        scanner.track_fake(fake)


def capture_cluster(url: str, label: str) -> None:
    """Read an emulated cluster's objects before it stops (no-op outside the plugin)."""
    if scanner := _current():
        scanner.capture_cluster(url, label)


def capture_objects(fetch: Callable[[], Iterable[dict[str, Any]]], label: str) -> None:
    """Read the objects `fetch` lists, e.g. a test's namespace (no-op outside the plugin)."""
    if scanner := _current():
        scanner.capture_objects(fetch, label)


@contextlib.contextmanager
def paused() -> Generator[None]:
    """Keep the session's scan away from objects a self-test plants leaks in."""
    _Active.paused = True
    try:
        yield
    finally:
        _Active.paused = False


_FIXTURE_HOOKS: dict[str, Callable[[Any, Scanner], None]] = {}


def _on_fixture(type_name: str) -> Callable[[Callable[[Any, Scanner], None]], Any]:
    def register(hook: Callable[[Any, Scanner], None]) -> Any:
        _FIXTURE_HOOKS[type_name] = hook
        return hook

    return register


@_on_fixture("PostgresServer")
def _postgres(server: Any, scanner: Scanner) -> None:
    scanner.registry.register(server.password, "PostgreSQL server password (pg_server)")
    if server.dir is not None:
        scanner.watch_file(server.dir / "server.log", "PostgreSQL server log")


@_on_fixture("S3Server")
def _moto(server: Any, scanner: Scanner) -> None:
    if server.log is not None:
        scanner.watch_file(server.log, "moto_server log")


# -- pytest hooks ----------------------------------------------------------------------------


_OBSERVERS: tuple[tuple[list[Any], Callable[..., None]], ...] = (
    (observers.FAKE_STARTED, track_fake),
    (observers.FILE_WRITTEN, watch_file),
    (observers.CLUSTER_STOPPING, capture_cluster),
    (observers.SECRET_BUILT, known_secrets.register_secret),
)
"""What the sandbox announces, and what the scan does with it."""


def pytest_configure(config: pytest.Config) -> None:
    for callbacks, callback in _OBSERVERS:
        callbacks.append(callback)
    scanner = Scanner()
    tap = _LogTap(scanner)
    logging.getLogger().addHandler(tap)
    for name in OPERATOR_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    _Active.scanner = scanner
    config.stash[_TAP] = tap


_TAP = pytest.StashKey[_LogTap]()


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup() -> Generator[None, Any, Any]:
    value = yield
    scanner = _current()
    hook = _FIXTURE_HOOKS.get(type(value).__name__)
    if scanner is not None and hook is not None:
        hook(value, scanner)
    return value


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _Active.scanner is not None:
        _Active.scanner.test = item.nodeid


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    yield
    if _Active.scanner is not None:
        _Active.scanner.end_test()
        _Active.scanner.test = f"after {item.nodeid}"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    scanner = _Active.scanner
    if scanner is None:
        return
    scanner.end_test()
    logging.getLogger().removeHandler(session.config.stash[_TAP])
    if scanner.findings and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure() -> None:
    for callbacks, callback in _OBSERVERS:
        if callback in callbacks:
            callbacks.remove(callback)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    scanner = _Active.scanner
    if scanner is None:
        return
    for line in scanner.summary():
        terminalreporter.write_line(line, red=bool(scanner.findings), bold=bool(scanner.findings))
