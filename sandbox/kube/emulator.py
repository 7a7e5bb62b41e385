"""A Kubernetes API emulator realistic enough for kopf and kubectl: what `make demo` runs on.

It was written for machines where no kube-apiserver, envtest, kind or k3s could run (none is
packaged there, and kind and k3s need Docker). The suites now run on a real kube-apiserver
(`tests/apiserver`); the demo keeps the emulator, so it needs no cluster and no Go toolchain.
kmock's ``KubernetesEmulator`` keeps objects in memory and serves them over HTTP, but it
stores bodies verbatim: no uid, resourceVersion or namespace, no status subresource, no
selectors, watches that replay everything, PUT not routed, lists without ``kind``. kopf then
runs handlers twice or never, and kubectl fails.

``RealisticEmulator`` keeps kmock's storage (``emulator.objects[...]`` assertions work) and
replaces the write, read and watch paths with the API server's rules: server-set metadata,
one global resourceVersion, generation, the status subresource, preconditions, finalizers,
ownerReference garbage collection, CRD registration and resumable watches.

Unlike kmock, an object changes only when the emulator itself serves the request (a test
reaction such as ``emulator["patch"] << 500`` leaves it untouched, as a failing server
would), and a resource must be declared (bundled built-ins, a POSTed CRD, or
``emulator.resources[...]``) or requests get 404. Protobuf bodies get 415.

Run it as a process with ``python -m sandbox.kube --port 0 --portfile PATH`` (``__main__``).
"""

import contextlib
import copy
import random
import uuid
import warnings
from collections.abc import AsyncIterator

import aiohttp.web
import attrs
import kmock
from kmock._internal.rendering import Response  # documented, but missing from kmock.__all__

from sandbox.kube import crds, patches, protocol, watching
from sandbox.kube.protocol import error
from sandbox.kube.selectors import Selector
from sandbox.kube.watching import Key, Obj

CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
NAMESPACES = kmock.resource("", "v1", "namespaces")
SERVER_MANAGED = ("name", "namespace", "uid", "creationTimestamp", "generation",
                  "deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion")  # fmt: skip
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the API server's generateName alphabet


