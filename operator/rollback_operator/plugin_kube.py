"""The kubectl plugin's Kubernetes calls: a few REST requests and one watch, over the stdlib.

Why not the client library the operator uses: importing it takes longer than the plugin's whole
start-up budget (half a second for `kubectl rollback list`), and the plugin makes only plain
JSON requests against our own resources. Errors keep the API server's own message; a 404 that
is not about an object (the server does not serve the kind) says the CRDs are missing.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import tempfile
import time
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from rollback_operator import __version__
from rollback_operator.api import GROUP, VERSION
from rollback_operator.plugin_kubeconfig import Connection

Doc = dict[str, Any]
INSTALL_HINT = "rollback-operator crds | kubectl apply -f -"
MERGE_PATCH = "application/merge-patch+json"
RETRIES, RETRY_WAIT_LIMIT = 5, 2.0


class KubeError(Exception):
    """A refused or failed request; `status` 0 when the server was not reached."""

    def __init__(self, status: int, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.reason = status, reason

    @property
    def not_found(self) -> bool:
        """An object that does not exist (not a kind the server does not serve)."""
        return self.status == 404 and self.reason == "NotFound"


def path_of(plural: str, namespace: str | None, name: str | None = None) -> str:
    """The REST path of our resources: in one namespace, or in all (`namespace` None)."""
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"/apis/{GROUP}/{VERSION}{scope}/{plural}" + (f"/{name}" if name else "")


class Kube:
    """One API server, one user; a kept-alive connection for requests, another per watch."""

    def __init__(
        self, conn: Connection, timeout: float = 30.0, *, impersonate: str | None = None
    ) -> None:
        self.conn, self.timeout, self.impersonate = conn, timeout, impersonate
        parts = urlsplit(conn.server)
        self._https, self._host = parts.scheme == "https", parts.hostname or ""
        self._port, self._prefix = parts.port, parts.path.rstrip("/")
        self._tls = _tls_context(conn) if self._https else None
        self._http: http.client.HTTPConnection | None = None

    def get(self, path: str, **query: str) -> Doc:
        """GET a JSON document."""
        return self.request("GET", path, query=query)

    def request(
        self, method: str, path: str, body: Doc | None = None, *,
        query: dict[str, str] | None = None, content_type: str = "application/json",
    ) -> Doc:  # fmt: skip
        """One request; its JSON answer, or KubeError with the server's explanation. A 429 or
        503 (the server asks to come back: nothing was done) is retried a few times, as kubectl
        does, after the Retry-After it names."""
        url = self._url(path, query)
        payload = json.dumps(body).encode() if body is not None else None
        headers = self._headers() | ({"Content-Type": content_type} if payload else {})
        for attempt in range(RETRIES + 1):
            status, data, retry_after = self._send(method, url, payload, headers)
            if status not in (429, 503) or attempt == RETRIES:
                break
            time.sleep(min(retry_after, RETRY_WAIT_LIMIT))
        if status >= 400:
            raise _refusal(status, data, f"{method} {path}")
        found: Doc = json.loads(data) if data else {}
        return found

    def _send(
        self, method: str, url: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, float]:
        try:
            connection = self._http = self._http or self._connect(self.timeout)
            connection.request(method, url, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise KubeError(0, f"cannot reach {self.conn.server}: {error}") from None
        retry_after = response.getheader("Retry-After") or "1"
        return response.status, data, float(retry_after) if retry_after.isdigit() else 1.0

    def watch(self, path: str, timeout: float, **query: str) -> Iterator[Doc]:
        """The watch events of `path` (a list) for at most `timeout` seconds."""
        seconds = max(int(timeout), 1)
        url = self._url(path, {**query, "watch": "1", "timeoutSeconds": str(seconds)})
        connection = self._connect(seconds + 10.0)
        try:
            connection.request("GET", url, headers=self._headers())
            response = connection.getresponse()
            if response.status >= 400:
                raise _refusal(response.status, response.read(), f"watch {path}")
            while line := response.readline():
                yield json.loads(line)
        except (OSError, http.client.HTTPException) as error:
            raise KubeError(0, f"watch of {path} ended: {error}") from None
        finally:
            connection.close()

    def close(self) -> None:
        """Drop the kept-alive connection."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def _url(self, path: str, query: dict[str, str] | None) -> str:
        return self._prefix + path + (f"?{urlencode(query)}" if query else "")

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._tls
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"kubectl-rollback/{__version__}"}
        if self.conn.token:
            headers["Authorization"] = f"Bearer {self.conn.token}"
        elif self.conn.basic:
            pair = b64encode(":".join(self.conn.basic).encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        if self.impersonate:  # the server checks the `impersonate` verb, as for kubectl --as
            headers["Impersonate-User"] = self.impersonate
        return headers


def _refusal(status: int, data: bytes, what: str) -> KubeError:
    try:
        said = json.loads(data)
    except ValueError:
        said = None
    if not isinstance(said, dict) or said.get("kind") != "Status":
        if status == 404:
            return KubeError(404, f"the CRDs are not installed: {INSTALL_HINT}", reason="NoKind")
        return KubeError(status, f"{what}: HTTP {status}: {data[:200].decode(errors='replace')}")
    reason = str(said.get("reason", ""))
    message = str(said.get("message", "")) or f"HTTP {status}"
    if status in (401, 403):
        message = f"no permission: {message} (check your RBAC role)"
    return KubeError(status, message, reason=reason)


def _tls_context(conn: Connection) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=conn.ca_file, cadata=conn.ca_data)
    if conn.insecure:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if conn.cert_file and conn.key_file:
        context.load_cert_chain(conn.cert_file, conn.key_file)
    elif conn.cert_pem and conn.key_pem:
        _load_pem_pair(context, conn.cert_pem, conn.key_pem)
    return context


def _load_pem_pair(context: ssl.SSLContext, cert: str, key: str) -> None:
    """ssl loads a client key only from a file: a private one, removed at once."""
    with tempfile.TemporaryDirectory(prefix="kubectl-rollback-") as private:
        pair = Path(private) / "client.pem"
        fd = os.open(pair, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"{cert.strip()}\n{key.strip()}\n")
        context.load_cert_chain(str(pair))
