"""Cacheyard's CA and node certificates, checked by a real TLS redis-server."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
from engine_addresses import new_address

from cacheyard.engines.certificates import CertificateAuthority

pytestmark = pytest.mark.timeout(30)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ca_is_made_once_with_a_private_key_only_we_can_read(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    cert = ca.ensure()
    first = cert.read_bytes()
    assert mode(tmp_path / "ca" / "ca.key") == 0o600
    assert mode(cert) == 0o600
    assert ca.ensure() == cert and cert.read_bytes() == first
    check = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-ext", "basicConstraints"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Cacheyard CA" in check.stdout and "CA:TRUE" in check.stdout


def test_a_node_certificate_names_its_addresses_and_is_reused(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    issued = ca.issue(tmp_path / "node", "shop-001", ["127.1.2.3", "127.1.2.9"])
    assert mode(issued.key) == 0o600
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca.cert_path), str(issued.cert)],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", str(issued.cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:127.1.2.3" in text and "IP Address:127.1.2.9" in text
    before = issued.cert.read_bytes()
    assert ca.issue(tmp_path / "node", "shop-001", ["127.1.2.9", "127.1.2.3"]) == issued
    assert issued.cert.read_bytes() == before  # same addresses: kept
    ca.issue(tmp_path / "node", "shop-001", ["127.1.2.3"])
    assert issued.cert.read_bytes() != before  # an address less: issued anew


async def test_redis_serves_tls_that_clients_verify_by_address(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    assert binary is not None
    address, other = new_address(), new_address()
    ca = CertificateAuthority(tmp_path / "ca")
    issued = ca.issue(tmp_path / "node", "tls-node", [address])
    server = await asyncio.create_subprocess_exec(
        binary,
        *("--port", "0", "--tls-port", "6379", "--bind", f"{address} {other}"),
        *("--tls-cert-file", str(issued.cert), "--tls-key-file", str(issued.key)),
        *("--tls-ca-cert-file", str(ca.cert_path), "--tls-auth-clients", "no"),
        *("--save", "", "--dir", str(tmp_path)),
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        context = ssl.create_default_context(cafile=str(ca.cert_path))
        for _ in range(200):
            try:
                reader, writer = await asyncio.open_connection(
                    address, 6379, ssl=context, server_hostname=address
                )
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.01)
        writer.write(b"PING\r\n")
        assert await reader.readline() == b"+PONG\r\n"
        writer.close()
        # The same certificate reached by an address it does not name is refused.
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(other, 6379, ssl=context, server_hostname=other)
    finally:
        server.kill()
        await server.wait()
