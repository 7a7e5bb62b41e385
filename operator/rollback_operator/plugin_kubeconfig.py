"""Where the kubectl plugin connects, and as whom: kubectl's own rules, without a client library.

The plugin must start in well under half a second, and the Kubernetes client library alone
takes longer than that to import; so the plugin reads kubeconfig itself (stdlib, and PyYAML,
which is pure Python). The rules are kubectl's: `--kubeconfig FILE`, else the files in
`KUBECONFIG` (merged, the first to set a value wins), else `~/.kube/config`; `--context` picks
a context; only when no kubeconfig file exists, and none was named, does the in-cluster
ServiceAccount serve. Credentials: token, tokenFile, client certificate (file or data), basic
auth, an `exec` credential plugin (as EKS, GKE and AKS use) and an OIDC `auth-provider`'s
id-token.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
Doc = dict[str, Any]


class ConfigError(Exception):
    """The configuration cannot be used; the message says which file or field."""


class Connection:
    """Everything needed to call one API server as one user. (A plain class: `dataclasses`
    costs the plugin's start-up a tenth of its budget.)"""

    def __init__(
        self, server: str, namespace: str, *, source: str = "", ca_file: str | None = None,
        ca_data: str | None = None, insecure: bool = False, token: str | None = None,
    ) -> None:  # fmt: skip
        self.server, self.namespace, self.source = server, namespace, source
        self.ca_file, self.ca_data, self.insecure = ca_file, ca_data, insecure  # CA: PEM text
        self.token = token
        self.basic: tuple[str, str] | None = None
        self.cert_pem: str | None = None  # client certificate and key, PEM text
        self.key_pem: str | None = None
        self.cert_file: str | None = None
        self.key_file: str | None = None


def load(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    environ: Any = os.environ,
    service_account: Path = SERVICE_ACCOUNT,
) -> Connection:
    """The connection kubectl would use with the same flags and environment."""
    files = _files(kubeconfig, environ)
    if kubeconfig is not None and not Path(kubeconfig).is_file():
        raise ConfigError(f"--kubeconfig {kubeconfig}: no such file")
    present = [path for path in files if path.is_file()]
    if not present:
        if context is not None:
            raise ConfigError(f"--context {context}: no kubeconfig found ({_describe(files)})")
        if environ.get("KUBERNETES_SERVICE_HOST") and (service_account / "token").is_file():
            return _in_cluster(environ, service_account)
        raise ConfigError(f"no kubeconfig found ({_describe(files)}) and not in a pod")
    return _from_kubeconfig(_merge(present), context, _describe(present))


def contexts(kubeconfig: str | None = None, *, environ: Any = os.environ) -> list[str]:
    """The context names the kubeconfig files hold (for `--context` completion)."""
    present = [path for path in _files(kubeconfig, environ) if path.is_file()]
    return sorted(_merge(present)["contexts"]) if present else []


def _files(kubeconfig: str | None, environ: Any) -> list[Path]:
    if kubeconfig is not None:
        return [Path(kubeconfig)]
    listed = [p for p in str(environ.get("KUBECONFIG", "")).split(os.pathsep) if p]
    if listed:
        return [Path(p).expanduser() for p in listed]
    return [Path(environ.get("HOME", str(Path.home()))) / ".kube" / "config"]


def _describe(files: list[Path]) -> str:
    return ", ".join(str(p) for p in files)


def _merge(files: list[Path]) -> Doc:
    """One kubeconfig from several: for each named cluster, user and context, and for
    current-context, the first file that sets it wins (kubectl's rule). Relative paths are
    made absolute against the file that holds them."""
    merged: Doc = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"{path}: {error}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: not a kubeconfig")
        merged["current-context"] = merged["current-context"] or doc.get("current-context", "")
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for entry in doc.get(section) or []:
                body = _absolute(dict(entry.get(key) or {}), path.parent)
                merged[section].setdefault(entry.get("name"), body)
    return merged


_PATH_FIELDS = ("certificate-authority", "client-certificate", "client-key", "tokenFile")


