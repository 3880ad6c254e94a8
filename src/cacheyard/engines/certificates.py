"""Cacheyard's own certificate authority, for TLS in transit.

One CA per data directory signs a certificate for each node, naming every
address clients may reach it by (its own, and the endpoints it may bind).
Clients trust the CA certificate (``cacheyard ca`` prints its path), so
``redis-cli --tls --cacert`` verifies nodes by address. Private keys are
written with mode 0600 and never leave the data directory.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CA_NAME = "Cacheyard CA"
CA_LIFETIME = timedelta(days=3650)
NODE_LIFETIME = timedelta(days=397)  # the longest lifetime browsers and tools accept
# A certificate is renewed when less than this is left.
RENEW_BEFORE = timedelta(days=30)
# Keys and certificates alike (issue 5): whoever runs clients reads the CA's
# certificate as the data directory's owner, or gets a copy from `cacheyard ca`.
PRIVATE = 0o600


@dataclass(frozen=True)
class NodeCertificate:
    cert: Path
    key: Path


class CertificateAuthority:
    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def cert_path(self) -> Path:
        return self._root / CA_CERT

    def ensure(self) -> Path:
        """Create the CA on first use; the path of its certificate."""
        if self.cert_path.exists() and (self._root / CA_KEY).exists():
            return self.cert_path
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
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
            .sign(key, hashes.SHA256())
        )
        _write(self._root / CA_KEY, _key_pem(key), PRIVATE)
        _write(self.cert_path, cert.public_bytes(serialization.Encoding.PEM), PRIVATE)
        return self.cert_path

    def issue(self, directory: Path, common_name: str, addresses: Sequence[str]) -> NodeCertificate:
        """A certificate for ``addresses`` (IP subject alternative names) in ``directory``,
        reused while it names the same addresses and is not close to expiring."""
        self.ensure()
        issued = NodeCertificate(directory / "node.crt", directory / "node.key")
        wanted = {ipaddress.ip_address(a) for a in addresses}
        if _still_good(issued.cert, wanted):
            return issued
        ca_key = serialization.load_pem_private_key((self._root / CA_KEY).read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + NODE_LIFETIME)
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(a) for a in sorted(wanted, key=str)]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                # Nodes are servers to clients and clients of their primary (replication).
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        _write(issued.key, _key_pem(key), PRIVATE)
        _write(issued.cert, cert.public_bytes(serialization.Encoding.PEM), PRIVATE)
        return issued


def _still_good(path: Path, wanted: set[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.not_valid_after_utc - datetime.now(UTC) < RENEW_BEFORE:
        return False
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(names.get_values_for_type(x509.IPAddress)) == wanted


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Written under a temporary name with its final mode from the start, then renamed."""
    partial = path.with_name(path.name + ".tmp")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
