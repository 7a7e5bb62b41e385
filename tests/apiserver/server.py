"""A real kube-apiserver on etcd, on loopback, for tests: envtest's idea without Go.

Why this module exists: the emulator in `tests/kube` answers like Kubernetes but does not
enforce what the product must live with: structural CRD schemas, RBAC, ServiceAccount
tokens, admission (ValidatingAdmissionPolicy). `KubeApiServer` starts the real binaries
(`scripts/kube-env.sh` builds them once per machine, or reuses them) in a temporary directory:

- etcd on a free port, without fsync;
- kube-apiserver on another, TLS with a throwaway CA (`tests.apiserver.pki`), RBAC
  authorization, a static token file (an admin in `system:masters`, plus named users with no
  groups but `system:authenticated`), ServiceAccount token issuance, the default admission
  plugins (ValidatingAdmissionPolicy among them), and an audit log of every watch and every
  ServiceAccount's call (`tests.apiserver.audit`).

It writes an admin kubeconfig, and kubeconfigs for a static user or a ServiceAccount (created
if missing, its token issued by the TokenRequest API through `kubectl create token`). No
controller-manager runs: nothing garbage-collects, namespaces never finish deleting, the
aggregated ClusterRoles (admin, edit, view) are empty, and pods are never scheduled.

    with KubeApiServer(users=("alice",)) as server:
        server.kubectl("get", "ns")
        server.kubectl("auth", "whoami", kubeconfig=server.user_kubeconfig("alice"))
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import yaml

from sandbox.services import ServiceError, free_port, stop_process, wait_until
from tests import known_secrets, leakscan
from tests.apiserver.audit import POLICY, AuditLog
from tests.apiserver.pki import Pki, write_pki

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBE_ENV = REPO_ROOT / "scripts" / "kube-env.sh"
KUBECTL = "/usr/bin/kubectl" if os.path.exists("/usr/bin/kubectl") else shutil.which("kubectl")
ADMIN = "admin"
ADMIN_GROUPS = ("system:masters",)
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"  # a setting only: no traffic goes there
STARTUP_TIMEOUT = 60.0
PR_SET_PDEATHSIG = 1


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl run; unlike its parent, its message includes kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {self.stderr}\nstdout: {self.output}"


def binaries() -> Path:
    """The directory with kube-apiserver, etcd and helm: built now if this machine lacks them."""
    done = subprocess.run([str(KUBE_ENV)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceError(f"{KUBE_ENV} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


class KubeApiServer:
    """etcd plus kube-apiserver in one temporary directory; `start`, use, `stop`."""

    def __init__(self, *, users: Sequence[str] = ("alice", "bob"), bin_dir: Path | None = None):
        self.users = tuple(users)
        self.bin_dir = bin_dir
        self.dir: Path | None = None
        self.port = 0
        self.started_in = 0.0
        """Seconds from `start` until /readyz answered ok (the binaries' build excluded)."""
        self._tokens: dict[str, str] = {}
        self._processes: list[subprocess.Popen[bytes]] = []
        self._pki: Pki | None = None
        self.audit = AuditLog(Path("/nonexistent"))
        """The audit log as it grows: open watches (set at `start`)."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def workdir(self) -> Path:
        if self.dir is None:
            raise RuntimeError("the API server is not started")
        return self.dir

    @property
    def ca_cert(self) -> Path:
        """The CA that signed the serving certificate: what clients verify the server with."""
        if self._pki is None:
            raise RuntimeError("the API server is not started")
        return self._pki.ca_cert

    @property
    def admin_kubeconfig(self) -> Path:
        """A kubeconfig of the admin user (group system:masters: RBAC never refuses it)."""
        return self.workdir / f"{ADMIN}.kubeconfig"

    @property
    def pids(self) -> list[int]:
        """The process ids of etcd and kube-apiserver while they run."""
        return [process.pid for process in self._processes]

    @property
    def log(self) -> Path:
        """kube-apiserver's stdout and stderr."""
        return self.workdir / "kube-apiserver.log"

    @property
    def audit_log(self) -> Path:
        """The audit log (JSON lines) under `tests.apiserver.audit.POLICY`."""
        return self.workdir / "audit.jsonl"

    def start(self) -> Self:
        """Start etcd, then kube-apiserver; return once /readyz answers ok."""
        bin_dir = self.bin_dir = self.bin_dir or binaries()
        started = time.monotonic()
        self.dir = Path(tempfile.mkdtemp(prefix="rollback-apiserver."))
        try:
            self._pki = write_pki(self.workdir / "pki")
            self.port = free_port()
            self._write_tokens()
            (self.workdir / "audit-policy.yaml").write_text(yaml.safe_dump(POLICY))
            self.audit = AuditLog(self.audit_log)
            etcd_url = self._start_etcd(bin_dir)
            self._start_apiserver(bin_dir, etcd_url)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd (SIGTERM, then SIGKILL); remove the directory."""
        while self._processes:
            stop_process(self._processes.pop(), timeout=10)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def token(self, user: str) -> str:
        """The static bearer token of `user` (the admin or one of `users`)."""
        try:
            return self._tokens[user]
        except KeyError:
            raise KeyError(f"no static user {user!r}; known: {sorted(self._tokens)}") from None

    def user_kubeconfig(self, user: str) -> Path:
        """A kubeconfig for the static-token user `user`."""
        return self._write_kubeconfig(user, self.token(user))

    def service_account_kubeconfig(
        self, namespace: str, name: str, *, duration: str = "1h"
    ) -> Path:
        """A kubeconfig for ServiceAccount `namespace/name` (both created if missing), with a
        token from the TokenRequest API; the file is `<namespace>.<name>.kubeconfig`."""
        self.apply(_namespace(namespace), _service_account(namespace, name))
        created = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}")
        token = created.stdout.strip()
        known_secrets.register(token, f"ServiceAccount {namespace}/{name} token")
        return self._write_kubeconfig(f"{namespace}.{name}", token)

    def apply(self, *manifests: dict[str, object], kubeconfig: Path | None = None) -> None:
        """`kubectl apply` these objects (as the admin unless `kubeconfig` says otherwise)."""
        documents = yaml.safe_dump_all(manifests)
        self.kubectl("apply", "-f", "-", stdin=documents, kubeconfig=kubeconfig)

    def kubectl_argv(self, *args: str, kubeconfig: Path | None = None) -> list[str]:
        """The full kubectl command line, as the admin unless `kubeconfig` is given."""
        if KUBECTL is None:
            raise ServiceError("kubectl is not installed (the base image has /usr/bin/kubectl)")
        config = kubeconfig or self.admin_kubeconfig
        flags = ["--kubeconfig", str(config), "--cache-dir", str(self.workdir / "kubectl-cache")]
        return [KUBECTL, *flags, *args]

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        check: bool = True,
        stdin: str | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this server; raise KubectlError on failure if `check`."""
        argv = self.kubectl_argv(*args, kubeconfig=kubeconfig)
        done = subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=timeout)
        if check and done.returncode != 0:
            raise KubectlError(done.returncode, argv, done.stdout, done.stderr)
        return done

    def _write_tokens(self) -> None:
        """The static token file: `token,user,uid[,"groups"]` per line."""
        lines = []
        for user in (ADMIN, *self.users):
            token = f"{user}-{secrets.token_hex(16)}"
            known_secrets.register(token, f"API server token of {user}")
            self._tokens[user] = token
            lines.append(_token_line(token, user, ADMIN_GROUPS if user == ADMIN else ()))
        path = self.workdir / "tokens.csv"
        path.touch(mode=0o600)
        path.write_text("\n".join(lines) + "\n")
        self._write_kubeconfig(ADMIN, self._tokens[ADMIN])

    def _write_kubeconfig(self, name: str, token: str) -> Path:
        path = self.workdir / f"{name}.kubeconfig"
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(_kubeconfig(self.url, self.ca_cert, name, token)))
        return path

    def _start_etcd(self, bin_dir: Path) -> str:
        client, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
        argv = [
            str(bin_dir / "etcd"), "--name=default", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}", "--unsafe-no-fsync", "--log-level=warn",
        ]  # fmt: skip
        process = self._spawn(argv, self.workdir / "etcd.log")
        ready = _answers_ok(f"{client}/health", verify=False)
        self._wait(process, ready, "etcd", self.workdir / "etcd.log")
        return client

    def _start_apiserver(self, bin_dir: Path, etcd_url: str) -> None:
        assert self._pki is not None
        argv = [str(bin_dir / "kube-apiserver"), *self._apiserver_flags(etcd_url, self._pki)]
        process = self._spawn(argv, self.log)
        leakscan.watch_file(self.log, f"kube-apiserver.log of {self.workdir}")
        context = ssl.create_default_context(cafile=str(self._pki.ca_cert))
        ready = _answers_ok(f"{self.url}/readyz", verify=context, token=self._tokens[ADMIN])
        self._wait(process, ready, "kube-apiserver", self.log)

    def _apiserver_flags(self, etcd_url: str, pki: Pki) -> list[str]:
        return [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}", f"--cert-dir={self.workdir / 'certs'}",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            "--authorization-mode=RBAC", f"--token-auth-file={self.workdir / 'tokens.csv'}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--enable-admission-plugins=ValidatingAdmissionPolicy",  # on by default; said aloud
            f"--audit-policy-file={self.workdir / 'audit-policy.yaml'}",
            f"--audit-log-path={self.audit_log}", "--audit-log-maxsize=0",
            "--endpoint-reconciler-type=none", "--allow-privileged=true", "--profiling=false",
        ]  # fmt: skip

    def _spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )
        self._processes.append(process)
        return process

    def _wait(
        self, process: subprocess.Popen[bytes], ready: Callable[[], bool], what: str, log: Path
    ) -> None:
        try:
            wait_until(
                lambda: process.poll() is not None or ready(), timeout=STARTUP_TIMEOUT, what=what
            )
        except ServiceError as error:
            raise ServiceError(f"{error}:\n{_tail(log)}") from None
        if process.poll() is not None:
            raise ServiceError(f"{what} exited with {process.returncode}:\n{_tail(log)}")


