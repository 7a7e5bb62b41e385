"""Which adapter serves which provider block of a policy: the one table a new provider joins.

A policy names each layer's provider as a one-of block (`targets.frontend.vercel`, ...). The
composition root asks `RealProviderFactory` for a policy's adapters, and it looks each chosen
block up here by its key. Adding a provider (Netlify for the frontend, GCS for storage) means
its package or module with a `build(block, context)`, one entry below, its fake, and a row in
the contract suite; nothing outside `providers/` changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rollback_operator.api.common import OneOf
from rollback_operator.api.policy import RollbackPolicy
from rollback_operator.providers.base import (
    Database,
    DeploymentTarget,
    Notifier,
    Providers,
    ReportArchive,
    SecretReader,
    Storage,
)
from rollback_operator.providers.context import BuildContext
from rollback_operator.providers.deployments import railway, vercel
from rollback_operator.providers.endpoints import OFFICIAL_ONLY, Endpoints
from rollback_operator.providers.errors import PermanentError, in_order
from rollback_operator.providers.metrics import prometheus
from rollback_operator.providers.notifiers import pagerduty, slack, statuspage
from rollback_operator.providers.objectstore import reports
from rollback_operator.providers.postgres import database as postgres
from rollback_operator.providers.storage import s3
from rollback_operator.providers.verification import checklist

Probe = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class DatabaseEntry:
    """A database provider: its adapter, and the URL verification's SQL checks connect to."""

    build: Callable[[Any, BuildContext], Awaitable[Database]]
    sql_url: Callable[[Any, BuildContext], Awaitable[str]]


@dataclass(frozen=True)
class StorageEntry:
    """A storage provider: its adapter, and verification's "lists and reads" check."""

    build: Callable[[Any, BuildContext], Awaitable[Storage]]
    probe: Callable[[Any, BuildContext], Awaitable[Probe]]


FRONTENDS: Mapping[str, Callable[[Any, BuildContext], Awaitable[DeploymentTarget]]] = {
    "vercel": vercel.build,
}
BACKENDS: Mapping[str, Callable[[Any, BuildContext], Awaitable[DeploymentTarget]]] = {
    "railway": railway.build,
}
DATABASES: Mapping[str, DatabaseEntry] = {
    "postgres": DatabaseEntry(postgres.build, postgres.sql_url),
}
STORAGES: Mapping[str, StorageEntry] = {"s3": StorageEntry(s3.build, s3.probe)}
NOTIFIERS: Mapping[str, Callable[[Any, BuildContext], Awaitable[Notifier]]] = {
    # the order people should hear in
    "slack": slack.build,
    "statuspage": statuspage.build,
    "pagerduty": pagerduty.build,
}


def _entry(table: Mapping[str, Any], kind: str, layer: OneOf | None) -> tuple[Any, Any] | None:
    """The table entry and block of the provider a layer chose, or None without the layer."""
    if layer is None:
        return None
    name, block = layer.chosen()
    if name not in table:
        raise PermanentError(f"spec.targets.{kind}.{name}: no adapter is registered for it")
    return table[name], block


class RealProviderFactory:
    """Adapters for every target, notifier and check a policy defines; a policy that names an
    endpoint `endpoints` refuses gets a PermanentError before any of its Secrets is read."""

    def __init__(self, endpoints: Endpoints = OFFICIAL_ONLY) -> None:
        self.endpoints = endpoints

    async def build(self, policy: RollbackPolicy, secrets: SecretReader) -> Providers:
        self.endpoints.check_policy(policy)
        context, targets = BuildContext(policy, secrets, self.endpoints), policy.spec.targets
        frontend = _entry(FRONTENDS, "frontend", targets.frontend)
        backend = _entry(BACKENDS, "backend", targets.backend)
        database = _entry(DATABASES, "database", targets.database)
        storage = _entry(STORAGES, "storage", targets.storage)
        front, back, (data, files), notifiers = await in_order(
            _deployment(frontend, context),
            _deployment(backend, context),
            _data_layers(database, storage, context),
            _notifiers(context),
        )
        return Providers(
            frontend=front,
            backend=back,
            database=data,
            storage=files,
            notifiers=notifiers,
            verifier=await checklist.build(
                policy,
                secrets,
                storage_probe=await storage[0].probe(storage[1], context) if storage else None,
                sql_url=await _sql_url(context, database),
            ),
            archive=await _archive(context),
        )

    async def notifiers(self, policy: RollbackPolicy, secrets: SecretReader) -> list[Notifier]:
        self.endpoints.check_policy(policy)
        return await _notifiers(BuildContext(policy, secrets, self.endpoints))


async def _deployment(entry: tuple[Any, Any] | None, context: BuildContext) -> Any:
    """The frontend's or backend's adapter; None without the layer."""
    return await entry[0](entry[1], context) if entry else None


async def _data_layers(
    database: tuple[Any, Any] | None, storage: tuple[Any, Any] | None, context: BuildContext
) -> tuple[Database | None, Storage | None]:
    """The database's adapter, then the storage's: both may make the policy's one S3 client."""
    data = await database[0].build(database[1], context) if database else None
    files = await storage[0].build(storage[1], context) if storage else None
    return data, files


async def _sql_url(context: BuildContext, database: tuple[Any, Any] | None) -> str | None:
    """Where verification's SQL checks connect: their own (read-only) credential when the
    policy names one, else the database target's."""
    ref = context.policy.spec.verification.sql_url_secret_ref
    if ref is not None:
        return await context.secret(ref)
    return await database[0].sql_url(database[1], context) if database else None


async def _notifiers(context: BuildContext) -> list[Notifier]:
    config = context.policy.spec.notifications
    built: list[Notifier] = []
    for name, build in NOTIFIERS.items():
        block = getattr(config, name)
        if block is not None:
            built.append(await build(block, context))
    return built


async def _archive(context: BuildContext) -> ReportArchive | None:
    """Where reports are copied: the database's backups bucket, else the files' backups
    bucket; None when the policy has neither (the ConfigMap is then the only copy)."""
    targets = context.policy.spec.targets
    layers = [layer.chosen()[1] for layer in (targets.database, targets.storage) if layer]
    bucket = next((b for b in (layer.backups_bucket() for layer in layers) if b), None)
    if bucket is None or context.policy.spec.object_store is None:
        return None
    return reports.S3ReportArchive(await context.object_store("the report archive"), bucket)


def metrics_factory(endpoints: Endpoints = OFFICIAL_ONLY) -> prometheus.PrometheusFactory:
    """The source of every policy's rule values (Prometheus, one client per URL); close it."""
    return prometheus.PrometheusFactory(endpoints=endpoints)
