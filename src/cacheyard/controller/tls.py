"""What secures a node: its TLS files (certificates issued before a start) and
the ACL users it starts with; and a TLS Memcached cluster's configuration
endpoint, which has a certificate of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cacheyard.controller.layout import Layout
from cacheyard.domain.acl import AclUser
from cacheyard.engines.certificates import CA_CERT, CertificateAuthority
from cacheyard.engines.discovery import DiscoverySpec, EndpointTls
from cacheyard.engines.spec import NodeSpec, TlsFiles
from cacheyard.engines.tls_front import PLAIN_OFFSET

TLS_DIR = "tls"


def node_tls(layout: Layout, node_dir: Path) -> TlsFiles:
    tls_dir = node_dir / TLS_DIR
    return TlsFiles(tls_dir / "node.crt", tls_dir / "node.key", layout.ca / CA_CERT)


def redis_listeners(
    layout: Layout, node_dir: Path, port: int, required: bool, preferred: bool
) -> dict[str, Any]:
    """How a Redis node listens, by TransitEncryptionMode: TLS only on its port
    (required); Redis on internal ports behind a front that holds it (preferred,
    control connections plain text on the internal port); plain text otherwise."""
    if preferred:
        return {"port": port + PLAIN_OFFSET, "preferred_tls": node_tls(layout, node_dir)}
    return {"port": port, "tls": node_tls(layout, node_dir) if required else None}


def endpoint_tls(layout: Layout, endpoint_dir: Path) -> EndpointTls:
    """A configuration endpoint's files, laid out as a node's."""
    files = node_tls(layout, endpoint_dir)
    return EndpointTls(files.cert, files.key, files.ca)


async def ensure_certificate(
    layout: Layout, node: NodeSpec, name: str, addresses: Sequence[str]
) -> None:
    """Issue (or keep) the certificate a TLS node starts with, naming every address
    clients may reach it by."""
    files = node.tls or node.preferred_tls
    if files is None:
        return
    await _issue(layout, files.cert.parent, name, addresses)


async def ensure_endpoint_certificate(layout: Layout, endpoint: DiscoverySpec, name: str) -> None:
    """Issue (or keep) the certificate a TLS configuration endpoint starts with,
    naming its own address."""
    if endpoint.tls is None:
        return
    await _issue(layout, endpoint.tls.cert.parent, name, [endpoint.address])


async def _issue(layout: Layout, directory: Path, name: str, addresses: Sequence[str]) -> None:
    ca = CertificateAuthority(layout.ca)
    await asyncio.to_thread(ca.issue, directory, name, list(addresses))


def started_users(users: Sequence[AclUser]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The ACL users written into a node's configuration, as its spec takes them."""
    return tuple((u.name, u.rules) for u in users)
