"""Where a policy may send credentials: the providers' official API hosts and the prefixes the
operator was started with (`--allow-endpoint`).

A policy's author chooses its URLs and the operator attaches the namespace's Secrets to the
requests it sends there: without this rule a policy could send any Secret of its namespace to a
host of its choice. A URL may receive credentials when it carries no user info, uses https (or
plain http to a loopback address), and falls under an official or allowed prefix: same scheme
and host, the prefix's port when it names one, and a path equal to the prefix's or below it on
a `/` boundary. The check needs
no Secret, so the factories run it before they read one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers.errors import PermanentError

OFFICIAL: Mapping[str, tuple[str, ...]] = {
    "statuspage": ("https://api.statuspage.io",),
    "pagerduty": ("https://events.pagerduty.com",),
    "slack": ("https://hooks.slack.com/",),
}
"""Each notifier's own API, by the key of its policy block. A target's provider block names
its own (`ProviderBlock.OFFICIAL_API`); Prometheus and S3 have none."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Endpoints:
    """The official prefixes plus `allowed`: who may receive a policy's credentials."""

    allowed: tuple[str, ...] = ()

    def refusal(self, url: str, official: Sequence[str] = ()) -> str | None:
        """Why credentials may not go to `url`, or None when they may."""
        parts = _split(url)
        if parts is None or parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            return "not an http(s) URL with a host"
        if "@" in parts.netloc or "\\" in url:
            return "a URL with user info"
        if parts.scheme == "http" and not _loopback(parts.hostname):
            return "plain http, allowed only to a loopback address"
        if _dot_segments(parts.path):
            return "a path with . or .. segments"
        if any(_under(parts, prefix) for prefix in (*official, *self.allowed)):
            return None
        return "not under the provider's official API or an --allow-endpoint prefix"

    def check(self, field: str, url: str, official: Sequence[str] = ()) -> None:
        """PermanentError naming `field` and `url` when credentials may not go there."""
        why = self.refusal(url, official)
        if why is not None:
            raise PermanentError(f"{field}: credentials may not be sent to {_shown(url)}: {why}")

    def check_secret_url(self, field: str, url: str, official: Sequence[str] = ()) -> None:
        """As `check`, for a URL read from a Secret: the message does not show it."""
        why = self.refusal(url, official)
        if why is not None:
            raise PermanentError(f"{field}: the URL in the Secret is refused: {why}")

    def policy_problem(self, policy: RollbackPolicy) -> str | None:
        """The first endpoint of `policy` that may not receive its credentials, or None."""
        for field, url, official in credentialed_urls(policy):
            try:
                self.check(field, url, official)
            except PermanentError as error:
                return error.message
        return None

    def check_policy(self, policy: RollbackPolicy) -> None:
        """PermanentError for the first endpoint of `policy` that may not receive credentials."""
        problem = self.policy_problem(policy)
        if problem is not None:
            raise PermanentError(problem)


def credentialed_urls(policy: RollbackPolicy) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """Every (field, URL, official prefixes) of `policy` that its credentials are sent to.

    The object store's `endpointUrl` counts with or without `credentialsSecretRef`: requests
    are then signed with the pod's ambient credentials. Prometheus counts only with an
    `authSecretRef`: an in-cluster `http://prometheus.monitoring:9090` without one carries no
    secret.
    """
    spec = policy.spec
    for layer_name in ("frontend", "backend", "database", "storage"):
        layer = getattr(spec.targets, layer_name)
        if layer is None:
            continue
        name, block = layer.chosen()
        url = getattr(block, "api_url", None)
        if url is not None:
            yield f"spec.targets.{layer_name}.{name}.apiUrl", str(url), block.OFFICIAL_API
    for name in ("statuspage", "pagerduty"):
        notifier = getattr(spec.notifications, name)
        if notifier is not None:
            yield f"spec.notifications.{name}.apiUrl", str(notifier.api_url), OFFICIAL[name]
    if spec.object_store is not None and spec.object_store.endpoint_url is not None:
        yield "spec.objectStore.endpointUrl", str(spec.object_store.endpoint_url), ()
    if spec.metrics is not None and spec.metrics.prometheus.auth_secret_ref is not None:
        yield "spec.metrics.prometheus.url", str(spec.metrics.prometheus.url), ()


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        return None
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _dot_segments(path: str) -> bool:
    return any(s in {".", ".."} or "%2e" in s.lower() for s in path.split("/"))


def _under(url: SplitResult, prefix: str) -> bool:
    """Whether `url` falls under `prefix`: same scheme and host, the prefix's port if it names
    one (else any port of the host), and the path on a boundary."""
    base = _split(prefix)
    if base is None or (base.scheme, base.hostname) != (url.scheme, url.hostname):
        return False
    if base.port is not None and _port(base) != _port(url):
        return False
    root = base.path.rstrip("/")
    return not root or url.path == root or url.path.startswith(root + "/")


def _shown(url: str) -> str:
    """`url` as a message may show it: user info replaced."""
    parts = _split(url)
    if parts is None or "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


OFFICIAL_ONLY = Endpoints()
"""No prefix allowed besides the official APIs: the default of every factory."""
