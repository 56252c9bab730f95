"""Certificates and keys for the local control plane (all local-dev, generated per data directory).

One CA signs the API server's serving certificate, the client certificates (an admin in
``system:masters`` and the controller manager) and KServe's webhook serving certificate. The
service-account signing key pair is separate. Everything is written once under ``pki/`` and
reused on a warm start, so kubeconfigs and stored tokens stay valid.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
# The first address of --service-cluster-ip-range: the in-cluster "kubernetes" Service.
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: CertPair
    apiserver: CertPair
    admin: CertPair
    controller_manager: CertPair
    webhook: CertPair  # KServe's webhook server on 127.0.0.1 (the same CA is its caBundle)
    service_account_key: Path
    service_account_pub: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


def _issue(
    pair: CertPair,
    *,
    common_name: str,
    organization: str | None = None,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    server_names: tuple[str, ...] = (),
    client: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = _name(common_name, organization)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca[0].subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )
    if ca is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        if server_names:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            alt_names: list[x509.GeneralName] = []
            for name in server_names:
                try:
                    alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
                except ValueError:
                    alt_names.append(x509.DNSName(name))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        ).add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    cert = builder.sign(ca[1] if ca else key, hashes.SHA256())
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pair.key, key)
    return cert, key


def ensure_pki(directory: Path) -> Pki:
    """The control plane's certificates and keys under ``directory``, created when missing."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)

    def pair(name: str) -> CertPair:
        return CertPair(directory / f"{name}.crt", directory / f"{name}.key")

    pki = Pki(
        ca=pair("ca"),
        apiserver=pair("apiserver"),
        admin=pair("admin"),
        controller_manager=pair("kube-controller-manager"),
        webhook=pair("kserve-webhook"),
        service_account_key=directory / "service-account.key",
        service_account_pub=directory / "service-account.pub",
    )
    every_file = [
        *(p for cp in (pki.ca, pki.apiserver, pki.admin, pki.controller_manager, pki.webhook)
          for p in (cp.cert, cp.key)),
        pki.service_account_key,
        pki.service_account_pub,
    ]  # fmt: skip
    if all(path.is_file() for path in every_file):
        return pki

    ca = _issue(pki.ca, common_name="stroke-mlops-local-ca")
    _issue(
        pki.apiserver,
        common_name="kube-apiserver",
        ca=ca,
        server_names=(
            "127.0.0.1",
            "localhost",
            KUBERNETES_SERVICE_IP,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
    )
    _issue(pki.admin, common_name="stroke-mlops-admin", organization="system:masters", ca=ca,
           client=True)  # fmt: skip
    _issue(pki.controller_manager, common_name="system:kube-controller-manager", ca=ca,
           client=True)  # fmt: skip
    _issue(pki.webhook, common_name="kserve-webhook", ca=ca, server_names=("127.0.0.1",))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki.service_account_key, sa_key)
    pki.service_account_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki
