"""The kubectl plugin as one file that needs only Python: a zipapp, its krew archive and manifest.

Why: people who run `kubectl rollback` should not have to install the operator's server
libraries (kopf, the Kubernetes client, boto3, psycopg, pydantic). The plugin's Rollback and
policy commands need only the standard library and PyYAML, so the zipapp holds the plugin's
modules and PyYAML's pure-Python code, and runs with any `python3` >= 3.11. `candidates`, which
asks the providers itself, says what to install when their libraries are missing. The build is
reproducible (fixed timestamps and order), so the manifest's sha256 is checked against a
rebuild (`make krew`; a test fails on drift).

    python -m rollback_operator.plugin_build [--dist dist] [--manifest plugins/krew/rollback.yaml]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

from rollback_operator import __version__

PACKAGE = Path(__file__).resolve().parent
Manifest = dict[str, Any]
LEAVES_OUT = {"plugin_build.py"}  # every other plugin*.py module goes in, as the commands grow
MAIN = """\
import sys

if sys.version_info < (3, 11):
    sys.exit("kubectl-rollback needs Python 3.11 or newer; this is " + sys.version.split()[0])
from rollback_operator.plugin import main

sys.exit(main())
"""
SHEBANG = b"#!/usr/bin/env python3\n"
EPOCH = (2020, 1, 1, 0, 0, 0)
RELEASES = "https://github.com/mindmate/rollback-operator/releases/download"
LICENSE = "Apache-2.0 (rollback-operator); PyYAML inside: MIT, its LICENSE file is included.\n"


def zipapp() -> bytes:
    """The plugin and PyYAML in one executable zip (a shebang line, then the archive)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in modules():
            _add(archive, f"rollback_operator/{name}", (PACKAGE / name).read_bytes())
        yaml_dir = Path(yaml.__file__).parent
        for source in sorted(yaml_dir.glob("*.py")):
            _add(archive, f"yaml/{source.name}", source.read_bytes())
        _add(archive, "yaml/LICENSE", _pyyaml_license())
        _add(archive, "__main__.py", MAIN.encode())
    return SHEBANG + buffer.getvalue()


def modules() -> list[str]:
    """The package's files the plugin needs: its own modules and the API's names."""
    plugin = sorted(p.name for p in PACKAGE.glob("plugin*.py") if p.name not in LEAVES_OUT)
    return ["__init__.py", "api/__init__.py", *plugin]


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
    archive.writestr(info, data)


def _pyyaml_license() -> bytes:
    from importlib import metadata

    files = metadata.files("PyYAML") or []
    found = [f for f in files if f.name == "LICENSE"]
    if not found:
        raise SystemExit("PyYAML's LICENSE is not installed; cannot ship PyYAML without it")
    return Path(str(found[0].locate())).read_bytes()


def krew_archive(app: bytes) -> bytes:
    """The tar.gz krew unpacks: `kubectl-rollback` (executable) and LICENSE."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in (("kubectl-rollback", app, 0o755),
                                 ("LICENSE", LICENSE.encode(), 0o644)):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    gz = buffer.getvalue()
    return gz[:4] + b"\0\0\0\0" + gz[8:]  # gzip's own mtime field, zeroed: reproducible


def manifest(archive: bytes, version: str = __version__, releases: str = RELEASES) -> Manifest:
    """The krew Plugin manifest for this archive (krew.sigs.k8s.io's v1alpha2 format)."""
    tag = f"v{version}"
    return {
        "apiVersion": "krew.googlecontainertools.github.com/v1alpha2",
        "kind": "Plugin",
        "metadata": {"name": "rollback"},
        "spec": {
            "version": tag,
            "homepage": releases.rsplit("/releases/", 1)[0],
            "shortDescription": "Plan, start, approve and watch web app rollbacks",
            "description": "The kubectl plugin of rollback-operator: plan, start, approve, abort "
            "and watch Rollbacks (status --watch exits by outcome, for CI), show and suspend "
            "RollbackPolicies, -o json|yaml. Needs python3 >= 3.11 on PATH.",
            "caveats": "Needs python3 >= 3.11. `kubectl rollback candidates` also needs the "
            "operator's libraries: pip install rollback-operator.",
            "platforms": [{
                "selector": {"matchExpressions": [
                    {"key": "os", "operator": "In", "values": ["linux", "darwin"]}]},
                "uri": f"{releases}/{tag}/kubectl-rollback.tar.gz",
                "sha256": hashlib.sha256(archive).hexdigest(),
                "files": [{"from": "kubectl-rollback", "to": "."}, {"from": "LICENSE", "to": "."}],
                "bin": "kubectl-rollback",
            }],
        },
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Write dist/kubectl-rollback.pyz, dist/kubectl-rollback.tar.gz and the krew manifest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=Path("dist"))
    parser.add_argument("--manifest", type=Path, default=Path("plugins/krew/rollback.yaml"))
    parser.add_argument("--releases", default=RELEASES, help="where release assets live")
    args = parser.parse_args(argv)
    app = zipapp()
    archive = krew_archive(app)
    args.dist.mkdir(parents=True, exist_ok=True)
    (args.dist / "kubectl-rollback.pyz").write_bytes(app)
    (args.dist / "kubectl-rollback.pyz").chmod(0o755)
    (args.dist / "kubectl-rollback.tar.gz").write_bytes(archive)
    args.manifest.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated by `make krew` (python -m rollback_operator.plugin_build); do not edit.\n"
    body = yaml.safe_dump(manifest(archive, releases=args.releases), sort_keys=False)
    args.manifest.write_text(header + body)
    print(f"{args.dist}/kubectl-rollback.tar.gz sha256 {hashlib.sha256(archive).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
