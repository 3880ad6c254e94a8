"""What secures a node: its TLS files (certificates issued before a start) and
the ACL users it starts with."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from cacheyard.controller.layout import Layout
from cacheyard.domain.acl import AclUser
from cacheyard.engines.certificates import CA_CERT, CertificateAuthority
from cacheyard.engines.spec import NodeSpec, TlsFiles

TLS_DIR = "tls"


def node_tls(layout: Layout, node_dir: Path) -> TlsFiles:
    tls_dir = node_dir / TLS_DIR
    return TlsFiles(tls_dir / "node.crt", tls_dir / "node.key", layout.ca / CA_CERT)


async def ensure_certificate(
    layout: Layout, node: NodeSpec, name: str, addresses: Sequence[str]
) -> None:
    """Issue (or keep) the certificate a TLS node starts with, naming every address
    clients may reach it by."""
    if node.tls is None:
        return
    ca = CertificateAuthority(layout.ca)
    await asyncio.to_thread(ca.issue, node.tls.cert.parent, name, list(addresses))


def started_users(users: Sequence[AclUser]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The ACL users written into a node's configuration, as its spec takes them."""
    return tuple((u.name, u.rules) for u in users)
