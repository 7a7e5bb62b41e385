"""The keys and certificates one test API server needs, made in Python for each start.

Why this module exists: kube-apiserver serves only TLS and signs ServiceAccount tokens with a
private key; both must exist before it starts, and the kubeconfigs must trust the serving
certificate. A throwaway CA (EC P-256: quick to make) signs a serving certificate for
127.0.0.1, ::1 and localhost; the ServiceAccount key is RSA 2048, the kind clusters use.
Nothing here is kept: every server gets new keys in its own directory.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

VALIDITY = datetime.timedelta(days=2)
SERVING_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Pki:
    """Where the files are: the CA the clients trust, the serving pair, the token-signing key."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path


def write_pki(directory: Path) -> Pki:
    """Make every key and certificate in `directory` (mode 0600 for the private keys)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("rollback-test-ca", ca_key.public_key(), ca_key, issuer=None)
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving = _certificate("kube-apiserver", serving_key.public_key(), ca_key, issuer=ca)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        service_account_key=directory / "service-account.key",
    )
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    _write_private(pki.serving_key, serving_key)
    _write_private(pki.service_account_key, rsa.generate_private_key(65537, 2048))
    return pki


def _certificate(
    name: str,
    public_key: ec.EllipticCurvePublicKey,
    signer: ec.EllipticCurvePrivateKey,
    *,
    issuer: x509.Certificate | None,
) -> x509.Certificate:
    """A CA certificate when `issuer` is None, else a serving certificate it signs."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(issuer.subject if issuer else _name(name))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(_serving_names(), critical=False).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _serving_names() -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for name in SERVING_NAMES:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(names)


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