@attrs.define(kw_only=True)
class RealisticEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the API server's bookkeeping; see the module docstring."""

    history_size: int = 1000  # watch events kept per resource for ?watch&resourceVersion=N
    # kmock matches each request against its whole request log (O(requests) per request, about
    # 1 ms per 100 logged requests); an operator test makes thousands, so keep only the latest.
    request_log_size: int = 16
    _rv: int = attrs.field(default=0, init=False)
    _hub: watching.Hub = attrs.field(init=False)
    _custom: set[kmock.resource] = attrs.field(factory=set, init=False)  # served by CRDs

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        protocol.fix_namespace_urls()
        self._hub = watching.Hub(self.history_size)
        with warnings.catch_warnings():  # importlib.resources.read_binary is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            self.resources.load_bundled()
        self.fallback["put"] << self._serve_replace
        self.fallback["get /_emulator/watches"] << self._serve_watches
        self._insert(NAMESPACES, None, {"kind": "Namespace", "metadata": {"name": "default"}})

    @property
    def resource_version(self) -> int:
        """The cluster-wide resourceVersion: the number of writes so far."""
        return self._rv

    def close_watches(self) -> None:
        """End every open watch stream, e.g. before the server shuts down."""
        self._hub.close()

    # kmock's KubernetesEmulator._handle() stores every write before routing the request;
    # skip that layer: the _serve_* methods below do the writes themselves.
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        del self._requests[: -self.request_log_size]
        return await super(kmock.KubernetesEmulator, self)._handle(request)

    def _get_resources(self) -> list[kmock.resource]:
        # Not kmock's "resources of any stored object": a deleted CRD must leave discovery.
        return list(super(kmock.KubernetesEmulator, self)._get_resources())

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        doc = await super()._serve_version(request)
        assert isinstance(doc, dict)
        assert request.resource is not None
        if request.resource.group == "":
            doc["groupVersion"] = request.resource.version  # kmock says "/v1"
        for entry in doc["resources"]:
            entry["namespaced"] = bool(entry["namespaced"])
            if "/" in entry["name"]:  # subresources have no short names of their own
                entry.update(shortNames=[], categories=[], singularName="")
            if entry["name"].endswith("/status"):
                entry["verbs"] = ["get", "patch", "update"]
        return doc

    async def _serve_watches(self) -> kmock.Payload:
        return {"watches": [scope.describe() for scope in self._hub.scopes]}

    # --- request entry points; each one is atomic under the emulator's lock -------------------

    async def _serve_fetch(self, request: kmock.Request) -> kmock.Payload:
        async with self._lock:
            return self._live(self._locate(request))

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        async with self._lock:
            scope = self._scope(request)
            return {
                "apiVersion": protocol.api_version(scope.resource),
                "kind": f"{self.resources[scope.resource].kind}List",
                "metadata": {"resourceVersion": str(self._rv)},
                "items": self._select(scope),
            }

    # kmock's _serve_watch is an async generator; ours returns a Response to set Content-Type.
    async def _serve_watch(self, request: kmock.Request) -> kmock.Payload:  # type: ignore[override]
        scope = self._scope(request)
        since = request.params.get("resourceVersion") or "0"
        timeout = request.params.get("timeoutSeconds")
        if not since.isdigit():
            raise error(400, "BadRequest", f"invalid resourceVersion: {since!r}")
        stream = self._stream(scope, int(since), float(timeout) if timeout else None)
        return Response(headers={"Content-Type": "application/json"}, payload=stream)

    async def _serve_create(self, request: kmock.Request) -> kmock.Payload:
        async with self._lock:
            resource = self._declared(request)
            body = protocol.body(request)
            namespace = self._namespace_for(resource, request.namespace, body["metadata"])
            return Response(status=201, payload=self._insert(resource, namespace, body))

    async def _serve_update(self, request: kmock.Request) -> kmock.Payload:
        content_type = protocol.header(request, "Content-Type").split(";")[0].strip()
        async with self._lock:
            key = self._locate(request)
            if content_type == patches.STRATEGIC and key[0] in self._custom:
                message = "custom resources support no strategic merge patch; use merge or JSON"
                raise error(415, "UnsupportedMediaType", message)
            try:
                new = patches.apply_patch(self._live(key), request.data, content_type)
            except patches.PatchError as exc:
                raise error(exc.code, exc.reason, exc.message) from exc
            return self._update(key, request.subresource, new)

    async def _serve_replace(self, request: kmock.Request) -> kmock.Payload:
        async with self._lock:
            key = self._locate(request)
            return self._update(key, request.subresource, protocol.body(request))

    async def _serve_delete(self, request: kmock.Request) -> kmock.Payload:
        async with self._lock:
            return self._delete(self._locate(request))

    # --- lookups ------------------------------------------------------------------------------

    def _declared(self, request: kmock.Request) -> kmock.resource:
        resource = request.resource
        if resource is None or resource.plural is None or resource not in self.resources:
            raise error(404, "NotFound", "the server could not find the requested resource")
        return resource

    def _locate(self, request: kmock.Request) -> Key:
        resource = self._declared(request)
        subresources = self.resources[resource].subresources
        if request.name is None:
            raise error(405, "MethodNotAllowed", "this operation needs an object name")
        if request.subresource is not None and request.subresource not in subresources:
            raise error(404, "NotFound", "the server could not find the requested resource")
        if request.subresource not in (None, "status"):
            raise error(405, "MethodNotAllowed", f"{request.subresource!r} is not emulated")
        namespaced = self.resources[resource].namespaced is not False
        return resource, request.namespace if namespaced else None, request.name

    def _live(self, key: Key) -> Obj:
        if not self._exists(key):
            raise protocol.not_found(key[0], key[2])
        obj: Obj = copy.deepcopy(self.objects[key].raw)
        obj.setdefault("metadata", {})
        return obj

    def _exists(self, key: Key) -> bool:
        return key in self.objects and not self.objects[key].deleted

    def _scope(self, request: kmock.Request) -> watching.Scope:
        resource = self._declared(request)
        try:
            selector = Selector.from_params(request.params)
        except ValueError as exc:
            raise error(400, "BadRequest", str(exc)) from exc
        return watching.Scope(resource, request.namespace, request.name, selector)

    def _select(self, scope: watching.Scope) -> list[Obj]:
        found = [(key[1] or "", key[2], obj.raw) for key, obj in self.objects.items()
                 if not obj.deleted and scope.matches(key, obj.raw)]  # fmt: skip
        return [raw for _, _, raw in sorted(found, key=lambda item: item[:2])]

    def _namespace_for(
        self, resource: kmock.resource, url_namespace: str | None, meta: Obj
    ) -> str | None:
        if self.resources[resource].namespaced is False:
            return None
        namespace: str | None = url_namespace or meta.get("namespace")
        if not namespace or meta.get("namespace", namespace) != namespace:
            raise error(400, "BadRequest", "the object's namespace is missing or not the URL's")
        if not self._exists((NAMESPACES, None, namespace)):
            raise protocol.not_found(NAMESPACES, namespace)
        return namespace

    # --- writes -------------------------------------------------------------------------------

    def _insert(self, resource: kmock.resource, namespace: str | None, obj: Obj) -> Obj:
        meta = obj["metadata"]
        name = meta.get("name") or self._generate_name(resource, namespace, meta)
        key: Key = (resource, namespace, name)
        if self._exists(key):
            raise protocol.already_exists(resource, name)
        for field in SERVER_MANAGED:
            meta.pop(field, None)
        meta.update(
            name=name, uid=str(uuid.uuid4()), creationTimestamp=protocol.now(), generation=1
        )
        if namespace is not None:
            meta["namespace"] = namespace
        obj.setdefault("apiVersion", protocol.api_version(resource))
        obj.setdefault("kind", self.resources[resource].kind)
        if "status" in self.resources[resource].subresources:
            obj.pop("status", None)  # the status is written through /status only
        if resource == NAMESPACES:
            obj["status"] = {"phase": "Active"}
        if resource == CRDS:
            self._register_crd(obj)
        self._commit(key, "ADDED", obj, None)
        return obj

    def _generate_name(self, resource: kmock.resource, namespace: str | None, meta: Obj) -> str:
        prefix = meta.get("generateName")
        if not prefix:
            raise error(422, "Invalid", "metadata.name or metadata.generateName is required")
        while True:
            name = f"{prefix}{''.join(random.choices(NAME_ALPHABET, k=5))}"
            if (resource, namespace, name) not in self.objects:
                return name

    def _update(self, key: Key, subresource: str | None, new: Obj) -> Obj:
        """Store a new full state given by PATCH or PUT, with the API server's rules."""
        old = self._live(key)
        requested_rv = (new.get("metadata") or {}).get("resourceVersion")
        if requested_rv and requested_rv != old["metadata"].get("resourceVersion"):
            raise protocol.conflict(key[0], key[2])
        if subresource == "status":  # only .status may change through /status
            new = _with_status(old, new)
        elif "status" in self.resources[key[0]].subresources:  # and never through the object
            new = _with_status(new, old)
        meta = {k: v for k, v in (new.get("metadata") or {}).items() if k not in SERVER_MANAGED}
        meta.update({k: old["metadata"][k] for k in SERVER_MANAGED if k in old["metadata"]})
        new["metadata"] = meta
        if _spec(new) != _spec(old):
            new["metadata"]["generation"] = old["metadata"].get("generation", 0) + 1
        if new == old:
            return old  # a no-op write changes nothing: no new resourceVersion, no event
        if key[0] == CRDS:
            self._register_crd(new)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._remove(key, new)  # the last finalizer is gone: delete for real
        self._commit(key, "MODIFIED", new, old)
        return new

    def _delete(self, key: Key) -> Obj:
        old = self._live(key)
        if old["metadata"].get("deletionTimestamp"):
            return old  # already being deleted; waiting for its finalizers
        if not old["metadata"].get("finalizers"):
            return self._remove(key, old)
        new = copy.deepcopy(old)
        new["metadata"].update(deletionTimestamp=protocol.now(), deletionGracePeriodSeconds=0)
        self._commit(key, "MODIFIED", new, old)
        return new

    def _remove(self, key: Key, obj: Obj) -> Obj:
        final = copy.deepcopy(obj)
        self._commit(key, "DELETED", final, obj)
        if key[0] == CRDS:
            self._unregister_crd(final)
        self._collect_garbage(key, final)
        return final

    def _collect_garbage(self, key: Key, gone: Obj) -> None:
        """Background cascade: delete what the removed object owned or contained."""
        live = {k: o.raw for k, o in self.objects.items() if not o.deleted}
        live_uids = {raw.get("metadata", {}).get("uid") for raw in live.values()}
        for dependent, raw in live.items():
            refs = raw.get("metadata", {}).get("ownerReferences") or []
            owned = any(ref.get("uid") == gone["metadata"].get("uid") for ref in refs)
            orphaned = owned and not any(ref.get("uid") in live_uids for ref in refs)
            contained = key[0] == NAMESPACES and dependent[1] == key[2]
            if (orphaned or contained) and self._exists(dependent):
                self._delete(dependent)

    def _commit(self, key: Key, event: str, obj: Obj, old: Obj | None) -> None:
        """Stamp a new resourceVersion on ``obj``, store it and tell the watchers."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        if event == "DELETED":
            self.objects[key].delete()
        elif key in self.objects:
            self.objects[key].history.append(obj)
        else:
            self.objects[key] = obj
        self._hub.publish(watching.Event(self._rv, event, key, obj, old))

    def _register_crd(self, crd: Obj) -> None:
        try:
            resources = crds.served_resources(crd)
        except ValueError as exc:
            raise error(422, "Invalid", str(exc)) from exc
        for resource, info in resources.items():
            self.resources[resource] = info
            self._custom.add(resource)
        crd["status"] = crds.established_status(crd, crd["metadata"]["creationTimestamp"])

    def _unregister_crd(self, crd: Obj) -> None:
        resources = crds.served_resources(crd)
        for resource in resources:
            self.resources.pop(resource, None)
            self._custom.discard(resource)
        for key in [key for key in self.objects if key[0] in resources and self._exists(key)]:
            self._remove(key, self._live(key))  # the API server drops the custom objects too

    # --- watching -----------------------------------------------------------------------------

    async def _stream(
        self, scope: watching.Scope, since: int, lifetime: float | None
    ) -> AsyncIterator[kmock.Payload]:
        yield b""  # send the headers now: a watch may stay silent for a long time
        async with self._lock:  # writers publish under this lock: no event slips past
            current = [] if since else self._select(scope)
            events = self._hub.subscribe(scope, since, current, lifetime)
        async with contextlib.aclosing(events):  # unsubscribe even if the client hangs up
            async for item in events:
                yield item


@contextlib.asynccontextmanager
async def running_emulator(
    host: str = "127.0.0.1", port: int = 0, *, history_size: int = 1000
) -> AsyncIterator[RealisticEmulator]:
    """Serve a fresh emulator on ``host:port`` (0 picks a free port); see ``emulator.url``."""
    emulator = RealisticEmulator(history_size=history_size)
    async with emulator, kmock.Server(emulator, host=host, port=port or None):
        try:
            yield emulator
        finally:
            emulator.close_watches()


def _with_status(base: Obj, source: Obj) -> Obj:
    """A copy of ``base`` whose ``.status`` comes from ``source`` (or is absent, as there)."""
    result = {k: copy.deepcopy(v) for k, v in base.items() if k != "status"}
    if "status" in source:
        result["status"] = copy.deepcopy(source["status"])
    return result


def _spec(obj: Obj) -> Obj:
    """Everything that bumps metadata.generation when it changes."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}