def _answers_ok(
    url: str, *, verify: ssl.SSLContext | bool, token: str | None = None
) -> Callable[[], bool]:
    """A probe: does GET `url` answer 200 right now?"""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def probe() -> bool:
        try:
            return httpx.get(url, headers=headers, verify=verify, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def _die_with_parent() -> None:
    """In the child before exec: be killed when the test process dies, even by SIGKILL.

    SIGKILL, not SIGTERM: etcd gets it at the same moment, and kube-apiserver's graceful
    shutdown would wait for etcd forever; nothing of a dead run's server is worth keeping."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _token_line(token: str, user: str, groups: Sequence[str]) -> str:
    """A line of the static token file: `token,user,uid` and the groups, quoted, if any."""
    line = f"{token},{user},uid-{user}"
    return f'{line},"{",".join(groups)}"' if groups else line


def _tail(log: Path, size: int = 4000) -> str:
    return log.read_text(errors="replace")[-size:] if log.exists() else "(no log)"


def _kubeconfig(url: str, ca_cert: Path, user: str, token: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": url, "certificate-authority": str(ca_cert)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "test", "user": user}}],
        "current-context": user,
    }


def _namespace(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _service_account(namespace: str, name: str) -> dict[str, object]:
    metadata = {"name": name, "namespace": namespace}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}