def _absolute(body: Doc, base: Path) -> Doc:
    for name in _PATH_FIELDS:
        if body.get(name) and not Path(body[name]).is_absolute():
            body[name] = str(base / body[name])
    return body


def _from_kubeconfig(doc: Doc, context: str | None, source: str) -> Connection:
    name = context or doc["current-context"]
    if not name:
        raise ConfigError(f"{source}: no current-context; pass --context")
    if name not in doc["contexts"]:
        known = ", ".join(sorted(doc["contexts"])) or "none"
        raise ConfigError(f"context {name!r} not found in {source} (contexts: {known})")
    ctx = doc["contexts"][name]
    cluster = doc["clusters"].get(ctx.get("cluster"))
    if cluster is None or not cluster.get("server"):
        raise ConfigError(f"context {name!r}: cluster {ctx.get('cluster')!r} has no server")
    conn = Connection(
        server=str(cluster["server"]).rstrip("/"),
        namespace=ctx.get("namespace") or "default",
        ca_file=cluster.get("certificate-authority"),
        ca_data=_decoded(cluster.get("certificate-authority-data")),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        source=f"context {name!r} of {source}",
    )
    _authenticate(conn, doc["users"].get(ctx.get("user")) or {})
    return conn


def _decoded(data: str | None) -> str | None:
    return base64.b64decode(data).decode() if data else None


def _authenticate(conn: Connection, user: Doc) -> None:
    conn.cert_pem = _decoded(user.get("client-certificate-data"))
    conn.key_pem = _decoded(user.get("client-key-data"))
    conn.cert_file, conn.key_file = user.get("client-certificate"), user.get("client-key")
    if user.get("token"):
        conn.token = str(user["token"])
    elif user.get("tokenFile"):
        conn.token = Path(user["tokenFile"]).read_text().strip()
    elif user.get("username"):
        conn.basic = (str(user["username"]), str(user.get("password", "")))
    elif user.get("exec"):
        _exec_credential(conn, user["exec"])
    elif user.get("auth-provider"):
        provider = user["auth-provider"]
        token = (provider.get("config") or {}).get("id-token")
        if not token:
            raise ConfigError(
                f"{conn.source}: auth-provider {provider.get('name')!r} has no id-token; "
                "run `kubectl get ns` once so kubectl refreshes it, or use an exec plugin"
            )
        conn.token = str(token)


def _exec_credential(conn: Connection, spec: Doc) -> None:
    """Run the user's credential plugin as kubectl does and take its token or certificate."""
    api_version = spec.get("apiVersion", "client.authentication.k8s.io/v1")
    info = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    env = {**os.environ, "KUBERNETES_EXEC_INFO": json.dumps(info)}
    env |= {str(e["name"]): str(e["value"]) for e in spec.get("env") or []}
    argv = [str(spec["command"]), *(str(a) for a in spec.get("args") or [])]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfigError(f"{conn.source}: credential plugin {argv[0]}: {error}") from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()[-1:] or ["no message"]
        raise ConfigError(
            f"{conn.source}: credential plugin {argv[0]} exited {done.returncode}: {said[0]}"
        )
    try:
        status = json.loads(done.stdout).get("status") or {}
    except ValueError:
        raise ConfigError(f"{conn.source}: credential plugin {argv[0]} printed no JSON") from None
    conn.token = status.get("token") or conn.token
    conn.cert_pem = status.get("clientCertificateData") or conn.cert_pem
    conn.key_pem = status.get("clientKeyData") or conn.key_pem


def _in_cluster(environ: Any, account: Path) -> Connection:
    host, port = environ["KUBERNETES_SERVICE_HOST"], environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host
    namespace_file = account / "namespace"
    return Connection(
        server=f"https://{host}:{port}",
        namespace=namespace_file.read_text().strip() if namespace_file.is_file() else "default",
        ca_file=str(account / "ca.crt"),
        token=(account / "token").read_text().strip(),
        source="the in-cluster ServiceAccount",
    )
