"""The one registry of secret values the tests use: tokens, passwords, keys, webhook URLs, DSNs.

Why this module exists: the leak scan (`tests/leakscan.py`) must know every secret a test hands
to the operator or to a fake, so it can prove none of them shows up in a log line, an Event, a
status, a report or a notification. Three sources feed it:

- `STATIC`: literals written in test files, each with the file that uses it (a unit test checks
  the file still contains it, so the table cannot drift silently);
- `register()`: values made at run time, e.g. by `sandbox.manifests.secret` (every Secret a test
  applies) or by the leak scan itself (a fake's credentials, a database server's password);
- `needles()`: what to search for a value: the value itself, its URL-encoded form, the
  password inside a URL, so a DSN whose password leaks on its own is still caught, and its
  base64 form at each of the three alignments, so a Secret body logged by a client at DEBUG
  (`data:` is base64) or a Basic auth header (`user:token`) is caught too.

(Named `known_secrets`, not `secrets`, so it does not shadow the standard library module.)
"""

from __future__ import annotations

import base64
import threading
import urllib.parse
from dataclasses import dataclass

MIN_LENGTH = 6
"""Shorter values (`pw`, `x`) would match ordinary words; they are not searched for."""
MIN_BASE64 = 8
"""Shorter base64 fragments are not searched for (a fragment of a short value could match
ordinary text)."""


@dataclass(frozen=True)
class Known:
    """A secret literal and the test file that uses it."""

    value: str
    source: str
    what: str


STATIC: tuple[Known, ...] = (
    Known("vercel-e2e-token-5b1d", "sandbox/fakes/saas.py", "Vercel token (e2e)"),
    Known("railway-e2e-token-93ac", "sandbox/fakes/saas.py", "Railway token (e2e)"),
    Known("vrc-secret-0123456789", "tests/contracts/hosted.py", "Vercel token"),
    Known("vrc-wrong-secret-987654", "tests/contracts/hosted.py", "bad Vercel token"),
    Known("rw-account-secret-42", "tests/contracts/hosted.py", "Railway token"),
    Known("rw-project-secret-77", "tests/contracts/hosted.py", "Railway token"),
    Known("rw-wrong-secret-13", "tests/contracts/hosted.py", "bad Railway token"),
    Known("rw-workspace-secret", "tests/providers/test_railway_fake.py", "Railway token"),
    Known("vercel-test-token", "sandbox/fakes/vercel_server.py", "fake Vercel default token"),
    Known("railway-test-token", "sandbox/fakes/railway_server.py", "fake Railway default token"),
    Known("sp-api-key-0123456789abcdef", "tests/notify/conftest.py", "Statuspage key"),
    Known("sp-wrong-key-999999", "tests/notify/conftest.py", "bad Statuspage key"),
    Known("sp-key-for-fake-tests", "tests/notify/test_fakes.py", "Statuspage key"),
    Known("0123456789abcdef0123456789abcdef", "tests/notify/conftest.py", "bad PagerDuty key"),
    Known("not-the-right-secret", "tests/notify/conftest.py", "bad Slack webhook"),
    Known("s3cr3t-value", "tests/notify/test_slack.py", "Slack webhook"),
    Known("s3cret-token", "tests/metrics/test_prometheus_source.py", "Prometheus auth"),
    Known("cache-secret-7d1e", "sandbox/services/redis.py", "Redis password"),
    Known("wrong-password-1234", "tests/verify/test_cache.py", "bad Redis password"),
    Known("testing-secret-key", "sandbox/services/s3.py", "S3 secret access key"),
    Known("dumper-pw-123", "tests/db/test_safety_backup.py", "PostgreSQL password"),
    Known("Wr0ng-pa55word-xyz", "tests/db/test_database_plan.py", "bad PostgreSQL password"),
)


class Registry:
    """Secret values with a description each; thread-safe, only ever grows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] = {k.value: f"{k.what} ({k.source})" for k in STATIC}
        self.generation = 0
        """Changes whenever a value is added, so scanners know when to rebuild their needles."""

    def register(self, value: str, what: str) -> None:
        """Add a secret made at run time; `what` describes it (never the value) in findings."""
        if len(value.strip()) < MIN_LENGTH:
            return
        with self._lock:
            if value not in self._values:
                self._values[value] = what
                self.generation += 1

    def values(self) -> dict[str, str]:
        """Every registered value with its description."""
        with self._lock:
            return dict(self._values)


REGISTRY = Registry()


def register(value: str, what: str) -> None:
    """Add a secret made at run time to the process's registry (see `Registry.register`)."""
    REGISTRY.register(value, what)


IDENTIFIER_KEYS = frozenset({"access-key-id"})
"""Secret keys whose values identify rather than authenticate: an AWS access key id is sent in
clear in every signed request (`Credential=<id>/...`) and shows in botocore's debug log."""


def register_secret(namespace: str, name: str, data: dict[str, str]) -> None:
    """Register the values of a Secret manifest (identifiers excepted)."""
    for key, value in data.items():
        if key not in IDENTIFIER_KEYS:
            register(value, f"Secret {namespace}/{name} key {key}")


def needles(value: str) -> set[str]:
    """The strings whose presence means `value` leaked."""
    found = {value, value.strip(), urllib.parse.quote(value.strip(), safe="")}
    if "://" in value:
        password = urllib.parse.urlsplit(value.strip()).password
        if password:
            found |= {password, urllib.parse.unquote(password)}
    plain = {n for n in found if len(n) >= MIN_LENGTH}
    encoded = {b for n in plain for b in base64_forms(n)}
    return plain | {b for b in encoded if len(b) >= MIN_BASE64}


def base64_forms(value: str) -> set[str]:
    """The base64 characters that encode `value` wherever it sits in a longer encoded text.

    Base64 encodes three bytes as four characters, so a value preceded by 0, 1 or 2 other bytes
    encodes to one of three strings; each is kept only where its characters depend on the
    value alone (a character shared with a neighbouring byte is dropped). The value encoded
    alone (a Secret's `data` field) contains the first of them."""
    raw = value.encode()
    forms = set()
    for before in range(3):
        encoded = base64.b64encode(b"\0" * before + raw).decode().rstrip("=")
        start = -(-8 * before // 6)  # the first character holding no bit of the zero bytes
        end = len(encoded) - (1 if (before + len(raw)) % 3 else 0)
        forms.add(encoded[start:end])
    return forms
