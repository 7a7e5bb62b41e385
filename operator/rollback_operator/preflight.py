"""What the operator checks before kopf starts, so that an operator that cannot act says so.

Why this module exists: kopf fails late, or quietly, in the two ways a new user meets first.
With peering on and kopf's peering CRD or object absent, it pauses every watch and says so only
at DEBUG: the operator runs and does nothing. With the liveness or metrics port taken (a second
operator on the same host), it dies with a bind traceback. So, before kopf starts:

- each port is tried; a taken one is a `StartupError` naming the port and the flag to change;
- peering is decided. Asked for explicitly (`Settings.peering_required`), its CRD and object
  must exist, or the start is refused. Otherwise the operator peers when they exist and runs
  standalone, with a WARNING, when they do not (the README's path without Helm).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from rollback_operator.providers.errors import NotFoundError, ProviderError, RetryableError
from rollback_operator.settings import Settings

logger = logging.getLogger(__name__)
PEERING_GROUP, PEERING_VERSION = "kopf.dev", "v1"
ATTEMPTS, PAUSE = 3, 1.0
"""How often a transient error of the API server is retried while deciding peering."""


class StartupError(Exception):
    """Why the operator cannot start, in one line for the person who started it."""


class Lister(Protocol):
    """The one call peering needs (`kube.KubeApi.names`)."""

    async def names(
        self, group: str, version: str, plural: str, namespace: str | None
    ) -> list[str]: ...


@dataclass(frozen=True)
class _Port:
    number: int
    host: str
    what: str
    flag: str


def check_ports(settings: Settings) -> None:
    """StartupError when the liveness or the metrics port cannot be bound."""
    for port in _ports(settings):
        if port.number:  # 0: any free port, chosen when bound
            _try_bind(port)


def _ports(settings: Settings) -> list[_Port]:
    found = []
    if settings.liveness_endpoint:
        url = urlsplit(settings.liveness_endpoint)
        flag = "--liveness http://0.0.0.0:PORT/healthz (env ROLLBACK_OPERATOR_LIVENESS_ENDPOINT)"
        what = f"liveness endpoint {settings.liveness_endpoint}"
        number = 80 if url.port is None else url.port
        found.append(_Port(number, url.hostname or "0.0.0.0", what, flag))
    if settings.metrics_port:
        flag = "--metrics-port PORT (env ROLLBACK_OPERATOR_METRICS_PORT; 0: no /metrics)"
        found.append(_Port(settings.metrics_port, "0.0.0.0", "/metrics", flag))
    return found


def _try_bind(port: _Port) -> None:
    """Bind as the servers will (address reuse on, as aiohttp and http.server do), then let go."""
    try:
        addresses = socket.getaddrinfo(
            port.host, port.number, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise StartupError(f"{port.what}: cannot resolve {port.host}: {error}") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as error:
                raise StartupError(
                    f"port {port.number} ({port.what}) is not free: {error.strerror} "
                    f"(is another operator running here?); choose another with {port.flag}"
                ) from None


async def decide_peering(settings: Settings, kube: Lister) -> Settings:
    """`settings` with `standalone` decided: True or False, never unset."""
    if settings.standalone:
        return settings
    missing = await _missing_peering(settings, kube)
    if not missing:
        logger.info("Peering through kopf peering object %r", settings.peering_name)
        return settings.model_copy(update={"standalone": False})
    if settings.peering_required():
        raise StartupError(
            f"peering is required (--peering, ROLLBACK_OPERATOR_PEERING_NAME or "
            f"ROLLBACK_OPERATOR_STANDALONE=false) but {missing}; install kopf's peering CRDs "
            f"and create the object (the Helm chart does), or run with --standalone"
        )
    logger.warning(
        "Running standalone, without peering: %s. Run one operator only; for several "
        "replicas install kopf's peering CRDs and object. --standalone says this on purpose "
        "and silences this warning.",
        missing,
    )
    return settings.model_copy(update={"standalone": True})


async def _missing_peering(settings: Settings, kube: Lister) -> str:
    """What of the peering setup is missing, for people; empty when all of it is there."""
    if settings.all_namespaces:
        scopes: list[str | None] = [None]
        plural, kind = "clusterkopfpeerings", "ClusterKopfPeering"
    else:
        scopes = list(settings.namespaces)
        plural, kind = "kopfpeerings", "KopfPeering"
    lacking = []
    for namespace in scopes:
        try:
            names = await _names(kube, plural, namespace)
        except NotFoundError:
            return f"the CRD {plural}.{PEERING_GROUP} is not installed"
        except ProviderError as error:
            return f"the peering objects cannot be listed ({error})"
        if settings.peering_name not in names:
            lacking.append(namespace)
    if not lacking:
        return ""
    where = "" if lacking == [None] else f" in namespace {', '.join(map(str, lacking))}"
    if len(lacking) < len(scopes):  # set up for some namespaces: peers may be running there
        raise StartupError(f"no {kind} {settings.peering_name!r}{where}, unlike the others")
    return f"there is no {kind} {settings.peering_name!r}{where}"


async def _names(kube: Lister, plural: str, namespace: str | None) -> list[str]:
    attempt = 1
    while True:
        try:
            return await kube.names(PEERING_GROUP, PEERING_VERSION, plural, namespace)
        except RetryableError as error:
            if attempt >= ATTEMPTS:
                raise StartupError(f"cannot ask the API server about peering: {error}") from None
        await asyncio.sleep(PAUSE * attempt)
        attempt += 1
