"""The operator's own calls to the Kubernetes API: status patches, Secrets, ConfigMaps, creates.

kopf watches and posts Events; everything else goes through this one small gateway, so the
handlers stay free of client details and the calls we make are easy to list for RBAC.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from rollback_operator.api import GROUP, VERSION
from rollback_operator.providers.errors import NotFoundError, PermanentError, RetryableError

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
LOG_MARK = "rollback.mindmate.app/deployment-log"
LOG_LINES = 1000  # about 150 KB of a ConfigMap's 1 MiB; the backups bucket keeps every line
_MESSAGE_LIMIT = 600
SECRET_TTL = 5.0
"""Seconds one read of a Secret answers every other read of it: a burst of rollbacks whose
policies share credentials reads each Secret once, and a Secret changed by a person is used
within this long. A failed read is never kept."""
Body = dict[str, Any]
SecretData = dict[str, str]


def _translate(error: ApiException, what: str) -> Exception:
    if error.status == 404:
        return NotFoundError(f"{what} not found", provider="kubernetes")
    if error.status in (409, 429) or error.status >= 500:
        return RetryableError(f"{what}: HTTP {error.status}", provider="kubernetes")
    said = _status_message(error)
    if error.status in (401, 403):
        denied = f"{what}: access denied ({error.status})"
        return PermanentError(f"{denied}: {said}" if said else denied, provider="kubernetes")
    refused = f"{what}: HTTP {error.status} {error.reason}"
    return PermanentError(f"{refused}: {said}" if said else refused, provider="kubernetes")


def _status_message(error: ApiException) -> str:
    """The API server's own explanation (a Status object's message: which field is invalid,
    which permission is missing), shortened; empty when the answer carries none."""
    try:
        found = json.loads(error.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        return ""
    text = str(found)
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


class KubeApi:
    """A thin async wrapper over kubernetes_asyncio for the calls the operator makes."""

    def __init__(self, api: client.ApiClient, *, secret_ttl: float = SECRET_TTL) -> None:
        self._api = api
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._secret_ttl = secret_ttl
        self._secrets: dict[tuple[str, str], tuple[float, asyncio.Future[SecretData]]] = {}
        """(namespace, name) -> when the read expires, and the read (done or in flight)."""

    @classmethod
    async def connect(
        cls, kubeconfig: str | None = None, *, secret_ttl: float = SECRET_TTL
    ) -> KubeApi:
        """In-cluster config when running in a pod, else the kubeconfig."""
        cfg = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=cfg)
        except config.ConfigException:
            try:
                await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
            except (config.ConfigException, OSError) as error:
                where = kubeconfig or "the default kubeconfig (KUBECONFIG, ~/.kube/config)"
                raise PermanentError(
                    f"no usable Kubernetes configuration: not in a pod, and {where}: {error}",
                    provider="kubernetes",
                ) from None
        return cls(_straight(client.ApiClient(configuration=cfg)), secret_ttl=secret_ttl)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._api.close()

    async def patch_status(self, plural: str, namespace: str, name: str, patch: Body) -> Body:
        """Merge-patch the status subresource of one of our objects."""
        try:
            result: Body = await self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                {"status": patch},
                _content_type=MERGE_PATCH,
            )
        except ApiException as error:
            raise _translate(error, f"{plural}/{name}") from None
        return result

    async def create(self, plural: str, namespace: str, body: Body) -> Body:
        """Create one of our objects."""
        try:
            result: Body = await self._custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body
            )
        except ApiException as error:
            raise _translate(error, plural) from None
        return result

    async def keep_config_map(
        self, namespace: str, name: str, data: dict[str, str], meta: dict[str, Any]
    ) -> None:
        """Create a ConfigMap that no object owns (so no cascade deletes it), with `meta`'s
        labels and annotations; one already there under that name is left as it is."""
        body = _config_map(namespace, name, meta, data)
        await self._create_config_map(body, f"ConfigMap {namespace}/{name}")

    async def delete(self, plural: str, namespace: str, name: str, uid: str) -> None:
        """Delete one of our objects, only if it is still the one with `uid` (a precondition:
        one created again under the same name is left alone); gone already is fine."""
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
        try:
            await self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, body=options
            )
        except ApiException as error:
            if error.status not in (404, 409):
                raise _translate(error, f"{plural}/{name}") from None

    async def names(
        self, group: str, version: str, plural: str, namespace: str | None
    ) -> list[str]:
        """The names of every object of a kind, cluster-wide (`namespace` None) or in one
        namespace; NotFoundError when the server does not serve the kind (no CRD)."""
        what = f"{plural}.{group}"
        try:
            if namespace is None:
                found = await self._custom.list_cluster_custom_object(group, version, plural)
            else:
                found = await self._custom.list_namespaced_custom_object(
                    group, version, namespace, plural
                )
        except ApiException as error:
            raise _translate(error, what) from None
        except (aiohttp.ClientError, OSError) as error:
            raise RetryableError(f"{what}: {error}", provider="kubernetes") from None
        return [str(item["metadata"]["name"]) for item in found.get("items", [])]

    async def read(self, namespace: str, name: str, key: str) -> str:
        """One decoded key of a Secret (the SecretReader Protocol), without surrounding
        whitespace: a token saved with `echo token > file; kubectl create secret --from-file`
        ends in a newline, which no token, key, password or URL means to hold."""
        what = f"Secret {namespace}/{name}"
        data = await self._secret_data(namespace, name)
        if key not in data:
            raise PermanentError(f"{what} has no key {key!r}", provider="kubernetes")
        return base64.b64decode(data[key]).decode().strip()

    async def _secret_data(self, namespace: str, name: str) -> SecretData:
        """A Secret's data: one GET answers every read of it within `secret_ttl` seconds,
        those made while it is in flight included."""
        now = asyncio.get_running_loop().time()
        self._secrets = {k: v for k, v in self._secrets.items() if v[0] > now}
        kept = self._secrets.get((namespace, name))
        if kept is None:
            read = asyncio.ensure_future(self._get_secret(namespace, name))
            kept = self._secrets[(namespace, name)] = (now + self._secret_ttl, read)
            read.add_done_callback(lambda done: self._forget_failed((namespace, name), done))
        return dict(await asyncio.shield(kept[1]))

    def _forget_failed(self, key: tuple[str, str], read: asyncio.Future[SecretData]) -> None:
        failed = read.cancelled() or read.exception() is not None
        if failed and key in self._secrets and self._secrets[key][1] is read:
            del self._secrets[key]

    async def _get_secret(self, namespace: str, name: str) -> SecretData:
        what = f"Secret {namespace}/{name}"
        try:
            secret = await self._core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            raise _translate(error, what) from None
        return dict(secret.data or {})

    async def upsert_config_map(
        self, namespace: str, name: str, data: dict[str, str], owner: Body
    ) -> None:
        """Create a ConfigMap owned by `owner` (so it goes when the owner goes), or update the
        one the operator created for `owner` before. Any other ConfigMap of that name is left
        unchanged (PermanentError): the operator never writes a ConfigMap it did not create."""
        what = f"ConfigMap {namespace}/{name}"
        body = _config_map(namespace, name, {"ownerReferences": [owner]}, data)
        if await self._create_config_map(body, what):
            return
        try:
            await self._core.patch_namespaced_config_map(
                name, namespace, _owned_data_patch(owner, data), _content_type=JSON_PATCH
            )
        except ApiException as error:
            if error.status != 422:  # the body was valid: the create said so with its 409
                raise _translate(error, what) from None
            raise PermanentError(
                f"{what} exists and was not created by the operator for {owner['kind']} "
                f"{owner['name']} (it has no ownerReference to its uid); left unchanged: "
                "rename or delete that ConfigMap to let the operator write its own",
                provider="kubernetes",
            ) from None

    async def add_log_line(
        self, namespace: str, name: str, key: str, line: str, keep: int = LOG_LINES
    ) -> None:
        """Add `line` under `key` to the log ConfigMap `name`, creating it (marked as the
        operator's log, owned by nothing: deleting a policy or a rollback keeps the record);
        the same key again rewrites the same line. Only a ConfigMap carrying the mark is
        written (PermanentError otherwise), and it keeps the newest `keep` lines. The log
        exists after a namespace's first rollback, so the line is patched in first: one
        request, where creating first cost a refused create every time."""
        what = f"ConfigMap {namespace}/{name}"
        mark = {"op": "test", "path": f"/metadata/annotations/{_pointer(LOG_MARK)}",
                "value": "true"}  # fmt: skip
        add = [mark, {"op": "add", "path": f"/data/{key}", "value": line}]
        written = await self._patch_log(namespace, name, add, what)
        if written is None:
            body = _config_map(namespace, name, {"annotations": {LOG_MARK: "true"}}, {key: line})
            if await self._create_config_map(body, what):
                return
            written = await self._patch_log(namespace, name, add, what)  # created meanwhile
        oldest = sorted(written.data or {} if written else {})[:-keep]
        if oldest:
            trim = [mark, *({"op": "remove", "path": f"/data/{k}"} for k in oldest)]
            try:  # another replica trimming the same lines first is as good
                await self._core.patch_namespaced_config_map(
                    name, namespace, trim, _content_type=JSON_PATCH
                )
            except ApiException as error:
                if error.status != 422:
                    raise _translate(error, what) from None

    async def _patch_log(
        self, namespace: str, name: str, patch: list[Body], what: str
    ) -> client.V1ConfigMap | None:
        """The log ConfigMap after `patch` (a JSON patch testing the log's mark first); None
        when there is no such ConfigMap."""
        try:
            return await self._core.patch_namespaced_config_map(
                name, namespace, patch, _content_type=JSON_PATCH
            )
        except ApiException as error:
            if error.status == 404:
                return None
            if error.status != 422:
                raise _translate(error, what) from None
            raise PermanentError(
                f"{what} exists and is not the operator's deployment log (no annotation "
                f"{LOG_MARK}: true); left unchanged", provider="kubernetes",
            ) from None  # fmt: skip

    async def _create_config_map(self, body: Body, what: str) -> bool:
        """Create the ConfigMap `body`; False when one of its name exists already."""
        try:
            await self._core.create_namespaced_config_map(body["metadata"]["namespace"], body)
        except ApiException as error:
            if error.status != 409:
                raise _translate(error, what) from None
            return False
        return True


def _straight(api: client.ApiClient) -> client.ApiClient:
    """`api` with a session that ignores proxy variables and ~/.netrc, as kopf's does.

    kubernetes_asyncio's session trusts the environment: before every request it looks up a
    netrc entry and a proxy in two worker threads (two GIL hand-offs per call, 7% of the
    operator's busy py-spy samples while 100 rollbacks ran at once; docs/benchmarks.md).
    kopf's own connection never reads them either: now the whole operator reaches the server
    one way, directly or through the proxy its kubeconfig names (`proxy-url`)."""
    api.rest_client.pool_manager._trust_env = False
    return api


def _config_map(namespace: str, name: str, meta: dict[str, Any], data: dict[str, str]) -> Body:
    """A ConfigMap's body: `meta` (labels, annotations, owners) with its name and namespace."""
    metadata = {**meta, "name": name, "namespace": namespace}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def _pointer(key: str) -> str:
    """`key` as one JSON pointer segment."""
    return key.replace("~", "~0").replace("/", "~1")


def _owned_data_patch(owner: Body, data: dict[str, str]) -> list[Body]:
    """A JSON patch replacing `data` that the API server applies only if the ConfigMap's first
    ownerReference is `owner` (the one the operator sets at creation): checked and written in
    one request, so nothing can swap the ConfigMap in between, and with no right to read
    ConfigMaps. A failed `test` is a 422."""
    return [
        {"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": owner["uid"]},
        {"op": "add", "path": "/data", "value": data},
    ]


def credentials(api: KubeApi) -> dict[str, Any]:
    """Server, CA and credentials of the loaded configuration, for kopf's own connection."""
    cfg = api._api.configuration
    if cfg.refresh_api_key_hook is not None:
        cfg.refresh_api_key_hook(cfg)
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    prefix = (cfg.api_key_prefix or {}).get("authorization", "")
    token = auth.split(" ", 1)[-1] if auth and (" " in auth or prefix) else auth
    return {
        "server": cfg.host,
        "ca_path": cfg.ssl_ca_cert,
        "insecure": not cfg.verify_ssl,
        "scheme": "Bearer" if token else None,
        "token": token,
        "certificate_path": cfg.cert_file,
        "private_key_path": cfg.key_file,
    }
