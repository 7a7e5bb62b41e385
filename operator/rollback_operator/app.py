"""The composition root: builds clients, providers and the kopf registry, then runs kopf.

It names no concrete provider: `providers.registry` maps a policy's provider blocks to adapters.
Tests call `run` with a fake provider factory; `rollback-operator run` uses the registry's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import kopf

from rollback_operator import preflight
from rollback_operator.api import GROUP
from rollback_operator.handlers import deletion, index, restorepoint_schedule
from rollback_operator.handlers import policy as policy_handlers
from rollback_operator.handlers import restorepoint as restore_point_handlers
from rollback_operator.handlers import rollback as rollback_handlers
from rollback_operator.handlers import watch as watch_handlers
from rollback_operator.handlers.deps import Deps
from rollback_operator.kube import KubeApi, credentials
from rollback_operator.providers import http, registry
from rollback_operator.providers.base import ProviderFactory
from rollback_operator.providers.endpoints import Endpoints
from rollback_operator.providers.errors import PermanentError
from rollback_operator.settings import Settings
from rollback_operator.telemetry import metrics as operator_metrics

logger = logging.getLogger(__name__)
PEER_SETTLE = 2.0  # seconds replicas started together get to see each other before acting


class HandledConfiguration(kopf.AnnotationsDiffBaseStorage):
    """kopf's record of the last configuration it handled, kept for the kinds whose handlers of
    creation and change compare against it. A Rollback has none (a daemon runs it, a deletion
    handler ends it): its record was a patch per Rollback that nothing read, so a Rollback's
    configuration counts as handled as it is. Nothing of it is compared either: its essence is
    empty, not a copy of the whole body per watch event (3.5% of the operator's busy py-spy
    samples in the burst of 100 rollbacks; docs/benchmarks.md)."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        if body.get("kind") == "Rollback":
            return kopf.BodyEssence()
        return super().build(body=body, extra_fields=extra_fields)

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        if body.get("kind") == "Rollback":
            return kopf.BodyEssence()
        return super().fetch(body=body)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        if body.get("kind") != "Rollback":
            super().store(body=body, patch=patch, essence=essence)


def _configure(settings: kopf.OperatorSettings, own: Settings) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = HandledConfiguration(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    settings.peering.lifetime = own.peering_lifetime
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = [0.5, 1, 2, 5, 10]


def with_priority(own: Settings) -> Settings:
    """`own` with a peering priority: the configured one, else one from the start time.

    kopf pauses every replica that sees a live peer of equal priority, so replicas need distinct
    ones. Earlier starts rank higher: a new or restarted replica waits behind the running one
    instead of taking over in the middle of its rollback.
    """
    if own.priority is not None:
        return own
    return own.model_copy(update={"priority": -(time.time_ns() // 1000)})


def build_registry(own: Settings) -> kopf.OperatorRegistry:
    """An explicit registry with every handler of the operator."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        _configure(settings, own)

    @kopf.on.login(registry=registry)
    def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
        deps: Deps = memo
        return kopf.ConnectionInfo(**credentials(deps.kube))

    settle = 0.0 if own.standalone else PEER_SETTLE
    index.register(registry)
    watch_handlers.register(registry)
    rollback_handlers.register(registry, settle)
    policy_handlers.register(registry, settle)
    deletion.register(registry)
    restore_point_handlers.register(registry, settle)
    restorepoint_schedule.register(registry, settle)
    return registry


async def run(
    settings: Settings,
    providers: ProviderFactory | None = None,
    *,
    stop_flag: Any = None,
    ready_flag: Any = None,
) -> None:
    """Run the operator until it is told to stop; `preflight.StartupError` when it cannot
    start (a port taken, no cluster configuration, peering asked for and missing)."""
    preflight.check_ports(settings)
    try:
        kube = await KubeApi.connect(settings.kubeconfig)
    except PermanentError as error:
        raise preflight.StartupError(error.message) from None
    endpoints = Endpoints(tuple(settings.allowed_endpoints))
    metrics = registry.metrics_factory(endpoints)
    server: operator_metrics.MetricsServer | None = None
    try:
        settings = with_priority(await preflight.decide_peering(settings, kube))
        telemetry = operator_metrics.Telemetry()
        http.OBSERVER.set(telemetry)
        factory = providers or registry.RealProviderFactory(endpoints)
        deps = Deps(
            settings=settings, kube=kube, providers=factory, metrics=metrics, telemetry=telemetry
        )
        if settings.metrics_port:
            server = telemetry.serve(settings.metrics_port)
            logger.info("Serving /metrics on port %d", server.port)
        await kopf.operator(
            registry=build_registry(settings),
            memo=deps,
            clusterwide=settings.all_namespaces,
            namespaces=settings.namespaces,
            standalone=settings.standalone,
            priority=settings.priority,
            peering_name=None if settings.standalone else settings.peering_name,
            liveness_endpoint=settings.liveness_endpoint,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        if server is not None:
            server.close()
        await metrics.close()
        await kube.close()
        await http.close_pooled_clients()
